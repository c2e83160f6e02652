/**
 * IKE flood against one in-process Worker (no sockets; a fake EdgeLink counts what would be sent
 * and discards it). Every frame goes through the edge's routing rule (`routeIkeMessage`) and
 * `worker.deliver`, as in `ikegate up`. Two runs, each on a fresh Worker:
 *
 * - A, "state": caps high enough that every valid IKE_SA_INIT really becomes a half-open SA
 *   (cookieThreshold and maxHalfOpen above the count). JUNK junk messages first (random octets,
 *   truncated headers, headers with random SPIs, garbage INITs: random payload octets, or the valid
 *   request with a few octets changed — some of those still parse and negotiate, and are counted
 *   as "half-open SAs made by junk"), then INITS valid IKE_SA_INIT
 *   requests: one request from the protocol core (IkeEndpoint.initiate) with its initiator SPI
 *   varied, from 4096 source addresses (198.18.0.0/20), so the responder does the key exchange
 *   for each and the per-address cap (default 5000) is never what stops them.
 *   Then run A once more: what RSS keeps after the first is reused (a plateau), not leaked.
 * - B, "cookie": the default COOKIE threshold (1000, RFC 7296 §2.6): the same INITS requests,
 *   then the same junk while COOKIEs are demanded.
 *
 * Memory: RSS and heap after a forced GC before, right after the messages (no event-loop turn
 * in between, so no half-open SA has expired yet), and once the worker's own timer has expired
 * every half-open SA (halfOpenTimeoutMs 3 s). CPU: process.cpuUsage() (user + system) around
 * batches of 1000, message generation outside the measured part. Reference for CPU: one raw
 * X25519 key agreement (keygen + shared secret via node:crypto), the floor of one INIT's work,
 * measured in the same run before and after the runs (the faster is kept); a throwaway worker
 * takes the JIT warm-up first, so first-10k against last-10k shows the table size. Memory deltas are
 * shown against the baseline and the peak of the same run. Numbers only; nothing is asserted.
 *
 * Environment: FLOOD_INITS (100000), FLOOD_JUNK (100000). Runs about a minute.
 */
import { diffieHellman, generateKeyPairSync, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type OutboundFrame, type PeerPath, routeIkeMessage, type SendResult } from '@ikegate/cluster';
import { defaultProvider, EncryptionId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import {
  type IkeSaContext,
  type IkeSaPolicy,
  IkeEndpoint,
  type IkePath,
  parseIpAddress,
} from '@ikegate/ikev2';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { Worker, type WorkerSettings } from '@ikegate/worker';
import { type BenchFigure, opsPerSecond } from './harness.js';

const INITS = Number(process.env.FLOOD_INITS ?? 100_000);
const JUNK = Number(process.env.FLOOD_JUNK ?? 100_000);
const BATCH = 1_000;
/** The first and last this many valid INITs are compared for flatness. */
const EDGE_COUNT = 10_000;
const HALF_OPEN_MS = 3_000;
const ADDRESSES = 4_096;
const LAYOUT = { shardBits: 10 };
const HASH_KEY = new Uint8Array(32).fill(7);
const DEFAULT_COOKIE_THRESHOLD = 1_000;
const INVALID_SPI_PER_SECOND = 100;

// Wire values (RFC 7296 §3.1, §3.10.1) the fake edge classifies answers by.
const IKE_HEADER = 28;
const EXCHANGE_IKE_SA_INIT = 34;
const PAYLOAD_NOTIFY = 41;
const NOTIFY = { INVALID_IKE_SPI: 4, NO_PROPOSAL_CHOSEN: 14, INVALID_KE_PAYLOAD: 17, COOKIE: 16390 } as const;

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const random = (n: number) => new Uint8Array(randomBytes(n));
const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: Uint8Array.of(0, 0, 0, 0),
  endAddress: Uint8Array.of(255, 255, 255, 255),
};
const ikeProposals: IkeSaPolicy['ikeProposals'] = [
  {
    encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
    prf: [PrfId.HMAC_SHA2_256],
    keyExchange: [KeyExchangeId.CURVE25519],
  },
];
const espProposals: IkeSaPolicy['espProposals'] = [
  { encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], esn: [false] },
];

// --- what is sent --------------------------------------------------------------------------------

/** One IKE_SA_INIT request as the protocol core's initiator builds it (X25519, AES-256-GCM). */
function initTemplate(): Uint8Array {
  const policy: IkeSaPolicy = {
    localId: 'flood@example.org',
    ikeProposals,
    espProposals,
    localTs: [any],
    remoteTs: [any],
  };
  const ctx: IkeSaContext = {
    provider: defaultProvider,
    random,
    allocateIkeSpi: () => random(8),
    allocateChildSpi: () => random(4),
    policy,
    psk: () => new TextEncoder().encode('flood bench pre-shared key'),
  };
  const initiator = new IkeEndpoint<undefined>({
    provider: defaultProvider,
    random,
    policy,
    ikeSpi: () => random(8),
    responderContext: () => ctx,
  });
  const path: IkePath = {
    id: 'flood',
    transport: 'udp',
    local: { address: parseIpAddress('198.18.0.1'), port: 500 },
    remote: { address: parseIpAddress('192.0.2.1'), port: 500 },
  };
  for (const o of initiator.initiate(ctx, path, 0, Date.now()).out)
    if (o.kind === 'transmit') return o.bytes.slice();
  throw new Error('the initiator sent no IKE_SA_INIT request');
}

/** 4096 peers, 198.18.0.0/20 (RFC 2544 benchmarking space), each with its own UDP path. */
const paths: PeerPath[] = Array.from({ length: ADDRESSES }, (_, n) => {
  const address = `198.18.${n >> 8}.${n & 255}`;
  return {
    connection: `udp:500:${address}:500`,
    transport: 'udp',
    local: { address: '192.0.2.1', port: 500 },
    remote: { address, port: 500 },
  };
});

interface Item {
  readonly bytes: Uint8Array;
  readonly path: PeerPath;
}

/** Valid INIT number `n` of a run: the template with a distinct initiator SPI (tag | n + 1). */
function validInit(template: Uint8Array, tag: number, n: number): Item {
  const bytes = template.slice();
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  v.setUint32(0, tag);
  v.setUint32(4, n + 1);
  return { bytes, path: paths[n % ADDRESSES]! };
}

/** xorshift32: junk is reproducible run to run and cheap to make. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const JUNK_KINDS = ['random octets', 'truncated header', 'random-SPI header', 'garbage INIT'] as const;

/** Junk message `n`: the four kinds in turn. */
function junk(next: () => number, template: Uint8Array, n: number): Item {
  const path = paths[next() % ADDRESSES]!;
  const fill = (b: Uint8Array, from: number) => {
    for (let i = from; i < b.length; i++) b[i] = next() & 0xff;
  };
  const header = (b: Uint8Array, spiRZero: boolean, exchange: number, flags: number) => {
    fill(b, 0);
    b[0]! |= 1; // SPIi non-zero
    if (spiRZero) b.fill(0, 8, 16);
    else b[8]! |= 1;
    b[16] = 46; // SK
    b[17] = 0x20;
    b[18] = exchange;
    b[19] = flags;
    if (b.length >= IKE_HEADER) new DataView(b.buffer, b.byteOffset).setUint32(24, b.length);
  };
  switch (n % 4) {
    case 0: {
      const b = new Uint8Array(1 + (next() % 1400));
      fill(b, 0);
      return { bytes: b, path };
    }
    case 1: {
      const b = new Uint8Array(1 + (next() % (IKE_HEADER - 1)));
      header(b, next() % 2 === 0, EXCHANGE_IKE_SA_INIT + (next() % 4), 0x08);
      return { bytes: b, path };
    }
    case 2: {
      const b = new Uint8Array(IKE_HEADER + (next() % 480));
      const exchanges = [34, 35, 36, 37, 43];
      const flags = [0x08, 0x00, 0x28, 0x20];
      header(b, false, exchanges[next() % exchanges.length]!, flags[next() % flags.length]!);
      return { bytes: b, path };
    }
    default: {
      if (next() % 2 === 0) {
        // A header that asks for a new SA, then random payload octets.
        const b = new Uint8Array(IKE_HEADER + 8 + (next() % 600));
        header(b, true, EXCHANGE_IKE_SA_INIT, 0x08);
        b[16] = next() & 0xff;
        new DataView(b.buffer).setUint32(20, 0);
        return { bytes: b, path };
      }
      // The valid request with a few octets past the header changed.
      const b = template.slice();
      const v = new DataView(b.buffer);
      v.setUint32(0, next() | 1);
      v.setUint32(4, next());
      for (let k = 1 + (next() % 8); k > 0; k--) b[IKE_HEADER + (next() % (b.length - IKE_HEADER))] = next();
      return { bytes: b, path };
    }
  }
}

// --- the worker under test -----------------------------------------------------------------------

/** Counts what the worker hands the edge, by what it is; the frames themselves are discarded. */
class CountingEdge {
  frames = 0;
  octets = 0;
  readonly byKind = new Map<string, number>();

  send(f: OutboundFrame): SendResult {
    this.frames++;
    this.octets += f.bytes.length;
    const kind = classify(f.bytes);
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    return 'sent';
  }

  count(kind: string): number {
    return this.byKind.get(kind) ?? 0;
  }
}

function classify(b: Uint8Array): string {
  if (b.length >= IKE_HEADER + 8 && b[16] === PAYLOAD_NOTIFY) {
    const type = (b[IKE_HEADER + 6]! << 8) | b[IKE_HEADER + 7]!;
    for (const [name, value] of Object.entries(NOTIFY)) if (value === type) return name;
  }
  return b[18] === EXCHANGE_IKE_SA_INIT ? 'IKE_SA_INIT response' : 'other';
}

/** Log lines by message, discarded (the worker logs at info, as `ikegate up` does by default). */
class LogCounter extends Writable {
  lines = 0;
  deleted = 0;
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    const s = chunk.toString();
    this.lines++;
    if (s.includes('"msg":"ike-sa-deleted"')) this.deleted++;
    done();
  }
}

interface Subject {
  readonly worker: Worker;
  readonly edge: CountingEdge;
  readonly metrics: Metrics;
  readonly log: LogCounter;
}

function subject(limits: Partial<WorkerSettings>): Subject {
  const edge = new CountingEdge();
  const metrics = new Metrics({ processMetrics: false });
  const log = new LogCounter();
  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: { localId: 'gw.example.org', ikeProposals, espProposals, localTs: [any], remoteTs: [any] },
      matchPeer: () => undefined,
      layout: LAYOUT,
      ikeLifetimeSeconds: 3600,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 60,
      dpdSeconds: 0,
      halfOpenTimeoutMs: HALF_OPEN_MS,
      ...limits,
    },
    edge,
    createLogger({ destination: log, level: 'info' }),
    metrics,
  );
  return { worker, edge, metrics, log };
}

/** The sum of every sample of `name` whose labels include `labels`. */
async function gauge(metrics: Metrics, name: string, labels = ''): Promise<number> {
  let sum = 0;
  for (const line of (await metrics.render()).split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && m[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
  }
  return sum;
}

// --- measuring -----------------------------------------------------------------------------------

interface Memory {
  readonly rss: number;
  readonly heap: number;
  /** Off-heap memory V8 knows of (ArrayBuffer backing stores: keys, cached responses). */
  readonly external: number;
  /** What V8 has committed for its heap (used or not). */
  readonly heapTotal: number;
}

function memory(): Memory {
  gc();
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, external: m.external, heapTotal: m.heapTotal };
}

/** Main-thread GC pauses (start, duration in ms), to tell table growth from GC growth. */
const gcPauses: { start: number; duration: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcPauses.push({ start: e.startTime, duration: e.duration });
}).observe({ entryTypes: ['gc'] });

/** GC pause milliseconds that started inside any of `windows`. */
function gcMs(windows: readonly (readonly [number, number])[]): number {
  let ms = 0;
  for (const p of gcPauses) if (windows.some(([a, b]) => p.start >= a && p.start < b)) ms += p.duration;
  return ms;
}

const cpuMicros = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return d.user + d.system;
};

/** The half-open gauge; awaiting it runs microtasks only, so no timer fires in between. */
async function halfOpenNow(s: Subject): Promise<number> {
  return (await s.metrics.ikeHalfOpen.get()).values[0]?.value ?? 0;
}

interface Fed {
  /** CPU microseconds of each batch. */
  readonly batches: number[];
  /** performance.now() at the start and end of each batch's measured part. */
  readonly windows: [number, number][];
  /** Messages the edge's routing rule drops before any worker sees them. */
  readonly routedAway: number;
  /** The highest half-open count seen after any batch. */
  readonly maxHalfOpen: number;
  /** Half-open SAs after minus before (nothing expires while feeding). */
  readonly halfOpenMade: number;
}

/**
 * Feeds `count` messages made by `make` to the worker, routed as the edge routes them, in batches
 * made before they are timed. Never yields to the event loop (so no timer runs in between).
 */
async function feed(s: Subject, count: number, make: (n: number) => Item): Promise<Fed> {
  const batches: number[] = [];
  const windows: [number, number][] = [];
  let routedAway = 0;
  let maxHalfOpen = 0;
  const before = await halfOpenNow(s);
  for (let start = 0; start < count; start += BATCH) {
    const items: Item[] = [];
    for (let n = start; n < Math.min(count, start + BATCH); n++) items.push(make(n));
    const t = process.cpuUsage();
    const w0 = performance.now();
    for (const { bytes, path } of items) {
      const d = routeIkeMessage(bytes, path.remote.address, HASH_KEY, LAYOUT);
      if (d.kind === 'drop') {
        routedAway++;
        continue;
      }
      s.worker.deliver({ kind: 'ike', path, bytes, shard: d.shard });
    }
    batches.push(cpuMicros(t));
    windows.push([w0, performance.now()]);
    maxHalfOpen = Math.max(maxHalfOpen, await halfOpenNow(s));
  }
  return { batches, windows, routedAway, maxHalfOpen, halfOpenMade: (await halfOpenNow(s)) - before };
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Waits (bounded) until the worker's own timer has expired every half-open SA. */
async function drained(s: Subject): Promise<{ waitedMs: number; cpu: number; halfOpen: number }> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const limit = t0 + HALF_OPEN_MS + 15_000;
  let halfOpen = await gauge(s.metrics, 'ikegate_ike_half_open_sas');
  while ((halfOpen > 0 || s.worker.ikeSaCount > 0) && performance.now() < limit) {
    await sleep(50);
    halfOpen = await gauge(s.metrics, 'ikegate_ike_half_open_sas');
  }
  return { waitedMs: performance.now() - t0, cpu: cpuMicros(c0), halfOpen };
}

/** Responder's share of one X25519 exchange via node:crypto: keygen + shared secret, in µs. */
function x25519Floor(): number {
  const peer = generateKeyPairSync('x25519').publicKey;
  const perSecond = opsPerSecond(() => {
    const { privateKey } = generateKeyPairSync('x25519');
    diffieHellman({ privateKey, publicKey: peer });
    return 1;
  }, 1000);
  return 1e6 / perSecond;
}

/** The same through the provider the worker uses (`respond`: keygen + shared secret), in µs. */
function providerRespond(): number {
  const x = defaultProvider.keyExchange(KeyExchangeId.CURVE25519)!;
  const initiatorData = x.initiate(random).publicData;
  return 1e6 / opsPerSecond(() => (x.respond(initiatorData, random), 1), 1000);
}

const MiB = 1024 * 1024;

interface RunResult {
  readonly label: string;
  readonly before: Memory;
  readonly peak: Memory;
  readonly after: Memory;
  readonly halfOpenPeak: number;
  readonly halfOpenAfter: number;
  readonly sasAfter: number;
  readonly cookieMode: number;
  readonly init: Fed;
  readonly junk: Fed;
  readonly initOctets: number;
  /** What the valid INITs were answered with (the fake edge's counts over that phase). */
  readonly initAnswers: Map<string, number>;
  readonly junkSeconds: number;
  readonly drain: { waitedMs: number; cpu: number };
  readonly edge: CountingEdge;
  readonly deletedLines: number;
  readonly drops: Map<string, number>;
}

async function run(label: string, limits: Partial<WorkerSettings>, junkFirst: boolean): Promise<RunResult> {
  const template = initTemplate();
  const tag = (randomBytes(4).readUInt32BE(0) | 0x8000_0000) >>> 0;
  const next = prng(0x1ce_6a7e);
  const before = memory();
  const s = subject(limits);
  let junkResult: Fed = { batches: [], windows: [], routedAway: 0, maxHalfOpen: 0, halfOpenMade: 0 };
  let junkSeconds = 0;
  const sendJunk = async () => {
    const t = performance.now();
    junkResult = await feed(s, JUNK, (n) => junk(next, template, n));
    junkSeconds = (performance.now() - t) / 1000;
  };
  if (junkFirst) await sendJunk();
  const answered = new Map(s.edge.byKind);
  const init = await feed(s, INITS, (n) => validInit(template, tag, n));
  const initAnswers = new Map([...s.edge.byKind].map(([k, v]) => [k, v - (answered.get(k) ?? 0)]));
  if (!junkFirst) await sendJunk();
  // Right after: no event-loop turn yet, so the worker's timer has expired nothing.
  const halfOpenPeak = await halfOpenNow(s);
  const cookieMode = await gauge(s.metrics, 'ikegate_ike_cookie_mode');
  const peak = memory();
  const drain = await drained(s);
  const text = await s.metrics.render();
  const drops = new Map<string, number>();
  for (const m of text.matchAll(/^ikegate_drops_total\{layer="ike",reason="([a-z_]+)"\} (\d+)$/gm))
    drops.set(m[1]!, Number(m[2]));
  const result = {
    label,
    before,
    peak,
    halfOpenPeak,
    cookieMode,
    init,
    initAnswers,
    initOctets: template.length,
    junk: junkResult,
    junkSeconds,
    drain,
    edge: s.edge,
    deletedLines: s.log.deleted,
    drops,
    halfOpenAfter: drain.halfOpen,
    sasAfter: s.worker.ikeSaCount,
  };
  await s.worker.close(0);
  return { ...result, after: memory() };
}

/** JIT warm-up on a throwaway worker, so "first 10k" measures the table, not the compiler. */
async function warmUp(): Promise<void> {
  const s = subject({});
  const template = initTemplate();
  const next = prng(7);
  await feed(s, 2 * BATCH, (n) => validInit(template, 0x7fff_ffff, n));
  await feed(s, 2 * BATCH, (n) => junk(next, template, n));
  await s.worker.close(0);
}

function figures(r: RunResult, floor: number): BenchFigure[] {
  const f: BenchFigure[] = [];
  const ref = (name: string, value: number) => ({ name, value });
  const floorRef = ref('X25519 keygen+agree µs (node:crypto)', floor);
  const mib = (b: number) => b / MiB;
  const baseRss = ref('RSS before', mib(r.before.rss));
  const baseHeap = ref('heap before', mib(r.before.heap));
  const n = r.init.batches.length;
  const k = Math.min(n, Math.ceil(EDGE_COUNT / BATCH));
  const first = sum(r.init.batches.slice(0, k)) / (k * BATCH);
  const last = sum(r.init.batches.slice(n - k)) / (k * BATCH);
  const all = sum(r.init.batches) / INITS;
  const junkPer = sum(r.junk.batches) / JUNK;
  const p = `[${r.label}]`;
  f.push(
    { name: `${p} RSS before (after GC)`, value: mib(r.before.rss), unit: 'MiB' },
    { name: `${p} RSS right after the flood`, value: mib(r.peak.rss), unit: 'MiB', reference: baseRss },
    { name: `${p} RSS after half-open expiry`, value: mib(r.after.rss), unit: 'MiB', reference: baseRss },
    { name: `${p} heap before (after GC)`, value: mib(r.before.heap), unit: 'MiB' },
    { name: `${p} heap right after the flood`, value: mib(r.peak.heap), unit: 'MiB', reference: baseHeap },
    { name: `${p} heap after half-open expiry`, value: mib(r.after.heap), unit: 'MiB', reference: baseHeap },
    {
      name: `${p} external (ArrayBuffers) right after`,
      value: mib(r.peak.external),
      unit: 'MiB',
      reference: ref('external before', mib(r.before.external)),
    },
    {
      name: `${p} external after half-open expiry`,
      value: mib(r.after.external),
      unit: 'MiB',
      reference: ref('external before', mib(r.before.external)),
    },
    {
      name: `${p} V8 heap committed after expiry`,
      value: mib(r.after.heapTotal),
      unit: 'MiB',
      reference: ref('committed at peak', mib(r.peak.heapTotal)),
    },
    {
      name: `${p} RSS delta after expiry (vs delta at peak)`,
      value: mib(r.after.rss - r.before.rss),
      unit: 'MiB',
      reference: ref('RSS delta at peak', mib(r.peak.rss - r.before.rss)),
    },
    {
      name: `${p} heap delta after expiry (vs delta at peak)`,
      value: mib(r.after.heap - r.before.heap),
      unit: 'MiB',
      reference: ref('heap delta at peak', mib(r.peak.heap - r.before.heap)),
    },
    {
      name: `${p} half-open SAs right after the flood`,
      value: r.halfOpenPeak,
      unit: 'SAs',
      reference: ref('valid INITs sent', INITS),
    },
    {
      name: `${p} half-open SAs made by junk (INITs still valid)`,
      value: r.junk.halfOpenMade,
      unit: 'SAs',
      reference: ref('junk sent', JUNK),
    },
    {
      name: `${p} highest half-open count after any batch`,
      value: Math.max(r.init.maxHalfOpen, r.junk.maxHalfOpen),
      unit: 'SAs',
      reference: ref('valid INITs sent', INITS),
    },
    { name: `${p} cookie mode right after (gauge)`, value: r.cookieMode, unit: '' },
  );
  if (r.halfOpenPeak > 0)
    f.push({
      name: `${p} heap per half-open SA at peak`,
      value: (r.peak.heap - r.before.heap) / r.halfOpenPeak,
      unit: 'B',
      reference: ref('IKE_SA_INIT request octets', r.initOctets),
    });
  f.push(
    {
      name: `${p} half-open SAs after expiry (+${Math.round(r.drain.waitedMs)} ms)`,
      value: r.halfOpenAfter,
      unit: 'SAs',
      reference: ref('half-open at peak', Math.max(1, r.halfOpenPeak)),
    },
    { name: `${p} IKE SAs held after expiry`, value: r.sasAfter, unit: 'SAs' },
    { name: `${p} CPU per valid INIT, all ${INITS}`, value: all, unit: 'µs', reference: floorRef },
    { name: `${p} CPU per valid INIT, first ${k * BATCH}`, value: first, unit: 'µs', reference: floorRef },
    { name: `${p} CPU per valid INIT, last ${k * BATCH}`, value: last, unit: 'µs', reference: floorRef },
    {
      name: `${p} GC pause per valid INIT, first ${k * BATCH}`,
      value: (1000 * gcMs(r.init.windows.slice(0, k))) / (k * BATCH),
      unit: 'µs',
      reference: ref(`CPU per INIT, first ${k * BATCH}`, first),
    },
    {
      name: `${p} GC pause per valid INIT, last ${k * BATCH}`,
      value: (1000 * gcMs(r.init.windows.slice(n - k))) / (k * BATCH),
      unit: 'µs',
      reference: ref(`CPU per INIT, last ${k * BATCH}`, last),
    },
    {
      name: `${p} CPU per INIT last/first (flat = 1.00)`,
      value: last,
      unit: 'µs',
      reference: ref(`first ${k * BATCH}`, first),
    },
    { name: `${p} CPU per junk message`, value: junkPer, unit: 'µs', reference: floorRef },
    {
      name: `${p} CPU while waiting for expiry (timer + GC) / SA`,
      value: r.drain.cpu / Math.max(1, r.halfOpenPeak),
      unit: 'µs',
      reference: floorRef,
    },
    {
      name: `${p} 'ike-sa-deleted' log lines at expiry`,
      value: r.deletedLines,
      unit: 'lines',
      reference: ref('half-open at peak', Math.max(1, r.halfOpenPeak)),
    },
  );
  const e = r.edge;
  const cookies = e.count('COOKIE');
  f.push(
    { name: `${p} COOKIEs sent`, value: cookies, unit: 'msgs', reference: ref('valid INITs sent', INITS) },
    {
      name: `${p} full IKE_SA_INIT responses sent`,
      value: e.count('IKE_SA_INIT response'),
      unit: 'msgs',
      reference: ref('valid INITs sent', INITS),
    },
    {
      name: `${p} INVALID_IKE_SPI sent during the junk`,
      value: e.count('INVALID_IKE_SPI'),
      unit: 'msgs',
      reference: ref(
        `budget ${INVALID_SPI_PER_SECOND}/s x ${r.junkSeconds.toFixed(1)} s + burst`,
        INVALID_SPI_PER_SECOND * (Math.ceil(r.junkSeconds) + 1),
      ),
    },
    {
      name: `${p} junk routed away by the edge rule`,
      value: r.junk.routedAway,
      unit: 'msgs',
      reference: ref('junk sent', JUNK),
    },
  );
  for (const [kind, count] of e.byKind)
    if (!['COOKIE', 'IKE_SA_INIT response', 'INVALID_IKE_SPI'].includes(kind))
      f.push({
        name: `${p} other answers: ${kind}`,
        value: count,
        unit: 'msgs',
        reference: ref('sent', JUNK),
      });
  for (const [reason, count] of [...r.drops].sort((a, b) => b[1] - a[1]))
    f.push({
      name: `${p} drops{layer="ike",reason="${reason}"}`,
      value: count,
      unit: 'msgs',
      reference: ref('junk + INITs sent', JUNK + INITS),
    });
  return f;
}

/** The second state run against the first: a leak shows as growth here. */
function repeated(first: RunResult, second: RunResult): BenchFigure[] {
  const mib = (b: number) => b / MiB;
  return [
    {
      name: '[state again] RSS right after the flood',
      value: mib(second.peak.rss),
      unit: 'MiB',
      reference: { name: 'first run', value: mib(first.peak.rss) },
    },
    {
      name: '[state again] RSS after half-open expiry',
      value: mib(second.after.rss),
      unit: 'MiB',
      reference: { name: 'first run', value: mib(first.after.rss) },
    },
    {
      name: '[state again] heap after half-open expiry',
      value: mib(second.after.heap),
      unit: 'MiB',
      reference: { name: 'first run', value: mib(first.after.heap) },
    },
    {
      name: '[state again] half-open SAs after expiry',
      value: second.halfOpenAfter,
      unit: 'SAs',
      reference: { name: 'half-open at peak', value: Math.max(1, second.halfOpenPeak) },
    },
    {
      name: '[state again] CPU per valid INIT, all',
      value: sum(second.init.batches) / INITS,
      unit: 'µs',
      reference: { name: 'first run', value: sum(first.init.batches) / INITS },
    },
  ];
}

export async function bench(): Promise<BenchFigure[]> {
  if (!(globalThis as { gc?: unknown }).gc) console.log('  (no --expose-gc: memory figures include garbage)');
  console.log(`  kinds of junk, in turn: ${JUNK_KINDS.join(', ')}`);
  const floorBefore = x25519Floor();
  const provider = providerRespond();
  await warmUp();
  const high = { cookieThreshold: 10 * INITS, maxHalfOpen: 10 * INITS, maxIkeSas: 10 * INITS };
  const state = await run('state', high, true);
  // The same again: memory that stays after the first run is reused (a plateau), not leaked.
  const again = await run('state again', high, true);
  const cookie = await run('cookie', {}, false);
  const floor = Math.min(floorBefore, x25519Floor());
  return [
    { name: 'X25519 keygen+agree (node:crypto), reference', value: floor, unit: 'µs' },
    {
      name: 'X25519 respond (worker provider)',
      value: provider,
      unit: 'µs',
      reference: { name: 'X25519 keygen+agree µs (node:crypto)', value: floor },
    },
    ...figures(state, floor),
    ...repeated(state, again),
    ...figures(cookie, floor),
    {
      name: `[cookie] highest half-open count vs the threshold`,
      value: Math.max(cookie.init.maxHalfOpen, cookie.junk.maxHalfOpen),
      unit: 'SAs',
      reference: { name: 'cookie threshold', value: DEFAULT_COOKIE_THRESHOLD },
    },
    {
      name: `[cookie] COOKIEs to valid INITs past the threshold`,
      value: cookie.initAnswers.get('COOKIE') ?? 0,
      unit: 'msgs',
      reference: { name: 'valid INITs - threshold', value: Math.max(1, INITS - DEFAULT_COOKIE_THRESHOLD) },
    },
  ];
}
