/**
 * A peer built from ikegate's protocol core only, for interop tests (see core-responder.ts and
 * core-initiator.ts): libs/ikev2's state machine on UDP 500/4500 (RFC 3948 non-ESP marker on
 * 4500), libs/esp for the child SAs, ICMP echo answered or sent through the tunnel, and one JSON
 * line on stdout per event. A test harness, not the product's worker (issue #4 builds that).
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { defaultProvider, EncryptionId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import { classifyUdpPayload, encodeNonEspMarker, espSuite, InboundSa, OutboundSa } from '@ikegate/esp';
import {
  type EndpointOutput,
  IkeEndpoint,
  type IkePath,
  type IkeSaCommand,
  type IkeSaContext,
  type SaEntry,
} from '@ikegate/ikev2';
import { echoReply, echoRequest, parseEchoReply, parseEchoRequest } from './icmp.js';

export interface Config {
  local: string;
  psk: string;
  localId: string;
  localTs: string;
  remoteTs: string;
}
export const cfg = JSON.parse(process.env.IKEGATE_INTEROP ?? '{}') as Config & {
  /** Certificate authentication instead of PSK: our chain (PEM), our key (PEM), the trust anchor. */
  cert?: string;
  key?: string;
  ca?: string;
  /** RFC 7383 fragment size for our protected messages over UDP. */
  fragmentSize?: number;
  remote?: string;
  localInner?: string;
  remoteInner?: string;
};
/** Every event so far (the initiator script waits on them), also printed as JSON lines. */
export const events: { event: string; [k: string]: unknown }[] = [];
export const log = (event: string, fields: Record<string, unknown> = {}): void => {
  events.push({ event, ...fields });
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
};

/** Resolves when `event` has been logged `n` times; rejects after `timeoutMs`. */
export async function waitFor(event: string, n = 1, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (events.filter((e) => e.event === event).length < n) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${event} x${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const addr4 = (s: string) => Uint8Array.from(s.split('.').map(Number));

function cidrSelector(cidr: string) {
  const [a = '', bits = '32'] = cidr.split('/');
  const n =
    (Buffer.from(addr4(a)).readUInt32BE(0) & (Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0)) >>>
    0;
  const end = (n | (Number(bits) === 32 ? 0 : (1 << (32 - Number(bits))) - 1)) >>> 0;
  const s = new Uint8Array(4);
  const e = new Uint8Array(4);
  new DataView(s.buffer).setUint32(0, n);
  new DataView(e.buffer).setUint32(0, end);
  return { tsType: 7, ipProtocol: 0, startPort: 0, endPort: 65535, startAddress: s, endAddress: e };
}

/** One IKE SA of this process (the initiator's, or one strongSwan started). */
export interface Peer {
  readonly sa: SaEntry<undefined>;
}

/** Every IKE SA of the process sits in one endpoint (libs/ikev2): demultiplexing, deadlines. */
export const endpoint = new IkeEndpoint<undefined>({
  provider: defaultProvider,
  random: (n) => new Uint8Array(randomBytes(n)),
  policy: context().policy,
  ikeSpi: () => new Uint8Array(randomBytes(8)),
  responderContext: () => context(),
});
export const inbound = new Map<number, { sa: InboundSa; out: OutboundSa; peer: Peer }>();
export const natT = createSocket('udp4');
export const ike = createSocket('udp4');
/** Initiator: move IKE to UDP 4500 after IKE_SA_INIT, as RFC 7296 §2.23 allows and strongSwan does. */
let float = false;
let timer: NodeJS.Timeout | undefined;

export function context(): IkeSaContext {
  return {
    provider: defaultProvider,
    random: (n) => new Uint8Array(randomBytes(n)),
    allocateIkeSpi: () => new Uint8Array(randomBytes(8)),
    allocateChildSpi: () => {
      const b = new Uint8Array(randomBytes(4));
      b[0] = (b[0]! | 0x10) & 0x7f;
      return b;
    },
    policy: {
      localId: cfg.localId,
      ikeProposals: [
        {
          encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
          prf: [PrfId.HMAC_SHA2_256],
          keyExchange: [KeyExchangeId.CURVE25519, KeyExchangeId.ECP_256],
        },
      ],
      espProposals: [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], esn: [false] }],
      localTs: [cidrSelector(cfg.localTs)],
      remoteTs: [cidrSelector(cfg.remoteTs)],
      messageIdSync: true,
      ...(cfg.fragmentSize ? { fragmentSize: cfg.fragmentSize } : {}),
    },
    psk: () => (cfg.psk ? new TextEncoder().encode(cfg.psk) : undefined),
    ...(cfg.cert
      ? {
          certificate: {
            chainPem: readFileSync(cfg.cert, 'utf8'),
            privateKey: createPrivateKey(readFileSync(cfg.key ?? '', 'utf8')),
          },
          trustAnchors: [new X509Certificate(readFileSync(cfg.ca ?? ''))],
          now: Date.now(),
        }
      : {}),
  };
}

function pathOf(rinfo: RemoteInfo, localPort: number): IkePath {
  return {
    id: `udp:${localPort}:${rinfo.address}:${rinfo.port}`,
    transport: 'udp',
    local: { address: addr4(cfg.local), port: localPort },
    remote: { address: addr4(rinfo.address), port: rinfo.port },
  };
}

function transmit(path: IkePath, bytes: Uint8Array): void {
  const remote = [...path.remote.address].join('.');
  // After IKE_SA_INIT an initiator floats to 4500 (IKE behind the non-ESP marker).
  if (path.local.port === 4500 || (float && bytes[18] !== 34)) {
    natT.send(encodeNonEspMarker(bytes), float && path.local.port !== 4500 ? 4500 : path.remote.port, remote);
  } else ike.send(bytes, path.remote.port, remote);
}

function run(out: readonly EndpointOutput<undefined>[]): void {
  for (const o of out) {
    if (o.kind === 'transmit') {
      transmit(o.path, o.bytes);
      continue;
    }
    if (o.kind !== 'sa-action') {
      log(o.kind === 'rejected' ? 'rejected' : 'dropped', {
        reason: o.kind === 'lenient' ? 'lenient' : o.reason,
      });
      continue;
    }
    const a = o.action;
    const peer: Peer = { sa: o.sa };
    switch (a.kind) {
      case 'install-child': {
        const inKeys = a.weInitiated ? a.keys.encrR : a.keys.encrI;
        const outKeys = a.weInitiated ? a.keys.encrI : a.keys.encrR;
        const alg = { encryption: a.encryption.id, keyBits: a.encryption.keyBits };
        const inSpi = Buffer.from(a.inboundSpi).readUInt32BE(0);
        const sa = new InboundSa({ spi: inSpi, suite: espSuite(defaultProvider, alg, inKeys) });
        const outSa = new OutboundSa({
          spi: Buffer.from(a.outboundSpi).readUInt32BE(0),
          suite: espSuite(defaultProvider, alg, outKeys),
        });
        inbound.set(inSpi, { sa, out: outSa, peer });
        log('install-child', { inboundSpi: hex(a.inboundSpi), outboundSpi: hex(a.outboundSpi) });
        break;
      }
      case 'remove-child':
        inbound.delete(Buffer.from(a.inboundSpi).readUInt32BE(0));
        log('remove-child', { inboundSpi: hex(a.inboundSpi) });
        break;
      case 'established': {
        log('established', { peerId: a.peerId, spiI: hex(a.initiatorSpi), spiR: hex(a.responderSpi) });
        const after = Number(process.env.IKEGATE_INTEROP_MID_SYNC_AFTER_MS ?? 0);
        if (after > 0) {
          // RFC 6311 as a cluster would after a takeover: start the Message ID sync exchange.
          setTimeout(() => {
            log('mid-sync-start', { peerSupports: peer.sa.state.peerMessageIdSync });
            command(peer, { kind: 'mid-sync' });
          }, after);
          // Then a request of our own on the synced counters (a cluster's first DPD after a takeover).
          setTimeout(() => {
            log('liveness-start', { messageId: peer.sa.state.current?.nextRequestId });
            command(peer, { kind: 'liveness' });
          }, after + 1000);
        }
        break;
      }
      case 'rekeyed-ike':
        log('rekeyed-ike', { spiI: hex(a.newInitiatorSpi), spiR: hex(a.newResponderSpi) });
        break;
      case 'deleted':
        log('deleted', { reason: a.reason });
        break;
      case 'dropped':
        log('dropped', { reason: a.reason });
        break;
      case 'rejected':
        log('rejected', { reason: a.reason, by: a.by, exchange: a.exchange });
        break;
      default:
        break;
    }
  }
  arm();
}

function arm(): void {
  clearTimeout(timer);
  const next = endpoint.nextTimeout();
  if (next === undefined) return;
  timer = setTimeout(() => guarded(() => run(endpoint.timeout(Date.now()))), Math.max(0, next - Date.now()));
  timer.unref();
}

function guarded(f: () => void): void {
  try {
    f();
  } catch (e) {
    log('error', { message: (e as Error).stack ?? String(e) });
  }
}

export function onIke(bytes: Uint8Array, rinfo: RemoteInfo, localPort: number): void {
  guarded(() => run(endpoint.receive(bytes, pathOf(rinfo, localPort), 0, Date.now())));
}

export function onEsp(packet: Uint8Array, rinfo: RemoteInfo): void {
  const spi = Buffer.from(packet.buffer, packet.byteOffset, 4).readUInt32BE(0);
  const child = inbound.get(spi);
  if (!child) return log('esp-drop', { reason: 'unknown_spi' });
  const r = child.sa.decapsulate(packet);
  if (r.kind !== 'inner') return log('esp-drop', { reason: r.reason });
  const reply = parseEchoReply(r.packet);
  if (reply) return log('pong', { src: reply.src, dst: reply.dst, seq: reply.seq, spi: spi.toString(16) });
  const echo = parseEchoRequest(r.packet);
  if (!echo) return;
  log('ping', { src: echo.src, dst: echo.dst, seq: echo.seq, spi: spi.toString(16) });
  const out = child.out.encapsulate(echoReply(r.packet));
  if (out.kind === 'packet') natT.send(out.packet.slice(), rinfo.port, rinfo.address);
}

/** Binds UDP 500 and 4500 on cfg.local and logs `listening` once both are bound. */
export function listen(): void {
  ike.on('message', (m, rinfo) => onIke(new Uint8Array(m), rinfo, 500));
  natT.on('message', (m, rinfo) => {
    const c = classifyUdpPayload(new Uint8Array(m));
    if (c.kind === 'ike') onIke(c.message.slice(), rinfo, 4500);
    else if (c.kind === 'esp') onEsp(new Uint8Array(m), rinfo);
  });
  let bound = 0;
  const ready = () => {
    if (++bound === 2) log('listening', { local: cfg.local });
  };
  ike.bind(500, cfg.local, ready);
  natT.bind(4500, cfg.local, ready);
  setTimeout(() => process.exit(0), Number(process.env.IKEGATE_INTEROP_LIFETIME_MS ?? 60_000)).unref();
}

/** Sends an ICMP echo request through the newest child SA. */
export function sendPing(seq: number): void {
  const children = [...inbound.values()];
  const child = children[children.length - 1];
  if (!child || !cfg.localInner || !cfg.remoteInner) return;
  const out = child.out.encapsulate(echoRequest(cfg.localInner, cfg.remoteInner, 0x1f2e, seq));
  const remote = child.peer.sa.state.path?.remote.address;
  if (out.kind === 'packet' && remote) natT.send(out.packet.slice(), 4500, [...remote].join('.'));
}

export function command(peer: Peer, c: IkeSaCommand): void {
  guarded(() => run(endpoint.command(peer.sa, c, Date.now())));
}

/** Starts an initiator toward `rinfo` (IKE_SA_INIT on UDP 500, then UDP 4500). */
export function createInitiator(rinfo: RemoteInfo, ctx: IkeSaContext): Peer {
  float = true;
  const r = endpoint.initiate(ctx, pathOf(rinfo, 500), 0, Date.now());
  const peer: Peer = { sa: r.sa };
  run(r.out);
  return peer;
}
