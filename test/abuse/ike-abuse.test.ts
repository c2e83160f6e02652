/**
 * IKE abuse against the real gateway: `ikegate up --no-tun` on loopback (high ports derived from
 * the test's pid, apart from listener-abuse's), driven with hand-made IKE messages over UDP and
 * TCP, and one real IKE SA from `ikegate connect --no-tun --transport udp`. Each case is named
 * after the rule it checks; each checks what came back on the wire, the counters on /metrics and
 * the SA table on /v1/sas, and that the process is still up afterwards.
 *
 * No namespaces and no root, as in listener-abuse.test.ts: nothing here needs a missing tool, so
 * nothing skips.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseEspProposal, parseIkeProposal } from '@ikegate/config';
import { defaultProvider } from '@ikegate/crypto';
import {
  type EndpointOutput,
  IkeEndpoint,
  type IkePath,
  type IkeSaContext,
  parseIpAddress,
} from '@ikegate/ikev2';
import { Gateway, HOST, IKEGATE_BIN, portsFrom, PSK, send, udp, until } from './lib/gateway.js';

const PORTS = portsFrom(10_000 + (process.pid % 1_900) * 5);
const PREFIX = Buffer.from('IKETCP', 'latin1');
const MARKER = Buffer.alloc(4);
const gw = new Gateway(PORTS);

// RFC 7296 §3.1, §3.10, §3.10.1: the octets the cases build and check.
const IKE_HEADER = 28;
const NOTIFY_PAYLOAD = 8;
const EXCHANGE = { IKE_SA_INIT: 34, IKE_AUTH: 35, INFORMATIONAL: 37 } as const;
const FLAG = { INITIATOR: 0x08, RESPONSE: 0x20 } as const;
const PAYLOAD = { NONE: 0, SK: 46, NOTIFY: 41 } as const;
const INVALID_IKE_SPI = 4;
/** The endpoint's default INVALID_IKE_SPI budget (libs/ikev2 DEFAULT_ENDPOINT_LIMITS). */
const INVALID_SPI_PER_SECOND = 100;

const drops = (reason: string) => gw.metric('ikegate_drops_total', { layer: 'ike', reason });
const ikeDrops = () => gw.metric('ikegate_drops_total', { layer: 'ike' });
const ikeMessages = (direction: 'in' | 'out', exchange: string) =>
  gw.metric('ikegate_ike_messages_total', { direction, exchange });
const udpIkeIn = () => gw.metric('ikegate_frames_total', { transport: 'udp', kind: 'ike', direction: 'in' });
const tcpIkeIn = () => gw.metric('ikegate_frames_total', { transport: 'tcp', kind: 'ike', direction: 'in' });
/** `ikegate up` registers node's process metrics with the ikegate_ prefix. */
const rssBytes = () => gw.metric('ikegate_process_resident_memory_bytes');

interface SaView {
  readonly spi: string;
  readonly status: string;
  readonly peerId?: string;
  readonly remote: string;
  readonly transport: string;
}

/** Every SA on /v1/sas: the largest pages, `next` followed until null, so none is missed. */
async function sas(): Promise<SaView[]> {
  const out: SaView[] = [];
  for (let cursor: string | null = null; ;) {
    const r = await gw.control(
      `/v1/sas?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      {},
      'viewer',
    );
    assert.equal(r.status, 200, r.text);
    const page = JSON.parse(r.text) as { items: SaView[]; next: string | null; unreachable: string[] };
    assert.deepEqual(page.unreachable, []);
    out.push(...page.items);
    if (page.next === null) return out;
    cursor = page.next;
  }
}

function nonZero(n: number): Buffer {
  const b = randomBytes(n);
  b[0] = b[0]! | 1;
  return b;
}

/**
 * An IKE message with unknown non-zero SPIs: the header, then (past 28 octets) an SK payload of
 * random octets, as a protected INFORMATIONAL looks to anyone without its keys.
 */
function unknownSpiMessage(o: { length: number; flags: number; messageId?: number }): Buffer {
  const m = Buffer.alloc(o.length);
  nonZero(8).copy(m, 0);
  nonZero(8).copy(m, 8);
  m[16] = o.length > IKE_HEADER ? PAYLOAD.SK : PAYLOAD.NONE;
  m[17] = 0x20;
  m[18] = EXCHANGE.INFORMATIONAL;
  m[19] = o.flags;
  m.writeUInt32BE(o.messageId ?? 1, 20);
  m.writeUInt32BE(o.length, 24);
  if (o.length >= IKE_HEADER + 4) {
    m[IKE_HEADER] = PAYLOAD.NOTIFY; // SK's next payload: the first inner one
    m.writeUInt16BE(o.length - IKE_HEADER, IKE_HEADER + 2);
    randomBytes(o.length - IKE_HEADER - 4).copy(m, IKE_HEADER + 4);
  }
  return m;
}

/**
 * Checks `reply` is the RFC 7296 §2.21.4 answer to `request`: unprotected (a Notify payload, no
 * SK), the request's SPIs, exchange and Message ID, the Response flag set and the Initiator flag
 * the opposite of the request's, one INVALID_IKE_SPI notify with no SPI (protocol 0, §3.10).
 */
function assertInvalidSpiAnswer(reply: Buffer, request: Buffer): void {
  assert.equal(reply.length, IKE_HEADER + NOTIFY_PAYLOAD, 'header + one empty notify');
  assert.deepEqual(reply.subarray(0, 16), request.subarray(0, 16), 'the same SPIs');
  assert.equal(reply[16], PAYLOAD.NOTIFY, 'unprotected: a Notify payload, not SK');
  assert.equal(reply[17], 0x20, 'IKEv2');
  assert.equal(reply[18], request[18], 'the same exchange');
  const initiator = request[19]! & FLAG.INITIATOR ? 0 : FLAG.INITIATOR;
  assert.equal(reply[19], FLAG.RESPONSE | initiator, 'a response, I flag flipped');
  assert.equal(reply.readUInt32BE(20), request.readUInt32BE(20), 'the same Message ID');
  assert.equal(reply.readUInt32BE(24), reply.length, 'header length = octets');
  assert.equal(reply[IKE_HEADER], PAYLOAD.NONE, 'the only payload');
  assert.equal(reply.readUInt16BE(IKE_HEADER + 2), NOTIFY_PAYLOAD, 'notify payload length');
  assert.equal(reply[IKE_HEADER + 4], 0, 'protocol ID 0: no SPI (RFC 7296 §3.10)');
  assert.equal(reply[IKE_HEADER + 5], 0, 'SPI size 0');
  assert.equal(reply.readUInt16BE(IKE_HEADER + 6), INVALID_IKE_SPI);
}

/** The protocol core (libs/ikev2) as an initiator with the gateway's proposals and PSK. */
function coreInitiator(localId: string): { ctx: IkeSaContext; core: IkeEndpoint<undefined> } {
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const any = {
    tsType: 7,
    ipProtocol: 0,
    startPort: 0,
    endPort: 65535,
    startAddress: Uint8Array.of(0, 0, 0, 0),
    endAddress: Uint8Array.of(255, 255, 255, 255),
  };
  const ctx: IkeSaContext = {
    provider: defaultProvider,
    random,
    allocateIkeSpi: () => random(8),
    allocateChildSpi: () => random(4),
    policy: {
      localId,
      localIdType: 3, // ID_RFC822_ADDR
      ikeProposals: [parseIkeProposal('aes256gcm16-prfsha256-x25519')],
      espProposals: [parseEspProposal('aes256gcm16')],
      localTs: [any],
      remoteTs: [any],
      requestVirtualIp: true,
    },
    psk: () => new TextEncoder().encode(PSK),
  };
  const core = new IkeEndpoint<undefined>({
    provider: defaultProvider,
    random,
    policy: ctx.policy,
    ikeSpi: () => random(8),
    responderContext: () => ctx,
  });
  return { ctx, core };
}

/** One IKE_SA_INIT request as the protocol core builds it for a TCP stream to the gateway. */
function tcpInitRequest(): Buffer {
  const { ctx, core } = coreInitiator('mallory@example.org');
  const path: IkePath = {
    id: 'abuse-stream',
    transport: 'tcp',
    local: { address: parseIpAddress(HOST), port: 40_000 },
    remote: { address: parseIpAddress(HOST), port: PORTS.tcp },
  };
  for (const o of core.initiate(ctx, path, 0, Date.now()).out)
    if (o.kind === 'transmit') return Buffer.from(o.bytes);
  throw new Error('the protocol core sent no IKE_SA_INIT request');
}

/** Issue #9: a bare 28-octet header with an SA's SPIs, exchange IKE_AUTH, Message ID 1, I flag. */
function bareHeader(spiI: Uint8Array, spiR: Uint8Array): Buffer {
  const bare = Buffer.alloc(IKE_HEADER);
  bare.set(spiI, 0);
  bare.set(spiR, 8);
  bare[16] = PAYLOAD.NONE;
  bare[17] = 0x20;
  bare[18] = EXCHANGE.IKE_AUTH;
  bare[19] = FLAG.INITIATOR;
  bare.writeUInt32BE(1, 20);
  bare.writeUInt32BE(IKE_HEADER, 24);
  return bare;
}

/**
 * The protocol core as initiator on `peer`'s UDP socket, plain IKE to the gateway's IKE port:
 * IKE_SA_INIT + IKE_AUTH (PSK, a virtual IP asked for). Returns the SA's SPIs once established.
 */
async function establishFrom(peer: { socket: UdpSocket }): Promise<{ spiI: Uint8Array; spiR: Uint8Array }> {
  const { ctx, core } = coreInitiator('dave@example.org');
  const path: IkePath = {
    id: 'abuse-peer',
    transport: 'udp',
    local: { address: parseIpAddress(HOST), port: peer.socket.address().port },
    remote: { address: parseIpAddress(HOST), port: PORTS.ike },
  };
  const transmit = (out: readonly EndpointOutput<undefined>[]) => {
    for (const o of out) if (o.kind === 'transmit') peer.socket.send(o.bytes, o.path.remote.port, HOST);
  };
  const onMessage = (m: Buffer) => transmit(core.receive(new Uint8Array(m), path, 0, Date.now()));
  peer.socket.on('message', onMessage);
  const started = core.initiate(ctx, path, 0, Date.now());
  transmit(started.out);
  const status = await until(
    async () => started.sa.state.status,
    (s) => s === 'established',
    10_000,
  );
  peer.socket.off('message', onMessage);
  assert.equal(status, 'established', 'the protocol-core initiator established an SA');
  const current = started.sa.state.current!;
  return { spiI: current.spiI, spiR: current.spiR };
}

/** RFC 9329 §3: Length (2 octets, itself included) | non-ESP marker | IKE message. */
function ikeFrame(message: Buffer): Buffer {
  const out = Buffer.alloc(2 + MARKER.length + message.length);
  out.writeUInt16BE(out.length, 0);
  MARKER.copy(out, 2);
  message.copy(out, 2 + MARKER.length);
  return out;
}

/** The IKE messages in an RFC 9329 byte stream after its prefix (ESP and partial frames skipped). */
function ikeMessagesIn(stream: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at + 2 <= stream.length;) {
    const length = stream.readUInt16BE(at);
    if (length < 2 || at + length > stream.length) break;
    const body = stream.subarray(at + 2, at + length);
    if (body.length >= MARKER.length + IKE_HEADER && body.readUInt32BE(0) === 0) out.push(body.subarray(4));
    at += length;
  }
  return out;
}

/** `ikegate connect --no-tun --transport udp` to the gateway under test: one real IKE SA. */
class Initiator {
  readonly logFile = join(gw.dir, 'connect.log');
  #proc: ChildProcess | undefined;

  start(): void {
    const out = openSync(this.logFile, 'a');
    this.#proc = spawn(
      process.execPath,
      [
        ...[IKEGATE_BIN, 'connect', '--server', HOST, '--transport', 'udp', '--no-tun'],
        ...['--id', 'carol@example.org', '--remote-id', 'gw.example.org', '--psk', PSK, '--dpd', '0'],
        ...['--port-ike', String(PORTS.ike), '--port-natt', String(PORTS.natT)],
      ],
      { stdio: ['ignore', out, out] },
    );
    closeSync(out);
  }

  /** Its log lines (pino JSON) whose msg is `msg`. */
  lines(msg: string): Record<string, unknown>[] {
    let text: string;
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return text
      .split('\n')
      .filter((l) => l.includes(`"msg":"${msg}"`))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    for (let i = 0; i < 100 && p.exitCode === null && p.signalCode === null; i++) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

describe('IKE abuse against `ikegate up --no-tun` (RFC 7296, RFC 9329)', { timeout: 180_000 }, () => {
  const initiator = new Initiator();

  before(() => gw.up());

  after(async () => {
    await initiator.stop();
    try {
      const text = (await gw.control('/metrics')).text;
      const lines = text
        .split('\n')
        .filter((l) =>
          /^ikegate_(drops_total\{layer="(ike|edge)"|ike_(half_open_sas|cookie_mode|sas|rejections_total|messages_total)\b)/.test(
            l,
          ),
        );
      console.log(lines.join('\n'));
    } catch {
      // the process may be gone; afterEach has already reported that
    }
    await gw.stop();
  });

  afterEach(() => gw.assertUp());

  it("issue #9's 28-octet header (an SA's two SPIs, IKE_AUTH, Message ID 1, I flag) from another source port gets nothing back and moves nothing; the SA keeps answering its real peer (RFC 7296 §2.1, §2.23)", async () => {
    initiator.start();
    const [sa] = await until(
      async () => (await sas()).filter((s) => s.status === 'established' && s.peerId === 'carol@example.org'),
      (v) => v.length > 0,
      20_000,
    );
    assert.ok(sa, `no SA from ikegate connect; connect log:\n${readTail(initiator.logFile)}`);
    const [established] = await until(
      async () => initiator.lines('ike-sa-established'),
      (v) => v.length > 0,
    );
    const spiI = String(established?.spi ?? '');
    assert.match(spiI, /^[0-9a-f]{16}$/, 'the initiator logs its SPI');
    assert.equal(sa.transport, 'udp');

    const bare = bareHeader(Buffer.from(spiI, 'hex'), Buffer.from(sa.spi, 'hex'));

    const d0 = await ikeDrops();
    const a0 = await ikeMessages('in', 'IKE_AUTH');
    const attacker = await udp();
    try {
      await send(attacker.socket, Buffer.concat([MARKER, bare]), PORTS.natT);
      await send(attacker.socket, bare, PORTS.ike);
      assert.equal(
        await until(
          () => ikeMessages('in', 'IKE_AUTH'),
          (v) => v >= a0 + 2,
        ),
        a0 + 2,
        'the worker saw both copies',
      );
      assert.equal(await ikeDrops(), d0 + 2, 'both dropped and counted');
      await sleep(300);
      assert.equal(attacker.received.length, 0, 'nothing comes back to the other source');
      const now = (await sas()).find((s) => s.spi === sa.spi);
      assert.equal(now?.status, 'established');
      assert.equal(now?.remote, sa.remote, "the SA keeps its peer's original address:port");

      // The real peer still gets the SA's requests and its answers still count.
      const out0 = await ikeMessages('out', 'INFORMATIONAL');
      const in0 = await ikeMessages('in', 'INFORMATIONAL');
      const r = await gw.control(`/v1/sas/${sa.spi}/liveness`, { method: 'POST' }, 'operator');
      assert.equal(r.status, 202);
      assert.equal(
        await until(
          () => ikeMessages('in', 'INFORMATIONAL'),
          (v) => v >= in0 + 1,
        ),
        in0 + 1,
        'the liveness check is answered by the real peer',
      );
      assert.equal(await ikeMessages('out', 'INFORMATIONAL'), out0 + 1);
      const later = (await sas()).find((s) => s.spi === sa.spi);
      assert.equal(later?.status, 'established');
      assert.equal(later?.remote, sa.remote);
      assert.equal(attacker.received.length, 0, 'the liveness check went to the real peer only');
    } finally {
      attacker.socket.close();
      await initiator.stop();
    }
  });

  it("issue #9's 28-octet header from the SA's own peer address:port is not a retransmission either: no SK payload, so nothing is resent (RFC 7296 §2.1, §2.21.2)", async () => {
    const peer = await udp();
    try {
      const { spiI, spiR } = await establishFrom(peer);
      const bare = bareHeader(spiI, spiR);
      const a0 = await ikeMessages('out', 'IKE_AUTH');
      const before = peer.received.length;
      for (let i = 0; i < 3; i++) await send(peer.socket, bare, PORTS.ike);
      await sleep(500);
      const resent = (await ikeMessages('out', 'IKE_AUTH')) - a0;
      const back = peer.received.slice(before).map((b) => b.length);
      assert.equal(
        back.length,
        0,
        `nothing comes back for 3 x 28 octets (got ${resent} IKE_AUTH resent: ${back} octets)`,
      );
      assert.equal(resent, 0);
    } finally {
      peer.socket.close();
    }
  });

  it('one TCP stream repeating one IKE_SA_INIT without reading: one answer, the repeats dropped as retransmission_on_stream (or the stream closed ike_output_overflow), RSS bounded (RFC 9329 §2, §6; RFC 7296 §2.1)', async () => {
    const REPEATS = 3_000;
    const request = tcpInitRequest();
    const r0 = await drops('retransmission_on_stream');
    const o0 = await gw.metric('ikegate_connection_events_total', {
      transport: 'tcp',
      event: 'closing',
      reason: 'ike_output_overflow',
    });
    const i0 = await tcpIkeIn();
    const rss0 = await rssBytes();
    const socket: Socket = connect({ host: HOST, port: PORTS.tcp });
    socket.on('error', () => undefined);
    socket.pause(); // never read while the repeats go in
    let closed = false;
    socket.once('close', () => (closed = true));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('close', () => reject(new Error('closed before connect')));
    });
    try {
      const one = ikeFrame(request);
      socket.write(Buffer.concat([PREFIX, ...Array.from({ length: REPEATS }, () => one)]));
      const decoded = await until(
        async () => (closed ? Number.POSITIVE_INFINITY : (await tcpIkeIn()) - i0),
        (v) => v >= REPEATS,
        20_000,
      );
      const dropped = (await drops('retransmission_on_stream')) - r0;
      const overflow =
        (await gw.metric('ikegate_connection_events_total', {
          transport: 'tcp',
          event: 'closing',
          reason: 'ike_output_overflow',
        })) - o0;
      assert.ok(
        (decoded === REPEATS && dropped === REPEATS - 1) || (closed && overflow === 1),
        `every repeat dropped as retransmission_on_stream (decoded ${decoded}, dropped ${dropped}) ` +
          `or the stream closed ike_output_overflow (closed ${closed}, overflow ${overflow})`,
      );
      const rss1 = await rssBytes();
      console.log(`repeated IKE_SA_INIT: RSS ${rss0} -> ${rss1} B, dropped ${dropped}, overflow ${overflow}`);
      assert.ok(rss1 < rss0 + 64 * 1024 * 1024, `RSS ${rss1} B must stay below ${rss0} B + 64 MiB`);
      if (!closed) {
        // Now read what was queued for us: the one answer, nothing per repeat.
        const received: Buffer[] = [];
        socket.on('data', (d: Buffer) => received.push(d));
        socket.resume();
        await sleep(500);
        const answers = ikeMessagesIn(Buffer.concat(received));
        assert.equal(answers.length, 1, 'one IKE_SA_INIT response, none for the repeats');
        assert.equal(answers[0]![18], EXCHANGE.IKE_SA_INIT);
        assert.equal(answers[0]![19]! & FLAG.RESPONSE, FLAG.RESPONSE);
        assert.deepEqual(answers[0]!.subarray(0, 8), request.subarray(0, 8), 'for our SPIi');
      }
    } finally {
      socket.destroy();
    }
    assert.equal(
      await until(
        () => gw.metric('ikegate_connections', { transport: 'tcp' }),
        (v) => v === 0,
      ),
      0,
      'the stream is gone',
    );
  });

  it('an unknown-SPI INFORMATIONAL request of >= 36 octets over UDP gets one unprotected INVALID_IKE_SPI with its SPIs and Message ID, on 500 and behind the non-ESP marker on 4500 (RFC 7296 §2.21.4, RFC 3948 §2.2)', async () => {
    const u0 = await drops('unknown_spi');
    const { socket, received } = await udp();
    try {
      const fromInitiator = unknownSpiMessage({ length: 80, flags: FLAG.INITIATOR, messageId: 7 });
      await send(socket, fromInitiator, PORTS.ike);
      await until(
        async () => received.length,
        (n) => n >= 1,
      );
      const fromResponder = unknownSpiMessage({ length: 36, flags: 0, messageId: 0x01020304 });
      await send(socket, Buffer.concat([MARKER, fromResponder]), PORTS.natT);
      await until(
        async () => received.length,
        (n) => n >= 2,
      );
      await sleep(300);
      assert.equal(received.length, 2, 'exactly one answer to each');
      assertInvalidSpiAnswer(received[0]!, fromInitiator);
      assert.deepEqual(received[1]!.subarray(0, 4), MARKER, 'on 4500 behind the non-ESP marker');
      assertInvalidSpiAnswer(received[1]!.subarray(4), fromResponder);
      assert.equal(await drops('unknown_spi'), u0 + 2, 'both still counted as unknown_spi');
    } finally {
      socket.close();
    }
  });

  it('a response, a 28-octet request and a 35-octet request with unknown SPIs get nothing (RFC 7296 §2.21.4: never answer a response; never send more than came)', async () => {
    const u0 = await drops('unknown_spi');
    const quiet = await udp();
    const control = await udp();
    try {
      await send(
        quiet.socket,
        unknownSpiMessage({ length: 80, flags: FLAG.RESPONSE | FLAG.INITIATOR }),
        PORTS.ike,
      );
      await send(quiet.socket, unknownSpiMessage({ length: 80, flags: FLAG.RESPONSE }), PORTS.ike);
      await send(quiet.socket, unknownSpiMessage({ length: IKE_HEADER, flags: FLAG.INITIATOR }), PORTS.ike);
      await send(quiet.socket, unknownSpiMessage({ length: 35, flags: FLAG.INITIATOR }), PORTS.ike);
      assert.equal(
        await until(
          () => drops('unknown_spi'),
          (v) => v >= u0 + 4,
        ),
        u0 + 4,
      );
      // The budget was not what kept them quiet: a request of 36 octets right after is answered.
      const answered = unknownSpiMessage({ length: 36, flags: FLAG.INITIATOR });
      await send(control.socket, answered, PORTS.ike);
      await until(
        async () => control.received.length,
        (n) => n >= 1,
      );
      await sleep(300);
      assert.equal(quiet.received.length, 0, 'nothing for a response or a request under 36 octets');
      assert.equal(control.received.length, 1);
      assertInvalidSpiAnswer(control.received[0]!, answered);
    } finally {
      quiet.socket.close();
      control.socket.close();
    }
  });

  it(`a burst of unknown-SPI requests is answered at most ${INVALID_SPI_PER_SECOND}/s (RFC 7296 §2.21.4: MAY respond, rate-limited)`, async () => {
    const BURST = 1_500;
    const u0 = await drops('unknown_spi');
    const f0 = await udpIkeIn();
    const { socket, received } = await udp();
    const sent = new Set<string>();
    const started = performance.now();
    try {
      // Paced in chunks so loopback does not drop them before the gateway reads them.
      for (let i = 0; i < BURST; i += 100) {
        const chunk: Promise<void>[] = [];
        for (let k = i; k < Math.min(BURST, i + 100); k++) {
          const m = unknownSpiMessage({ length: 64, flags: FLAG.INITIATOR, messageId: k });
          sent.add(m.subarray(0, 16).toString('hex'));
          chunk.push(send(socket, m, PORTS.ike));
        }
        await Promise.all(chunk);
        await sleep(5);
      }
      const seen = await until(
        async () => (await udpIkeIn()) - f0,
        (v) => v >= BURST,
      );
      const counted = await until(
        async () => (await drops('unknown_spi')) - u0,
        (v) => v >= seen,
      );
      await sleep(500);
      const seconds = (performance.now() - started) / 1000;
      const bound = INVALID_SPI_PER_SECOND * (Math.ceil(seconds) + 1);
      console.log(
        `INVALID_IKE_SPI burst: ${BURST} sent, ${seen} reached the gateway, ${counted} counted unknown_spi, ` +
          `${received.length} answered in ${seconds.toFixed(2)} s (bound ${bound})`,
      );
      assert.equal(counted, seen, 'every request that arrived is counted unknown_spi');
      assert.ok(received.length >= 1, 'some are answered');
      assert.ok(received.length <= bound, `at most ${bound} answers in ${seconds.toFixed(2)} s`);
      assert.ok(received.length < seen, 'not every request is answered');
      for (const r of received) {
        assert.equal(r.length, IKE_HEADER + NOTIFY_PAYLOAD);
        assert.ok(sent.has(r.subarray(0, 16).toString('hex')), 'each answer is for one of ours');
        assert.equal(r.readUInt16BE(IKE_HEADER + 6), INVALID_IKE_SPI);
      }
    } finally {
      socket.close();
    }
  });
});

function readTail(file: string, n = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}
