/**
 * The drill's HTML report: one self-contained page (inline CSS and SVG, no script, no external
 * asset) with the summary table and a timeline plot: one row per peer, its outages in red over
 * the measured window, the drill's and the cluster's events as vertical marks.
 */
import { type DrillResult, espLine, ms, topology } from './stats.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const MAX_ROWS = 300;

/** The timeline plot as an SVG element (string). */
export function timelineSvg(r: DrillResult): string {
  const rows = r.perPeer.slice(0, MAX_ROWS);
  const left = 70;
  const width = 900;
  const rowH = rows.length > 100 ? 3 : 6;
  const top = 20;
  const plotH = Math.max(60, rows.length * rowH);
  const eventsH = 14 * Math.min(r.timeline.length, 30) + 10;
  const height = top + plotH + 30 + eventsH;
  const span = Math.max(1, r.window.to - r.window.from);
  const x = (t: number) =>
    left + ((Math.min(Math.max(t, r.window.from), r.window.to) - r.window.from) / span) * width;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 20}" height="${height}" font-family="sans-serif" font-size="11">`,
  );
  parts.push(`<rect x="${left}" y="${top}" width="${width}" height="${plotH}" fill="#e8f5e9"/>`);
  rows.forEach((p, i) => {
    const y = top + i * rowH;
    for (const g of p.gaps) {
      const x0 = x(g.from);
      const w = Math.max(1, x(g.to) - x0);
      parts.push(
        `<rect x="${x0.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${Math.max(1, rowH - 1)}" fill="${p.recovered ? '#e53935' : '#000'}"><title>peer ${p.n} (${escapeHtml(p.transport)}, ${escapeHtml(p.edge)}${p.worker ? `, ${escapeHtml(p.worker)}` : ''}): no answer ${ms(g.from)} to ${ms(g.to)}</title></rect>`,
      );
    }
  });
  // Ticks every second (or every 5 s for long windows).
  const step = span > 30_000 ? 5000 : 1000;
  for (let t = Math.ceil(r.window.from / step) * step, k = 0; t <= r.window.to && k < 200; t += step, k++) {
    parts.push(
      `<line x1="${x(t)}" x2="${x(t)}" y1="${top + plotH}" y2="${top + plotH + 4}" stroke="#555"/>` +
        `<text x="${x(t)}" y="${top + plotH + 15}" text-anchor="middle">${t / 1000}s</text>`,
    );
  }
  parts.push(`<text x="4" y="${top + 10}">peers</text>`);
  parts.push(
    `<text x="${left + width / 2}" y="${top + plotH + 27}" text-anchor="middle">time relative to the fault</text>`,
  );
  r.timeline.slice(0, 30).forEach((e, i) => {
    const xe = x(e.t);
    const color = e.source === 'drill' ? '#1e88e5' : e.source === 'cluster' ? '#8e24aa' : '#f4511e';
    const ye = top + plotH + 40 + i * 14;
    parts.push(
      `<line x1="${xe}" x2="${xe}" y1="${top}" y2="${ye - 4}" stroke="${color}" stroke-dasharray="2,2" opacity="0.6"/>` +
        `<text x="${xe + 3}" y="${ye}" fill="${color}">${escapeHtml(`${ms(e.t)} ${e.what}`)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export function htmlReport(r: DrillResult): string {
  const row = (k: string, v: string) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`;
  const q = (x: { p50: number; p99: number; max: number }) =>
    `p50 ${ms(x.p50)}, p99 ${ms(x.p99)}, max ${ms(x.max)}`;
  const verdict = r.failures.length === 0 ? 'PASS' : `FAIL: ${r.failures.join('; ')}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ikegate drill: ${escapeHtml(r.fault)}</title>
<style>
body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{text-align:left;padding:2px 10px;border-bottom:1px solid #ddd}
.pass{color:#2e7d32}.fail{color:#c62828}
</style></head><body>
<h1>ikegate drill: ${escapeHtml(r.fault)}</h1>
<p class="${r.failures.length === 0 ? 'pass' : 'fail'}"><b>${escapeHtml(verdict)}</b></p>
<table>
${row('target', `${r.target}: ${topology(r)}`)}
${row('peers', `${r.peers.established}/${r.peers.count} up (${r.peers.transport}), a probe every ${r.peers.probeIntervalMs} ms each`)}
${row('outage (all peers)', q(r.outageMs))}
${row('affected peers', `${r.affected.count}: ${q(r.affected.outageMs)}`)}
${row('SAs lost', String(r.sasLost))}
${row('re-authentications', String(r.reauths))}
${row('probes', `${r.probes.sent} sent, ${r.probes.answered} answered`)}
${row('ESP packets', espLine(r))}
${row(
  'cluster drops',
  Object.entries(r.clusterDrops)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none',
)}
${r.checks.map((c) => row(`check: ${c.name}`, `${c.ok ? 'ok' : 'FAIL'}: ${c.detail}`)).join('\n')}
</table>
<h2>Timeline</h2>
<p>One row per peer (${Math.min(r.perPeer.length, MAX_ROWS)} shown): red where its probes went unanswered for more than 3 intervals, black where it never recovered. Outage = the longest time between answered probes minus one probe interval.</p>
${timelineSvg(r)}
<table>
<tr><th>t</th><th>source</th><th>event</th></tr>
${r.timeline.map((e) => `<tr><td>${escapeHtml(ms(e.t))}</td><td>${e.source}</td><td>${escapeHtml(e.what)}</td></tr>`).join('\n')}
</table>
</body></html>
`;
}
