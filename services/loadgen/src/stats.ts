/** Summary arithmetic for `ikegate loadgen`: percentiles, rates, and the human-readable report. */

/** Nearest-rank percentile (0 < p <= 100) of an ascending array; 0 for an empty one. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

export interface LatencySummary {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  const s = [...samplesMs].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 100) / 100;
  const mean = s.length === 0 ? 0 : s.reduce((a, b) => a + b, 0) / s.length;
  return {
    p50: round(percentile(s, 50)),
    p90: round(percentile(s, 90)),
    p99: round(percentile(s, 99)),
    max: round(s.at(-1) ?? 0),
    mean: round(mean),
  };
}

/**
 * Setups/s over the first and the last quarter of the completions (`times`: completion instants
 * in ms, ascending): how flat the rate stayed as SAs piled up on the server. The first and last
 * `edge` completions (the ramp-up to full concurrency and the drain at the end, where fewer
 * setups compete) are left out; pass the concurrency.
 */
export function quarterRates(times: readonly number[], edge = 0): { first: number; last: number } {
  const t = times.length > 4 * edge + 8 ? times.slice(edge, times.length - edge) : times;
  const q = Math.floor(t.length / 4);
  if (q < 2) return { first: 0, last: 0 };
  const span = (a: number, b: number) => (t[b] ?? 0) - (t[a] ?? 0);
  const rate = (n: number, ms: number) => (ms > 0 ? Math.round((n / ms) * 1000 * 10) / 10 : 0);
  return { first: rate(q, span(0, q)), last: rate(q, span(t.length - 1 - q, t.length - 1)) };
}

/** `{n}` in an identity pattern becomes the SA's number (1-based). */
export function expandId(pattern: string, n: number): string {
  return pattern.replaceAll('{n}', String(n));
}

export interface LoadgenSummary {
  readonly server: string;
  readonly transport: 'udp' | 'tcp' | 'tls';
  readonly count: number;
  readonly concurrency: number;
  readonly attempted: number;
  /** IKE SA and its CHILD SA both up. */
  readonly established: number;
  readonly failed: number;
  /** Failures by reason: timeout, auth-failed, no-proposal, ts-unacceptable, dead-peer, connect-failed, ... */
  readonly failures: Readonly<Record<string, number>>;
  /** Established SAs still up when the run finished. */
  readonly held: number;
  /** Held SAs the server (or a closed stream) took down before the run finished. */
  readonly lostAfterSetup: number;
  readonly durationMs: number;
  readonly setupsPerSecond: number;
  /** Setups/s over the first and the last quarter of the completions, ramp-up and drain left out. */
  readonly setupsPerSecondFirstQuarter: number;
  readonly setupsPerSecondLastQuarter: number;
  /** From the first IKE_SA_INIT sent to the CHILD SA installed (ms). */
  readonly latencyMs: LatencySummary;
  /** This process's CPU time over the run, as a percentage of one core (100 = one core busy). */
  readonly clientCpuPercent: number;
  /** A few error messages, for the connection errors that have them. */
  readonly sampleErrors: readonly string[];
}

export function formatSummary(s: LoadgenSummary): string {
  const lines = [
    `loadgen ${s.transport} -> ${s.server}: ${s.count} SAs, concurrency ${s.concurrency}`,
    `  attempted    ${s.attempted}`,
    `  established  ${s.established}`,
    `  failed       ${s.failed}`,
  ];
  for (const [reason, n] of Object.entries(s.failures).sort((a, b) => b[1] - a[1]))
    lines.push(`    ${reason.padEnd(20)} ${n}`);
  lines.push(
    `  held         ${s.held}${s.lostAfterSetup ? ` (${s.lostAfterSetup} lost after setup)` : ''}`,
    `  duration     ${(s.durationMs / 1000).toFixed(2)} s`,
    `  setups/s     ${s.setupsPerSecond.toFixed(1)} (first quarter ${s.setupsPerSecondFirstQuarter.toFixed(1)}, last quarter ${s.setupsPerSecondLastQuarter.toFixed(1)})`,
    `  latency ms   p50 ${s.latencyMs.p50}  p90 ${s.latencyMs.p90}  p99 ${s.latencyMs.p99}  max ${s.latencyMs.max}`,
    `  client cpu   ${s.clientCpuPercent.toFixed(0)}% of one core`,
  );
  for (const e of s.sampleErrors) lines.push(`  error: ${e}`);
  return lines.join('\n') + '\n';
}
