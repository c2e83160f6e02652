/**
 * What the TUN microbenches (tun-writer.ts, tun-reader.ts) share: running themselves as root in a
 * network namespace of their own, the CPU of one round (the process's and the main thread's), the
 * rounds summed per variant and packets per turn, and the table of CPU per packet they print.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeSync } from 'node:fs';

/** Octets per packet (IPv4/UDP). */
export const SIZE = 1400;
/** Turns (the writer bench) or 1 ms ticks (the reader bench) per round; TUN_BENCH_TURNS. */
export const TURNS = Number(process.env.TUN_BENCH_TURNS ?? 2000);
/** Rounds, each running every variant at every packets-per-turn; TUN_BENCH_ROUNDS. */
export const ROUNDS = Number(process.env.TUN_BENCH_ROUNDS ?? 3);
/** Packets per turn (tick). */
export const PER_TURN = [1, 4, 32];

/** Set in the bench process that runs inside the namespace. */
const INSIDE = 'IKEGATE_TUN_BENCH_NETNS';

export interface TunBench {
  /** The bench's own `import.meta.url`: the file run again inside the namespace. */
  script: string;
  /** The namespace is `<netnsPrefix>-<pid>`. */
  netnsPrefix: string;
  /** The error thrown when not run as root. */
  needsRoot: string;
  /** The bound on the run inside the namespace. */
  timeoutMs: number;
  /** What runs inside the namespace. */
  inside: () => Promise<void>;
}

/**
 * Outside the namespace (as root): creates it, runs `script` there again under `timeoutMs` (its
 * exit status becomes this process's) and deletes it. Inside: runs `inside`.
 */
export async function runTunBench(bench: TunBench): Promise<void> {
  if (process.env[INSIDE]) {
    await bench.inside();
    return;
  }
  if (process.getuid?.() !== 0) throw new Error(bench.needsRoot);
  const ns = `${bench.netnsPrefix}-${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const r = spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--import', 'tsx', new URL(bench.script).pathname],
      { stdio: 'inherit', env: { ...process.env, [INSIDE]: '1' }, timeout: bench.timeoutMs },
    );
    process.exitCode = r.status ?? 1;
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

/** CPU of the main thread so far, in ns (schedstat's first field: time on the CPU). */
const mainThreadNs = (): number =>
  Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]);

/** CPU time in us: the process's (process.cpuUsage: every thread) and the main thread's alone. */
export interface Cpu {
  processUs: number;
  mainUs: number;
}

/** The CPU spent while `work` runs and for 50 ms after it (what is still in flight). */
export async function cpuOf(work: () => Promise<void>): Promise<Cpu> {
  const c0 = process.cpuUsage();
  const m0 = mainThreadNs();
  await work();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const c = process.cpuUsage(c0);
  return { processUs: c.user + c.system, mainUs: (mainThreadNs() - m0) / 1000 };
}

/**
 * `rounds` rounds; in each, for each k of `perTurn`, `measure(variant, k)` for every variant in
 * turn (so the variants alternate). Returns each figure summed, keyed "<variant>/<k>".
 */
export async function sumRounds<V, C extends Record<keyof C, number>>(
  variants: Record<string, V>,
  perTurn: readonly number[],
  rounds: number,
  measure: (variant: V, k: number) => Promise<C>,
): Promise<Record<string, C>> {
  const sums: Record<string, C> = {};
  for (let n = 0; n < rounds; n++) {
    for (const k of perTurn) {
      for (const [name, v] of Object.entries(variants)) {
        const c = await measure(v, k);
        const s = sums[`${name}/${k}`];
        if (s === undefined) sums[`${name}/${k}`] = { ...c };
        else for (const f of Object.keys(c) as (keyof C)[]) s[f] = (s[f] + c[f]) as C[keyof C];
      }
    }
  }
  return sums;
}

/** One row of the table: each column right-aligned in 14 characters. */
function row(...cols: string[]): void {
  writeSync(1, cols.map((c) => c.padStart(14)).join('') + '\n');
}

export interface CpuTable<C extends Cpu> {
  /** The first column's heading ("per turn", "per tick"): the k of `perTurn`. */
  kHeading: string;
  perTurn: readonly number[];
  /** The variants shown; the baseline "none/<k>" is subtracted from each. */
  variants: readonly string[];
  sums: Record<string, C>;
  /** How many packets a sum covers. */
  packets: (s: C, k: number) => number;
  /** Columns (and JSON fields) shown before the CPU, by heading. */
  columns?: Record<string, (s: C) => number>;
}

/**
 * Prints the table: per k and variant, the columns, then the CPU per packet less the baseline
 * variant "none" at the same k (process, main thread, and the difference: the other threads).
 * Returns the same figures (CPU rounded to 0.01 us) keyed "<variant>/<k>", for the JSON line.
 */
export function printCpuTable<C extends Cpu>(t: CpuTable<C>): Record<string, Record<string, number>> {
  const columns = Object.entries(t.columns ?? {});
  row(
    t.kHeading,
    'variant',
    ...columns.map(([heading]) => heading),
    'process us/p',
    'main us/p',
    'other us/p',
  );
  const figures: Record<string, Record<string, number>> = {};
  for (const k of t.perTurn) {
    const base = t.sums[`none/${k}`]!;
    for (const name of t.variants) {
      const s = t.sums[`${name}/${k}`]!;
      const packets = t.packets(s, k);
      const proc = (s.processUs - base.processUs) / packets;
      const main = (s.mainUs - base.mainUs) / packets;
      const shown = columns.map(([heading, of]) => [heading, of(s)] as const);
      figures[`${name}/${k}`] = {
        ...Object.fromEntries(shown),
        processUs: +proc.toFixed(2),
        mainUs: +main.toFixed(2),
      };
      row(
        String(k),
        name,
        ...shown.map(([, v]) => String(v)),
        proc.toFixed(2),
        main.toFixed(2),
        (proc - main).toFixed(2),
      );
    }
  }
  return figures;
}
