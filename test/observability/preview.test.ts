/**
 * The dashboard preview behind the pictures in docs/observability.md (issue #13): given the
 * series Prometheus returned, it lays the shipped dashboard's panels out on Grafana's 24-column
 * grid, names series by the target's legend format, formats values in the panel's unit, and
 * makes a page that fetches nothing. (The data come from a real Prometheus only in
 * test/observability/dashboards.test.ts with IKEGATE_DASHBOARD_PICTURES set; here they are fixed.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { DASHBOARDS, fileOf } from '../../scripts/dashboards.js';
import {
  formatValue,
  legendOf,
  PAGE_WIDTH,
  type PreviewDashboard,
  renderPreview,
  type Series,
} from './lib/preview.js';

const overview = JSON.parse(
  readFileSync(fileOf(DASHBOARDS.find((d) => d.uid === 'ikegate-overview')!), 'utf8'),
) as PreviewDashboard;

const START = 1_800_000_000;
const line = (name: string, f: (i: number) => number): Series => ({
  name,
  points: Array.from({ length: 61 }, (_, i) => [START + i, f(i)] as const),
});

test('formatValue: Grafana unit ids (ops, pps, bps SI; bytes IEC; s scaled; percentunit; dateTimeFromNow)', () => {
  const now = START + 100;
  const cases: [number, string | undefined, string][] = [
    [21, 'none', '21'],
    [12_345, 'none', '12.3 k'],
    [0.00838, 'ops', '0.00838 ops/s'],
    [0.5, 'pps', '0.5 p/s'],
    [1_500_000, 'bps', '1.5 Mb/s'],
    [10 * 1024 * 1024, 'bytes', '10 MiB'],
    [0.0005, 's', '500 µs'],
    [0.2, 's', '200 ms'],
    [3, 's', '3 s'],
    [0.00565, 'percentunit', '0.565%'],
    [(now - 12) * 1000, 'dateTimeFromNow', '12 s ago'],
    [NaN, 'bps', 'NaN'],
  ];
  for (const [v, unit, want] of cases) assert.equal(formatValue(v, unit, now), want, `${v} ${unit}`);
});

test('renderPreview: every panel of the shipped overview dashboard at its gridPos, legends from legendFormat, stat as last value, no external fetch', () => {
  const panels = overview.panels.map((p, i): Series[] =>
    p.type === 'stat' ? [line('', (k) => (k < 30 ? 0 : 21))] : [line(`series ${i}`, (k) => k / 10)],
  );
  // "Drops by layer and reason" (the last, full-width panel) got no data.
  panels[panels.length - 1] = [];
  const page = renderPreview(overview, {
    uid: overview.uid,
    start: START,
    end: START + 60,
    step: 1,
    variables: { cluster: 'test' },
    panels,
  });
  assert.equal(page.width, PAGE_WIDTH);
  assert.deepEqual(page.empty, [overview.panels.at(-1)!.title]);
  const boxes = [
    ...page.html.matchAll(/<div class="panel" style="left:([\d.]+)px;top:(\d+)px;width:([\d.]+)px/g),
  ];
  assert.equal(boxes.length, overview.panels.length);
  const colW = (PAGE_WIDTH - 2 * 16 - 23 * 8) / 24;
  for (const [i, p] of overview.panels.entries()) {
    assert.ok(page.html.includes(`<span class="pt">${p.title}</span>`), p.title);
    const [, left, top, width] = boxes[i]!.map(Number);
    assert.equal(left, Number((p.gridPos.x * (colW + 8)).toFixed(1)), `${p.title} x`);
    assert.equal(top, p.gridPos.y * 38, `${p.title} y`);
    assert.equal(width, Number((p.gridPos.w * colW + (p.gridPos.w - 1) * 8).toFixed(1)), `${p.title} w`);
  }
  // Stat panels show the last value; time series one line each with the legend name.
  assert.equal(
    (page.html.match(/<div class="big"[^>]*>21<\/div>/g) ?? []).length,
    overview.panels.filter((p) => p.type === 'stat').length,
  );
  const timeseries = overview.panels.filter((p) => p.type !== 'stat').length - 1;
  assert.equal((page.html.match(/<polyline /g) ?? []).length, timeseries);
  const first = overview.panels.findIndex((p) => p.type !== 'stat');
  assert.ok(page.html.includes(`series ${first} <em>6</em>`), 'legend name and last value');
  assert.ok(page.html.includes('No data'));
  // Self-contained: a CSP that forbids every fetch, and nothing to fetch anyway.
  assert.match(page.html, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"/);
  assert.doesNotMatch(page.html, /\b(src|href)=|url\(|<script|@import/);
});

test('legendOf: {{label}} takes the series label value, as in Grafana; no format gives the series selector', () => {
  const metric = { __name__: 'ikegate_drops_total', layer: 'iketcp', reason: 'bad_prefix' };
  assert.equal(legendOf('{{layer}} {{ reason }}', metric), 'iketcp bad_prefix');
  assert.equal(legendOf('{{instance}}', metric), '');
  assert.equal(legendOf(undefined, metric), 'ikegate_drops_total{layer="iketcp", reason="bad_prefix"}');
});

test('renderPreview: a NaN point breaks the line, as a gap in Grafana', () => {
  const d: PreviewDashboard = {
    uid: 'x',
    title: 'x',
    panels: [
      {
        id: 1,
        title: 'p',
        type: 'timeseries',
        gridPos: { h: 8, w: 24, x: 0, y: 0 },
        fieldConfig: { defaults: { unit: 'pps' } },
        targets: [{ expr: 'e', refId: 'A', legendFormat: '{{layer}} {{reason}}' }],
      },
    ],
  };
  const gap = line('udp bad_prefix', (k) => (k === 30 ? NaN : 1));
  const page = renderPreview(d, {
    uid: 'x',
    start: START,
    end: START + 60,
    step: 1,
    variables: {},
    panels: [[gap]],
  });
  assert.equal((page.html.match(/<polyline /g) ?? []).length, 2, 'two runs either side of the NaN');
  assert.ok(page.html.includes('udp bad_prefix <em>1 p/s</em>'));
});
