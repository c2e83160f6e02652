/**
 * How `ikegate ctl` prints: aligned tables for people, problem documents as a line per fact on
 * stderr. Pure functions of their inputs (the current time is a parameter), so tests compare text.
 */
import type { Problem } from './errors.js';

/** What a missing value prints as in a table. */
export const NONE = '-';

/** Columns padded to their widest cell; the last column is not padded, no line ends in spaces. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], indent = ''): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    indent +
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** `812 B`, `1.5 KiB`, `3.2 GiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** How long ago an ISO time was: `45s ago`, `12m ago`, `3h04m ago`, `2d03h ago`; `-` without one. */
export function ago(iso: string | undefined, now: number): string {
  if (iso === undefined) return NONE;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.max(0, Math.floor((now - t) / 1000));
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m ago`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h ago`;
}

/** `2024-05-01 12:00:03Z (5s ago)`; `-` without one. */
export function when(iso: string | undefined, now: number): string {
  if (iso === undefined) return NONE;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  return `${new Date(t)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')} (${ago(iso, now)})`;
}

/** `in-use` from `urn:ikegate:problem:in-use`; the title for a type that is not ours. */
export function problemKind(p: Problem): string {
  const m = /^urn:ikegate:problem:(.+)$/.exec(p.type ?? '');
  return m ? m[1]! : (p.title ?? 'error');
}

/**
 * A problem document for stderr: `error <status> <kind>: <detail>`, then each field error, the
 * holders of an in-use pool as a table, the peers naming it, and for 401/403 which credential was
 * sent (`credentials`: its source, never its value). `label` names the document of a multi-document
 * request.
 */
export function formatProblem(p: Problem, o: { label?: string; credentials?: string } = {}): string {
  const lines: string[] = [];
  const head = `error ${p.status} ${problemKind(p)}: ${p.detail ?? p.title ?? 'failed'}`;
  lines.push(o.label ? `${o.label}: ${head}` : head);
  for (const e of p.errors ?? []) lines.push(`  ${e.field ? `${e.in}.${e.field}` : e.in}: ${e.message}`);
  let out = lines.join('\n') + '\n';
  if (p.holders && p.holders.length > 0)
    out += table(
      ['ADDRESS', 'SPI', 'PEER', 'IDENTITY', 'WORKER'],
      p.holders.map((h) => [h.address, h.spi, h.peer ?? NONE, h.peerId ?? NONE, h.worker ?? NONE]),
      '  ',
    );
  if (p.peers && p.peers.length > 0) out += `  named by peers: ${p.peers.join(', ')}\n`;
  if ((p.status === 401 || p.status === 403) && o.credentials) out += `  (${o.credentials})\n`;
  return out;
}

/** `text` with every occurrence of each secret replaced (defence in depth: never echo a PSK). */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join('<redacted>');
  return out;
}
