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
  /**
   * The client's CPU time over the run, as a percentage of one core (100 = one core busy); with
   * `--processes N`, the sum over the processes (up to N x 100).
   */
  readonly clientCpuPercent: number;
  /** The client's CPU time (user + system) over the run, ms; summed over the processes. */
  readonly clientCpuMs?: number;
  /** With `--processes N`: each process's share and CPU (a saturated one set the pace). */
  readonly processes?: readonly ProcessSummary[];
  /** A few error messages, for the connection errors that have them. */
  readonly sampleErrors: readonly string[];
}

/** One loadgen process's part of a `--processes N` run. */
export interface ProcessSummary {
  readonly pid: number;
  /** Its SA numbers: firstN..firstN+count-1. */
  readonly firstN: number;
  readonly count: number;
  readonly concurrency: number;
  readonly established: number;
  readonly failed: number;
  /** Its CPU time over the run (ms) and as a percentage of one core; 0 when it never reported. */
  readonly cpuMs: number;
  readonly cpuPercent: number;
  /** How it ended: `reported`, or why its setups were all counted as failed. */
  readonly outcome: 'reported' | 'process-exited' | 'process-timeout' | 'process-error';
}

/** A process at or above this share of one core during the run set the pace itself. */
export const SATURATED_CPU_PERCENT = 90;

/** What one process reported (its summary and raw samples), or how it was lost. */
export type ProcessPart =
  | {
      readonly kind: 'reported';
      readonly pid: number;
      readonly firstN: number;
      readonly summary: LoadgenSummary;
      readonly startedAt: number;
      readonly completedAt: readonly number[];
      readonly latenciesMs: readonly number[];
      readonly cpuMs: number;
    }
  | {
      readonly kind: 'lost';
      readonly pid: number;
      readonly firstN: number;
      readonly count: number;
      readonly concurrency: number;
      readonly reason: 'process-exited' | 'process-timeout' | 'process-error';
      readonly message?: string;
      /** When the parent told it to start (same time scale as `startedAt`), and when it was lost. */
      readonly startedAt: number;
      readonly lostAt: number;
    };

/**
 * One summary for a run split over processes: counts and failures added up, latencies and
 * completion instants merged (all on one clock: `performance.timeOrigin + now()` is wall-clock
 * based, the same on every process of the machine), the duration from the first start to the last
 * settled setup. A lost process counts all its setups as failed under its reason (its SAs may
 * still be up on the server: nobody will delete them).
 */
export function mergeSummaries(
  head: { server: string; transport: LoadgenSummary['transport']; count: number; concurrency: number },
  parts: readonly ProcessPart[],
): LoadgenSummary {
  const failures: Record<string, number> = {};
  const latencies: number[] = [];
  const completedAt: number[] = [];
  const sampleErrors: string[] = [];
  const processes: ProcessSummary[] = [];
  let attempted = 0;
  let established = 0;
  let failed = 0;
  let held = 0;
  let lostAfterSetup = 0;
  let cpuMs = 0;
  let start = Infinity;
  let end = -Infinity;
  for (const p of parts) {
    if (p.kind === 'lost') {
      attempted += p.count;
      failed += p.count;
      failures[p.reason] = (failures[p.reason] ?? 0) + p.count;
      if (sampleErrors.length < 5)
        sampleErrors.push(`${p.reason}: pid ${p.pid}${p.message ? `: ${p.message}` : ''}`);
      start = Math.min(start, p.startedAt);
      end = Math.max(end, p.lostAt);
      processes.push({
        pid: p.pid,
        firstN: p.firstN,
        count: p.count,
        concurrency: p.concurrency,
        established: 0,
        failed: p.count,
        cpuMs: 0,
        cpuPercent: 0,
        outcome: p.reason,
      });
      continue;
    }
    const s = p.summary;
    attempted += s.attempted;
    established += s.established;
    failed += s.failed;
    held += s.held;
    lostAfterSetup += s.lostAfterSetup;
    cpuMs += p.cpuMs;
    for (const [reason, n] of Object.entries(s.failures)) failures[reason] = (failures[reason] ?? 0) + n;
    for (const e of s.sampleErrors) if (sampleErrors.length < 5) sampleErrors.push(e);
    latencies.push(...p.latenciesMs);
    completedAt.push(...p.completedAt);
    start = Math.min(start, p.startedAt);
    end = Math.max(end, p.startedAt + s.durationMs);
    processes.push({
      pid: p.pid,
      firstN: p.firstN,
      count: s.count,
      concurrency: s.concurrency,
      established: s.established,
      failed: s.failed,
      cpuMs: Math.round(p.cpuMs),
      cpuPercent: s.durationMs > 0 ? Math.round((p.cpuMs / s.durationMs) * 100) : 0,
      outcome: 'reported',
    });
  }
  const durationMs = Number.isFinite(start) && end > start ? end - start : 0;
  completedAt.sort((a, b) => a - b);
  const rates = quarterRates(
    completedAt.map((t) => t - start),
    head.concurrency,
  );
  return {
    server: head.server,
    transport: head.transport,
    count: head.count,
    concurrency: head.concurrency,
    attempted,
    established,
    failed,
    failures,
    held,
    lostAfterSetup,
    durationMs: Math.round(durationMs),
    setupsPerSecond: durationMs > 0 ? Math.round((established / durationMs) * 1000 * 10) / 10 : 0,
    setupsPerSecondFirstQuarter: rates.first,
    setupsPerSecondLastQuarter: rates.last,
    latencyMs: latencySummary(latencies),
    clientCpuPercent: durationMs > 0 ? Math.round((cpuMs / durationMs) * 100) : 0,
    clientCpuMs: Math.round(cpuMs),
    processes: processes.sort((a, b) => a.firstN - b.firstN),
    sampleErrors,
  };
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
  for (const p of s.processes ?? [])
    lines.push(
      `    pid ${p.pid} SAs ${p.firstN}-${p.firstN + p.count - 1}: ok ${p.established} failed ${p.failed}` +
        `  cpu ${p.cpuPercent}%${p.cpuPercent >= SATURATED_CPU_PERCENT ? ' (saturated)' : ''}` +
        (p.outcome === 'reported' ? '' : `  ${p.outcome}`),
    );
  for (const e of s.sampleErrors) lines.push(`  error: ${e}`);
  return lines.join('\n') + '\n';
}
