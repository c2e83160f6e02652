/**
 * IKE SA setups/s from `ikegate loadgen` over a veth pair, next to strongSwan's figure for the same
 * work in the same run. Two namespaces: loadgen in one, the responder in the other — first
 * `ikegate up --no-tun`, then a strongSwan charon (test/interop/lib/strongswan.ts) configured the
 * same way: PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16, a /16 virtual-IP pool, one CHILD SA
 * per IKE SA. Each responder gets a warm-up run (deleted again), then the measured run of COUNT
 * IKE+CHILD SAs at CONCURRENCY in flight over UDP, SAs kept up, so RSS after minus RSS before
 * divided by COUNT is the responder's memory per SA. Environment: SETUPS_COUNT (2000),
 * SETUPS_CONCURRENCY (64), SETUPS_PROCESSES (2: loadgen --processes), SETUPS_ROUNDS (2),
 * SETUPS_WARMUP (4000: SAs set up and deleted first, so the JIT is done),
 * SETUPS_ONLY (ikegate | strongswan: one responder alone, e.g. for the issue's `ikegate up` RSS
 * growth over 20k SAs; no ratios then), SETUPS_MAX_HOT (`ike.maxHotSas` of `ikegate up`),
 * SETUPS_COLD_CHILD_S (`dataplane.coldChildAfterSeconds`), SETUPS_SETTLE_S (seconds between the
 * run and the RSS reading; 0), SETUPS_DPD_S (`dpd.intervalSeconds`).
 *
 * The issue's figure is the responder's CPU per IKE+CHILD SA, from the responder process's own CPU
 * time (utime + stime of /proc/<pid>/stat, every thread of it, in clock ticks of `getconf
 * CLK_TCK`) read before and after the measured run: robust to a loaded machine, where wall-clock
 * setups/s is not. From it: setups/s per responder core (= SAs / responder CPU seconds). Of the
 * rounds, the one with the lowest responder CPU per SA is reported for each responder (the least
 * disturbed one); setups/s is printed from that round too.
 *
 * The client is `ikegate loadgen --processes N` (separate processes, separate event loops), so the
 * client is less likely to set the pace; its CPU is printed, per process, and a process at >= 90%
 * of a core during the run is flagged: then setups/s and latency are the client's, while the
 * responder's CPU per SA stays valid (it counts only the responder's own work).
 *
 * Both responders log at their quietest useful level (ikegate warn; charon's ike/cfg/net/... groups
 * at 0). Needs root (namespaces) and charon; prints why and measures nothing otherwise.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { allocatorEnv } from '../../services/cli/src/allocator.js';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LoadgenSummary } from '@ikegate/loadgen';
import { Charon, haveStrongswan } from '../../test/interop/lib/strongswan.js';
import { canUseNetns, NetnsPair } from '../../test/interop/lib/netns.js';
import type { BenchFigure } from './harness.js';

const COUNT = Number(process.env.SETUPS_COUNT ?? 2000);
const CONCURRENCY = Number(process.env.SETUPS_CONCURRENCY ?? 64);
/**
 * SAs set up and deleted before the measured run. A Node responder is still compiling its hot
 * paths (TurboFan) well past the first thousand setups: in one `up`, successive 2,000-SA runs cost
 * 1.75, 1.66, 1.32, 0.99 and 1.03 ms of CPU per SA, and perf put 16% of a cold run in the JIT's
 * threads (0.4% warm). 300 warm-up SAs left 0.3-0.5 ms/SA of compilation in the figure.
 */
const WARMUP = Number(process.env.SETUPS_WARMUP ?? 4000);
const ROUNDS = Number(process.env.SETUPS_ROUNDS ?? 2);
const PROCESSES = Number(process.env.SETUPS_PROCESSES ?? 2);
const SATURATED_CPU_PERCENT = 90;
const ONLY = process.env.SETUPS_ONLY;
/** `ike.maxHotSas` of `ikegate up` (default its own, 4096): 100000000 holds no SA encoded, for an A/B. */
const MAX_HOT = process.env.SETUPS_MAX_HOT;
/** `dataplane.coldChildAfterSeconds` of `ikegate up` (default its own, 60; 0 keeps every child's ESP objects). */
const COLD_CHILD_S = process.env.SETUPS_COLD_CHILD_S;
/**
 * Seconds to wait after the measured run before reading the responder's RSS (default 0): with a
 * short COLD_CHILD_S, the RSS of idle SAs in their steady state. CPU is read before the wait.
 */
const SETTLE_S = Number(process.env.SETUPS_SETTLE_S ?? 0);
/** `dpd.intervalSeconds` of `ikegate up` (default its own, 30): 0 keeps liveness checks out of a long SETTLE_S. */
const DPD_S = process.env.SETUPS_DPD_S;
const PSK = 'bench-setups-pre-shared-key-5f0c1e';
const IKEGATE_BIN = new URL('../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;

function rssKiB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (`getconf CLK_TCK`). */
function clkTck(): number {
  if (clockTicks === undefined) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout.trim());
    if (!Number.isInteger(n) || n <= 0) throw new Error(`getconf CLK_TCK: ${r.stdout}${r.stderr}`);
    clockTicks = n;
  }
  return clockTicks;
}

/**
 * CPU time (user + system, ms) a process has used so far, all its threads: fields 14 and 15 of
 * /proc/<pid>/stat (proc(5)), counted after the `)` that ends the command name (which may hold
 * spaces). Undefined when the process is gone.
 */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return ((utime + stime) * 1000) / clkTck();
}

/** Runs `ikegate loadgen` inside `ns` against `server`; returns its JSON summary. */
function loadgen(ns: string, server: string, count: number, extra: string[] = []): LoadgenSummary {
  const r = spawnSync(
    'ip',
    [
      ...['netns', 'exec', ns, process.execPath, IKEGATE_BIN, 'loadgen', '--server', server],
      ...['--remote-id', 'gw.example.org', '--psk', PSK, '--count', String(count)],
      ...['--concurrency', String(CONCURRENCY), '--processes', String(PROCESSES)],
      ...['--transport', 'udp', '--timeout', '30', '--json', '--quiet'],
      ...extra,
    ],
    // Bounded, but long enough for a big run on a loaded machine (strongSwan's CPU per SA grows
    // with the SAs it holds: 20k SAs took over 10 minutes here).
    { encoding: 'utf8', timeout: 600_000 + count * 50, maxBuffer: 16 << 20 },
  );
  if (!r.stdout.trim()) throw new Error(`loadgen produced no summary (status ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadgenSummary;
}

/** The responder's memory as its own metrics report it (bytes); `ikegate up` only. */
type MemoryProbe = () => Record<string, number> | undefined;

/** prom-client's process figures of `ikegate up` (heap used and total, off-heap), read over HTTP in `ns`. */
function upMemory(ns: string): Record<string, number> | undefined {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'curl', '-sf', 'http://127.0.0.1:9464/metrics'], {
    encoding: 'utf8',
    timeout: 10_000,
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) return undefined;
  const out: Record<string, number> = {};
  for (const [name, key] of [
    ['ikegate_nodejs_heap_size_used_bytes', 'heap used'],
    ['ikegate_nodejs_heap_size_total_bytes', 'heap total'],
    ['ikegate_nodejs_external_memory_bytes', 'external'],
  ] as const) {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.stdout);
    if (m) out[key] = Number(m[1]);
  }
  return out;
}

interface Measured {
  readonly summary: LoadgenSummary;
  readonly rssPerSaKiB?: number;
  /** Growth per SA of what the probe reads (KiB), e.g. heap used, heap total, off-heap. */
  readonly probedPerSaKiB?: Record<string, number>;
  /** The responder's own CPU time over the measured run (ms), and per established SA. */
  readonly responderCpuMs?: number;
  readonly responderCpuMsPerSa?: number;
}

/** Warm-up (deleted), then the measured run with SAs held; RSS and CPU time of `pid` around it. */
async function measure(
  ns: string,
  server: string,
  pid: () => number | undefined,
  probe?: MemoryProbe,
): Promise<Measured> {
  const warm = loadgen(ns, server, WARMUP, ['--delete-at-end']);
  // A stray failure in the warm-up (strongSwan has refused one CHILD SA of 300 with
  // NO_PROPOSAL_CHOSEN here, unlogged at these log levels) is reported, not fatal.
  if (warm.established < WARMUP * 0.99) throw new Error(`warm-up: ${JSON.stringify(warm.failures)}`);
  if (warm.failed > 0)
    console.log(`  warm-up: ${warm.failed} of ${WARMUP} failed: ${JSON.stringify(warm.failures)}`);
  const p = pid();
  const before = p ? rssKiB(p) : undefined;
  const probedBefore = probe?.();
  const cpuBefore = p ? processCpuMs(p) : undefined;
  const summary = loadgen(ns, server, COUNT);
  const cpuAfter = p ? processCpuMs(p) : undefined;
  if (SETTLE_S > 0) await sleep(SETTLE_S * 1000);
  const after = p ? rssKiB(p) : undefined;
  const probedAfter = probe?.();
  const n = summary.established;
  const probedPerSaKiB =
    probedBefore && probedAfter && n > 0
      ? Object.fromEntries(
          Object.keys(probedAfter)
            .filter((k) => probedBefore[k] !== undefined)
            .map((k) => [k, (probedAfter[k]! - probedBefore[k]!) / 1024 / n]),
        )
      : undefined;
  const cpu = cpuBefore !== undefined && cpuAfter !== undefined ? cpuAfter - cpuBefore : undefined;
  return {
    summary,
    ...(before !== undefined && after !== undefined && n > 0 ? { rssPerSaKiB: (after - before) / n } : {}),
    ...(probedPerSaKiB ? { probedPerSaKiB } : {}),
    ...(cpu !== undefined && n > 0 ? { responderCpuMs: cpu, responderCpuMsPerSa: cpu / n } : {}),
  };
}

async function withIkegate(pair: NetnsPair): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-bench-setups-'));
  const config = join(dir, 'ikegate.yaml');
  const server = pair.link.addrB;
  writeFileSync(
    config,
    `identity: { id: gw.example.org }
listen:
  udp: { address: ${server}, ikePort: 500, natTPort: 4500 }
  tcp: { enabled: false }
  tls: { enabled: false }
control: { address: 127.0.0.1, port: 9464 }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
pools:
  - { name: rw, cidr: 10.64.0.0/16 }
peers:
  - name: load
    id: '*@example.org'
    auth: { psk: '${PSK}' }
    pool: rw
    remoteTs: [dynamic]
dataplane:
  masquerade: { enabled: false }
${COLD_CHILD_S !== undefined ? `  coldChildAfterSeconds: ${Number(COLD_CHILD_S)}\n` : ''}${DPD_S !== undefined ? `dpd: { intervalSeconds: ${Number(DPD_S)} }\n` : ''}log: { level: warn }
${MAX_HOT !== undefined ? `ike: { maxHotSas: ${Number(MAX_HOT)} }\n` : ''}`,
  );
  // `ip netns exec` execs the command, so the child's pid is the gateway's.
  const proc: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', pair.nsB, process.execPath, IKEGATE_BIN, 'up', '--no-tun', '--config', config],
    // --no-tun does not re-execute, so it gets here the allocator `ikegate up` with its TUN device
    // gives itself (services/cli allocator.ts: jemalloc when installed; IKEGATE_ALLOCATOR=system: glibc's).
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...allocatorEnv() } },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    for (let i = 0; ; i++) {
      const r = spawnSync('ip', ['netns', 'exec', pair.nsB, 'curl', '-sf', 'http://127.0.0.1:9464/healthz']);
      if (r.status === 0) break;
      if (i >= 100 || proc.exitCode !== null) throw new Error(`ikegate up did not start: ${stderr}`);
      await sleep(100);
    }
    return await measure(
      pair.nsA,
      server,
      () => proc.pid,
      () => upMemory(pair.nsB),
    );
  } finally {
    proc.kill('SIGTERM');
    for (let i = 0; i < 100 && proc.exitCode === null && proc.signalCode === null; i++) await sleep(50);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}

async function withCharon(pair: NetnsPair): Promise<Measured> {
  const server = pair.link.addrB;
  const charon = new Charon({
    netns: pair.nsB,
    swanctlConf: `connections {
  rw {
    version = 2
    local_addrs = ${server}
    proposals = aes256gcm16-prfsha256-x25519
    pools = rw
    rekey_time = 0
    local {
      auth = psk
      id = gw.example.org
    }
    remote {
      auth = psk
      id = %any
    }
    children {
      rw {
        local_ts = 0.0.0.0/0
        esp_proposals = aes256gcm16
        rekey_time = 0
      }
    }
  }
}
pools {
  rw {
    addrs = 10.64.0.0/16
  }
}
secrets {
  ike-load {
    secret = "${PSK}"
  }
}
`,
    // Measure setup speed, not DoS protection: strongSwan's defaults would demand COOKIEs past
    // 10 half-open SAs (cookie_threshold), refuse new ones past 5 per peer IP (block_threshold)
    // and drop IKE_SA_INITs when its job queue or half-open count is high (init_limit_*). All
    // loadgen SAs come from one address, so those thresholds are lifted here. Routes and virtual
    // IPs are not installed (ikegate runs --no-tun: control plane only on both sides).
    charonExtra: `  dos_protection = no
  cookie_threshold = 1000000
  cookie_threshold_ip = 1000000
  block_threshold = 1000000
  init_limit_half_open = 0
  init_limit_job_load = 0
  ikesa_table_size = 4096
  ikesa_table_segments = 16
  install_routes = no
  install_virtual_ip = no
`,
    log: { ike: 0, cfg: 0, net: 0, enc: 0, knl: 0, chd: 0, mgr: 0, job: 0, lib: 0, asn: 0, esp: 0 },
  });
  await charon.start();
  const pidFile = join(charon.dir, 'run', 'charon.pid');
  const pid = () =>
    existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) || undefined : undefined;
  try {
    return await measure(pair.nsA, server, pid);
  } finally {
    await charon.stop();
  }
}

function report(label: string, m: Measured, ref?: Measured): BenchFigure[] {
  const s = m.summary;
  const tag = `${label} ${COUNT} SAs c${CONCURRENCY} udp, loadgen x${PROCESSES}`;
  const figures: BenchFigure[] = [];
  if (m.responderCpuMsPerSa !== undefined) {
    figures.push(
      {
        name: `responder CPU per IKE+CHILD SA, ${label}`,
        value: m.responderCpuMsPerSa,
        unit: 'ms/SA',
        ...(ref?.responderCpuMsPerSa !== undefined
          ? { reference: { name: 'strongSwan', value: ref.responderCpuMsPerSa }, lowerIsBetter: true }
          : {}),
        ...(ref ? { atMost: 0.2 } : {}),
      },
      {
        name: `  ${label} setups/s per responder core`,
        value: 1000 / m.responderCpuMsPerSa,
        unit: 'setups/core-s',
        ...(ref?.responderCpuMsPerSa !== undefined
          ? { reference: { name: 'strongSwan', value: 1000 / ref.responderCpuMsPerSa } }
          : {}),
      },
      {
        name: `  ${label} responder CPU over the run`,
        value: m.responderCpuMs! / 1000,
        unit: 'CPU s',
      },
    );
  }
  figures.push(
    {
      name: `  setups/s ${tag}`,
      value: s.setupsPerSecond,
      unit: 'setups/s',
      ...(ref ? { reference: { name: 'strongSwan', value: ref.summary.setupsPerSecond } } : {}),
    },
    { name: `  ${label} first quarter`, value: s.setupsPerSecondFirstQuarter, unit: 'setups/s' },
    { name: `  ${label} last quarter`, value: s.setupsPerSecondLastQuarter, unit: 'setups/s' },
    { name: `  ${label} latency p50`, value: s.latencyMs.p50, unit: 'ms' },
    { name: `  ${label} latency p99`, value: s.latencyMs.p99, unit: 'ms' },
    { name: `  ${label} loadgen client cpu (all processes)`, value: s.clientCpuPercent, unit: '% of a core' },
  );
  if (m.responderCpuMs !== undefined && s.durationMs > 0)
    figures.push({
      name: `  ${label} responder cpu over the run`,
      value: (m.responderCpuMs / s.durationMs) * 100,
      unit: '% of a core',
    });
  const saturated = (s.processes ?? []).filter((p) => p.cpuPercent >= SATURATED_CPU_PERCENT);
  for (const p of s.processes ?? [])
    console.log(
      `  ${label}: loadgen pid ${p.pid} (SAs ${p.firstN}-${p.firstN + p.count - 1}) cpu ${p.cpuPercent}% of a core` +
        (p.cpuPercent >= SATURATED_CPU_PERCENT ? ' SATURATED' : ''),
    );
  if (saturated.length > 0)
    console.log(
      `  ${label}: FLAG client-saturated: ${saturated.length} of ${s.processes?.length} loadgen processes at >= ${SATURATED_CPU_PERCENT}% of a core; setups/s and latency are the client's pace, responder CPU per SA still holds`,
    );
  if (m.rssPerSaKiB !== undefined)
    figures.push({ name: `  ${label} responder RSS per SA`, value: m.rssPerSaKiB, unit: 'KiB/SA' });
  for (const [k, v] of Object.entries(m.probedPerSaKiB ?? {}))
    figures.push({
      name: `  ${label} responder ${k} per SA (its own metrics, no forced GC)`,
      value: v,
      unit: 'KiB/SA',
    });
  if (s.failed > 0)
    console.log(`  ${label}: ${s.failed} of ${s.attempted} setups failed: ${JSON.stringify(s.failures)}`);
  return figures;
}

export async function bench(): Promise<BenchFigure[]> {
  const ns = canUseNetns();
  if (!ns.ok) {
    console.log(`  skipped: ${ns.why}`);
    return [];
  }
  if (!haveStrongswan()) {
    console.log('  skipped: strongSwan (charon, swanctl) not installed');
    return [];
  }
  const pair = new NetnsPair('su', '10.97.0').create();
  try {
    // Interleaved rounds (strongSwan, ikegate, strongSwan, ...), each on a fresh responder; the
    // best round of each is kept, which cancels most of the drift on a shared machine.
    let swan: Measured | undefined;
    let ike: Measured | undefined;
    // The least disturbed round: lowest responder CPU per SA (setups/s if CPU could not be read).
    const best = (a: Measured | undefined, b: Measured) =>
      !a ||
      (b.responderCpuMsPerSa !== undefined && a.responderCpuMsPerSa !== undefined
        ? b.responderCpuMsPerSa < a.responderCpuMsPerSa
        : b.summary.setupsPerSecond > a.summary.setupsPerSecond)
        ? b
        : a;
    for (let round = 0; round < ROUNDS; round++) {
      if (ONLY !== 'ikegate') swan = best(swan, await withCharon(pair));
      if (ONLY !== 'strongswan') ike = best(ike, await withIkegate(pair));
    }
    if (ONLY === 'ikegate' && ike) return report('ikegate up', ike);
    if (ONLY === 'strongswan' && swan) return report('strongSwan', swan);
    if (!swan || !ike) return [];
    return [...report('ikegate up', ike, swan), ...report('strongSwan', swan)];
  } finally {
    pair.destroy();
  }
}
