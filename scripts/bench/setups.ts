/**
 * IKE SA setups/s from `ikegate loadgen` over a veth pair, next to strongSwan's figure for the same
 * work in the same run. Two namespaces: loadgen in one, the responder in the other — first
 * `ikegate up --no-tun`, then a strongSwan charon (test/interop/lib/strongswan.ts) configured the
 * same way: PSK, aes256gcm16-prfsha256-x25519, ESP aes256gcm16, a /16 virtual-IP pool, one CHILD SA
 * per IKE SA. Each responder gets a warm-up run (deleted again), then the measured run of COUNT
 * IKE+CHILD SAs at CONCURRENCY in flight over UDP, SAs kept up, so RSS after minus RSS before
 * divided by COUNT is the responder's memory per SA. Environment: SETUPS_COUNT (2000),
 * SETUPS_CONCURRENCY (64), SETUPS_ROUNDS (2; the best round of each responder is reported).
 *
 * Both responders log at their quietest useful level (ikegate warn; charon's ike/cfg/net/... groups
 * at 0). Note the client (one Node process) and the responder share the machine's cores: read
 * loadgen's `client cpu` figure — near 100% means the client, not the responder, set the pace.
 * Needs root (namespaces) and charon; prints why and measures nothing otherwise.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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
const WARMUP = 300;
const ROUNDS = Number(process.env.SETUPS_ROUNDS ?? 2);
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

/** Runs `ikegate loadgen` inside `ns` against `server`; returns its JSON summary. */
function loadgen(ns: string, server: string, count: number, extra: string[] = []): LoadgenSummary {
  const r = spawnSync(
    'ip',
    [
      ...['netns', 'exec', ns, process.execPath, IKEGATE_BIN, 'loadgen', '--server', server],
      ...['--remote-id', 'gw.example.org', '--psk', PSK, '--count', String(count)],
      ...['--concurrency', String(CONCURRENCY), '--transport', 'udp', '--timeout', '30', '--json', '--quiet'],
      ...extra,
    ],
    { encoding: 'utf8', timeout: 600_000, maxBuffer: 16 << 20 },
  );
  if (!r.stdout.trim()) throw new Error(`loadgen produced no summary (status ${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as LoadgenSummary;
}

interface Measured {
  readonly summary: LoadgenSummary;
  readonly rssPerSaKiB?: number;
}

/** Warm-up (deleted), then the measured run with SAs held; RSS of `pid` around it. */
function measure(ns: string, server: string, pid: () => number | undefined): Measured {
  const warm = loadgen(ns, server, WARMUP, ['--delete-at-end']);
  if (warm.established !== WARMUP) throw new Error(`warm-up: ${JSON.stringify(warm.failures)}`);
  const p = pid();
  const before = p ? rssKiB(p) : undefined;
  const summary = loadgen(ns, server, COUNT);
  const after = p ? rssKiB(p) : undefined;
  return {
    summary,
    ...(before !== undefined && after !== undefined && summary.established > 0
      ? { rssPerSaKiB: (after - before) / summary.established }
      : {}),
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
log: { level: warn }
`,
  );
  // `ip netns exec` execs the command, so the child's pid is the gateway's.
  const proc: ChildProcess = spawn(
    'ip',
    ['netns', 'exec', pair.nsB, process.execPath, IKEGATE_BIN, 'up', '--no-tun', '--config', config],
    { stdio: ['ignore', 'ignore', 'pipe'] },
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
    return measure(pair.nsA, server, () => proc.pid);
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
    return measure(pair.nsA, server, pid);
  } finally {
    await charon.stop();
  }
}

function report(label: string, m: Measured, reference?: { name: string; value: number }): BenchFigure[] {
  const s = m.summary;
  const tag = `${label} ${COUNT} SAs c${CONCURRENCY} udp`;
  const figures: BenchFigure[] = [
    {
      name: `setups/s ${tag}`,
      value: s.setupsPerSecond,
      unit: 'setups/s',
      ...(reference ? { reference } : {}),
    },
    { name: `  ${label} first quarter`, value: s.setupsPerSecondFirstQuarter, unit: 'setups/s' },
    { name: `  ${label} last quarter`, value: s.setupsPerSecondLastQuarter, unit: 'setups/s' },
    { name: `  ${label} latency p50`, value: s.latencyMs.p50, unit: 'ms' },
    { name: `  ${label} latency p99`, value: s.latencyMs.p99, unit: 'ms' },
    { name: `  ${label} loadgen client cpu`, value: s.clientCpuPercent, unit: '% of a core' },
  ];
  if (m.rssPerSaKiB !== undefined)
    figures.push({ name: `  ${label} responder RSS per SA`, value: m.rssPerSaKiB, unit: 'KiB/SA' });
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
    const best = (a: Measured | undefined, b: Measured) =>
      !a || b.summary.setupsPerSecond > a.summary.setupsPerSecond ? b : a;
    for (let round = 0; round < ROUNDS; round++) {
      swan = best(swan, await withCharon(pair));
      ike = best(ike, await withIkegate(pair));
    }
    if (!swan || !ike) return [];
    const ref = { name: 'strongSwan', value: swan.summary.setupsPerSecond };
    return [...report('ikegate up', ike, ref), ...report('strongSwan', swan)];
  } finally {
    pair.destroy();
  }
}
