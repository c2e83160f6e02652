/**
 * The processes of the benches' network namespaces, read from /proc: CPU time (utime + stime, all
 * threads, in clock ticks) and resident memory, each keyed by "<side> <what> <pid>" where `what` is
 * the `ikegate` command (`ikegate-up`, `ikegate-worker`, ...: every ikegate process is `node`, so
 * its comm alone would not tell the roles apart) or the comm of anything else (iperf3, charon,
 * redis-server). An ikegate process that holds a TUN re-executed itself (libs/tun): the process
 * that started it only waits, and is named `<command>(launcher)`. Processes that exit while being
 * read are left out.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Clock ticks per second for /proc/<pid>/stat (`getconf CLK_TCK`; 100 on Linux x86 and arm). */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface NsProcess {
  readonly key: string;
  readonly pid: number;
  readonly what: string;
}

/** "client" for a namespace whose name ends in c (Chain3's client), "gateway" for the others. */
function side(ns: string): string {
  return ns.endsWith('c') ? 'client' : 'gateway';
}

/** What a process is: the `ikegate` subcommand for ikegate processes, the comm otherwise. */
function what(pid: number): string {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const bin = argv.findIndex((a) => a.endsWith('/ikegate.mjs'));
  if (bin >= 0) return `ikegate-${argv[bin + 1] ?? '?'}`;
  const script = argv.find((a) => a.endsWith('.ts'));
  if (script) return script.slice(script.lastIndexOf('/') + 1);
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every live process in the namespaces. */
export function nsProcesses(namespaces: readonly string[]): NsProcess[] {
  const found: { ns: string; pid: number; what: string; ppid: number }[] = [];
  for (const ns of namespaces) {
    const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
    for (const pid of (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
      try {
        found.push({ ns, pid, what: what(pid), ppid: ppid(pid) });
      } catch {
        // exited meanwhile
      }
    }
  }
  return found.map((p) => {
    const launcher = found.some(
      (c) => c.ppid === p.pid && c.what === p.what && p.what.startsWith('ikegate-'),
    );
    const w = launcher ? `${p.what}(launcher)` : p.what;
    return { key: `${side(p.ns)} ${w} ${p.pid}`, pid: p.pid, what: w };
  });
}

/** utime + stime (clock ticks) of every process in the namespaces, by key. */
export function cpuTicks(namespaces: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of nsProcesses(namespaces)) {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      // Fields after "(comm)": state is [0], utime (field 14) is [11], stime [12].
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(p.key, Number(f[11]) + Number(f[12]));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** One process's share of a core between two `cpuTicks` samples. */
export interface CpuShare {
  readonly key: string;
  /** % of one core. */
  readonly pct: number;
}

/** CPU % of one core per process between two `cpuTicks` samples `seconds` apart (>= 1% only), largest first. */
export function cpuPercent(
  before: Map<string, number>,
  after: Map<string, number>,
  seconds: number,
): CpuShare[] {
  const rows: CpuShare[] = [];
  for (const [key, v] of after) {
    const pct = ((v - (before.get(key) ?? v)) / CLK_TCK / seconds) * 100;
    if (pct >= 1) rows.push({ key, pct });
  }
  return rows.sort((a, b) => b.pct - a.pct);
}

/** "key: N%, ..." */
export function formatCpu(rows: readonly CpuShare[]): string {
  return rows.map((r) => `${r.key}: ${r.pct.toFixed(0)}%`).join(', ');
}

/** Resident set size in KiB (VmRSS), or undefined when the process is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
