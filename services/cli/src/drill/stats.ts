/**
 * Drill arithmetic: per-peer outage from the instants its probes were answered, percentiles, the
 * result's shape, the bars it is judged by, and the human-readable summary.
 */

/** Nearest-rank percentile (0 < p <= 100) of an ascending array; 0 for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

export interface Gap {
  /** Last answer before the gap (ms, drill clock relative to the fault). */
  readonly from: number;
  /** First answer after it; the end of the window when none came (`recovered` false). */
  readonly to: number;
}

export interface PeerOutage {
  /** Longest time between two answered probes in the window, minus one probe interval (>= 0). */
  readonly outageMs: number;
  /** Whether answers were coming at the end of the window (none missing for 3 intervals). */
  readonly recovered: boolean;
  /** Gaps longer than 3 probe intervals (for the timeline). */
  readonly gaps: readonly Gap[];
}

/**
 * The outage one peer saw in [`from`, `to`]: `answers` are the instants its probes were answered
 * (ascending, same clock). Time before the first answer in the window counts from `from`; time
 * after the last answer counts to `to` (then the peer has not recovered if that exceeds 3 intervals).
 */
export function peerOutage(
  answers: readonly number[],
  from: number,
  to: number,
  intervalMs: number,
): PeerOutage {
  let prev = from;
  let maxGap = 0;
  const gaps: Gap[] = [];
  const long = 3 * intervalMs;
  for (const a of answers) {
    if (a < from) {
      prev = a;
      continue;
    }
    if (a > to) break;
    const gap = a - prev;
    if (gap > maxGap) maxGap = gap;
    if (gap > long) gaps.push({ from: prev, to: a });
    prev = a;
  }
  const tail = to - prev;
  const recovered = tail <= long;
  if (tail > maxGap) maxGap = tail;
  if (!recovered) gaps.push({ from: prev, to });
  return { outageMs: Math.max(0, Math.round(maxGap - intervalMs)), recovered, gaps };
}

export interface Quantiles {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function quantiles(values: readonly number[]): Quantiles {
  const s = [...values].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), max: s.at(-1) ?? 0 };
}

export interface TimelineEvent {
  /** ms relative to the fault (negative: before it). */
  readonly t: number;
  readonly source: 'drill' | 'cluster' | 'peers';
  readonly what: string;
}

export interface DrillResult {
  readonly fault: string;
  readonly target: string;
  /** `leaseTtlMs` 0: not known (a running cluster). */
  readonly topology: { readonly workers: number; readonly edges: number; readonly leaseTtlMs: number };
  readonly peers: {
    readonly count: number;
    readonly established: number;
    readonly transport: string;
    readonly probeIntervalMs: number;
  };
  /** Over every peer (an unaffected peer's outage is about 0). */
  readonly outageMs: Quantiles;
  /** Peers with an outage longer than 3 probe intervals, and their quantiles. */
  readonly affected: { readonly count: number; readonly outageMs: Quantiles };
  /** Peers whose first SA was deleted, or that got no answer at the end of the run. */
  readonly sasLost: number;
  /** New IKE SAs (IKE_SA_INIT) the peers started after the setup. */
  readonly reauths: number;
  readonly probes: { readonly sent: number; readonly answered: number };
  readonly esp: {
    readonly sent: number;
    /**
     * Accepted by the workers (`ikegate_esp_packets_total{direction="in"}` over the run; a killed
     * worker's as read just before the fault, so what it took in its last milliseconds counts as
     * lost); -1: not known (a running cluster).
     */
    readonly received: number;
    /** -1: not known. */
    readonly lost: number;
    /** Not even sent (the peer's stream was down). */
    readonly unsendable: number;
  };
  /**
   * Drops the cluster counted over the run (local: `ikegate_drops_total` per process, as
   * `<process> <layer>/<reason>`; `esp/no_device`, every ESP packet of a worker without TUN, left out),
   * and what the drill's peers dropped (`peers <layer>/<reason>`).
   */
  readonly clusterDrops: Readonly<Record<string, number>>;
  /**
   * The drill process's own event-loop delay while traffic ran: a stall here (a busy machine)
   * delays probes and the handling of answers alike, and shows as outage on every peer.
   */
  readonly drillLoopDelayMs: { readonly p99: number; readonly max: number };
  /** Fault-specific checks (e.g. `fenced`), each with what was seen. */
  readonly checks: readonly { readonly name: string; readonly ok: boolean; readonly detail: string }[];
  readonly timeline: readonly TimelineEvent[];
  /** Per peer: transport, edge at the end, outage, recovered, gaps (for the HTML plot). */
  readonly perPeer: readonly {
    readonly n: number;
    readonly transport: string;
    readonly edge: string;
    /** The worker holding its SA before the fault and at the end (control API). */
    readonly workerBefore?: string;
    readonly worker?: string;
    readonly outageMs: number;
    readonly recovered: boolean;
    readonly gaps: readonly Gap[];
  }[];
  /** The window measured, relative to the fault (ms). */
  readonly window: { readonly from: number; readonly to: number };
  /** Bars that failed (empty: the drill passed). */
  readonly failures: readonly string[];
}

export interface Bars {
  /** Fail when the p99 outage exceeds this (ms); undefined: no bar. */
  readonly maxP99Ms?: number;
  /** Fail when more SAs than this were lost (default 0). */
  readonly maxLost: number;
  /** Fail when more re-authentications than this happened (default 0). */
  readonly maxReauths: number;
}

/** Which bars `r` fails, in words. */
export function judge(
  r: Pick<DrillResult, 'outageMs' | 'sasLost' | 'reauths' | 'checks' | 'peers'>,
  bars: Bars,
): string[] {
  const out: string[] = [];
  if (r.peers.established < r.peers.count)
    out.push(`only ${r.peers.established} of ${r.peers.count} peers set up`);
  if (bars.maxP99Ms !== undefined && r.outageMs.p99 > bars.maxP99Ms)
    out.push(`outage p99 ${r.outageMs.p99} ms > ${bars.maxP99Ms} ms`);
  if (r.sasLost > bars.maxLost) out.push(`${r.sasLost} SAs lost (at most ${bars.maxLost} allowed)`);
  if (r.reauths > bars.maxReauths)
    out.push(`${r.reauths} re-authentications (at most ${bars.maxReauths} allowed)`);
  for (const c of r.checks) if (!c.ok) out.push(`${c.name}: ${c.detail}`);
  return out;
}

/** `1500` -> `1.50 s`, `80` -> `80 ms`. */
export function ms(v: number): string {
  return Math.abs(v) >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${Math.round(v)} ms`;
}

function signedMs(v: number): string {
  return `${v >= 0 ? '+' : '-'}${ms(Math.abs(v))}`;
}

export function topology(r: DrillResult): string {
  const t = r.topology;
  return `${t.workers} workers, ${t.edges} edges, lease TTL ${t.leaseTtlMs > 0 ? ms(t.leaseTtlMs) : 'not known'}`;
}

export function espLine(r: DrillResult): string {
  const e = r.esp;
  const got =
    e.received < 0
      ? `${e.sent} sent (what the workers accepted is not read through the control API)`
      : `${e.sent} sent, ${e.received} accepted by the workers, ${e.lost} lost`;
  return got + (e.unsendable ? `, ${e.unsendable} not sendable (stream down)` : '');
}

export function formatResult(r: DrillResult): string {
  const q = (x: Quantiles) => `p50 ${ms(x.p50)}  p99 ${ms(x.p99)}  max ${ms(x.max)}`;
  const lines = [
    `drill ${r.fault} against ${r.target}: ${topology(r)}`,
    `  peers         ${r.peers.established}/${r.peers.count} up (${r.peers.transport}), a probe every ${r.peers.probeIntervalMs} ms each`,
    `  outage        ${q(r.outageMs)}  (all peers; longest time between answered probes minus one interval)`,
    `  affected      ${r.affected.count} peers: ${q(r.affected.outageMs)}`,
    `  SAs lost      ${r.sasLost}`,
    `  re-auths      ${r.reauths}`,
    `  probes        ${r.probes.sent} sent, ${r.probes.answered} answered`,
    `  ESP           ${espLine(r)}`,
  ];
  const lost = r.perPeer.filter((p) => !p.recovered);
  if (lost.length > 0)
    lines.push(
      `  not answering ${lost
        .slice(0, 12)
        .map((p) => `peer ${p.n} (${p.transport}, ${p.workerBefore ?? '?'} -> ${p.worker ?? '?'})`)
        .join(', ')}${lost.length > 12 ? `, ... (${lost.length})` : ''}`,
    );
  lines.push(
    `  drill stalls  event-loop delay p99 ${ms(r.drillLoopDelayMs.p99)}, max ${ms(r.drillLoopDelayMs.max)}` +
      (r.drillLoopDelayMs.max > 250
        ? ' (the drill itself stalled: outages are overstated by up to that)'
        : ''),
  );
  const drops = Object.entries(r.clusterDrops);
  if (drops.length > 0) lines.push(`  drops         ${drops.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  for (const c of r.checks) lines.push(`  check         ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
  lines.push('  timeline (relative to the fault):');
  for (const e of r.timeline)
    lines.push(`    ${signedMs(e.t).padStart(10)}  ${e.source.padEnd(7)}  ${e.what}`);
  lines.push(r.failures.length === 0 ? 'PASS' : `FAIL: ${r.failures.join('; ')}`);
  return lines.join('\n') + '\n';
}

/** A one-line progress bar: `[#####.....] label`. */
export function progressBar(done: number, total: number, width: number, label: string): string {
  const f = total > 0 ? Math.min(width, Math.max(0, Math.round((done / total) * width))) : 0;
  return `[${'#'.repeat(f)}${'.'.repeat(width - f)}] ${label}`;
}
