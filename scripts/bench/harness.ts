/**
 * Shared benchmark harness. Every figure is printed next to a reference measured in the same run
 * on the same core, so ratios stay meaningful on a noisy machine. Benchmarks never run in tests.
 */
import { performance } from 'node:perf_hooks';

export interface BenchFigure {
  /** What was measured, e.g. "ESP encap+decap AES-256-GCM 1400B". */
  readonly name: string;
  readonly value: number;
  /** e.g. "pkt/s", "MB/s", "setups/s". */
  readonly unit: string;
  /** The reference measured in the same run, and the ratio value/reference. */
  readonly reference?: { readonly name: string; readonly value: number };
  /** Target ratio from the issue, if any (e.g. 0.7). */
  readonly target?: number;
  /** An absolute ceiling from the issue (same unit as `value`), e.g. 0.2 ms of CPU per SA. */
  readonly atMost?: number;
  /** The ratio to `reference` is better when lower (CPU time, memory); said on the line. */
  readonly lowerIsBetter?: boolean;
}

/**
 * Runs `op` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per
 * second. `op` returns how many operations it did (default 1), so batches can be timed.
 * Bounded: at most `maxIterations` calls.
 */
export function opsPerSecond(op: () => number | undefined, ms = 1000, maxIterations = 50_000_000): number {
  const warmUntil = performance.now() + Math.min(200, ms / 4);
  let i = 0;
  while (performance.now() < warmUntil && i < maxIterations) {
    op();
    i++;
  }
  let ops = 0;
  i = 0;
  const start = performance.now();
  let now = start;
  const until = start + ms;
  while (now < until && i < maxIterations) {
    ops += op() ?? 1;
    i++;
    if ((i & 15) === 0) now = performance.now();
  }
  now = performance.now();
  return ops / ((now - start) / 1000);
}

/**
 * Measures a subject and its reference interleaved (A B A B ...) and keeps the best of each,
 * which cancels most of the drift on a shared machine.
 */
export function compare(
  subject: () => number | undefined,
  reference: () => number | undefined,
  rounds = 3,
  ms = 500,
): { subject: number; reference: number } {
  let s = 0;
  let r = 0;
  for (let k = 0; k < rounds; k++) {
    r = Math.max(r, opsPerSecond(reference, ms));
    s = Math.max(s, opsPerSecond(subject, ms));
  }
  return { subject: s, reference: r };
}

/**
 * CPU time (user + system of this process, microseconds) per call of `op`, from about `ms` of
 * calls after a short warm-up. CPU time, not wall-clock: a busy machine slows the wall clock of
 * a loop but not (much) the CPU time one call needs. Bounded: at most `maxIterations` calls.
 */
export function cpuMicrosPerOp(op: () => unknown, ms = 500, maxIterations = 5_000_000): number {
  const warmUntil = performance.now() + Math.min(200, ms / 4);
  for (let i = 0; performance.now() < warmUntil && i < maxIterations; i++) op();
  const c0 = process.cpuUsage();
  const until = performance.now() + ms;
  let i = 0;
  while (performance.now() < until && i < maxIterations) {
    op();
    i++;
  }
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / Math.max(1, i);
}

/**
 * What measuring an empty region with two process.cpuUsage() calls reads (microseconds): the
 * calls' own cost (getrusage), which every measured region also contains. Subtract it from each
 * region measured that way. The mean of `n` tries (each reading is coarse; the mean is not).
 */
export function cpuRegionOverheadUs(n = 5000): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const c = process.cpuUsage(c0);
    sum += c.user + c.system;
  }
  return sum / n;
}

export function formatFigure(f: BenchFigure): string {
  const v =
    f.value >= 100
      ? Math.round(f.value).toLocaleString('en-US')
      : f.value !== 0 && Math.abs(f.value) < 1
        ? f.value.toPrecision(3)
        : f.value.toFixed(2);
  let line = `${f.name.padEnd(58)} ${v.padStart(12)} ${f.unit}`;
  if (f.reference) {
    const ratio = f.value / f.reference.value;
    line += `   ratio ${ratio.toFixed(2)} vs ${f.reference.name}${f.lowerIsBetter ? ' (lower is better)' : ''}`;
    if (f.target !== undefined)
      line += ratio >= f.target ? ` (target ${f.target}: met)` : ` (target ${f.target}: NOT met)`;
  }
  if (f.atMost !== undefined)
    line += f.value <= f.atMost ? ` (target <= ${f.atMost}: met)` : ` (target <= ${f.atMost}: NOT met)`;
  return line;
}
