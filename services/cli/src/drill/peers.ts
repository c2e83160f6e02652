/**
 * The drill's peers: N initiator IKE SAs (each with a CHILD SA) held by one in-process Worker, as
 * `ikegate loadgen` does, each carrying live traffic so its outage can be measured:
 *
 * - Probes: every `probeIntervalMs` each SA sends an IKE liveness check (an empty INFORMATIONAL
 *   request, RFC 7296 §1.4; encrypted and authenticated with the SA's keys, so only a worker
 *   holding the SA can answer it). The instant of every answer is kept per peer; a peer's outage is
 *   the longest time between answers. An answer counts only if the peer's state machine took it
 *   (authenticated: the SA's last-activity instant moved); responses it did not take, and responses
 *   to another message ID than the one waited for, are counted (signs of stale state on the
 *   gateway). Over UDP, an unanswered request is sent again (the same octets: a retransmission,
 *   RFC 7296 §2.1) every probe interval, so the first answer after a takeover comes within one
 *   interval of the SA being served again (the IKE state machine's own doubling backoff would blur
 *   that); the extra answers this draws are dropped by the state machine as unexpected. Over TCP
 *   nothing is retransmitted on a live stream (RFC 9329 §2), as a real peer does not.
 * - ESP: every probe interval, whatever the probes do, one ESP packet (an inner IPv4/UDP datagram from the peer's own /32 toward
 *   10.0.0.1) goes out on the CHILD SA; the gateway counts what it accepts
 *   (`ikegate_esp_packets_total{direction="in"}`), so ESP loss is sent minus accepted.
 * - TCP peers whose stream ends reconnect through the next edge (RFC 9329 §6) and continue the same
 *   IKE SA (`Worker.restore`). UDP peers stay on their edge's address (no shared address here).
 * - A peer whose SA is deleted (or declared dead) starts a new one a second later, as a client
 *   configured to restart would (at most 5 times): each is a re-authentication (a new
 *   IKE_SA_INIT), counted.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { EdgeLink, OutboundFrame, PeerPath, SendResult } from '@ikegate/cluster';
import { DEFAULT_SHARD_BITS } from '@ikegate/cluster';
import { parseEspProposal, parseIkeProposal } from '@ikegate/config';
import { defaultProvider } from '@ikegate/crypto';
import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import type { IkeSaPolicy, TrafficSelector } from '@ikegate/ikev2';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { dialStream, IketcpStream } from '@ikegate/transport';
import { Worker } from '@ikegate/worker';

const IKE_SA_INIT = 34;
const FLAG_RESPONSE = 0x20;

export interface DrillEdge {
  readonly id: string;
  readonly address: string;
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
}

export type PeerTransport = 'udp' | 'tcp';

export interface PeersOptions {
  readonly edges: readonly DrillEdge[];
  readonly count: number;
  /** udp, tcp, or mix (odd-numbered peers UDP, even TCP). */
  readonly transport: PeerTransport | 'mix';
  readonly probeIntervalMs: number;
  readonly psk: Uint8Array;
  readonly remoteId: string;
  /** `{n}` becomes the peer number. */
  readonly idPattern: string;
  readonly setupTimeoutMs: number;
  readonly concurrency: number;
  /** Start a new SA when one is deleted (a client that restarts); default true. */
  readonly reinitiate?: boolean;
  /** The clock every instant is on (ms). */
  readonly clock?: () => number;
  readonly onEvent?: (e: PeerEvent) => void;
  /** Every IKE message a peer sends or receives (diagnostics), with whether an answer was taken. */
  readonly onIke?: (peer: number, dir: 'out' | 'in', bytes: Uint8Array, verdict?: string) => void;
}

export interface PeerEvent {
  readonly at: number;
  readonly peer: number;
  readonly what: 'sa-deleted' | 'reinitiated' | 'stream-closed' | 'reconnected' | 'reconnect-failed';
  readonly detail?: string;
}

/** What one peer saw. */
export interface PeerRecord {
  readonly n: number;
  readonly transport: PeerTransport;
  /** Index of the edge it was set up through. */
  readonly firstEdge: number;
  /** Index of the edge its traffic goes through now. */
  edge: number;
  /** The SPI of its current IKE SA (the first one unless it re-authenticated). */
  spi: string;
  readonly firstSpi: string;
  up: boolean;
  /** Instants (clock ms) of every answered probe. */
  readonly answers: number[];
  probesSent: number;
  /** The original SA was deleted or declared dead. */
  lost: boolean;
  /** New IKE SAs this peer started after the setup. */
  reauths: number;
  espSent: number;
  espUnsendable: number;
  /** Responses with the probe's message ID that our state machine did not accept. */
  rejectedAnswers: number;
  /** Responses with another message ID than the one the peer waits for. */
  staleAnswers: number;
}

interface Peer {
  record: PeerRecord;
  established: boolean;
  child: boolean;
  connection?: string;
  out?: { msgId: number; frame: OutboundFrame; sentAt: number; resentAt: number };
  lastProbeAt: number;
  lastEspAt: number;
  reinitiating: boolean;
  localAddress: Uint8Array;
}

function selector(a: number, prefix: number): TrafficSelector {
  const start = new Uint8Array(4);
  new DataView(start.buffer).setUint32(0, a >>> 0);
  const end = new Uint8Array(4);
  new DataView(end.buffer).setUint32(0, (a | (prefix === 0 ? 0xffffffff : (1 << (32 - prefix)) - 1)) >>> 0);
  return { tsType: 7, ipProtocol: 0, startPort: 0, endPort: 65535, startAddress: start, endAddress: end };
}

/** An IPv4/UDP datagram from `src` to 10.0.0.1:9 (discard) carrying `seq`; checksums filled in. */
export function probeDatagram(src: Uint8Array, seq: number): Uint8Array {
  const p = new Uint8Array(36);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set([10, 0, 0, 1], 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, 40000);
  v.setUint16(22, 9);
  v.setUint16(24, 16);
  v.setUint32(28, seq >>> 0);
  return p; // UDP checksum 0: none (allowed over IPv4)
}

/** The peers' side of the edges: one UDP socket per edge, one RFC 9329 stream per TCP SA. */
class DrillConnector implements EdgeLink {
  readonly #udp = new Map<string, UdpSocket>();
  readonly #udpPaths: PeerPath[] = [];
  readonly #streams = new Map<string, { stream: IketcpStream; edge: number }>();
  readonly #dialing = new AbortController();
  #next = 1;
  #closed = false;
  onSend: (frame: OutboundFrame, result: SendResult) => void = () => undefined;
  onStreamClosed: (connection: string) => void = () => undefined;

  constructor(
    private readonly edges: readonly DrillEdge[],
    private readonly deliver: (kind: 'ike' | 'esp', bytes: Uint8Array, path: PeerPath) => void,
  ) {}

  async openUdp(): Promise<void> {
    for (const [i, e] of this.edges.entries()) {
      const s = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, '127.0.0.1', () => {
          s.removeListener('error', reject);
          resolve();
        });
      });
      const path: PeerPath = {
        connection: `udp:${i}:${s.address().port}`,
        transport: 'udp',
        local: { address: s.address().address, port: s.address().port },
        remote: { address: e.address, port: e.natT },
      };
      s.on('message', (m, rinfo) => {
        const bytes = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
        if (rinfo.port === e.ike) return this.deliver('ike', bytes, path);
        const c = classifyUdpPayload(bytes);
        if (c.kind === 'ike') this.deliver('ike', c.message, path);
        else if (c.kind === 'esp') this.deliver('esp', c.packet, path);
      });
      s.on('error', () => undefined); // ICMP unreachable from a dead edge: the probes account for it
      this.#udp.set(path.connection, s);
      this.#udpPaths.push(path);
    }
  }

  udpPath(edge: number): PeerPath {
    const p = this.#udpPaths[edge];
    if (!p) throw new Error('openUdp() first');
    return p;
  }

  async openStream(edge: number, timeoutMs: number): Promise<PeerPath> {
    if (this.#closed) throw new Error('connector closed');
    const e = this.edges[edge]!;
    const socket = await dialStream({
      transport: 'tcp',
      host: e.address,
      port: e.tcp,
      timeoutMs,
      signal: this.#dialing.signal,
    });
    if (this.#closed) {
      socket.destroy();
      throw new Error('connector closed');
    }
    const connection = `tcp:${edge}:${this.#next++}`;
    const path: PeerPath = {
      connection,
      transport: 'tcp',
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      remote: { address: e.address, port: e.tcp },
    };
    const stream: IketcpStream = new IketcpStream(socket, {
      role: 'originator',
      onEvent: (ev) => {
        if (ev.kind === 'ike' || ev.kind === 'esp')
          return this.deliver(ev.kind, (ev.kind === 'ike' ? ev.message : ev.packet).slice(), path);
        if (ev.kind === 'close') {
          if (this.#streams.get(connection)?.stream !== stream) return;
          this.#streams.delete(connection);
          if (!this.#closed) this.onStreamClosed(connection);
        }
      },
    });
    this.#streams.set(connection, { stream, edge });
    return path;
  }

  closeStream(connection: string): void {
    const s = this.#streams.get(connection);
    this.#streams.delete(connection);
    s?.stream.close('drill_done');
  }

  send(frame: OutboundFrame): SendResult {
    const r = this.#send(frame);
    this.onSend(frame, r);
    return r;
  }

  #send(frame: OutboundFrame): SendResult {
    if (this.#closed) return 'no-connection';
    const udp = this.#udp.get(frame.path.connection);
    if (udp) {
      const edge = this.edges[Number(frame.path.connection.split(':')[1])]!;
      if (frame.kind === 'ike' && frame.bytes[18] === IKE_SA_INIT)
        udp.send(frame.bytes, edge.ike, edge.address);
      else
        udp.send(
          frame.kind === 'ike' ? encodeNonEspMarker(frame.bytes) : frame.bytes,
          edge.natT,
          edge.address,
        );
      return 'sent';
    }
    const s = this.#streams.get(frame.path.connection);
    if (!s) return 'no-connection';
    const r = frame.kind === 'ike' ? s.stream.sendIke(frame.bytes) : s.stream.sendEsp(frame.bytes);
    return r === 'closed' ? 'no-connection' : r;
  }

  close(): void {
    this.#closed = true;
    this.#dialing.abort();
    for (const s of this.#udp.values()) s.close();
    this.#udp.clear();
    for (const s of this.#streams.values()) s.stream.close('drill_done');
    this.#streams.clear();
  }
}

export interface Peers {
  readonly records: readonly PeerRecord[];
  /** Peers whose SA came up in the setup. */
  readonly established: number;
  /** Why setups failed (reason -> count). */
  readonly failures: Readonly<Record<string, number>>;
  /** Starts probing (and counting re-authentications from now on). */
  startTraffic(): void;
  /** Stops probing; the SAs stay up until `close`. */
  stopTraffic(): void;
  /** What the peers' own state machine dropped (`layer/reason` -> count). */
  drops(): Promise<Record<string, number>>;
  /** Deletes every SA (bounded wait) and closes the sockets. */
  close(): Promise<void>;
}

/** Sets up `o.count` SAs (at most `o.concurrency` at a time), then returns the running peers. */
export async function startPeers(
  o: PeersOptions,
  onSetupProgress?: (done: number, total: number) => void,
): Promise<Peers> {
  const clock = o.clock ?? (() => performance.now());
  const reinitiate = o.reinitiate ?? true;
  const log = createLogger({ level: 'silent', name: 'ikegate-drill-peers' });
  const base: IkeSaPolicy = {
    localId: '',
    ikeProposals: [parseIkeProposal('aes256gcm16-prfsha256-x25519')],
    espProposals: [parseEspProposal('aes256gcm16')],
    localTs: [selector(0, 0)],
    remoteTs: [selector(0x0a000000, 8)],
    requestVirtualIp: false,
    messageIdSync: true,
  };
  const peers: Peer[] = [];
  const bySpi = new Map<string, Peer>();
  const byConnection = new Map<string, Peer>();
  const failures: Record<string, number> = {};
  let traffic = false;
  let closing = false;
  let settled = 0;
  let resolveSetup: () => void = () => undefined;
  const setupDone = new Promise<void>((r) => (resolveSetup = r));
  const event = (p: Peer, what: PeerEvent['what'], detail?: string) =>
    o.onEvent?.({ at: clock(), peer: p.record.n, what, ...(detail ? { detail } : {}) });

  const metrics = new Metrics();
  const worker: Worker = new Worker(
    {
      provider: defaultProvider,
      policy: base,
      matchPeer: () => undefined,
      layout: { shardBits: DEFAULT_SHARD_BITS },
      ikeLifetimeSeconds: 14400,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 300,
      dpdSeconds: 0,
      observer: {
        established: (spi) => {
          const p = bySpi.get(spi);
          if (!p) return;
          p.established = true;
          maybeUp(p);
        },
        childInstalled: (c) => {
          const p = bySpi.get(c.ikeSpi);
          if (!p || !c.weInitiated) return;
          p.child = true;
          maybeUp(p);
        },
        childFailed: (spi, reason) => {
          const p = bySpi.get(spi);
          if (p && !p.record.up) failSetup(p, reason);
        },
        ikeSaDeleted: (spi, reason) => {
          const p = bySpi.get(spi);
          if (!p) return;
          bySpi.delete(spi);
          if (p.connection) {
            byConnection.delete(p.connection);
            connector.closeStream(p.connection);
            delete p.connection;
          }
          delete p.out;
          if (closing) return;
          if (!p.record.up) return failSetup(p, reason);
          p.record.up = false;
          if (spi === p.record.firstSpi) p.record.lost = true;
          event(p, 'sa-deleted', reason);
          if (traffic && reinitiate && p.record.reauths < 5 && !p.reinitiating) {
            p.reinitiating = true;
            // A restarting client waits a moment before it starts over.
            setTimeout(() => {
              p.reinitiating = false;
              if (closing || !traffic) return;
              p.record.reauths++;
              event(p, 'reinitiated');
              void initiate(p);
            }, 1000).unref();
          }
        },
      },
    },
    { send: (f) => connector.send(f) },
    log,
    metrics,
  );
  const connector = new DrillConnector(o.edges, (kind, bytes, path) => {
    if (kind !== 'ike' || bytes.length < 28 || (bytes[19]! & FLAG_RESPONSE) === 0) {
      if (kind === 'ike' && o.onIke && bytes.length >= 28) {
        const q = bySpi.get(Buffer.from(bytes.subarray(0, 8)).toString('hex'));
        if (q) o.onIke(q.record.n, 'in', bytes, 'request');
      }
      return worker.deliver({ kind, path, bytes, shard: 0 });
    }
    const p = bySpi.get(Buffer.from(bytes.subarray(0, 8)).toString('hex'));
    const msgId = new DataView(bytes.buffer, bytes.byteOffset).getUint32(20);
    const waiting = p?.out !== undefined && p.out.msgId === msgId;
    // A response to another message ID while a probe waits: the gateway answered from stale state.
    if (p?.out !== undefined && p.out.msgId !== msgId) p.record.staleAnswers++;
    worker.deliver({ kind, path, bytes, shard: 0 });
    // Answered only if our state machine took it: its request with this Message ID is no longer
    // outstanding. (Not "its last-activity instant moved": a sync request and this answer can
    // arrive within the same millisecond.)
    if (!waiting || !p?.out || p.out.msgId !== msgId) {
      if (p) o.onIke?.(p.record.n, 'in', bytes, waiting ? 'taken-meanwhile' : 'not-waited-for');
      return;
    }
    if (worker.snapshot(p.record.spi)?.state.current?.outstanding?.messageId === msgId) {
      p.record.rejectedAnswers++;
      o.onIke?.(p.record.n, 'in', bytes, 'not-accepted');
      return;
    }
    o.onIke?.(p.record.n, 'in', bytes, 'answer');
    delete p.out;
    if (traffic && p.record.up) p.record.answers.push(clock());
  });
  connector.onSend = (f, result) => {
    if (f.kind === 'esp' || f.bytes.length < 28 || (f.bytes[19]! & FLAG_RESPONSE) !== 0) return;
    if (f.bytes[18] === IKE_SA_INIT) return;
    const spi = Buffer.from(f.bytes.subarray(0, 8)).toString('hex');
    const p = bySpi.get(spi);
    if (p) o.onIke?.(p.record.n, 'out', f.bytes, result);
    if (!p || result !== 'sent') return;
    const msgId = new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(20);
    const now = clock();
    if (p.out?.msgId === msgId) p.out.resentAt = now;
    else p.out = { msgId, frame: f, sentAt: now, resentAt: now };
  };
  connector.onStreamClosed = (connection) => {
    const p = byConnection.get(connection);
    if (!p) return;
    byConnection.delete(connection);
    delete p.connection;
    if (closing) return;
    if (!p.record.up) return failSetup(p, 'connection-closed');
    event(p, 'stream-closed', o.edges[p.record.edge]?.id);
    void reconnect(p);
  };
  await connector.openUdp();

  /** RFC 9329 §6: the initiator reconnects (the next edge first) and resumes the same IKE SA. */
  async function reconnect(p: Peer): Promise<void> {
    const n = o.edges.length;
    for (let attempt = 0; attempt < 3 * n && !closing; attempt++) {
      const edge = (p.record.edge + 1 + attempt) % n;
      try {
        const path = await connector.openStream(edge, 2000);
        if (closing || !bySpi.has(p.record.spi)) return connector.closeStream(path.connection);
        p.record.edge = edge;
        p.connection = path.connection;
        byConnection.set(path.connection, p);
        delete p.out; // restore() sends what was outstanding again; the hook records it
        worker.restore(p.record.spi, path);
        event(p, 'reconnected', o.edges[edge]!.id);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    event(p, 'reconnect-failed');
  }

  function failSetup(p: Peer, reason: string): void {
    if (p.record.up || traffic) return;
    failures[reason] = (failures[reason] ?? 0) + 1;
    settle();
  }
  function maybeUp(p: Peer): void {
    if (p.record.up || !p.established || !p.child) return;
    p.record.up = true;
    if (!traffic) settle();
  }
  function settle(): void {
    settled++;
    onSetupProgress?.(settled, o.count);
    if (settled >= o.count) resolveSetup();
    else queueMicrotask(pump);
  }

  async function initiate(p: Peer): Promise<void> {
    p.established = false;
    p.child = false;
    let path: PeerPath;
    if (p.record.transport === 'udp') path = connector.udpPath(p.record.edge);
    else {
      try {
        path = await connector.openStream(p.record.edge, o.setupTimeoutMs);
      } catch (e) {
        if (!traffic) failSetup(p, 'connect-failed');
        else event(p, 'reconnect-failed', String(e));
        return;
      }
    }
    const n = p.record.n;
    const spi = worker.initiate({
      policy: {
        ...base,
        localId: o.idPattern.replaceAll('{n}', String(n)),
        localIdType: o.idPattern.includes('@') ? 3 : 2,
        localTs: [selector(new DataView(p.localAddress.buffer).getUint32(0), 32)],
      },
      psk: o.psk,
      remoteId: o.remoteId,
      path,
    });
    p.record.spi = spi;
    bySpi.set(spi, p);
    if (path.transport !== 'udp') {
      p.connection = path.connection;
      byConnection.set(path.connection, p);
    }
  }

  for (let n = 1; n <= o.count; n++) {
    const transport: PeerTransport = o.transport === 'mix' ? (n % 2 === 1 ? 'udp' : 'tcp') : o.transport;
    const localAddress = new Uint8Array([100, 64 + (n >> 16), (n >> 8) & 0xff, n & 0xff]);
    // Mixed: each edge gets UDP and TCP peers alike (peers 1, 2 on the first edge, 3, 4 on the next).
    const edge = Math.floor((n - 1) / (o.transport === 'mix' ? 2 : 1)) % o.edges.length;
    peers.push({
      record: {
        n,
        transport,
        firstEdge: edge,
        edge,
        spi: '',
        firstSpi: '',
        up: false,
        answers: [],
        probesSent: 0,
        lost: false,
        reauths: 0,
        espSent: 0,
        espUnsendable: 0,
        rejectedAnswers: 0,
        staleAnswers: 0,
      },
      established: false,
      child: false,
      lastProbeAt: 0,
      lastEspAt: 0,
      reinitiating: false,
      localAddress,
    });
  }
  let next = 0;
  let inFlight = 0;
  function pump(): void {
    while (next < peers.length && inFlight - settled < o.concurrency) {
      const p = peers[next++]!;
      inFlight++;
      void initiate(p);
    }
  }
  const setupTimer = setTimeout(() => {
    for (const p of peers) if (!p.record.up && p.record.spi) worker.command(p.record.spi, 'delete');
    failures.timeout = o.count - settled;
    resolveSetup();
  }, o.setupTimeoutMs);
  pump();
  await setupDone;
  clearTimeout(setupTimer);
  for (const p of peers) (p.record as { firstSpi: string }).firstSpi = p.record.spi;

  let seq = 0;
  let ticker: NodeJS.Timeout | undefined;
  const tick = () => {
    const now = clock();
    for (const p of peers) {
      if (!p.record.up) continue;
      // ESP flows whatever the probes do.
      if (now - p.lastEspAt >= o.probeIntervalMs) {
        p.lastEspAt = now;
        const before = p.record.espSent;
        countEsp = p;
        worker.fromDevice(probeDatagram(p.localAddress, ++seq));
        countEsp = undefined;
        if (p.record.espSent === before) p.record.espUnsendable++;
      }
      if (p.out) {
        // Unanswered: over UDP the same octets again each interval (a retransmission).
        if (p.record.transport === 'udp' && now - p.out.resentAt >= o.probeIntervalMs) {
          p.out.resentAt = now;
          connector.send(p.out.frame);
        }
        continue;
      }
      if (now - p.lastProbeAt < o.probeIntervalMs) continue;
      p.lastProbeAt = now;
      if (worker.command(p.record.spi, 'liveness')) p.record.probesSent++;
    }
  };
  let countEsp: Peer | undefined;
  const onSend = connector.onSend;
  connector.onSend = (f, result) => {
    if (f.kind === 'esp' && countEsp && result === 'sent') countEsp.record.espSent++;
    onSend(f, result);
  };

  const records = peers.map((p) => p.record);
  return {
    records,
    established: records.filter((r) => r.up).length,
    failures,
    startTraffic() {
      if (traffic) return;
      traffic = true;
      const t = clock();
      // Spread the probes over the interval.
      for (const [i, p] of peers.entries())
        p.lastProbeAt = p.lastEspAt = t - (i / peers.length) * o.probeIntervalMs;
      ticker = setInterval(tick, Math.max(5, Math.floor(o.probeIntervalMs / 5)));
    },
    stopTraffic() {
      traffic = false;
      clearInterval(ticker);
    },
    async drops() {
      const out: Record<string, number> = {};
      for (const v of (await metrics.drops.get()).values) {
        const k = `${String(v.labels.layer)}/${String(v.labels.reason)}`;
        if (v.value > 0) out[k] = (out[k] ?? 0) + v.value;
      }
      return out;
    },
    async close() {
      traffic = false;
      clearInterval(ticker);
      closing = true;
      for (const p of peers) if (bySpi.has(p.record.spi)) worker.command(p.record.spi, 'delete');
      const until = Date.now() + 3000;
      while (bySpi.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      connector.close();
      const keepAlive = setInterval(() => undefined, 1000);
      await worker.close(0);
      clearInterval(keepAlive);
    },
  };
}

/** New IKE SAs the peers started after the setup (re-authentications), from the INITs sent. */
export function countReauths(records: readonly PeerRecord[]): number {
  return records.reduce((n, r) => n + r.reauths, 0);
}
