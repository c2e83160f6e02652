/**
 * `ikegate loadgen`: many initiators from one process, control plane only (no TUN).
 *
 * One Worker (services/worker) holds every initiator IKE SA: `worker.initiate` is called once per
 * SA and responses reach the right SA by IKE SPI inside the worker, so an SA costs a state machine,
 * not a process. Over UDP the SAs share a few sockets; over TCP/TLS each SA gets its own RFC 9329
 * stream. A setup counts as done when its IKE SA is established and its CHILD SA installed; its
 * latency runs from the first IKE_SA_INIT sent to that point.
 */
import { isIPv4 } from 'node:net';
import { lookup } from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import type { PeerPath } from '@ikegate/cluster';
import { DEFAULT_SHARD_BITS } from '@ikegate/cluster';
import { parseCidr, parseEspProposal, parseIkeProposal } from '@ikegate/config';
import { defaultProvider } from '@ikegate/crypto';
import type { IkeSaPolicy, TrafficSelector } from '@ikegate/ikev2';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { DialError } from '@ikegate/transport';
import { Worker } from '@ikegate/worker';
import { MuxConnector } from './mux.js';
import { expandId, latencySummary, type LoadgenSummary, quarterRates } from './stats.js';

export type LoadgenTransport = 'udp' | 'tcp' | 'tls';

export interface LoadgenOptions {
  readonly server: string;
  readonly transport: LoadgenTransport;
  readonly ports: { readonly ike: number; readonly natT: number; readonly tcp: number; readonly tls: number };
  /** Total SAs to set up. */
  readonly count: number;
  /**
   * The number of the first SA (default 1): SAs are numbered firstN..firstN+count-1, which is what
   * `{n}` in `idPattern` becomes. A process of `--processes` gets its own range, so identities
   * never collide across processes.
   */
  readonly firstN?: number;
  /** Setups in flight at once. */
  readonly concurrency: number;
  /** Optional cap on setups started per second. */
  readonly rate?: number;
  /** Our identity; `{n}` becomes the SA's number (1..count), e.g. `load-{n}@example.org`. */
  readonly idPattern: string;
  readonly remoteId: string;
  readonly psk: Uint8Array;
  /** Server-side networks to ask for (TSr); default 0.0.0.0/0. */
  readonly remoteTs?: readonly string[];
  readonly ike?: readonly string[];
  readonly esp?: readonly string[];
  /** Ask for a virtual IP (CFG_REQUEST), as road warriors do; default true. */
  readonly requestVirtualIp?: boolean;
  readonly insecure?: boolean;
  readonly ca?: string | Uint8Array;
  /** Per-setup limit, stream connect included; past it the setup counts as `timeout`. */
  readonly timeoutMs: number;
  /** UDP sockets the SAs share (SA i uses socket i mod n); default 1. */
  readonly udpSockets?: number;
  readonly logLevel?: string;
  /** Called every `progressIntervalMs` while setups run, and once at the end. */
  readonly onProgress?: (p: LoadgenProgress) => void;
  readonly progressIntervalMs?: number;
  /**
   * Called once the sockets are open and the worker built; setups start when it resolves, so
   * several processes can start together. The run's clock and CPU count start then.
   */
  readonly startGate?: () => Promise<void>;
}

export interface LoadgenProgress {
  readonly count: number;
  readonly attempted: number;
  readonly established: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly elapsedMs: number;
}

/** The raw samples behind a summary, for merging the runs of several processes. */
export interface LoadgenSamples {
  /** When setups started, in ms on the `performance.timeOrigin + performance.now()` scale. */
  readonly startedAt: number;
  /** Completion instants of the established setups on the same scale, ascending. */
  readonly completedAt: readonly number[];
  /** Setup latencies (ms), in completion order. */
  readonly latenciesMs: readonly number[];
  /** CPU time (user + system, ms) this process spent over the run. */
  readonly cpuMs: number;
}

export interface LoadgenRun {
  readonly summary: LoadgenSummary;
  readonly samples: LoadgenSamples;
  /** Established SAs still up. */
  readonly held: () => number;
  /**
   * Ends the run. With `deleteSas` every held SA is deleted (INFORMATIONAL DELETE, RFC 7296
   * §1.4.1), at most `concurrency` at a time, waiting up to `timeoutMs` for the answers; without
   * it the sockets just close and the server keeps the SAs until its liveness checks end them.
   * Returns how many deletes were answered.
   */
  stop(o?: { deleteSas?: boolean; timeoutMs?: number }): Promise<number>;
}

const FAILURE_NAMES: Record<string, string> = {
  'authentication-failed': 'auth-failed',
  'no-proposal-chosen': 'no-proposal',
};

/** Error notifies that refuse a child SA (RFC 7296 §3.10.1), as failure reasons. */
const CHILD_FAILURE_NAMES: Record<number, string> = {
  14: 'child-no-proposal',
  36: 'internal-address-failure',
  37: 'failed-cp-required',
  38: 'ts-unacceptable',
};

function selector(cidr: string): TrafficSelector {
  const c = parseCidr(cidr, true);
  if (typeof c === 'string') throw new Error(`--ts ${cidr}: ${c}`);
  const start = Buffer.from(c.address).readUInt32BE(0);
  const end = (start | (c.prefix === 0 ? 0xffffffff : (1 << (32 - c.prefix)) - 1)) >>> 0;
  const endAddress = new Uint8Array(4);
  new DataView(endAddress.buffer).setUint32(0, end);
  return { tsType: 7, ipProtocol: 0, startPort: 0, endPort: 65535, startAddress: c.address, endAddress };
}

interface Setup {
  readonly n: number;
  spi: string;
  path?: PeerPath;
  startedAt: number;
  established: boolean;
  child: boolean;
  /** pending -> done (held) | failed; held SAs may later be deleted. */
  state: 'pending' | 'done' | 'failed';
  timer?: NodeJS.Timeout;
}

export async function runLoadgen(o: LoadgenOptions): Promise<LoadgenRun> {
  if (!Number.isInteger(o.count) || o.count < 1) throw new Error('count must be a positive integer');
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new Error('concurrency must be a positive integer');
  const server = isIPv4(o.server) ? o.server : (await lookup(o.server, { family: 4 })).address;
  const log = createLogger({ level: o.logLevel ?? 'error', name: 'ikegate-loadgen' });
  const base: IkeSaPolicy = {
    localId: '',
    ikeProposals: (o.ike ?? ['aes256gcm16-prfsha256-x25519']).map(parseIkeProposal),
    espProposals: (o.esp ?? ['aes256gcm16']).map(parseEspProposal),
    localTs: [selector('0.0.0.0/0')],
    remoteTs: (o.remoteTs ?? ['0.0.0.0/0']).map(selector),
    requestVirtualIp: o.requestVirtualIp ?? true,
    messageIdSync: true,
    replayCounterSync: true,
  };

  const bySpi = new Map<string, Setup>();
  const byConnection = new Map<string, Setup>();
  const failures: Record<string, number> = {};
  const sampleErrors: string[] = [];
  const latencies: number[] = [];
  const completions: number[] = [];
  let attempted = 0;
  let established = 0;
  let failed = 0;
  let inFlight = 0;
  let held = 0;
  let lostAfterSetup = 0;
  let deletesAnswered = 0;
  let stopping = false;
  let lastSettled = 0;
  // Set again when setups start (after `startGate`); progress before that reads from here.
  let t0 = performance.now();
  let resolveDone: () => void = () => undefined;
  const allSettled = new Promise<void>((r) => (resolveDone = r));
  let onHeldDeleted: (() => void) | undefined;

  const fail = (s: Setup, reason: string, message?: string) => {
    if (s.state !== 'pending') return;
    s.state = 'failed';
    clearTimeout(s.timer);
    failed++;
    failures[reason] = (failures[reason] ?? 0) + 1;
    if (message && sampleErrors.length < 5) sampleErrors.push(`${reason}: ${message}`);
    settle();
  };
  const maybeDone = (s: Setup) => {
    if (s.state !== 'pending' || !s.established || !s.child) return;
    s.state = 'done';
    clearTimeout(s.timer);
    const now = performance.now();
    latencies.push(now - s.startedAt);
    completions.push(now - t0);
    established++;
    held++;
    settle();
  };
  function settle(): void {
    inFlight--;
    lastSettled = performance.now();
    if (established + failed === o.count) resolveDone();
    else queueMicrotask(pump); // not from inside the worker's step that reported the outcome
  }

  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: base,
      matchPeer: () => undefined,
      layout: { shardBits: DEFAULT_SHARD_BITS },
      ikeLifetimeSeconds: 14400,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 300,
      dpdSeconds: 30,
      observer: {
        established: (spi, peerId) => {
          const s = bySpi.get(spi);
          if (!s) return;
          if (s.state === 'failed') {
            // Up after its timeout: delete it (after this step, as the worker does itself).
            queueMicrotask(() => worker.command(spi, 'delete'));
            return;
          }
          if (peerId.toLowerCase() !== o.remoteId.toLowerCase()) return fail(s, 'wrong-peer-id', peerId);
          s.established = true;
          maybeDone(s);
        },
        childInstalled: (c) => {
          const s = bySpi.get(c.ikeSpi);
          if (!s || !c.weInitiated) return;
          s.child = true;
          maybeDone(s);
        },
        // The gateway refused the child SA (e.g. INTERNAL_ADDRESS_FAILURE: its pool is empty,
        // RFC 7296 §3.15.4): the setup fails now, not at its timeout, and its IKE SA goes.
        childFailed: (spi, reason, notify) => {
          const s = bySpi.get(spi);
          if (!s) return;
          fail(s, notify !== undefined ? (CHILD_FAILURE_NAMES[notify] ?? `notify-${notify}`) : reason);
          queueMicrotask(() => worker.command(spi, 'delete'));
        },
        ikeSaDeleted: (spi, reason) => {
          const s = bySpi.get(spi);
          if (!s) return;
          bySpi.delete(spi);
          if (s.path && s.path.transport !== 'udp') {
            byConnection.delete(s.path.connection);
            connector.closeStream(s.path.connection);
          }
          if (s.state === 'pending') return fail(s, FAILURE_NAMES[reason] ?? reason);
          if (s.state === 'done') {
            held--;
            if (stopping) {
              deletesAnswered++;
              onHeldDeleted?.();
            } else lostAfterSetup++;
          }
        },
      },
    },
    { send: (f) => connector.send(f) },
    log.child({ role: 'worker' }),
    new Metrics({ role: 'loadgen' }),
  );
  const connector = new MuxConnector(
    server,
    o.ports,
    (kind, bytes, path) => worker.deliver({ kind, path, bytes, shard: 0 }),
    { insecure: o.insecure ?? false, ...(o.ca ? { ca: o.ca } : {}) },
  );
  connector.onStreamClosed = (connection) => {
    const s = byConnection.get(connection);
    if (!s) return;
    byConnection.delete(connection);
    if (s.state === 'pending') fail(s, 'connection-closed');
    else if (s.state === 'done' && !stopping) {
      // The SA stays in our worker (RFC 9329 §6 would reconnect); for load accounting it is lost.
      held--;
      lostAfterSetup++;
      s.state = 'failed';
      worker.command(s.spi, 'delete');
    }
  };
  if (o.transport === 'udp') await connector.openUdp(Math.max(1, o.udpSockets ?? 1));
  const firstN = o.firstN ?? 1;
  const endN = firstN + o.count; // exclusive

  const initiate = (s: Setup, path: PeerPath) => {
    s.path = path;
    s.startedAt = performance.now();
    s.spi = worker.initiate({
      policy: {
        ...base,
        localId: expandId(o.idPattern, s.n),
        localIdType: o.idPattern.includes('@') ? 3 : 2,
      },
      psk: o.psk,
      remoteId: o.remoteId,
      path,
    });
    bySpi.set(s.spi, s);
    if (path.transport !== 'udp') byConnection.set(path.connection, s);
  };

  const start = (n: number) => {
    attempted++;
    inFlight++;
    const s: Setup = {
      n,
      spi: '',
      startedAt: performance.now(),
      established: false,
      child: false,
      state: 'pending',
    };
    s.timer = setTimeout(() => {
      fail(s, 'timeout');
      // A late answer must not leave an SA behind: an SA already up is deleted now, one that comes
      // up later when it does; a half-open one ends at the state machine's retransmission limit.
      if (s.spi && s.established) worker.command(s.spi, 'delete');
    }, o.timeoutMs);
    if (o.transport === 'udp') return initiate(s, connector.udpPath(n - firstN));
    connector.openStream(o.transport, o.timeoutMs).then(
      (path) => {
        if (s.state !== 'pending') return connector.closeStream(path.connection);
        initiate(s, path);
      },
      (e: unknown) =>
        fail(s, e instanceof DialError && e.reason === 'timeout' ? 'timeout' : 'connect-failed', String(e)),
    );
  };

  let next = firstN;
  let pumpTimer: NodeJS.Timeout | undefined;
  function pump(): void {
    while (next < endN && inFlight < o.concurrency) {
      if (o.rate) {
        const due = t0 + ((next - firstN) / o.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) {
          if (!pumpTimer)
            pumpTimer = setTimeout(() => {
              pumpTimer = undefined;
              pump();
            }, wait);
          return;
        }
      }
      start(next++);
    }
  }

  const progress = (): LoadgenProgress => ({
    count: o.count,
    attempted,
    established,
    failed,
    inFlight,
    elapsedMs: performance.now() - t0,
  });
  if (o.startGate) await o.startGate();
  t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const ticker = o.onProgress
    ? setInterval(() => o.onProgress?.(progress()), o.progressIntervalMs ?? 1000)
    : undefined;
  pump();
  await allSettled;
  clearInterval(ticker);
  o.onProgress?.(progress());

  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const durationMs = lastSettled - t0;
  const rates = quarterRates(completions, o.concurrency);
  const summary: LoadgenSummary = {
    server: o.server,
    transport: o.transport,
    count: o.count,
    concurrency: o.concurrency,
    attempted,
    established,
    failed,
    failures: { ...failures },
    held,
    lostAfterSetup,
    durationMs: Math.round(durationMs),
    setupsPerSecond: durationMs > 0 ? Math.round((established / durationMs) * 1000 * 10) / 10 : 0,
    setupsPerSecondFirstQuarter: rates.first,
    setupsPerSecondLastQuarter: rates.last,
    latencyMs: latencySummary(latencies),
    clientCpuPercent: durationMs > 0 ? Math.round((cpuMs / durationMs) * 100) : 0,
    clientCpuMs: Math.round(cpuMs),
    sampleErrors,
  };
  const samples: LoadgenSamples = {
    startedAt: performance.timeOrigin + t0,
    completedAt: completions.map((t) => performance.timeOrigin + t0 + t),
    latenciesMs: latencies,
    cpuMs,
  };

  let stopped: Promise<number> | undefined;
  return {
    summary,
    samples,
    held: () => held,
    stop(so = {}) {
      stopped ??= (async () => {
        stopping = true;
        if (so.deleteSas) {
          const spis = [...bySpi.values()].filter((s) => s.state === 'done').map((s) => s.spi);
          const deadline = performance.now() + (so.timeoutMs ?? 10_000);
          let i = 0;
          // At most `concurrency` deletes outstanding; bounded by the SAs held and the deadline.
          while ((i < spis.length || held > 0) && performance.now() < deadline) {
            while (i < spis.length && i - deletesAnswered < o.concurrency)
              worker.command(spis[i++]!, 'delete');
            await new Promise<void>((r) => {
              const t = setTimeout(r, Math.max(1, Math.min(100, deadline - performance.now())));
              onHeldDeleted = () => {
                if (i - deletesAnswered < o.concurrency || held === 0) {
                  clearTimeout(t);
                  r();
                }
              };
            });
          }
          onHeldDeleted = undefined;
        }
        connector.close(); // before worker.close: what it would still send goes nowhere
        // worker.close waits on an unref'd timer: keep the process alive until it returns.
        const keepAlive = setInterval(() => undefined, 1000);
        await worker.close(0);
        clearInterval(keepAlive);
        return deletesAnswered;
      })();
      return stopped;
    },
  };
}
