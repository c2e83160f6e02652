/**
 * `ikegate connect`: the initiator client. The same Worker as the gateway runs IKEv2 and ESP; a
 * Connector stands where the edge stands on a gateway and carries frames over one of:
 *
 * - UDP: IKE_SA_INIT to the server's port 500, then IKE (behind the non-ESP marker) and ESP on
 *   4500 (RFC 7296 §2.23, RFC 3948). We always encapsulate: userspace ESP has no raw protocol 50.
 * - TCP: RFC 9329 — "IKETCP" prefix, then length-framed IKE and ESP on one stream.
 * - TLS: the same stream inside TLS (RFC 9329 §8), server verified against a CA unless --insecure.
 *
 * `--transport auto` (the default) starts on UDP and falls back to TCP when IKE_SA_INIT gets no
 * answer (RFC 9329 §5's "try UDP first" advice). A closed TCP/TLS stream is reopened by us, the
 * initiator, and every outstanding request is sent again on it (RFC 9329 §6). Liveness checks
 * (RFC 7296 §2.4) run after `--dpd` seconds without traffic; a dead peer or a deleted SA starts a
 * new IKE SA after a back-off, until the process is stopped.
 *
 * With a TUN device (default; needs root) the virtual IP from the server (CFG_REPLY) goes on it
 * and the server's traffic selectors are routed through it.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { isIP, isIPv4, type Socket, SocketAddress } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { EdgeLink, OutboundFrame, PeerPath, SendResult } from '@ikegate/cluster';
import { DEFAULT_SHARD_BITS } from '@ikegate/cluster';
import { parseEspProposal, parseIkeProposal, parseCidr } from '@ikegate/config';
import { defaultProvider } from '@ikegate/crypto';
import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import type { TrafficSelector } from '@ikegate/ikev2';
import { createLogger, type Logger, Metrics } from '@ikegate/telemetry';
import { DEFAULT_UDP_RECEIVE_BUFFER, dialStream, IketcpStream, NodeUdpBind } from '@ikegate/transport';
import { addRoute, reexecWithTun, TunDevice } from '@ikegate/tun';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Worker } from '@ikegate/worker';
import { allocatorEnv, loadedAllocator } from './allocator.js';
import { followTunCounters } from './host-network.js';
import { type MetricsListener, serveMetrics } from './metrics-http.js';

const run = promisify(execFile);

export type ConnectTransport = 'udp' | 'tcp' | 'tls' | 'auto';

export interface ConnectOptions {
  readonly server: string;
  /** Other stream endpoints (e.g. the cluster's other edges) tried when the server is unreachable. */
  readonly alternates?: readonly { readonly host: string; readonly port: number }[];
  readonly transport: ConnectTransport;
  /** Server ports: IKE (500), NAT-T (4500), TCP (4500), TLS (443). */
  readonly ports: { readonly ike: number; readonly natT: number; readonly tcp: number; readonly tls: number };
  readonly id: string;
  readonly remoteId: string;
  readonly psk: Uint8Array;
  /** The server-side networks to reach (TSr); default 0.0.0.0/0. */
  readonly remoteTs: readonly string[];
  readonly ike: readonly string[];
  readonly esp: readonly string[];
  readonly tun?: string;
  /** Ask for a virtual IP (CFG_REQUEST, RFC 7296 §3.15); default true. */
  readonly requestVirtualIp?: boolean;
  readonly insecure?: boolean;
  readonly ca?: string;
  readonly keylog?: string;
  readonly dpdSeconds: number;
  /** Seconds of UDP IKE_SA_INIT retransmissions before `auto` falls back to TCP. */
  readonly udpFallbackSeconds: number;
  readonly logLevel: string;
  /** Serve Prometheus metrics (GET /metrics) here; none when absent. */
  readonly metricsListen?: { readonly host: string; readonly port: number };
}

const EXCHANGE_IKE_SA_INIT = 34;

function selector(cidr: string): TrafficSelector {
  const c = parseCidr(cidr, true);
  if (typeof c === 'string') throw new Error(`--ts ${cidr}: ${c}`);
  const start = Buffer.from(c.address).readUInt32BE(0);
  const end = (start | (c.prefix === 0 ? 0xffffffff : (1 << (32 - c.prefix)) - 1)) >>> 0;
  const endAddress = new Uint8Array(4);
  new DataView(endAddress.buffer).setUint32(0, end);
  return { tsType: 7, ipProtocol: 0, startPort: 0, endPort: 65535, startAddress: c.address, endAddress };
}

/** How long a TCP connect plus TLS handshake to one server may take. */
const DIAL_TIMEOUT_MS = 10_000;
/**
 * The same with alternates to try (issue #11): a dead edge must not hold the reconnect for 10 s
 * when another one answers; a whole round of candidates is still bounded.
 */
const ALTERNATE_DIAL_TIMEOUT_MS = 2_000;

/**
 * Carries frames between the Worker and the server over UDP, or over one RFC 9329 stream (an
 * IketcpStream, originator) on TCP or TLS. close() also gives up a dial in progress.
 */
class Connector implements EdgeLink {
  /**
   * The UDP socket (NodeUdpBind: the native batched path where built, else dgram), bound to the
   * wildcard. Not connected: a datagram from anywhere but the server's IKE and NAT-T ports is
   * dropped and counted (`foreignDatagrams`), as a socket connected to the server would have had
   * the kernel do.
   */
  #udp: NodeUdpBind | undefined;
  /** The server's address as the kernel writes it (SocketAddress normalises IPv6), when numeric. */
  readonly #serverAddress: string | undefined;
  /** Datagrams from anywhere but the server's IKE and NAT-T ports, dropped (a numeric server only). */
  foreignDatagrams = 0;
  #stream: IketcpStream | undefined;
  #path: PeerPath | undefined;
  #generation = 0;
  #current = 0;
  /** The stream to `#current` ended: start the next dial with the candidate after it. */
  #rotate = false;
  /** Aborts the dial in progress, if any (close() and a newer open() do). */
  #dialing: AbortController | undefined;
  onStreamClosed: (() => void) | undefined;

  constructor(
    private readonly o: ConnectOptions,
    private readonly server: string,
    private readonly log: Logger,
    private readonly deliver: (kind: 'ike' | 'esp', bytes: Uint8Array, path: PeerPath) => void,
  ) {
    const family = isIP(server);
    this.#serverAddress =
      family === 0
        ? undefined
        : new SocketAddress({ address: server, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
  }

  get path(): PeerPath | undefined {
    return this.#path;
  }

  async open(transport: 'udp' | 'tcp' | 'tls'): Promise<PeerPath> {
    this.close();
    const gen = ++this.#generation;
    if (transport === 'udp') {
      // A pause of the event loop must not overflow the kernel's default ~75 datagrams (issue #14).
      const udp = new NodeUdpBind(isIPv4(this.server) ? '0.0.0.0' : '::', 0, DEFAULT_UDP_RECEIVE_BUFFER);
      // Set once the bind has its port; nothing is delivered before (nothing was sent yet either).
      const opened: { path?: PeerPath } = {};
      const local = await udp.open((bytes, address, port) => {
        const path = opened.path;
        if (path === undefined) return;
        if (
          this.#serverAddress !== undefined &&
          (address !== this.#serverAddress || (port !== this.o.ports.ike && port !== this.o.ports.natT))
        ) {
          this.foreignDatagrams++;
          return;
        }
        // A fresh buffer per read, never reused by the bind: the Worker may keep what it is given.
        if (port === this.o.ports.ike) return this.deliver('ike', bytes, path);
        const c = classifyUdpPayload(bytes);
        if (c.kind === 'ike') this.deliver('ike', c.message, path);
        else if (c.kind === 'esp') this.deliver('esp', c.packet, path);
      });
      if (gen !== this.#generation) {
        await udp.close(); // closed (or reopened) while this one was binding
        throw new Error('connector closed');
      }
      this.#udp = udp;
      const path: PeerPath = {
        connection: `udp:${local.port}`,
        transport: 'udp',
        local,
        remote: { address: this.server, port: this.o.ports.natT },
      };
      opened.path = path;
      this.#path = path;
      return path;
    }
    // The server, then any alternates (other edges of the same cluster), starting with the last
    // one that worked: RFC 9329 §6 lets the initiator reconnect to whichever address it can reach.
    const candidates = [
      { host: this.server, port: transport === 'tls' ? this.o.ports.tls : this.o.ports.tcp },
      ...(this.o.alternates ?? []),
    ];
    const dialing = new AbortController();
    this.#dialing = dialing;
    let socket: Socket | undefined;
    let host = this.server;
    let port = candidates[0]!.port;
    let lastError: Error | undefined;
    // After a stream ended, the edge it ran through is likely gone: try the others first.
    const start = this.#rotate && candidates.length > 1 ? this.#current + 1 : this.#current;
    this.#rotate = false;
    const timeoutMs = candidates.length > 1 ? ALTERNATE_DIAL_TIMEOUT_MS : DIAL_TIMEOUT_MS;
    for (let i = 0; i < candidates.length && !socket && !dialing.signal.aborted; i++) {
      const c = candidates[(start + i) % candidates.length]!;
      try {
        socket = await dialStream({
          transport,
          host: c.host,
          port: c.port,
          timeoutMs,
          signal: dialing.signal,
          tls: {
            rejectUnauthorized: !this.o.insecure,
            ...(this.o.ca ? { ca: readFileSync(this.o.ca) } : {}),
            ...(this.o.keylog ? { onKeylog: keylogTo(this.o.keylog) } : {}),
          },
        });
        this.#current = (start + i) % candidates.length;
        host = c.host;
        port = c.port;
      } catch (e) {
        lastError = e as Error;
        if (!dialing.signal.aborted)
          this.log.warn({ server: `${c.host}:${c.port}`, err: lastError.message }, 'dial-failed');
      }
    }
    if (this.#dialing === dialing) this.#dialing = undefined;
    if (socket && gen !== this.#generation) {
      socket.destroy(); // closed (or reopened) while this dial was finishing
      socket = undefined;
    }
    if (!socket) throw lastError ?? new Error('connector closed');
    const path: PeerPath = {
      connection: `${transport}:${gen}`,
      transport,
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      remote: { address: host, port },
    };
    // RFC 9329 §4: the initiator sends the prefix once, first; then frames both ways.
    const stream: IketcpStream = new IketcpStream(socket, {
      role: 'originator',
      onEvent: (e) => {
        switch (e.kind) {
          case 'ike':
          case 'esp':
            // Copied: the Worker may keep it past this call.
            return this.deliver(e.kind, (e.kind === 'ike' ? e.message : e.packet).slice(), path);
          case 'close':
            if (e.origin === 'protocol') this.log.warn({ reason: e.reason }, 'stream-protocol-error');
            if (this.#stream !== stream) return; // closed by us (close() or a newer open())
            this.log.warn({ transport, reason: e.reason }, 'stream-closed');
            this.#stream = undefined;
            this.#rotate = true;
            this.onStreamClosed?.();
            return;
          case 'keepalive':
          case 'drop':
            return;
        }
      },
    });
    this.#stream = stream;
    this.#path = path;
    this.log.info({ transport, server: `${host}:${port}` }, 'connected');
    return path;
  }

  send(frame: OutboundFrame): SendResult {
    const udp = this.#udp;
    if (udp) {
      // IKE_SA_INIT on 500; everything after on 4500 (IKE behind the non-ESP marker).
      if (frame.kind === 'ike' && frame.bytes[18] === EXCHANGE_IKE_SA_INIT) {
        udp.send(frame.bytes, this.server, this.o.ports.ike);
        return 'sent';
      }
      if (frame.kind === 'esp') udp.sendCoalesced(frame.bytes, this.server, this.o.ports.natT);
      else udp.send(encodeNonEspMarker(frame.bytes), this.server, this.o.ports.natT);
      return 'sent';
    }
    const s = this.#stream;
    if (!s) return 'no-connection';
    const r =
      frame.kind === 'ike'
        ? s.sendIke(
            frame.bytes,
            frame.closeAfter !== undefined ? { closeAfter: frame.closeAfter } : undefined,
          )
        : s.sendEsp(frame.bytes);
    return r === 'closed' ? 'no-connection' : r;
  }

  /**
   * Over a stream (IketcpStream.sendEsp copies the packet), and over the batched UDP path (the
   * kernel has the datagram when send returns); not over dgram, which keeps it until sent.
   */
  espCopied(): boolean {
    return this.#udp !== undefined ? this.#udp.sendsCopy : this.#stream !== undefined;
  }

  espCongested(_path: PeerPath, espLength: number): boolean {
    return this.#stream?.espCongested(espLength) ?? false;
  }

  /** The kernel's drops at the UDP sockets closed so far (each reconnect opens a new one). */
  #udpDropsClosed = 0;

  /**
   * The kernel's drops (a full receive buffer) at every UDP socket this connector has had: those
   * closed, then the current one's. Never goes back, so a reconnect's fresh socket does not hide
   * the old one's count. Undefined while the current socket's row cannot be read.
   */
  udpDrops(): number | undefined {
    if (!this.#udp) return this.#udpDropsClosed;
    const now = this.#udp.stats()?.drops;
    return now === undefined ? undefined : this.#udpDropsClosed + now;
  }

  /** Datagrams the batched path refused to send, over every UDP socket this connector has had. */
  #udpSendErrorsClosed = 0;
  udpSendErrors(): number {
    return this.#udpSendErrorsClosed + (this.#udp?.stats()?.sendErrors ?? 0);
  }

  /** Closes the UDP socket or the stream, and gives up a dial in progress. */
  close(): void {
    this.#generation++;
    this.#dialing?.abort();
    this.#dialing = undefined;
    const last = this.#udp?.stats(); // one read of /proc for both counts
    this.#udpDropsClosed += last?.drops ?? 0;
    this.#udpSendErrorsClosed += last?.sendErrors ?? 0;
    void this.#udp?.close();
    this.#udp = undefined;
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.close('client_closed');
  }
}

function keylogTo(file: string): (line: Buffer) => void {
  return (line) => appendFileSync(file, line);
}

export interface ConnectHandle {
  /**
   * The first connection attempt was made. It resolves whether or not the server answered (later
   * attempts follow by themselves); it rejects only on a local error. The handle exists before it,
   * so a stop (SIGTERM) is handled while a dial or IKE_SA_INIT is still waiting for the server.
   */
  readonly started: Promise<void>;
  /**
   * DELETE to the server (when an SA is up, 1 s grace), then closes the connection, gives up a dial
   * in progress and closes the TUN device in a way that lets the process exit (see closeTun).
   */
  stop(): Promise<void>;
}

export async function connect(o: ConnectOptions): Promise<ConnectHandle | undefined> {
  const log = createLogger({ level: o.logLevel, name: 'ikegate-connect' });
  // Parsed first: a bad --ike, --esp or --ts throws before anything is opened (TUN, metrics port).
  const policy = {
    localId: o.id,
    localIdType: o.id.includes('@') ? 3 : 2,
    ikeProposals: o.ike.map(parseIkeProposal),
    espProposals: o.esp.map(parseEspProposal),
    localTs: [selector('0.0.0.0/0')],
    remoteTs: o.remoteTs.map(selector),
    requestVirtualIp: o.requestVirtualIp ?? true,
    messageIdSync: true,
    replayCounterSync: true,
  };
  let device: TunDevice | undefined;
  if (o.tun) {
    const r = await reexecWithTun([o.tun], { childEnv: allocatorEnv() });
    if (r.role === 'parent') return undefined;
    device = TunDevice.fromReexec(o.tun, r);
  }
  const server = isIPv4(o.server) ? o.server : (await lookup(o.server, { family: 4 })).address;
  const metrics = new Metrics({ role: 'connect' });
  // Before the first dial, so a listen error (port taken) ends the command before any traffic.
  const metricsListener: MetricsListener | undefined = o.metricsListen
    ? await serveMetrics(metrics, o.metricsListen, log)
    : undefined;
  let currentSpi = '';
  let stopping = false;
  let configuredVip: string | undefined;
  let established = false;
  let retryDelayMs = 1000;

  const worker = new Worker(
    {
      provider: defaultProvider,
      policy,
      matchPeer: () => undefined,
      layout: { shardBits: DEFAULT_SHARD_BITS },
      ikeLifetimeSeconds: 14400,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 300,
      dpdSeconds: o.dpdSeconds,
      observer: {
        established: (spi) => {
          established = true;
          retryDelayMs = 1000;
          currentSpi = spi;
        },
        childInstalled: (c) => {
          void configureTun(c.virtualIp, c.tsRemote);
        },
        // The gateway refused our child SA: with nothing to route through, an IKE SA alone is
        // useless, and retrying will not help (an empty pool, our selectors refused). Say why, exit.
        childFailed: (spi, reason, notify) => {
          log.error({ spi, reason, notify }, `giving up: ${childFailure(notify, reason)}`);
          void giveUp(3);
        },
        ikeSaDeleted: (_spi, reason) => {
          established = false;
          if (stopping) return;
          log.warn({ reason, retryInMs: retryDelayMs }, 'reconnecting');
          setTimeout(() => void start(o.transport), retryDelayMs).unref();
          retryDelayMs = Math.min(retryDelayMs * 2, 30_000);
        },
      },
    },
    { send: (f) => connector.send(f) },
    log.child({ role: 'worker' }),
    metrics,
  );
  const connector = new Connector(o, server, log, (kind, bytes, path) =>
    worker.deliver({ kind, path, bytes, shard: 0 }),
  );

  async function configureTun(vip: string | undefined, ts: readonly { start: number; end: number }[]) {
    if (!device || !o.tun) return;
    try {
      if (vip && vip !== configuredVip) {
        await run('ip', ['addr', 'replace', `${vip}/32`, 'dev', o.tun]);
        await run('ip', ['link', 'set', 'dev', o.tun, 'mtu', '1400', 'up']);
        configuredVip = vip;
      }
      for (const r of ts) {
        const cidr = rangeCidr(r.start, r.end);
        if (cidr && cidr !== '0.0.0.0/0') await addRoute(cidr, o.tun);
      }
      log.info({ device: o.tun, virtualIp: configuredVip }, 'tun-configured');
    } catch (e) {
      log.error({ err: (e as Error).message }, 'tun-configure-failed');
    }
  }

  let fellBack = false;
  async function start(transport: ConnectTransport): Promise<void> {
    if (stopping) return;
    const t = transport === 'auto' ? (fellBack ? 'tcp' : 'udp') : transport;
    let path: PeerPath;
    try {
      path = await connector.open(t);
    } catch (e) {
      if (stopping) return; // the dial was given up by stop()
      log.warn({ err: (e as Error).message, transport: t }, 'connect-failed');
      setTimeout(() => void start(transport), retryDelayMs).unref();
      retryDelayMs = Math.min(retryDelayMs * 2, 30_000);
      return;
    }
    if (stopping) return;
    const spi = worker.initiate({
      policy,
      psk: o.psk,
      remoteId: o.remoteId,
      path,
    });
    currentSpi = spi;
    log.info({ spi, transport: t, server, allocator: loadedAllocator() }, 'initiating');
    if (transport === 'auto' && t === 'udp') {
      setTimeout(() => {
        if (!established && currentSpi === spi && !stopping) {
          log.warn({ afterSeconds: o.udpFallbackSeconds }, 'udp-unanswered-falling-back-to-tcp');
          fellBack = true;
          worker.command(spi, 'delete');
        }
      }, o.udpFallbackSeconds * 1000).unref();
    }
  }

  connector.onStreamClosed = () => {
    if (stopping) return;
    // RFC 9329 §6: the initiator reconnects and retransmits what is outstanding.
    const spi = currentSpi;
    setTimeout(async () => {
      if (stopping) return;
      try {
        const path = await connector.open(connector.path?.transport === 'tls' ? 'tls' : 'tcp');
        if (!worker.restore(spi, path)) void start(o.transport);
        else {
          // Tell the responder where we are now: an authenticated message on the new stream moves
          // its SA there (RFC 9329 §6), even when no request was outstanding to retransmit.
          worker.command(spi, 'liveness');
          log.info({ spi }, 'stream-restored');
        }
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'reconnect-failed');
        connector.onStreamClosed?.();
      }
    }, 500).unref();
  };

  // The kernel's drops at our UDP socket, as `ikegate up` counts them at its own.
  metrics.follow(metrics.drops, ['udp', 'receive_buffer_full'], () => connector.udpDrops());
  metrics.follow(metrics.drops, ['udp', 'foreign_source'], () => connector.foreignDatagrams);
  metrics.follow(metrics.drops, ['udp', 'send_failed'], () => connector.udpSendErrors());
  if (device) {
    const d = device;
    followTunCounters(metrics, d);
    worker.attachDevice({ write: (p) => d.write(p) });
    d.start((p) => worker.fromDevice(p));
  }
  const keepAlive = setInterval(() => undefined, 1 << 30);
  // Not awaited here: the caller gets the handle (and can stop) while the first attempt waits.
  const started = start(o.transport);
  const handle: ConnectHandle = {
    started,
    async stop() {
      stopping = true;
      await worker.close(1000);
      connector.close();
      await metricsListener?.close();
      if (device && o.tun) await closeTun(device, o.tun, log);
      clearInterval(keepAlive);
      log.info({}, 'disconnected');
    },
  };
  async function giveUp(code: number): Promise<void> {
    if (stopping) return;
    await handle.stop();
    process.exit(code);
  }
  return handle;
}

/** Why the gateway refused our child SA, for an operator (RFC 7296 §3.10.1 error notifies). */
function childFailure(notify: number | undefined, reason: string): string {
  switch (notify) {
    case 36:
      return 'the gateway has no virtual IP left in its pool (INTERNAL_ADDRESS_FAILURE, RFC 7296 §3.15.4)';
    case 37:
      return 'the gateway requires a configuration request (FAILED_CP_REQUIRED)';
    case 38:
      return 'the gateway refused our traffic selectors (TS_UNACCEPTABLE); check --ts';
    case 14:
      return 'no ESP proposal in common with the gateway (NO_PROPOSAL_CHOSEN); check --esp';
    default:
      return `the gateway created no child SA (${notify !== undefined ? `notify ${notify}` : reason})`;
  }
}

/** `ip ARGS`, bounded, failures ignored (the caller checks the outcome another way). */
async function ipQuiet(args: string[]): Promise<void> {
  await run('ip', args, { timeout: 2_000 }).catch(() => undefined);
}

/** Whether `p` settled within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const done = await Promise.race([p.then(() => true), timeout]);
  clearTimeout(timer);
  return done;
}

/**
 * Closes the TUN device so that the process can exit. Its reader thread sits in read(2), and only
 * a packet through the device ends that read (libs/tun device.ts): close() sends one through the
 * device's waker, but a link that is down transmits nothing, and a TUN that never came up (no
 * CHILD SA yet, so never configured) is down. Node's exit waits for that thread, so such a process
 * ignored SIGTERM for good. Hence: link up, close, wait (bounded) for the reader to end; if it has
 * not, delete the link, which ends the read too; if even that fails, exiting would hang, so the
 * process kills itself.
 */
async function closeTun(device: TunDevice, name: string, log: Logger): Promise<void> {
  await ipQuiet(['link', 'set', 'dev', name, 'up']);
  device.close();
  if (await within(device.stopped, 2_000)) return;
  log.warn({ device: name }, 'tun-reader-blocked-deleting-link');
  await ipQuiet(['link', 'del', 'dev', name]);
  if (await within(device.stopped, 2_000)) return;
  log.error({ device: name }, 'tun-reader-did-not-stop');
  process.kill(process.pid, 'SIGKILL');
}

function rangeCidr(start: number, end: number): string | undefined {
  const size = end - start + 1;
  const bits = 32 - Math.log2(size);
  if (!Number.isInteger(bits)) return undefined;
  return `${start >>> 24}.${(start >>> 16) & 255}.${(start >>> 8) & 255}.${start & 255}/${bits}`;
}
