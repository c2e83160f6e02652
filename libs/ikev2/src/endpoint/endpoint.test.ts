import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EncryptionId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import {
  decodeMessage,
  encodeMessage,
  ExchangeType,
  HeaderFlag,
  type IkeMessage,
  NotifyError,
  NotifyStatus,
  type NotifyPayload,
  type Payload,
  PayloadType,
} from '../codec/index.js';
import type { IkePath } from '../sa/types.js';
import { INITIATOR_ADDRESS, Pair, pathFor, RESPONDER_ADDRESS } from '../testing/pair.js';
import { DeadlineHeap, type HeapItem } from './deadline-heap.js';

/** The initiator's first IKE_SA_INIT request of a fresh pair, and the pair. */
function initRequest(opts: ConstructorParameters<typeof Pair>[0] = {}): { p: Pair; bytes: Uint8Array } {
  const p = new Pair(opts);
  p.initiate();
  return { p, bytes: p.wire.shift()!.bytes };
}

function notifyOf(bytes: Uint8Array, type: number): NotifyPayload | undefined {
  return decodeMessage(bytes).payloads.find(
    (x): x is NotifyPayload => x.type === PayloadType.NOTIFY && (x as NotifyPayload).notifyType === type,
  );
}

/** Re-encodes an IKE_SA_INIT request with its payloads changed by `edit` (header kept). */
function reencode(
  bytes: Uint8Array,
  edit: (m: IkeMessage) => { spiI?: Uint8Array; payloads: Payload[] },
): Uint8Array {
  const m = decodeMessage(bytes);
  const e = edit(m);
  return encodeMessage(
    {
      initiatorSpi: e.spiI ?? m.header.initiatorSpi,
      responderSpi: m.header.responderSpi,
      exchangeType: m.header.exchangeType,
      flags: m.header.flags,
      messageId: m.header.messageId,
    },
    e.payloads,
  );
}

function from(address: Uint8Array, port = 500, id = `udp:500:${[...address].join('.')}:${port}`): IkePath {
  return pathFor('udp', id, RESPONDER_ADDRESS, 500, address, port);
}

describe('IKE endpoint: no state for unauthenticated IKE_SA_INIT requests it refuses (RFC 7296 §2.6)', () => {
  it('a request answered NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD or COOKIE, or one that does not parse, leaves no SA behind (defect 2)', () => {
    const strict = {
      responderPolicy: {
        ikeProposals: [
          {
            encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 128 }],
            prf: [PrfId.HMAC_SHA2_512],
            keyExchange: [KeyExchangeId.CURVE25519],
          },
        ],
      },
    };
    const cases: [
      string,
      ConstructorParameters<typeof Pair>[0],
      (b: Uint8Array) => Uint8Array,
      number | undefined,
    ][] = [
      ['NO_PROPOSAL_CHOSEN', strict, (b) => b, NotifyError.NO_PROPOSAL_CHOSEN],
      [
        'INVALID_KE_PAYLOAD',
        {
          responderPolicy: {
            ikeProposals: [
              {
                encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
                prf: [PrfId.HMAC_SHA2_256],
                keyExchange: [KeyExchangeId.ECP_256],
              },
            ],
          },
        },
        (b) => b,
        NotifyError.INVALID_KE_PAYLOAD,
      ],
      ['COOKIE', { responderLimits: { cookieThreshold: 0 } }, (b) => b, NotifyStatus.COOKIE],
      ['a truncated request', {}, (b) => b.subarray(0, 40), undefined],
      ['a bare 28-octet header', {}, (b) => b.subarray(0, 28), undefined],
    ];
    for (const [name, opts, mangle, answer] of cases) {
      const { p, bytes } = initRequest(opts);
      const out = p.responder.endpoint.receive(mangle(bytes), p.responder.path, 0, 0);
      assert.equal(p.responder.endpoint.stats.sas, 0, `${name}: no SA`);
      assert.equal(p.responder.endpoint.stats.halfOpen, 0, `${name}: nothing half-open`);
      assert.equal(p.responder.endpoint.nextTimeout(), undefined, `${name}: nothing scheduled`);
      const sent = out.filter((o) => o.kind === 'transmit');
      if (answer === undefined) assert.equal(sent.length, 0, `${name}: dropped unanswered`);
      else {
        assert.equal(sent.length, 1, `${name}: one stateless answer`);
        assert.ok(notifyOf(sent[0]!.kind === 'transmit' ? sent[0]!.bytes : new Uint8Array(), answer), name);
        assert.ok(
          out.some((o) => o.kind === 'rejected'),
          `${name}: rejection reported`,
        );
      }
    }
  });

  it('half-open SAs expire after their lifetime, and COOKIE mode ends with them (RFC 7296 §2.6)', () => {
    const p = new Pair({ responderLimits: { cookieThreshold: 3, halfOpenMs: 5000 } });
    for (let i = 0; i < 3; i++) {
      const q = new Pair();
      q.initiate();
      const bytes = q.wire.shift()!.bytes;
      p.responder.endpoint.receive(bytes, from(Uint8Array.of(203, 0, 113, i + 1)), 0, 0);
    }
    assert.equal(p.responder.endpoint.stats.halfOpen, 3);
    assert.equal(p.responder.endpoint.stats.cookieMode, true);
    assert.equal(p.responder.endpoint.nextTimeout(), 5000);
    assert.deepEqual(p.responder.endpoint.timeout(4999), [], 'an early timer changes nothing');
    const out = p.responder.endpoint.timeout(5000);
    assert.equal(out.filter((o) => o.kind === 'sa-action' && o.action.kind === 'deleted').length, 3);
    assert.deepEqual(p.responder.endpoint.stats, {
      sas: 0,
      established: 0,
      halfOpen: 0,
      cookieMode: false,
      hot: 0,
      cold: 0,
      thaws: 0,
    });
  });

  it('caps half-open SAs in total and per peer address, and all SAs, dropping what is past the caps (bounded memory)', () => {
    const p = new Pair({
      responderLimits: { maxHalfOpenPerAddress: 2, maxHalfOpen: 3, maxSas: 4, cookieThreshold: 1000 },
    });
    const reasons: string[] = [];
    let n = 0;
    const send = (address: Uint8Array) => {
      const q = new Pair();
      q.initiate();
      // A distinct initiator SPI each time: a new request, not a retransmission of the last one.
      const bytes = reencode(q.wire.shift()!.bytes, (m) => ({
        spiI: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, ++n),
        payloads: [...m.payloads],
      }));
      for (const o of p.responder.endpoint.receive(bytes, from(address), 0, 0))
        if (o.kind === 'dropped') reasons.push(o.reason);
    };
    const a = Uint8Array.of(203, 0, 113, 1);
    send(a);
    send(a);
    send(a);
    assert.deepEqual(reasons, ['half-open-per-address-limit']);
    send(Uint8Array.of(203, 0, 113, 2));
    send(Uint8Array.of(203, 0, 113, 3));
    assert.deepEqual(reasons, ['half-open-per-address-limit', 'half-open-limit']);
    assert.equal(p.responder.endpoint.stats.halfOpen, 3);
  });

  it('binds the COOKIE to Ni, IPi (all 16 octets of IPv6) and SPIi but not to the port (RFC 7296 §2.6, PROTOCOL.md)', () => {
    const p = new Pair({ responderLimits: { cookieThreshold: 0 } });
    p.initiate();
    const request = p.wire.shift()!.bytes;
    const cookieFor = (bytes: Uint8Array, path: IkePath): string => {
      const out = p.responder.endpoint.receive(bytes, path, 0, 0);
      const t = out.find((o) => o.kind === 'transmit');
      assert.ok(t && t.kind === 'transmit');
      return Buffer.from(notifyOf(t.bytes, NotifyStatus.COOKIE)!.data).toString('hex');
    };
    const v6 = (last: number) => Uint8Array.of(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last);
    const base = cookieFor(request, from(INITIATOR_ADDRESS, 500));
    assert.equal(cookieFor(request, from(INITIATOR_ADDRESS, 4500)), base, 'not bound to the port');
    assert.notEqual(cookieFor(request, from(Uint8Array.of(192, 0, 2, 2), 500)), base, 'bound to IPi');
    assert.notEqual(
      cookieFor(request, from(v6(2))),
      cookieFor(request, from(v6(3))),
      'IPv6 is hashed in full',
    );
    const otherNonce = reencode(request, (m) => ({
      payloads: m.payloads.map((x) =>
        x.type === PayloadType.NONCE ? { ...x, data: new Uint8Array(32).fill(7) } : x,
      ),
    }));
    assert.notEqual(cookieFor(otherNonce, from(INITIATOR_ADDRESS)), base, 'bound to Ni');
    const otherSpi = reencode(request, (m) => ({
      spiI: Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9),
      payloads: [...m.payloads],
    }));
    assert.notEqual(cookieFor(otherSpi, from(INITIATOR_ADDRESS)), base, 'bound to SPIi');
    // A cookie made for fd00::2 is refused from fd00::3: a new cookie, no state.
    const cookie = Buffer.from(cookieFor(request, from(v6(2))), 'hex');
    const withCookie = reencode(request, (m) => ({
      payloads: [
        {
          type: PayloadType.NOTIFY,
          critical: false,
          protocolId: 0,
          notifyType: NotifyStatus.COOKIE,
          spi: new Uint8Array(0),
          data: cookie,
        },
        ...m.payloads,
      ],
    }));
    const refused = p.responder.endpoint.receive(withCookie, from(v6(3)), 0, 0);
    assert.ok(refused.some((o) => o.kind === 'rejected' && o.reason === 'invalid_cookie'));
    assert.equal(p.responder.endpoint.stats.sas, 0);
    const accepted = p.responder.endpoint.receive(withCookie, from(v6(2)), 0, 0);
    assert.ok(accepted.some((o) => o.kind === 'sa-action'));
    assert.equal(p.responder.endpoint.stats.sas, 1);
  });

  it('answers a request for an unknown SPI with an unprotected INVALID_IKE_SPI, never a response, never more octets than came, at a bounded rate (RFC 7296 §2.21.4)', () => {
    const p = new Pair({ responderLimits: { invalidSpiPerSecond: 2 } });
    const header = (flags: number, extra = 0) => {
      const b = new Uint8Array(28 + extra);
      b.set([1, 2, 3, 4, 5, 6, 7, 8], 0);
      b.set([9, 9, 9, 9, 9, 9, 9, 9], 8);
      b[16] = extra > 0 ? PayloadType.SK : 0;
      b[17] = 0x20;
      b[18] = ExchangeType.INFORMATIONAL;
      b[19] = flags;
      b[23] = 5;
      new DataView(b.buffer).setUint32(24, b.length);
      if (extra > 0) new DataView(b.buffer).setUint16(30, extra);
      return b;
    };
    const answers = (bytes: Uint8Array, now: number) =>
      p.responder.endpoint
        .receive(bytes, from(INITIATOR_ADDRESS), 0, now)
        .filter((o) => o.kind === 'transmit');
    assert.equal(answers(header(HeaderFlag.INITIATOR), 0).length, 0, 'a bare header would be amplified');
    assert.equal(
      answers(header(HeaderFlag.INITIATOR | HeaderFlag.RESPONSE, 40), 0).length,
      0,
      'never to a response',
    );
    const lying = header(HeaderFlag.INITIATOR, 40);
    new DataView(lying.buffer).setUint32(24, 28);
    assert.equal(answers(lying, 0).length, 0, 'a header whose Length is not the datagram is not answered');
    const a = answers(header(HeaderFlag.INITIATOR, 40), 0);
    assert.equal(a.length, 1);
    const reply = a[0]!.kind === 'transmit' ? a[0]!.bytes : new Uint8Array();
    const m = decodeMessage(reply);
    assert.ok(reply.length <= 68);
    assert.equal(m.header.messageId, 5);
    assert.ok(notifyOf(reply, NotifyError.INVALID_IKE_SPI));
    assert.equal(answers(header(HeaderFlag.INITIATOR, 40), 1).length, 1);
    assert.equal(answers(header(HeaderFlag.INITIATOR, 40), 2).length, 0, 'rate-limited');
    assert.equal(answers(header(HeaderFlag.INITIATOR, 40), 1500).length, 1, 'refilled');
    assert.equal(p.responder.endpoint.stats.sas, 0);
  });
});

describe('IKE endpoint timers', () => {
  it('after a long pause, due SAs are handled in bounded batches; what is left stays due', () => {
    const p = new Pair({ responderLimits: { halfOpenMs: 1000, cookieThreshold: 100 } });
    for (let i = 1; i <= 5; i++) {
      const q = new Pair();
      q.initiate();
      p.responder.endpoint.receive(q.wire.shift()!.bytes, from(Uint8Array.of(203, 0, 113, i)), 0, 0);
    }
    assert.equal(p.responder.endpoint.stats.sas, 5);
    const deleted = (n: number) =>
      p.responder.endpoint
        .timeout(20_000, undefined, n)
        .filter((o) => o.kind === 'sa-action' && o.action.kind === 'deleted').length;
    assert.equal(deleted(2), 2);
    assert.ok(p.responder.endpoint.nextTimeout()! <= 20_000, 'the rest is still due');
    assert.equal(deleted(2), 2);
    assert.equal(deleted(2), 1);
    assert.equal(p.responder.endpoint.nextTimeout(), undefined);
  });
});

describe('IKE endpoint: SAs by path (RFC 9329 §6: a closed stream reaches every SA on it)', () => {
  it('a lost connection reaches the SAs on that path and no other, as SAs join and leave it', () => {
    const p = new Pair({ responderLimits: { halfOpenMs: 1000 } });
    const ep = p.responder.endpoint;
    const tcp = (id: string, host: number) =>
      pathFor('tcp', id, RESPONDER_ADDRESS, 4500, Uint8Array.of(203, 0, 113, host), 40000 + host);
    const arrive = (path: IkePath, now: number) => {
      const q = new Pair();
      q.initiate();
      ep.receive(q.wire.shift()!.bytes, path, 0, now);
    };
    // Pairs make the same SPIi: distinct remote addresses keep them apart as half-open SAs.
    arrive(tcp('tcp:a', 1), 0);
    arrive(tcp('tcp:b', 2), 0);
    arrive(tcp('tcp:a', 3), 500);
    arrive(tcp('tcp:c', 4), 500);
    arrive(tcp('tcp:a', 5), 800);
    const lost = () =>
      [...ep.entries()]
        .filter((e) => e.state.disconnectedAt !== undefined)
        .map((e) => e.state.path?.id)
        .sort();
    assert.equal(ep.stats.sas, 5);
    ep.connectionLost('tcp:c', 600);
    assert.deepEqual(lost(), ['tcp:c']);
    // Half-open SAs expire 1 s after they came: tcp:a goes from three SAs to two, tcp:b from one
    // to none; a new SA comes on tcp:b.
    ep.timeout(1200, undefined, 10);
    assert.equal(ep.stats.sas, 3);
    arrive(tcp('tcp:b', 6), 1300);
    // tcp:a from two to one (and tcp:c's SA goes); then a second SA joins tcp:a again.
    ep.timeout(1600, undefined, 10);
    assert.equal(ep.stats.sas, 2);
    assert.deepEqual(lost(), []);
    arrive(tcp('tcp:a', 7), 1650);
    ep.connectionsLost((id) => id !== 'tcp:c', 1700);
    assert.deepEqual(lost(), ['tcp:a', 'tcp:a', 'tcp:b']);
  });
});

describe('deadline heap', () => {
  it('pops items in deadline order under random inserts, moves and removals (against a sorted list)', () => {
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const heap = new DeadlineHeap<HeapItem & { id: number }>();
    const items = Array.from({ length: 200 }, (_, id) => ({ id, deadline: Infinity, heapIndex: -1 }));
    const model = new Map<number, number>();
    for (let i = 0; i < 5000; i++) {
      const it = items[Math.floor(rnd() * items.length)]!;
      const r = rnd();
      if (r < 0.6) {
        const d = Math.floor(rnd() * 1000);
        heap.set(it, d);
        model.set(it.id, d);
      } else if (r < 0.8) {
        heap.remove(it);
        model.delete(it.id);
      } else {
        heap.set(it, Infinity);
        model.delete(it.id);
      }
      const min = Math.min(...model.values());
      assert.equal(heap.peek()?.deadline ?? Infinity, min);
      assert.equal(heap.size, model.size);
    }
  });
});
