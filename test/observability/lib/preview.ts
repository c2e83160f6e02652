/**
 * A preview of the Grafana dashboards, for the pictures in docs/observability.md (issue #13). No
 * Grafana server runs here, so this draws the dashboard itself: every panel's queries, with the
 * dashboard's variables substituted by the caller (the same function the data test uses), are
 * evaluated by a real Prometheus through `/api/v1/query_range`, and the results are laid out on
 * Grafana's 24-column grid (30 px rows, 8 px gaps) with the panel's title, unit and legend: time
 * series as inline SVG lines, stat panels as big numbers. The page is one self-contained HTML
 * file (no script, no external CSS, fonts or images; its Content-Security-Policy forbids any
 * fetch), and headless Chromium (Debian's `chromium`, optional) renders it to PNG.
 *
 * This is NOT Grafana's rendering: colours, axes and number formats only approximate it. What it
 * shows faithfully is what each panel's queries return.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The parts of a dashboard (the JSON in helm/ikegate/dashboards) the preview draws. */
export interface PreviewDashboard {
  readonly uid: string;
  readonly title: string;
  readonly description?: string;
  readonly templating?: { readonly list: readonly { readonly name: string }[] };
  readonly panels: readonly {
    readonly id: number;
    readonly title: string;
    readonly type: string;
    readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
    readonly fieldConfig?: { readonly defaults?: { readonly unit?: string } };
    readonly targets: readonly {
      readonly expr: string;
      readonly refId: string;
      readonly legendFormat?: string;
    }[];
  }[];
}

export interface PreviewOptions {
  /** Prometheus base URL, e.g. http://127.0.0.1:9090. */
  readonly prometheus: string;
  /** Substitutes the dashboard's variables in a query, as Grafana would. */
  readonly substitute: (expr: string) => string;
  /** The variable values shown in the page header; by default `substitute('$name')` for each. */
  readonly variables?: Readonly<Record<string, string>>;
  /** Unix seconds; `start` defaults to when Prometheus started, `end` to now. */
  readonly start?: number;
  readonly end?: number;
}

export interface Series {
  readonly name: string;
  /** [unix seconds, value]; NaN for a point Prometheus returned as NaN/Inf. */
  readonly points: readonly (readonly [number, number])[];
}

/** Page width in CSS pixels; panels scale to it like Grafana's grid does. */
export const PAGE_WIDTH = 1600;
const PAD = 16;
const GAP = 8;
const CELL_H = 30;
const HEADER_H = 92;
const PALETTE = [
  '#73BF69',
  '#F2CC0C',
  '#8AB8FF',
  '#FF780A',
  '#F2495C',
  '#5794F2',
  '#B877D9',
  '#705DA0',
  '#37872D',
  '#FADE2A',
  '#447EBC',
  '#C15C17',
  '#890F02',
  '#0A437C',
  '#6D1F62',
  '#584477',
];

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

async function api<T>(base: string, path: string): Promise<T> {
  const r = await fetch(`${base}${path}`);
  const body = (await r.json()) as { status: string; error?: string; data?: T };
  if (body.status !== 'success') throw new Error(`${path}: ${body.error ?? r.status}`);
  return body.data!;
}

/** When the Prometheus server started (unix seconds): the natural start of a test's time range. */
export async function prometheusStartTime(base: string): Promise<number> {
  const info = await api<{ startTime: string }>(base, '/api/v1/status/runtimeinfo');
  return Date.parse(info.startTime) / 1000;
}

/** Grafana's legend format: `{{label}}` replaced by the series' label value. */
export function legendOf(format: string | undefined, metric: Record<string, string>): string {
  if (format && format !== '__auto')
    return format.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_, l: string) => metric[l] ?? '');
  const labels = Object.entries(metric).filter(([k]) => k !== '__name__');
  return `${metric.__name__ ?? ''}{${labels.map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

async function queryRange(
  base: string,
  expr: string,
  legendFormat: string | undefined,
  start: number,
  end: number,
  step: number,
): Promise<Series[]> {
  const q = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: String(step) });
  const data = await api<{ resultType: string; result: unknown }>(base, `/api/v1/query_range?${q}`);
  const result = data.result as { metric: Record<string, string>; values: [number, string][] }[];
  return result.map((r) => ({
    name: legendOf(legendFormat, r.metric),
    points: r.values.map(([t, v]) => [t, Number.isFinite(Number(v)) ? Number(v) : NaN] as const),
  }));
}

// ---- number formats (Grafana's unit ids, approximated) ----

/** At most 3 significant digits, no trailing zeros (0.0025 stays 0.0025, 123.4 is 123). */
function trim(v: number): string {
  if (v === 0) return '0';
  return Math.abs(v) >= 100 ? Math.round(v).toString() : Number(v.toPrecision(3)).toString();
}

function scaled(v: number, base: number, prefixes: readonly string[], suffix: string): string {
  let i = 0;
  let x = v;
  while (Math.abs(x) >= base && i < prefixes.length - 1) {
    x /= base;
    i++;
  }
  return `${trim(x)} ${prefixes[i]}${suffix}`;
}

const SI = ['', 'k', 'M', 'G', 'T'];
const IEC = ['', 'Ki', 'Mi', 'Gi', 'Ti'];

/** `value` in `unit`; `now` (unix seconds) for relative times. */
export function formatValue(value: number, unit: string | undefined, now: number): string {
  if (!Number.isFinite(value)) return 'NaN';
  switch (unit) {
    case 'ops':
      return `${scaled(value, 1000, SI, '')}ops/s`;
    case 'pps':
      return `${scaled(value, 1000, SI, 'p/s')}`;
    case 'bps':
      return scaled(value, 1000, SI, 'b/s');
    case 'bytes':
      return scaled(value, 1024, IEC, 'B');
    case 'percentunit':
      return `${trim(value * 100)}%`;
    case 's': {
      const a = Math.abs(value);
      if (a === 0) return '0 s';
      if (a < 1e-3) return `${trim(value * 1e6)} µs`;
      if (a < 1) return `${trim(value * 1e3)} ms`;
      if (a < 120) return `${trim(value)} s`;
      return `${trim(value / 60)} min`;
    }
    case 'dateTimeFromNow': {
      const ago = Math.max(0, now - value / 1000);
      if (ago < 90) return `${Math.round(ago)} s ago`;
      if (ago < 5400) return `${Math.round(ago / 60)} min ago`;
      return `${Math.round(ago / 3600)} h ago`;
    }
    case 'none':
    case undefined:
      return Math.abs(value) >= 10_000 ? scaled(value, 1000, SI, '').trim() : trim(value);
    default:
      return `${trim(value)} ${unit}`;
  }
}

const unitLabel: Record<string, string> = {
  none: '',
  ops: 'per second',
  pps: 'packets/s',
  bps: 'bits/s',
  bytes: 'bytes',
  s: 'seconds',
  percentunit: 'percent',
  dateTimeFromNow: 'time ago',
};

/** 1, 2, 2.5 or 5 times a power of ten, about `n` steps over `span` (bytes: of KiB, MiB, ...). */
function niceStep(span: number, n: number, unit: string | undefined): number {
  let scale = 1;
  if (unit === 'bytes') while (span / n / scale >= 1024) scale *= 1024;
  const raw = span / n / scale;
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag * scale;
  return 10 * mag * scale;
}

const TIME_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
const hhmmss = (t: number) => new Date(t * 1000).toISOString().slice(11, 19);

// ---- panels ----

interface Box {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

/** Legend items laid out in rows of at most `width` px; at most `maxRows`, the rest counted. */
function legendRows(items: readonly { name: string; last: string }[], width: number, maxRows: number) {
  const rows: { name: string; last: string; color: string }[][] = [[]];
  let x = 0;
  let shown = 0;
  for (const [i, { name, last }] of items.entries()) {
    const w = 30 + (name.length + last.length) * 6.4;
    if (x + w > width && rows[rows.length - 1]!.length > 0) {
      if (rows.length === maxRows) break;
      rows.push([]);
      x = 0;
    }
    rows[rows.length - 1]!.push({ name, last, color: PALETTE[i % PALETTE.length]! });
    x += w;
    shown++;
  }
  return { rows, hidden: items.length - shown };
}

function timeseries(
  box: Box,
  series: readonly Series[],
  unit: string | undefined,
  start: number,
  end: number,
  now: number,
) {
  // The legend also gives each series' last value, so that lines drawn on top of each other
  // (ESP in and out of a ping) are still told apart.
  const legend = legendRows(
    series.map((s) => ({ name: s.name, last: formatValue(lastValue(s), unit, now) })),
    box.width - 20,
    3,
  );
  const legendH = legend.rows.length * 17 + 6;
  const w = box.width - 2;
  const h = box.height - 34 - legendH;
  const values = series.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => Number.isFinite(v));
  let lo = Math.min(0, ...values);
  let hi = Math.max(...values, lo);
  if (hi === lo) hi = lo === 0 ? 1 : lo + Math.abs(lo);
  const step = niceStep(hi - lo, 4, unit);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: { v: number; label: string }[] = [];
  for (let k = 0; lo + k * step <= hi + step / 2; k++)
    ticks.push({ v: lo + k * step, label: formatValue(lo + k * step, unit, now) });
  // The value axis is as wide as its longest label.
  const axisL = 14 + 6.4 * Math.max(...ticks.map((t) => t.label.length));
  const axisB = 22;
  const plotW = w - axisL - 10;
  const plotH = h - axisB - 8;
  const X = (t: number) => axisL + ((t - start) / (end - start)) * plotW;
  const Y = (v: number) => 8 + plotH - ((v - lo) / (hi - lo)) * plotH;
  const parts: string[] = [];
  for (const { v, label } of ticks)
    parts.push(
      `<line x1="${axisL}" x2="${axisL + plotW}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" class="grid"/>`,
      `<text x="${(axisL - 6).toFixed(1)}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end">${esc(label)}</text>`,
    );
  const tStep = TIME_STEPS.find((s) => (end - start) / s <= 6) ?? 3600;
  for (let t = Math.ceil(start / tStep) * tStep; t <= end; t += tStep) {
    parts.push(
      `<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="8" y2="${8 + plotH}" class="grid"/>`,
    );
    // A label centred on a tick next to the left edge would run into the value labels.
    if (X(t) - axisL >= 26 && axisL + plotW - X(t) >= 26)
      parts.push(`<text x="${X(t).toFixed(1)}" y="${h - 4}" text-anchor="middle">${hhmmss(t)}</text>`);
  }
  for (const [i, s] of series.entries()) {
    // A gap of more than two steps (or a NaN) breaks the line, as Grafana does for missing points.
    const color = PALETTE[i % PALETTE.length]!;
    let run: string[] = [];
    let prevT = -Infinity;
    const gap = ((end - start) / 400) * 2.5;
    const flush = () => {
      if (run.length === 1) run.push(run[0]!.replace(/^([\d.]+)/, (x) => String(Number(x) + 1.5)));
      if (run.length > 1) parts.push(`<polyline points="${run.join(' ')}" stroke="${color}"/>`);
      run = [];
    };
    for (const [t, v] of s.points) {
      if (!Number.isFinite(v) || t - prevT > Math.max(gap, 2.5)) flush();
      if (Number.isFinite(v)) run.push(`${X(t).toFixed(1)},${Y(v).toFixed(1)}`);
      prevT = t;
    }
    flush();
  }
  const legendHtml = legend.rows
    .map(
      (row) =>
        `<div class="lrow">${row.map((it) => `<span class="li"><i style="background:${it.color}"></i>${esc(it.name)} <em>${esc(it.last)}</em></span>`).join('')}</div>`,
    )
    .join('');
  const more = legend.hidden > 0 ? `<span class="more">+${legend.hidden} more series</span>` : '';
  return (
    `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${parts.join('')}</svg>` +
    `<div class="legend">${legendHtml}${more}</div>`
  );
}

function lastValue(s: Series): number {
  for (let i = s.points.length - 1; i >= 0; i--) if (Number.isFinite(s.points[i]![1])) return s.points[i]![1];
  return NaN;
}

function stat(
  box: Box,
  series: readonly Series[],
  unit: string | undefined,
  start: number,
  end: number,
  now: number,
) {
  const h = box.height - 34;
  const cells = series.slice(0, 8);
  const perRow = Math.min(cells.length, Math.max(1, Math.floor(box.width / 190)));
  const rows = Math.ceil(cells.length / perRow);
  const cw = (box.width - 2) / perRow;
  const ch = h / rows;
  const size = Math.max(18, Math.min(64, ch * 0.42, (cw / 7) * 1.2));
  const out = cells.map((s, i) => {
    const values = s.points.map(([, v]) => v).filter((v) => Number.isFinite(v));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    // Grafana's stat sparkline (graphMode: area) under the number.
    const spark =
      values.length > 1 && unit !== 'dateTimeFromNow'
        ? `<svg class="spark" width="${cw}" height="${ch * 0.3}" viewBox="0 0 ${cw} ${ch * 0.3}" preserveAspectRatio="none"><polygon points="0,${ch * 0.3} ${s.points
            .filter(([, v]) => Number.isFinite(v))
            .map(
              ([t, v]) =>
                `${(((t - start) / (end - start)) * cw).toFixed(1)},${(ch * 0.3 - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * ch * 0.26).toFixed(1)}`,
            )
            .join(
              ' ',
            )} ${cw},${ch * 0.3}" fill="${PALETTE[0]}" fill-opacity="0.12" stroke="${PALETTE[0]}" stroke-width="1"/></svg>`
        : '';
    const name = series.length > 1 ? `<div class="sname">${esc(s.name)}</div>` : '';
    return `<div class="cell" style="left:${(i % perRow) * cw}px;top:${Math.floor(i / perRow) * ch}px;width:${cw}px;height:${ch}px">${spark}${name}<div class="big" style="font-size:${size.toFixed(0)}px">${esc(formatValue(lastValue(s), unit, now))}</div></div>`;
  });
  const more =
    series.length > cells.length ? `<span class="more">+${series.length - cells.length} more</span>` : '';
  return `<div class="stat" style="height:${h}px">${out.join('')}</div>${more}`;
}

const CSS = `
*{box-sizing:border-box}
body{margin:0;background:#111217;color:#ccccdc;font:13px/1.35 "DejaVu Sans",Arial,sans-serif}
header{height:${HEADER_H}px;padding:12px ${PAD}px 0}
h1{margin:0 0 4px;font-size:20px;font-weight:600;color:#fff}
.meta{font-size:12px;color:#9fa7b3}
.meta b{color:#ccccdc;font-weight:600}
.note{font-size:12px;color:#f2cc0c;margin-top:3px}
.grid-area{position:relative;margin:0 ${PAD}px}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;overflow:hidden}
.ph{height:32px;padding:7px 10px 0;display:flex;gap:8px;white-space:nowrap}
.pt{font-weight:600;color:#fff;overflow:hidden;text-overflow:ellipsis;flex:1}
.pu{font-size:11px;color:#8e8e8e;padding-top:1px}
svg text{fill:#9fa7b3;font-size:11px}
svg .grid{stroke:#2c3235;stroke-width:1}
svg polyline{fill:none;stroke-width:1.6;stroke-linejoin:round}
.legend{padding:2px 10px 0;font-size:11px}
.lrow{height:17px;white-space:nowrap;overflow:hidden}
.li{margin-right:14px}
.li em{font-style:normal;color:#8e8e8e}
.li i{display:inline-block;width:12px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
.more{font-size:11px;color:#8e8e8e;padding-left:10px}
.stat{position:relative}
.cell{position:absolute;display:flex;flex-direction:column;align-items:center;justify-content:center}
.spark{position:absolute;left:0;bottom:0}
.big{position:relative;color:#73bf69;font-weight:600;white-space:nowrap}
.sname{position:relative;font-size:12px;color:#ccccdc;white-space:nowrap;overflow:hidden;max-width:95%}
.nodata{padding:40px;text-align:center;color:#f2495c}
`;

export interface Preview {
  readonly html: string;
  readonly width: number;
  readonly height: number;
  /** Panels whose queries returned no series (drawn as "No data"). */
  readonly empty: readonly string[];
}

/** What a preview draws: every panel's series over one time range, as Prometheus returned them. */
export interface PreviewData {
  readonly uid: string;
  readonly start: number;
  readonly end: number;
  readonly step: number;
  readonly variables: Readonly<Record<string, string>>;
  /** Per panel (in the dashboard's order), the series of all its targets. */
  readonly panels: readonly (readonly Series[])[];
}

/** Runs every target of every panel of `d` through `/api/v1/query_range`. */
export async function fetchPreviewData(d: PreviewDashboard, o: PreviewOptions): Promise<PreviewData> {
  const end = Math.floor(o.end ?? Date.now() / 1000);
  const start = Math.floor(o.start ?? (await prometheusStartTime(o.prometheus)));
  if (!(end > start)) throw new Error(`empty time range ${start}..${end}`);
  // About 400 points per series, like a Grafana panel of this width.
  const step = Math.max(1, Math.ceil((end - start) / 400));
  const panels: Series[][] = [];
  for (const p of d.panels) {
    const series: Series[] = [];
    for (const t of p.targets)
      series.push(
        ...(await queryRange(o.prometheus, o.substitute(t.expr), t.legendFormat, start, end, step)),
      );
    panels.push(series);
  }
  const variables =
    o.variables ??
    Object.fromEntries(
      [
        ...(d.templating?.list ?? []).map((v) => v.name).filter((n) => n !== 'datasource'),
        '__rate_interval',
      ].map((n) => [n, o.substitute(`$${n}`)]),
    );
  return { uid: d.uid, start, end, step, variables, panels };
}

/** The preview page of one dashboard, from its data. */
export function renderPreview(d: PreviewDashboard, data: PreviewData): Preview {
  const { start, end, step } = data;
  const colW = (PAGE_WIDTH - 2 * PAD - 23 * GAP) / 24;
  const empty: string[] = [];
  const panels: string[] = [];
  let bottom = 0;
  for (const [i, p] of d.panels.entries()) {
    const g = p.gridPos;
    const box: Box = {
      left: g.x * (colW + GAP),
      top: g.y * (CELL_H + GAP),
      width: g.w * colW + (g.w - 1) * GAP,
      height: g.h * CELL_H + (g.h - 1) * GAP,
    };
    bottom = Math.max(bottom, box.top + box.height);
    const unit = p.fieldConfig?.defaults?.unit;
    const series = data.panels[i] ?? [];
    let body: string;
    if (series.length === 0) {
      empty.push(p.title);
      body = '<div class="nodata">No data</div>';
    } else if (p.type === 'stat') body = stat(box, series, unit, start, end, end);
    else body = timeseries(box, series, unit, start, end, end);
    const u = unit !== undefined ? (unitLabel[unit] ?? unit) : '';
    panels.push(
      `<div class="panel" style="left:${box.left.toFixed(1)}px;top:${box.top}px;width:${box.width.toFixed(1)}px;height:${box.height}px">` +
        `<div class="ph"><span class="pt">${esc(p.title)}</span><span class="pu">${esc(u)}</span></div>${body}</div>`,
    );
  }
  const vars = Object.entries(data.variables)
    .map(([k, v]) => `${esc(k)}=<b>${esc(v)}</b>`)
    .join('&nbsp; ');
  const range = `${new Date(start * 1000).toISOString().slice(0, 19).replace('T', ' ')} – ${hhmmss(end)} UTC (${end - start} s, step ${step} s)`;
  const height = HEADER_H + bottom + PAD;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${esc(d.title)} (preview)</title><style>${CSS}</style></head>
<body style="width:${PAGE_WIDTH}px;height:${height}px">
<header><h1>${esc(d.title)}</h1>
<div class="meta">${vars}&nbsp;&nbsp;·&nbsp;&nbsp;${esc(range)}&nbsp;&nbsp;·&nbsp;&nbsp;helm/ikegate/dashboards/${esc(d.uid)}.json</div>
<div class="note">Preview, not Grafana: each panel's own queries (variables substituted) evaluated by a real Prometheus via /api/v1/query_range and drawn by test/observability/lib/preview.ts.</div>
</header>
<div class="grid-area" style="height:${bottom}px">${panels.join('\n')}</div>
</body></html>
`;
  return { html, width: PAGE_WIDTH, height, empty };
}

/** Debian's chromium, if installed (not needed in CI: the pictures are made by hand). */
export function chromiumPath(): string | undefined {
  for (const p of ['/usr/bin/chromium', '/usr/bin/chromium-browser']) if (existsSync(p)) return p;
  return undefined;
}

/**
 * Renders `htmlFile` to `pngFile` at width × height CSS pixels with headless Chromium. Throws
 * with Chromium's output when no PNG appears. No network: the page fetches nothing, and Chromium
 * runs with a throwaway profile and its background services off.
 */
export function screenshot(htmlFile: string, pngFile: string, width: number, height: number): void {
  const chromium = chromiumPath();
  if (chromium === undefined) throw new Error('chromium not installed (apt-get install chromium)');
  const profile = mkdtempSync(join(tmpdir(), 'ikegate-preview-chromium-'));
  try {
    rmSync(pngFile, { force: true });
    const r = spawnSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--hide-scrollbars',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--force-device-scale-factor=1',
        `--user-data-dir=${profile}`,
        `--window-size=${width},${height}`,
        `--screenshot=${pngFile}`,
        `file://${htmlFile}`,
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    if (!existsSync(pngFile) || statSync(pngFile).size === 0)
      throw new Error(`chromium made no ${pngFile} (status ${r.status}): ${(r.stderr ?? '').slice(-2000)}`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

/**
 * Writes, for each dashboard, `<uid>.data.json` (the series drawn), `<uid>.html` and, when
 * Chromium is installed, `<uid>.png` into `dir`. Returns the files written and the panels that
 * had no data.
 */
export async function writePreviews(
  dashboards: readonly PreviewDashboard[],
  dir: string,
  o: PreviewOptions,
): Promise<{ files: string[]; empty: string[] }> {
  const start = o.start ?? (await prometheusStartTime(o.prometheus));
  const end = o.end ?? Date.now() / 1000;
  const data: PreviewData[] = [];
  for (const d of dashboards) data.push(await fetchPreviewData(d, { ...o, start, end }));
  return writeRendered(dashboards, data, dir);
}

function writeRendered(
  dashboards: readonly PreviewDashboard[],
  data: readonly PreviewData[],
  dir: string,
): { files: string[]; empty: string[] } {
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const empty: string[] = [];
  for (const [i, d] of dashboards.entries()) {
    const p = renderPreview(d, data[i]!);
    empty.push(...p.empty.map((t) => `${d.uid} / ${t}`));
    const base = join(dir, d.uid);
    writeFileSync(`${base}.data.json`, `${JSON.stringify(data[i])}\n`);
    writeFileSync(`${base}.html`, p.html);
    files.push(`${base}.data.json`, `${base}.html`);
    if (chromiumPath() !== undefined) {
      screenshot(`${base}.html`, `${base}.png`, p.width, p.height);
      files.push(`${base}.png`);
    }
  }
  return { files, empty };
}

// `npx tsx test/observability/lib/preview.ts <dir>`: draws the pages and pictures again from the
// <uid>.data.json files a test run left in <dir> (to change the drawing without a cluster).
if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('usage: npx tsx test/observability/lib/preview.ts <dir with <uid>.data.json>\n');
    process.exit(2);
  }
  const { DASHBOARDS, fileOf } = await import('../../../scripts/dashboards.js');
  const dashboards = DASHBOARDS.map(
    (d) => JSON.parse(readFileSync(fileOf(d), 'utf8')) as PreviewDashboard,
  ).filter((d) => existsSync(join(dir, `${d.uid}.data.json`)));
  const data = dashboards.map(
    (d) => JSON.parse(readFileSync(join(dir, `${d.uid}.data.json`), 'utf8')) as PreviewData,
  );
  for (const f of writeRendered(dashboards, data, dir).files) process.stdout.write(`wrote ${f}\n`);
}
