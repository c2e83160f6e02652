/**
 * Issue #14, "setups that stay flat" and "<= 2 KiB of heap per established IKE+CHILD SA at 100k SAs
 * held in one worker": SCALE_SAS (default 100,000) IKE SA + CHILD SA setups into ONE responder
 * Worker (services/worker, the code `ikegate up` and a cluster worker run), every SA kept.
 *
 * The worker's edge is in memory: what it sends is handed straight back to the initiator, and the
 * initiator's messages reach `worker.deliver` as the edge would pass them (shard from the
 * routing rule, one UDP path per peer address). Each setup has its own initiator (a fresh
 * IkeEndpoint from libs/ikev2, dropped after the setup), so the memory that grows is the worker's
 * alone. Peers: `load-{n}@example.org`, PSK, a virtual IP each from a ManagedPool (the pool `up`
 * uses), proposals aes256gcm16-prfsha256-x25519 / ESP aes256gcm16; worker limits as `up`'s
 * defaults; DPD off (no peer answers it here) and lifetimes of 4 h / 1 h (no rekey in the run).
 *
 * Figures:
 * - heap per SA: (heapUsed after a forced GC at the end) - (the same after the warm-up SAs),
 *   divided by the SAs added; also heapUsed + arrayBuffers (key buffers may live off the V8 heap)
 *   and RSS.
 * - flatness, per tenth of the run: the responder's CPU time per setup (process.cpuUsage() around
 *   every worker.deliver call: the worker's own work, GC inside it included) and its inverse,
 *   setups per responder CPU-second; the last tenth over the first is the load-robust ratio
 *   (target >= 0.9). Wall-clock setups/s per tenth is printed beside it (drifts with machine load).
 *
 * Runs in a child node (`--expose-gc --max-old-space-size`) so other benches' garbage cannot blur
 * the heap figure. Standalone: `node --expose-gc --max-old-space-size=12288 --import tsx
 * scripts/bench/scale.ts --child` (JSON on stdout, progress on stderr); add `--cpu-prof` for a profile,
 * and SCALE_HEAP_SNAPSHOT=FILE.heapsnapshot for a heap snapshot with every SA still held;
 * SCALE_MAX_HOT=Infinity holds no SA encoded (libs/ikev2 endpoint/cold.ts), for an A/B.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { type OutboundFrame, type PeerPath, DEFAULT_SHARD_BITS, routeIkeMessage } from '@ikegate/cluster';
import { defaultProvider, EncryptionId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import { espSuite, OutboundSa } from '@ikegate/esp';
import {
  type EndpointOutput,
  IkeEndpoint,
  type IkePath,
  type IkeSaContext,
  type InstallChildAction,
} from '@ikegate/ikev2';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { ManagedPool, parseIpv4, Worker } from '@ikegate/worker';
import { type BenchFigure, cpuRegionOverheadUs, formatFigure } from './harness.js';

const SAS = Number(process.env.SCALE_SAS ?? 100_000);
/** ike.maxHotSas (default `ikegate up`'s, 4096); `Infinity` holds every SA as objects (an A/B). */
const MAX_HOT = Number(process.env.SCALE_MAX_HOT ?? 4096);
/**
 * dataplane.coldChildAfterSeconds in ms (`ikegate up`: 60 s): a child idle this long, to twice it,
 * keeps only its keys and counters (services/worker data-plane.ts). Short here so that the run
 * reaches the steady state of idle SAs in seconds; 0 keeps every child's ESP objects (an A/B).
 */
const COLD_CHILD_MS = Number(process.env.SCALE_COLD_CHILD_MS ?? 2000);
const WARMUP = Math.min(2000, Math.floor(SAS / 10));
/** The last SAs set up, whose first ESP packet after the run is timed (a cold child's rebuild). */
const THAW_SAMPLE = 5000;
const TENTHS = 10;
const LAYOUT = { shardBits: DEFAULT_SHARD_BITS };
const HASH_KEY = new Uint8Array(32).fill(7);
const PSK = new TextEncoder().encode('bench-scale-pre-shared-key-0123456789');
const random = (n: number) => new Uint8Array(randomBytes(n));
/** The gateway's UDP endpoint, one object for every path (as the edge holds it). */
const GATEWAY = { address: '192.0.2.1', port: 4500 };
/**
 * An ICMP echo request from the pool's first address: other children drop it at the selector check,
 * after decryption, which is the work measured.
 */
const PING = (() => {
  const p = new Uint8Array(28);
  p.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 64, 0, 2, 10, 0, 0, 1, 8]);
  return p;
})();
const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: Uint8Array.of(0, 0, 0, 0),
  endAddress: Uint8Array.of(255, 255, 255, 255),
};
const ike = [
  {
    encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
    prf: [PrfId.HMAC_SHA2_256],
    keyExchange: [KeyExchangeId.CURVE25519],
  },
];
const esp = [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], esn: [false] }];

export interface ScaleResult {
  readonly sas: number;
  readonly warmup: number;
  readonly heapPerSa: number;
  readonly heapAndBuffersPerSa: number;
  readonly rssPerSa: number;
  /** Per tenth: responder CPU ms per setup, wall-clock setups/s, whole-process CPU ms per setup. */
  readonly tenths: readonly { responderCpuMs: number; wallPerSecond: number; processCpuMs: number }[];
  readonly ikeSas: number;
  readonly childSas: number;
  /** Held encoded at the end (ike.maxHotSas), and rebuilt during the run. */
  readonly coldSas: number;
  readonly thaws: number;
  /** Children whose ESP state is held as keys and counters at the end. */
  readonly coldChildren: number;
  /**
   * Worker CPU per inbound ESP packet (us) for the last THAW_SAMPLE children: the first after the
   * run (cold: rebuilt first, unless COLD_CHILD_MS is 0) and the second (hot), same children.
   */
  readonly espColdUs: number;
  readonly espHotUs: number;
  readonly seconds: number;
  /** CPU of the cpuUsage() pair around each deliver(), subtracted from the responder's (ms). */
  readonly regionOverheadMs: number;
}

async function gauge(metrics: Metrics, name: string): Promise<number> {
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await metrics.render())?.[1] ?? 0);
}

/** The gateway side: one Worker with an in-memory edge whose output the caller drains. */
function responder(outbox: OutboundFrame[], metrics: Metrics): Worker {
  const pool = new ManagedPool('rw', parseIpv4('10.64.0.0'), 12, []);
  const peer = { name: 'rw', psk: PSK, localTs: [any], remoteTs: [any], pool };
  return new Worker(
    {
      provider: defaultProvider,
      policy: {
        localId: 'gw.example.org',
        ikeProposals: ike,
        espProposals: esp,
        localTs: [any],
        remoteTs: [any],
        messageIdSync: true,
        replayCounterSync: true,
      },
      matchPeer: (id) => (id.endsWith('@example.org') ? peer : undefined),
      layout: LAYOUT,
      ikeLifetimeSeconds: 14_400,
      childLifetimeSeconds: 3_600,
      rekeyMarginSeconds: 300,
      dpdSeconds: 0,
      // `ikegate up`'s defaults (libs/config).
      halfOpenTimeoutMs: 30_000,
      cookieThreshold: 1000,
      maxHalfOpen: 20_000,
      maxHalfOpenPerAddress: 5000,
      maxIkeSas: 1_000_000,
      maxHotSas: MAX_HOT,
      coldChildAfterMs: COLD_CHILD_MS,
      workerId: 'local',
    },
    { send: (f) => (outbox.push(f), 'sent') },
    createLogger({ level: 'warn', name: 'bench-scale' }),
    metrics,
  );
}

function initiatorContext(n: number): IkeSaContext {
  return {
    provider: defaultProvider,
    random,
    allocateIkeSpi: () => random(8),
    allocateChildSpi: () => random(4),
    policy: {
      localId: `load-${n}@example.org`,
      localIdType: 3,
      ikeProposals: ike,
      espProposals: esp,
      localTs: [any],
      remoteTs: [any],
      requestVirtualIp: true,
      messageIdSync: true,
      replayCounterSync: true,
    },
    psk: () => PSK,
  };
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Runs the whole scale measurement in this process (needs --expose-gc). */
export async function runScale(sas = SAS, log: (s: string) => void = () => undefined): Promise<ScaleResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('scale bench needs node --expose-gc');
  const outbox: OutboundFrame[] = [];
  const metrics = new Metrics({ role: 'bench', processMetrics: false });
  const worker = responder(outbox, metrics);
  let responderCpu = 0;
  // The sampled children's SPIs, keys (the peer's outbound: AES-256-GCM key and salt) and paths,
  // in storage made before the base line, so that the heap per SA does not count them.
  const sampleSpis = new Uint32Array(THAW_SAMPLE);
  const sampleKeys = new Uint8Array(THAW_SAMPLE * 36);
  const samplePaths: (PeerPath | null)[] = new Array<PeerPath | null>(THAW_SAMPLE).fill(null);
  let sampled = 0;
  // The two cpuUsage() calls around each deliver() cost CPU themselves: measured, subtracted.
  let regionOverheadMs = cpuRegionOverheadUs() / 1000;

  const sample = (child: InstallChildAction, path: PeerPath) => {
    if (sampled === THAW_SAMPLE || child.keys.encrI.length !== 36) return;
    sampleSpis[sampled] = Buffer.from(child.outboundSpi).readUInt32BE(0);
    sampleKeys.set(child.keys.encrI, sampled * 36);
    samplePaths[sampled++] = path;
  };

  /** One setup: IKE_SA_INIT + IKE_AUTH from a fresh initiator at peer address n. */
  const setup = (n: number) => {
    const ctx = initiatorContext(n);
    // Flat, as dgram hands the edge a peer's address (a template would be a tree of strings).
    const address = [100, 64 + ((n >>> 16) & 0x3f), (n >>> 8) & 0xff, n & 0xff].join('.');
    const initiatorPath: IkePath = {
      id: 'to-gateway',
      transport: 'udp',
      local: { address: parseIpv4(address), port: 4500 },
      remote: { address: parseIpv4('192.0.2.1'), port: 4500 },
    };
    // As the edge makes it (services/edge edge.ts #udpPath): its local endpoint shared, and the
    // connection one flat string.
    const path = {
      connection: ['udp', 4500, address, 4500].join(':'),
      transport: 'udp' as const,
      local: GATEWAY,
      remote: { address, port: 4500 },
    };
    const initiator = new IkeEndpoint<undefined>({
      provider: defaultProvider,
      random,
      policy: ctx.policy,
      ikeSpi: () => random(8),
      responderContext: () => ctx,
    });
    const started = initiator.initiate(ctx, initiatorPath, 0, Date.now());
    let out: readonly EndpointOutput<undefined>[] = started.out;
    // IKE_SA_INIT and IKE_AUTH: two round trips; the bound guards against one that never settles.
    for (let round = 0; round < 8; round++) {
      let sent = false;
      for (const o of out) {
        if (o.kind === 'sa-action' && o.action.kind === 'install-child' && n > sas - THAW_SAMPLE)
          sample(o.action, path);
        if (o.kind !== 'transmit') continue;
        sent = true;
        const d = routeIkeMessage(o.bytes, address, HASH_KEY, LAYOUT);
        const c0 = process.cpuUsage();
        worker.deliver({ kind: 'ike', path, bytes: o.bytes, shard: d.kind === 'shard' ? d.shard : 0 });
        const c = process.cpuUsage(c0);
        responderCpu += (c.user + c.system) / 1000 - regionOverheadMs;
      }
      if (!sent) break;
      const next: EndpointOutput<undefined>[] = [];
      for (const f of outbox.splice(0))
        if (f.kind === 'ike') next.push(...initiator.receive(f.bytes, initiatorPath, 0, Date.now()));
      out = next;
    }
    if (started.sa.state.status !== 'established') throw new Error(`setup ${n}: ${started.sa.state.status}`);
  };

  const memory = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed, buffers: m.arrayBuffers, rss: m.rss };
  };

  // Idle SAs in their steady state: long enough for the idle sweep to visit every child twice.
  const settle = () =>
    COLD_CHILD_MS > 0 ? new Promise((r) => setTimeout(r, 2 * COLD_CHILD_MS + 1000)) : yieldToLoop();

  let n = 1;
  for (; n <= WARMUP; n++) setup(n);
  regionOverheadMs = cpuRegionOverheadUs() / 1000; // again, warm
  await settle();
  const base = memory();
  const measured = sas - WARMUP;
  const per = Math.floor(measured / TENTHS);
  const tenths: { responderCpuMs: number; wallPerSecond: number; processCpuMs: number }[] = [];
  const t0 = performance.now();
  for (let t = 0; t < TENTHS; t++) {
    const count = t === TENTHS - 1 ? measured - per * (TENTHS - 1) : per;
    const r0 = responderCpu;
    const p0 = cpuMs();
    const w0 = performance.now();
    for (let k = 0; k < count; k++, n++) {
      setup(n);
      // Let the worker's timer and I/O callbacks run, as they would between datagrams.
      if ((k & 1023) === 1023) await yieldToLoop();
    }
    const w = performance.now() - w0;
    tenths.push({
      responderCpuMs: (responderCpu - r0) / count,
      wallPerSecond: (count / w) * 1000,
      processCpuMs: (cpuMs() - p0) / count,
    });
    log(
      `scale: ${n - 1}/${sas} SAs, tenth ${t + 1}: responder ${((responderCpu - r0) / count).toFixed(3)} ms CPU/setup, ${((count / w) * 1000).toFixed(0)} setups/s wall`,
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  await settle();
  const end = memory();
  const added = n - 1 - WARMUP;
  // The sampled children's first packet after the run (cold: a rebuild) and then a second one.
  const peers = samplePaths.slice(0, sampled).map((path, i) => {
    const out = new OutboundSa({
      spi: sampleSpis[i]!,
      suite: espSuite(
        defaultProvider,
        { encryption: EncryptionId.AES_GCM_16, keyBits: 256 },
        sampleKeys.subarray(i * 36, i * 36 + 36),
      ),
    });
    const packet = (): Uint8Array => {
      const r = out.encapsulate(PING);
      if (r.kind !== 'packet') throw new Error('ESP sample: no packet');
      return r.packet.slice();
    };
    return { path: path!, packets: [packet(), packet()] };
  });
  const espRound = (i: number) => {
    const c0 = process.cpuUsage();
    for (const p of peers) worker.deliver({ kind: 'esp', path: p.path, bytes: p.packets[i]!, shard: 0 });
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / Math.max(1, peers.length);
  };
  const coldChildren = await gauge(metrics, 'ikegate_esp_cold_child_sas');
  const espColdUs = espRound(0);
  const espHotUs = espRound(1);
  // What the held SAs consist of, for a heap-snapshot viewer (Chrome DevTools: Memory).
  const snapshot = process.env.SCALE_HEAP_SNAPSHOT;
  if (snapshot) log(`scale: heap snapshot written to ${writeHeapSnapshot(snapshot)}`);
  const result: ScaleResult = {
    sas: n - 1,
    warmup: WARMUP,
    heapPerSa: (end.heap - base.heap) / added,
    heapAndBuffersPerSa: (end.heap + end.buffers - base.heap - base.buffers) / added,
    rssPerSa: (end.rss - base.rss) / added,
    tenths,
    ikeSas: worker.ikeSaCount,
    childSas: worker.childSaCount,
    coldSas: await gauge(metrics, 'ikegate_ike_cold_sas'),
    thaws: await gauge(metrics, 'ikegate_ike_sa_thaws_total'),
    coldChildren,
    espColdUs,
    espHotUs,
    seconds,
    regionOverheadMs,
  };
  await worker.close(0);
  return result;
}

export function scaleFigures(r: ScaleResult): BenchFigure[] {
  const first = r.tenths[0]!;
  const last = r.tenths.at(-1)!;
  const k = (r.sas / 1000).toFixed(0);
  const figures: BenchFigure[] = [
    {
      name: `heap per IKE+CHILD SA, ${k}k held in one worker (heapUsed)`,
      value: r.heapPerSa,
      unit: 'bytes/SA',
      atMost: 2048,
    },
    {
      name: `  same, heapUsed + arrayBuffers`,
      value: r.heapAndBuffersPerSa,
      unit: 'bytes/SA',
      atMost: 2048,
    },
    { name: `  RSS growth per SA (process)`, value: r.rssPerSa, unit: 'bytes/SA' },
    {
      name: `  SAs held at the end (IKE / CHILD)`,
      value: r.ikeSas,
      unit: `IKE SAs, ${r.childSas} CHILD SAs`,
    },
    {
      name: `  of them held encoded, cold (ike.maxHotSas ${MAX_HOT})`,
      value: r.coldSas,
      unit: `SAs, ${r.thaws} rebuilt during the run`,
    },
    {
      name: `  CHILD SAs with their ESP state as keys and counters (idle ${COLD_CHILD_MS / 1000}-${(2 * COLD_CHILD_MS) / 1000} s)`,
      value: r.coldChildren,
      unit: 'CHILD SAs',
    },
    {
      name: `  worker CPU for an idle child's first inbound ESP packet (rebuilt when cold), ${THAW_SAMPLE} children`,
      value: r.espColdUs,
      unit: 'us/packet',
      reference: { name: 'the next packet, same children', value: r.espHotUs },
    },
    {
      name: `responder setups per CPU-s, last tenth (0 -> ${k}k SAs)`,
      value: 1000 / last.responderCpuMs,
      unit: 'setups/CPU-s',
      reference: { name: 'first tenth', value: 1000 / first.responderCpuMs },
      target: 0.9,
    },
    {
      name: `  wall-clock setups/s (initiator included), last tenth`,
      value: last.wallPerSecond,
      unit: 'setups/s',
      reference: { name: 'first tenth (drifts with machine load)', value: first.wallPerSecond },
    },
  ];
  r.tenths.forEach((t, i) =>
    figures.push({
      name: `  tenth ${i + 1}: responder CPU per setup`,
      value: t.responderCpuMs,
      unit: `ms (process ${t.processCpuMs.toFixed(3)} ms, ${t.wallPerSecond.toFixed(0)}/s wall)`,
    }),
  );
  return figures;
}

export async function bench(): Promise<BenchFigure[]> {
  // A fresh process: the heap holds nothing but the worker and its SAs.
  const heapMiB = Math.max(2048, Math.ceil((SAS * 40 * 1024) / (1 << 20)));
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      `--max-old-space-size=${heapMiB}`,
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--child',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 3_600_000, maxBuffer: 16 << 20 },
  );
  if (r.status !== 0 || !r.stdout.trim())
    throw new Error(`scale child failed (status ${r.status}, signal ${r.signal})`);
  const result = JSON.parse(r.stdout) as ScaleResult;
  console.log(
    `  ${result.sas} SAs in ${result.seconds.toFixed(0)} s (warm-up ${result.warmup} SAs before the base line;` +
      ` ${(result.regionOverheadMs * 1000).toFixed(1)} µs of cpuUsage() per delivered message subtracted)`,
  );
  return scaleFigures(result);
}

if (process.argv.includes('--child')) {
  const result = await runScale(SAS, (s) => process.stderr.write(`${s}\n`));
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await bench()) console.log(formatFigure(f));
}
