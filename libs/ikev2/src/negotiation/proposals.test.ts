import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { ProtocolId, TransformType } from '../codec/constants.js';
import type { Proposal, Transform } from '../codec/types.js';
import { RemoteProtocolError } from '../errors.js';
import {
  buildProposals,
  checkChosenProposal,
  checkKeyExchangePayload,
  isAeadEncryption,
  type ProposalPolicy,
  proposedKeyExchanges,
  selectProposal,
} from './proposals.js';

const GCM = 20;
const CBC = 12;
const CHACHA = 28;
const ike: ProposalPolicy = {
  encryption: [
    { id: GCM, keyBits: 256 },
    { id: CBC, keyBits: 128 },
  ],
  prf: [5, 7],
  integrity: [12],
  keyExchange: [31, 19],
};

describe('proposal building (RFC 7296 §3.3)', () => {
  test('a policy mixing AEAD and CBC becomes two proposals, AEAD without integrity', () => {
    const ps = buildProposals(ike, ProtocolId.IKE, new Uint8Array(0));
    assert.equal(ps.length, 2);
    assert.deepEqual(
      ps.map((p) => p.number),
      [1, 2],
    );
    assert.ok(!ps[0]!.transforms.some((t) => t.type === TransformType.INTEG));
    assert.ok(ps[1]!.transforms.some((t) => t.type === TransformType.INTEG && t.id === 12));
  });
  test('ESP proposals carry ESN transforms and PFS groups', () => {
    const [p] = buildProposals(
      { encryption: [{ id: GCM, keyBits: 128 }], keyExchange: [19] },
      ProtocolId.ESP,
      Uint8Array.of(1, 2, 3, 4),
    );
    assert.deepEqual(
      p!.transforms.filter((t) => t.type === TransformType.ESN).map((t) => t.id),
      [0, 1],
    );
    assert.ok(p!.transforms.some((t) => t.type === TransformType.KE && t.id === 19));
  });
});

describe('proposal selection (RFC 7296 §2.7, §3.3.6; RFC 9370 §2.2.1)', () => {
  test('within a proposal our transform order wins; one transform per type; number copied', () => {
    const offer = buildProposals(
      {
        encryption: [
          { id: CBC, keyBits: 128 },
          { id: GCM, keyBits: 256 },
        ],
        prf: [7, 5],
        integrity: [12],
        keyExchange: [19, 31],
      },
      ProtocolId.IKE,
      new Uint8Array(0),
    );
    const r = selectProposal(offer, [ike], ProtocolId.IKE);
    assert.equal(r.kind, 'chosen');
    if (r.kind !== 'chosen') return;
    assert.equal(r.proposal.number, 1);
    assert.deepEqual(r.suite, {
      encryption: { id: CBC, keyBits: 128 },
      prf: 5,
      integrity: 12,
      keyExchange: 31,
      additionalKeyExchanges: [],
    });
    const peerFirst = selectProposal(
      offer,
      [{ ...ike, encryption: [{ id: GCM, keyBits: 256 }] }, ike],
      ProtocolId.IKE,
    );
    assert.ok(
      peerFirst.kind === 'chosen' && peerFirst.proposal.number === 2,
      'our first policy wins over the peer order',
    );
  });
  test('key length must match; an unknown attribute hides a transform; an unknown type sinks the proposal', () => {
    const mk = (transforms: Transform[]): Proposal[] => [
      { number: 1, protocolId: ProtocolId.IKE, spi: new Uint8Array(0), transforms },
    ];
    const base: Transform[] = [
      { type: TransformType.PRF, id: 5, attributes: [] },
      { type: TransformType.KE, id: 19, attributes: [] },
    ];
    const gcm128: Transform = { type: 1, id: GCM, attributes: [{ type: 14, value: 128 }] };
    assert.equal(selectProposal(mk([gcm128, ...base]), [ike], ProtocolId.IKE).kind, 'none');
    const weird: Transform = {
      type: 1,
      id: GCM,
      attributes: [
        { type: 14, value: 256 },
        { type: 99, value: 1 },
      ],
    };
    assert.equal(selectProposal(mk([weird, ...base]), [ike], ProtocolId.IKE).kind, 'none');
    const good: Transform = { type: 1, id: GCM, attributes: [{ type: 14, value: 256 }] };
    assert.equal(selectProposal(mk([good, ...base]), [ike], ProtocolId.IKE).kind, 'chosen');
    assert.equal(
      selectProposal(mk([good, ...base, { type: 77, id: 1, attributes: [] }]), [ike], ProtocolId.IKE).kind,
      'none',
    );
  });
  test('AEAD offered with a real integrity algorithm is not chosen; with INTEG NONE it is', () => {
    const t = (type: number, id: number, keyBits?: number): Transform => ({
      type,
      id,
      attributes: keyBits ? [{ type: 14, value: keyBits }] : [],
    });
    const offer = (integ: number): Proposal[] => [
      {
        number: 1,
        protocolId: 1,
        spi: new Uint8Array(0),
        transforms: [t(1, GCM, 256), t(2, 5), t(3, integ), t(4, 19)],
      },
    ];
    assert.equal(selectProposal(offer(12), [ike], ProtocolId.IKE).kind, 'none');
    const r = selectProposal(offer(0), [ike], ProtocolId.IKE);
    assert.equal(r.kind, 'chosen');
    assert.ok(r.kind === 'chosen' && r.suite.integrity === undefined);
  });
  test('a proposal mixing AEAD and non-AEAD ciphers with integrity is accepted as AEAD without integrity, flagged lenient (the one leniency, as strongSwan)', () => {
    const t = (type: number, id: number, keyBits?: number): Transform => ({
      type,
      id,
      attributes: keyBits ? [{ type: 14, value: keyBits }] : [],
    });
    // What an independent Go client sends: AES-GCM and AES-CBC in one proposal, with HMAC-SHA2-256.
    const mixed: Proposal[] = [
      {
        number: 1,
        protocolId: 1,
        spi: new Uint8Array(0),
        transforms: [t(1, GCM, 256), t(1, CBC, 128), t(2, 5), t(3, 12), t(4, 19)],
      },
    ];
    const gcmOnly: ProposalPolicy = { encryption: [{ id: GCM, keyBits: 256 }], prf: [5], keyExchange: [19] };
    const r = selectProposal(mixed, [gcmOnly], ProtocolId.IKE);
    assert.ok(r.kind === 'chosen');
    assert.equal(r.lenient, 'aead-with-integrity');
    assert.equal(r.suite.integrity, undefined);
    assert.ok(
      !r.proposal.transforms.some((x) => x.type === TransformType.INTEG),
      'the answer carries no INTEG',
    );
    assert.equal(checkChosenProposal([r.proposal], mixed, ProtocolId.IKE).kind, 'ok');
    // Without a non-AEAD cipher in the proposal, AEAD with integrity stays unacceptable.
    const pure: Proposal[] = [{ ...mixed[0]!, transforms: [t(1, GCM, 256), t(2, 5), t(3, 12), t(4, 19)] }];
    assert.equal(selectProposal(pure, [gcmOnly], ProtocolId.IKE).kind, 'none');
  });

  test('unknown transform types, ADDKE2..7 without NONE that we do not do, and ESP requiring PFS we do not do are refused (RFC 7296 §3.3.6, RFC 9370 §2.2.1)', () => {
    const t = (type: number, id: number, keyBits?: number): Transform => ({
      type,
      id,
      attributes: keyBits ? [{ type: 14, value: keyBits }] : [],
    });
    const base = [t(1, GCM, 256), t(2, 5), t(4, 19)];
    const offer = (...extra: Transform[]): Proposal[] => [
      { number: 1, protocolId: 1, spi: new Uint8Array(0), transforms: [...base, ...extra] },
    ];
    const gcm: ProposalPolicy = { encryption: [{ id: GCM, keyBits: 256 }], prf: [5], keyExchange: [19] };
    assert.equal(selectProposal(offer(), [gcm], ProtocolId.IKE).kind, 'chosen');
    assert.equal(
      selectProposal(offer(t(13, 1)), [gcm], ProtocolId.IKE).kind,
      'none',
      'unknown transform type 13',
    );
    assert.equal(
      selectProposal(offer(t(241, 1)), [gcm], ProtocolId.IKE).kind,
      'none',
      'private-use transform type',
    );
    for (let addke = TransformType.ADDKE2; addke <= TransformType.ADDKE7; addke++) {
      assert.equal(
        selectProposal(offer(t(addke, 36)), [gcm], ProtocolId.IKE).kind,
        'none',
        `ADDKE${addke - 5} without NONE`,
      );
      assert.equal(
        selectProposal(offer(t(addke, 36), t(addke, 0)), [gcm], ProtocolId.IKE).kind,
        'chosen',
        `ADDKE${addke - 5} with NONE`,
      );
    }
    const esp: Proposal[] = [
      {
        number: 1,
        protocolId: ProtocolId.ESP,
        spi: Uint8Array.of(1, 2, 3, 4),
        transforms: [t(1, GCM, 256), t(4, 19), t(5, 0)],
      },
    ];
    const noPfs: ProposalPolicy = { encryption: [{ id: GCM, keyBits: 256 }] };
    assert.equal(selectProposal(esp, [noPfs], ProtocolId.ESP).kind, 'none', 'PFS required, we have none');
    assert.equal(selectProposal(esp, [{ ...noPfs, keyExchange: [19] }], ProtocolId.ESP).kind, 'chosen');
  });

  test('ADDKE: absent type is NONE; mandatory ADDKE needs the peer to offer it (RFC 9370 §2.2.1)', () => {
    const pq: ProposalPolicy = { ...ike, additionalKeyExchanges: [[36]] };
    const pqOptional: ProposalPolicy = { ...ike, additionalKeyExchanges: [[36, 0]] };
    const classic = buildProposals(ike, 1, new Uint8Array(0));
    assert.equal(selectProposal(classic, [pq], 1).kind, 'none');
    assert.equal(selectProposal(classic, [pqOptional], 1).kind, 'chosen');
    const hybrid = buildProposals({ ...ike, additionalKeyExchanges: [[0, 36]] }, 1, new Uint8Array(0));
    const r = selectProposal(hybrid, [pq], 1);
    assert.ok(r.kind === 'chosen');
    assert.deepEqual(r.kind === 'chosen' && r.suite.additionalKeyExchanges, [36]);
    const r2 = selectProposal(hybrid, [ike], 1);
    assert.deepEqual(r2.kind === 'chosen' && r2.suite.additionalKeyExchanges, []);
  });
  test('no method is chosen twice across KE and ADDKE; a later preference fills the gap (RFC 9370 §2.2.1)', () => {
    const offer = buildProposals(
      { ...ike, keyExchange: [31], additionalKeyExchanges: [[36, 35], [36]] },
      1,
      new Uint8Array(0),
    );
    const r = selectProposal(offer, [{ ...ike, additionalKeyExchanges: [[36, 35], [36]] }], 1);
    assert.deepEqual(r.kind === 'chosen' && r.suite.additionalKeyExchanges, [35, 36]);
    const dup = buildProposals(
      { ...ike, keyExchange: [31], additionalKeyExchanges: [[31]] },
      1,
      new Uint8Array(0),
    );
    assert.equal(selectProposal(dup, [{ ...ike, additionalKeyExchanges: [[31]] }], 1).kind, 'none');
  });
  test('ESP: PFS optional, ESN chosen, peer SPI returned', () => {
    const spi = Uint8Array.of(9, 9, 9, 9);
    const offer = buildProposals(
      { encryption: [{ id: CHACHA, keyBits: 0 }], keyExchange: [19], esn: [true] },
      ProtocolId.ESP,
      spi,
    );
    assert.equal(
      selectProposal(offer, [{ encryption: [{ id: CHACHA, keyBits: 0 }], esn: [true] }], ProtocolId.ESP).kind,
      'none',
    );
    const r = selectProposal(
      offer,
      [{ encryption: [{ id: CHACHA, keyBits: 0 }], keyExchange: [0, 19], esn: [false, true] }],
      ProtocolId.ESP,
    );
    assert.ok(r.kind === 'chosen');
    if (r.kind !== 'chosen') return;
    assert.deepEqual(r.suite, {
      encryption: { id: CHACHA, keyBits: 0 },
      keyExchange: 19,
      additionalKeyExchanges: [],
      esn: true,
    });
    assert.deepEqual(r.peerSpi, spi);
  });
  test('initiator accepts a single-transform answer from our proposals and rejects additions', () => {
    const sent = buildProposals(ike, 1, new Uint8Array(0));
    const r = selectProposal(sent, [ike], 1);
    assert.ok(r.kind === 'chosen');
    if (r.kind !== 'chosen') return;
    const ok = checkChosenProposal([r.proposal], sent, 1);
    assert.equal(ok.kind, 'ok');
    assert.deepEqual(ok.kind === 'ok' && ok.suite, r.suite);
    const twoKe = {
      ...r.proposal,
      transforms: [...r.proposal.transforms, { type: 4, id: 19, attributes: [] }],
    };
    assert.equal(checkChosenProposal([twoKe], sent, 1).kind, 'unacceptable');
    const foreign = {
      ...r.proposal,
      transforms: r.proposal.transforms.map((t) => (t.type === 2 ? { ...t, id: 6 } : t)),
    };
    assert.equal(checkChosenProposal([foreign], sent, 1).kind, 'unacceptable');
    assert.equal(checkChosenProposal([{ ...r.proposal, number: 9 }], sent, 1).kind, 'unacceptable');
  });
  test('INVALID_KE_PAYLOAD decision (RFC 7296 §1.2, §3.4)', () => {
    const suite = {
      encryption: { id: GCM, keyBits: 256 },
      prf: 5,
      keyExchange: 31,
      additionalKeyExchanges: [],
    };
    assert.deepEqual(checkKeyExchangePayload(suite, 31), { kind: 'ok' });
    assert.deepEqual(checkKeyExchangePayload(suite, 19), { kind: 'invalid-ke', wanted: 31 });
    assert.throws(() => checkKeyExchangePayload(suite, undefined), RemoteProtocolError);
    assert.deepEqual(proposedKeyExchanges(buildProposals(ike, 1, new Uint8Array(0))), [31, 19]);
  });
});

/** Naive reference: try every combination of one offered transform per type against the policy. */
function reference(offer: Proposal, p: ProposalPolicy, protocolId: number): boolean {
  if (offer.protocolId !== protocolId) return false;
  if (offer.transforms.some((t) => t.type < 1 || t.type > 12)) return false;
  const usable = offer.transforms.filter(
    (t) => t.attributes.every((a) => a.type === 14) && t.attributes.length <= 1,
  );
  const of = (type: number) => usable.filter((t) => t.type === type);
  const present = (type: number) => offer.transforms.some((t) => t.type === type);
  const isIke = protocolId === 1;
  for (const e of of(1)) {
    const bits = typeof e.attributes[0]?.value === 'number' ? e.attributes[0].value : 0;
    if (!p.encryption.some((x) => x.id === e.id && x.keyBits === bits)) continue;
    const aead = isAeadEncryption(e.id);
    // The one leniency: AEAD chosen from a proposal that mixes AEAD and non-AEAD ciphers with integrity.
    const lenient = of(3).some((t) => t.id !== 0) && of(1).some((t) => !isAeadEncryption(t.id));
    const integOk = aead
      ? lenient ||
        !present(3) ||
        (of(3).length === offer.transforms.filter((t) => t.type === 3).length &&
          of(3).every((t) => t.id === 0))
      : of(3).some((t) => t.id !== 0 && t.attributes.length === 0 && (p.integrity ?? []).includes(t.id));
    if (!integOk) continue;
    const prfOk = isIke
      ? of(2).some((t) => t.attributes.length === 0 && (p.prf ?? []).includes(t.id))
      : !present(2);
    if (!prfOk) continue;
    // KE and ADDKE1..7: every combination, no method twice (RFC 9370 §2.2.1)
    const options = (type: number, list: readonly number[] | undefined, absentIsNone: boolean): number[] => {
      const l = list ?? [];
      if (!present(type)) return absentIsNone && (l.length === 0 || l.includes(0)) ? [0] : [];
      return of(type)
        .filter((t) => t.attributes.length === 0)
        .map((t) => t.id)
        .filter((id) => (l.length === 0 ? absentIsNone && id === 0 : l.includes(id)))
        .filter((id) => !(isIke && type === 4 && id === 0));
    };
    const slots = [options(4, p.keyExchange, !isIke)];
    for (let i = 0; i < 7; i++) slots.push(options(6 + i, p.additionalKeyExchanges?.[i], true));
    const anyDistinct = (k: number, used: number[]): boolean =>
      k === slots.length ||
      (slots[k] ?? []).some(
        (id) => (id === 0 || !used.includes(id)) && anyDistinct(k + 1, id === 0 ? used : [...used, id]),
      );
    if (!anyDistinct(0, [])) continue;
    return true;
  }
  return false;
}

describe('negotiated suites are shared (issue #14, memory per held SA)', () => {
  test('the same negotiation twice gives one suite object; a different outcome gives its own, with its own values', () => {
    const offer = buildProposals(ike, ProtocolId.IKE, new Uint8Array(0));
    const a = selectProposal(offer, [ike], ProtocolId.IKE);
    const b = selectProposal(buildProposals(ike, ProtocolId.IKE, new Uint8Array(0)), [ike], ProtocolId.IKE);
    assert.ok(a.kind === 'chosen' && b.kind === 'chosen');
    assert.equal(a.suite, b.suite);
    const other = selectProposal(offer, [{ ...ike, keyExchange: [19] }], ProtocolId.IKE);
    assert.ok(other.kind === 'chosen');
    assert.notEqual(other.suite, a.suite);
    assert.deepEqual(other.suite, { ...a.suite, keyExchange: 19 });
    // Outcomes that differ in one value only each get their own suite, with that value.
    const cbc = (keyBits: number, integrity: number): ProposalPolicy => ({
      encryption: [{ id: CBC, keyBits }],
      prf: [5],
      integrity: [integrity],
      keyExchange: [19],
    });
    const pick = (p: ProposalPolicy) => {
      const r = selectProposal(buildProposals(p, ProtocolId.IKE, new Uint8Array(0)), [p], ProtocolId.IKE);
      assert.ok(r.kind === 'chosen');
      return r.suite;
    };
    const base = pick(cbc(128, 12));
    for (const [p, expected] of [
      [cbc(256, 12), { ...base, encryption: { id: CBC, keyBits: 256 } }],
      [cbc(128, 13), { ...base, integrity: 13 }],
    ] as const) {
      const s = pick(p);
      assert.notEqual(s, base);
      assert.deepEqual(s, expected);
    }
    assert.ok(Object.isFrozen(base) && Object.isFrozen(base.encryption), 'shared, so never written to');
    const esp: ProposalPolicy = { encryption: [{ id: GCM, keyBits: 256 }], esn: [true] };
    const espOffer = buildProposals(esp, ProtocolId.ESP, Uint8Array.of(1, 2, 3, 4));
    const withEsn = selectProposal(espOffer, [esp], ProtocolId.ESP);
    const noEsn = selectProposal(espOffer, [{ ...esp, esn: [false, true] }], ProtocolId.ESP);
    assert.ok(withEsn.kind === 'chosen' && noEsn.kind === 'chosen');
    assert.deepEqual(withEsn.suite, {
      encryption: { id: GCM, keyBits: 256 },
      additionalKeyExchanges: [],
      esn: true,
    });
    assert.equal(noEsn.suite, withEsn.suite, 'the offer has ESN only, so both policies agree on it');
    const without = selectProposal(
      buildProposals({ ...esp, esn: [false] }, ProtocolId.ESP, Uint8Array.of(1, 2, 3, 4)),
      [{ ...esp, esn: [false] }],
      ProtocolId.ESP,
    );
    assert.ok(without.kind === 'chosen');
    assert.notEqual(without.suite, withEsn.suite);
    assert.equal(without.suite.esn, false);
  });
});

describe('selection agrees with a naive reference (seeded, STYLE rule 10)', () => {
  const transform = fc.record({
    type: fc.constantFrom(1, 1, 2, 3, 4, 6, 7, 8),
    id: fc.constantFrom(0, 12, 20, 28, 5, 19, 31, 36),
    attributes: fc.oneof(
      fc.constant([]),
      fc.constant([{ type: 14, value: 128 }]),
      fc.constant([{ type: 14, value: 256 }]),
      fc.constant([{ type: 15, value: 1 }]),
    ),
  });
  const proposal = fc.record({
    number: fc.integer({ min: 1, max: 4 }),
    protocolId: fc.constant(1),
    spi: fc.constant(new Uint8Array(0)),
    transforms: fc.array(transform, { maxLength: 9 }),
  });
  const ids = (xs: number[]) => fc.uniqueArray(fc.constantFrom(...xs), { maxLength: 3 });
  const policy = fc.record({
    encryption: fc.uniqueArray(
      fc.constantFrom(
        { id: 12, keyBits: 128 },
        { id: 20, keyBits: 256 },
        { id: 20, keyBits: 128 },
        { id: 28, keyBits: 0 },
      ),
      { minLength: 1, maxLength: 3 },
    ),
    prf: ids([5, 19]),
    integrity: ids([12, 5]),
    keyExchange: ids([19, 31, 0]),
    additionalKeyExchanges: fc.array(ids([0, 19, 31, 36]), { maxLength: 3 }),
  });
  test('chosen exactly when some combination fits; the choice is from both sides', () => {
    fc.assert(
      fc.property(
        fc.array(proposal, { maxLength: 3 }),
        fc.array(policy, { minLength: 1, maxLength: 2 }),
        (offered, policies) => {
          const r = selectProposal(offered, policies, 1);
          const expected = policies.some((p) => offered.some((o) => reference(o, p, 1)));
          assert.equal(r.kind === 'chosen', expected);
          if (r.kind !== 'chosen') return;
          const src = offered.find(
            (o) => o.number === r.proposal.number && checkChosenProposal([r.proposal], [o], 1).kind === 'ok',
          );
          assert.ok(src, 'the answer matches an offered proposal');
          const types = r.proposal.transforms.map((t) => t.type);
          assert.equal(new Set(types).size, types.length);
        },
      ),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});

describe('hostile proposals (STYLE rule 12)', () => {
  test('fuzz: selection and the initiator check never throw, whatever the peer sends', () => {
    const transform = fc.record({
      type: fc.integer({ min: 0, max: 255 }),
      id: fc.integer({ min: 0, max: 65535 }),
      attributes: fc.array(
        fc.record({
          type: fc.integer({ min: 0, max: 0x7fff }),
          value: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ maxLength: 4 })),
        }),
        { maxLength: 2 },
      ),
    });
    const proposal = fc.record({
      number: fc.integer({ min: 0, max: 255 }),
      protocolId: fc.integer({ min: 0, max: 4 }),
      spi: fc.uint8Array({ maxLength: 8 }),
      transforms: fc.array(transform, { maxLength: 12 }),
    });
    const sent = [
      ...buildProposals(ike, ProtocolId.IKE, new Uint8Array(0)),
      ...buildProposals(
        { encryption: [{ id: GCM, keyBits: 256 }], keyExchange: [0, 19] },
        ProtocolId.ESP,
        new Uint8Array(4),
      ),
    ];
    fc.assert(
      fc.property(fc.array(proposal, { maxLength: 4 }), fc.constantFrom(1, 3), (offered, protocolId) => {
        const r = selectProposal(
          offered,
          [ike, { encryption: [{ id: GCM, keyBits: 256 }], keyExchange: [0, 19] }],
          protocolId,
        );
        assert.ok(r.kind === 'chosen' || r.kind === 'none');
        const c = checkChosenProposal(offered, sent, protocolId);
        assert.ok(c.kind === 'ok' || c.kind === 'unacceptable');
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
  test('ESP answer without KE is accepted only when we offered NONE (RFC 7296 §1.3.1 PFS)', () => {
    const spi = new Uint8Array(4);
    const optional = buildProposals(
      { encryption: [{ id: GCM, keyBits: 256 }], keyExchange: [19, 0] },
      ProtocolId.ESP,
      spi,
    );
    const mandatory = buildProposals(
      { encryption: [{ id: GCM, keyBits: 256 }], keyExchange: [19] },
      ProtocolId.ESP,
      spi,
    );
    const answer: Proposal = {
      number: 1,
      protocolId: ProtocolId.ESP,
      spi: Uint8Array.of(1, 2, 3, 4),
      transforms: [
        { type: TransformType.ENCR, id: GCM, attributes: [{ type: 14, value: 256 }] },
        { type: TransformType.ESN, id: 0, attributes: [] },
      ],
    };
    const ok = checkChosenProposal([answer], optional, ProtocolId.ESP);
    assert.ok(ok.kind === 'ok' && ok.suite.keyExchange === undefined && ok.suite.esn === false);
    assert.deepEqual(ok.kind === 'ok' && ok.peerSpi, Uint8Array.of(1, 2, 3, 4));
    assert.equal(checkChosenProposal([answer], mandatory, ProtocolId.ESP).kind, 'unacceptable');
  });
});
