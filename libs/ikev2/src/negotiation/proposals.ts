/**
 * SA proposals (RFC 7296 §2.7, §3.3; RFC 5282 AEAD; RFC 9370 ADDKE1..7): building ours from a
 * local policy, choosing one from a peer's offer, checking a responder's choice, and the
 * INVALID_KE_PAYLOAD decision (RFC 7296 §1.2, §3.4).
 *
 * Selection rules (RFC 7296 §3.3.6):
 * - a proposal holding a Transform Type we do not understand is unacceptable as a whole;
 * - a transform carrying an attribute we do not understand is ignored (as if not offered);
 * - one transform of each type is chosen; ENCR must match id and Key Length;
 * - an AEAD (combined-mode) cipher goes with no integrity transform or only INTEG NONE (§3.3,
 *   RFC 5282 §8); a non-AEAD cipher needs a real integrity algorithm;
 * - a Transform Type the initiator left out counts as NONE for ADDKE1..7 (RFC 9370 §2.2.1) and for
 *   the KE of an ESP proposal (no PFS); NONE is acceptable only if our policy lists it (id 0) or,
 *   for ADDKE/ESP KE, our policy has no list for that type;
 * - no key exchange method is chosen twice across KE and ADDKE1..7 (RFC 9370 §2.2.1).
 * The result is a tagged union; nothing here throws for peer input.
 */
import { ProtocolId, TransformAttributeType, TransformType } from '../codec/constants.js';
import type { Proposal, Transform } from '../codec/types.js';
import { RemoteProtocolError } from '../errors.js';

/** An encryption algorithm with its Key Length attribute in bits (0: sent without the attribute). */
export interface EncryptionChoice {
  readonly id: number;
  readonly keyBits: number;
}

/**
 * One local proposal policy, every list in our order of preference. For IKE, `prf` and
 * `keyExchange` are required; for ESP, `prf` must be empty or absent and `keyExchange` is the PFS
 * group list (absent or empty: no PFS; containing 0 (NONE): PFS optional).
 */
export interface ProposalPolicy {
  readonly encryption: readonly EncryptionChoice[];
  readonly prf?: readonly number[];
  /** Leave empty for AEAD-only policies. A policy mixing AEAD and CBC is sent as two proposals. */
  readonly integrity?: readonly number[];
  readonly keyExchange?: readonly number[];
  /** RFC 9370: index 0 is ADDKE1 ... index 6 ADDKE7; a list may contain 0 (NONE: optional). */
  readonly additionalKeyExchanges?: readonly (readonly number[])[];
  /** ESP only: ESN choices in preference order; default [false, true]. */
  readonly esn?: readonly boolean[];
}

/** What was agreed, by IANA transform id. */
export interface NegotiatedSuite {
  readonly encryption: EncryptionChoice;
  readonly prf?: number;
  /** Absent for AEAD. */
  readonly integrity?: number;
  /** Absent when no key exchange (ESP without PFS). */
  readonly keyExchange?: number;
  /** RFC 9370 methods in ADDKE1..7 order, NONE left out. */
  readonly additionalKeyExchanges: readonly number[];
  /** ESP only. */
  readonly esn?: boolean;
}

export type ProposalSelection =
  | {
      readonly kind: 'chosen';
      /** One transform per type, the peer's proposal number; `spi` empty: the caller fills ours in. */
      readonly proposal: Proposal;
      readonly suite: NegotiatedSuite;
      /** The SPI the peer put in its proposal (empty in IKE_SA_INIT). */
      readonly peerSpi: Uint8Array;
      /**
       * Set when the one deliberate leniency applied: the peer's proposal mixed AEAD and non-AEAD
       * ciphers with integrity algorithms (for the non-AEAD ones), and an AEAD cipher was chosen
       * without integrity, as strongSwan does. Log it once.
       */
      readonly lenient?: 'aead-with-integrity';
    }
  | { readonly kind: 'none' };

export interface SelectOptions {
  /**
   * Prefer this key exchange method when the chosen proposal offers it and our policy allows it
   * (the group of the KE payload the peer already sent, RFC 7296 §1.2: no INVALID_KE_PAYLOAD
   * round trip when it is acceptable).
   */
  readonly preferKeyExchange?: number;
}

/** Combined-mode ciphers (RFC 5282, RFC 7634): AES-CCM 14/15/16, AES-GCM 18/19/20, ChaCha20-Poly1305 28. */
const AEAD_IDS: ReadonlySet<number> = new Set([14, 15, 16, 18, 19, 20, 28]);
export const INTEGRITY_NONE = 0;
export const KEY_EXCHANGE_NONE = 0;
const ESN_NO = 0;
const ESN_YES = 1;
const ADDKE_TYPES = [
  TransformType.ADDKE1,
  TransformType.ADDKE2,
  TransformType.ADDKE3,
  TransformType.ADDKE4,
  TransformType.ADDKE5,
  TransformType.ADDKE6,
  TransformType.ADDKE7,
] as const;
const MAX_TRANSFORM_TYPE = TransformType.ADDKE7;

export function isAeadEncryption(id: number): boolean {
  return AEAD_IDS.has(id);
}

const bare = (type: number, id: number): Transform => ({ type, id, attributes: [] });

function encrTransform(e: EncryptionChoice): Transform {
  return {
    type: TransformType.ENCR,
    id: e.id,
    attributes: e.keyBits === 0 ? [] : [{ type: TransformAttributeType.KEY_LENGTH, value: e.keyBits }],
  };
}

function transformsOf(
  p: ProposalPolicy,
  encryption: readonly EncryptionChoice[],
  aead: boolean,
): Transform[] {
  const out: Transform[] = encryption.map(encrTransform);
  for (const id of p.prf ?? []) out.push(bare(TransformType.PRF, id));
  if (!aead) for (const id of p.integrity ?? []) out.push(bare(TransformType.INTEG, id));
  for (const id of p.keyExchange ?? []) out.push(bare(TransformType.KE, id));
  (p.additionalKeyExchanges ?? []).forEach((ids, i) => {
    const type = ADDKE_TYPES[i];
    if (type !== undefined) for (const id of ids) out.push(bare(type, id));
  });
  return out;
}

/**
 * Our proposals, numbered from 1 in policy order. A policy that lists both AEAD and non-AEAD
 * ciphers becomes two proposals (AEAD first when its first cipher is AEAD), since one proposal
 * cannot mix them with integrity (RFC 7296 §3.3). For ESP, ESN transforms are appended.
 * @param spi empty for IKE_SA_INIT, 8 octets for an IKE rekey, 4 for ESP (our inbound SPI)
 * @throws LocalUsageError never; an empty policy list gives an empty array
 */
export function buildProposals(
  policy: ProposalPolicy | readonly ProposalPolicy[],
  protocolId: number,
  spi: Uint8Array,
): Proposal[] {
  const policies: readonly ProposalPolicy[] = Array.isArray(policy)
    ? (policy as readonly ProposalPolicy[])
    : [policy as ProposalPolicy];
  const out: Proposal[] = [];
  for (const p of policies) {
    const aead = p.encryption.filter((e) => isAeadEncryption(e.id));
    const plain = p.encryption.filter((e) => !isAeadEncryption(e.id));
    const groups: [readonly EncryptionChoice[], boolean][] = [];
    const aeadFirst = p.encryption[0] !== undefined && isAeadEncryption(p.encryption[0].id);
    if (aeadFirst) groups.push([aead, true]);
    if (plain.length > 0) groups.push([plain, false]);
    if (!aeadFirst && aead.length > 0) groups.push([aead, true]);
    for (const [encryption, isAead] of groups) {
      const transforms = transformsOf(p, encryption, isAead);
      if (protocolId === ProtocolId.ESP) {
        for (const e of p.esn ?? [false, true])
          transforms.push(bare(TransformType.ESN, e ? ESN_YES : ESN_NO));
      }
      out.push({ number: out.length + 1, protocolId, spi, transforms });
    }
  }
  return out;
}

/** Transforms of one offered proposal by type, unknown-attribute ones removed; undefined if unacceptable. */
function offeredByType(p: Proposal): Map<number, Transform[]> | undefined {
  const m = new Map<number, Transform[]>();
  for (const t of p.transforms) {
    if (t.type < TransformType.ENCR || t.type > MAX_TRANSFORM_TYPE) return undefined;
    const list = m.get(t.type) ?? [];
    m.set(t.type, list);
    const known = t.attributes.every(
      (a) => a.type === TransformAttributeType.KEY_LENGTH && typeof a.value === 'number',
    );
    const keyLengths = t.attributes.length;
    if (!known || keyLengths > 1) continue;
    list.push(t);
  }
  return m;
}

function keyBitsOf(t: Transform): number {
  const a = t.attributes[0];
  return typeof a?.value === 'number' ? a.value : 0;
}

function has(list: readonly Transform[] | undefined, id: number): boolean {
  return list !== undefined && list.some((t) => t.id === id && t.attributes.length === 0);
}

/** First of `ours` offered (absent type offered = NONE when `absentIsNone`), or undefined. */
function pick(
  ours: readonly number[],
  offered: readonly Transform[] | undefined,
  absentIsNone: boolean,
): number | undefined {
  const wanted = ours.length === 0 && absentIsNone ? [KEY_EXCHANGE_NONE] : ours;
  for (const id of wanted) {
    if (offered === undefined) {
      if (absentIsNone && id === KEY_EXCHANGE_NONE) return id;
    } else if (has(offered, id)) return id;
  }
  return undefined;
}

/** One id per slot from its candidates, no non-NONE id twice (nor one of `used`); first fit in order. */
function assignDistinct(
  candidates: readonly (readonly number[])[],
  used: readonly number[],
): number[] | undefined {
  // Depth-first in preference order per type (the first complete assignment wins), on one picks
  // array and one taken list instead of arrays per level (issue #14: per-setup allocation).
  const picks: number[] = new Array<number>(candidates.length);
  const taken = [...used];
  const go = (i: number): boolean => {
    if (i === candidates.length) return true;
    for (const id of candidates[i]!) {
      if (id !== KEY_EXCHANGE_NONE && taken.includes(id)) continue;
      picks[i] = id;
      if (id !== KEY_EXCHANGE_NONE) taken.push(id);
      if (go(i + 1)) return true;
      if (id !== KEY_EXCHANGE_NONE) taken.pop();
    }
    return false;
  };
  return go(0) ? picks : undefined;
}

/** The suite and chosen transforms if `offer` fits `policy`, else undefined. */
function matchOne(
  offer: Proposal,
  policy: ProposalPolicy,
  protocolId: number,
  options: SelectOptions = {},
): { suite: NegotiatedSuite; transforms: Transform[]; lenient?: 'aead-with-integrity' } | undefined {
  if (offer.protocolId !== protocolId) return undefined;
  const byType = offeredByType(offer);
  if (byType === undefined) return undefined;
  const isIke = protocolId === ProtocolId.IKE;
  const encrs = byType.get(TransformType.ENCR);
  if (encrs === undefined) return undefined;
  const integs = byType.get(TransformType.INTEG);
  const chosen: Transform[] = [];

  let encryption: EncryptionChoice | undefined;
  let integrity: number | undefined;
  let integTransform: Transform | undefined;
  let lenient: 'aead-with-integrity' | undefined;
  for (const e of policy.encryption) {
    if (!encrs.some((t) => t.id === e.id && keyBitsOf(t) === e.keyBits)) continue;
    if (isAeadEncryption(e.id)) {
      if (integs !== undefined && integs.length > 0 && !integs.every((t) => t.id === INTEGRITY_NONE)) {
        // RFC 7296 §3.3 forbids integrity with an AEAD cipher, but a proposal that also offers
        // non-AEAD ciphers carries integrity for those: choose the AEAD without integrity.
        if (!encrs.some((t) => !isAeadEncryption(t.id))) continue;
        encryption = e;
        integrity = undefined;
        integTransform = undefined;
        lenient = 'aead-with-integrity';
        break;
      }
      // a type present but with only ignored transforms is not "absent"
      if (
        integs !== undefined &&
        integs.length === 0 &&
        offer.transforms.some((t) => t.type === TransformType.INTEG)
      )
        continue;
      encryption = e;
      integrity = undefined;
      integTransform =
        integs !== undefined && integs.length > 0 ? bare(TransformType.INTEG, INTEGRITY_NONE) : undefined;
      break;
    }
    const id = (policy.integrity ?? []).find((i) => i !== INTEGRITY_NONE && has(integs, i));
    if (id === undefined) continue;
    encryption = e;
    integrity = id;
    integTransform = bare(TransformType.INTEG, id);
    break;
  }
  if (encryption === undefined) return undefined;
  chosen.push(encrTransform(encryption));

  let prf: number | undefined;
  const prfs = byType.get(TransformType.PRF);
  if (isIke) {
    prf = pick(policy.prf ?? [], prfs, false);
    if (prf === undefined) return undefined;
    chosen.push(bare(TransformType.PRF, prf));
  } else if (prfs !== undefined) return undefined;
  if (integTransform !== undefined) chosen.push(integTransform);

  const kes = byType.get(TransformType.KE);
  const ours = policy.keyExchange ?? [];
  const preferred = options.preferKeyExchange;
  const keOrder =
    preferred !== undefined && ours.includes(preferred)
      ? [preferred, ...ours.filter((g) => g !== preferred)]
      : ours;
  const ke = pick(keOrder, kes, !isIke);
  if (ke === undefined || (isIke && ke === KEY_EXCHANGE_NONE)) return undefined;
  if (kes !== undefined) chosen.push(bare(TransformType.KE, ke));

  // RFC 9370 §2.2.1: one method per ADDKE type, NONE when the type is absent, and no method used
  // twice (KE included). A small backtracking search keeps our preference order per type. Neither
  // side doing any (the common case) needs no search.
  const additional: number[] = [];
  if (
    ADDKE_TYPES.some((type) => byType.has(type)) ||
    (policy.additionalKeyExchanges ?? []).some((ids) => ids.length > 0)
  ) {
    const candidates = ADDKE_TYPES.map((type, i) => {
      const offered = byType.get(type);
      const ours = policy.additionalKeyExchanges?.[i] ?? [];
      const wanted = ours.length === 0 ? [KEY_EXCHANGE_NONE] : ours;
      return wanted.filter((id) => (offered === undefined ? id === KEY_EXCHANGE_NONE : has(offered, id)));
    });
    const picks = assignDistinct(candidates, ke === KEY_EXCHANGE_NONE ? [] : [ke]);
    if (picks === undefined) return undefined;
    picks.forEach((id, i) => {
      const type = ADDKE_TYPES[i] as number;
      if (byType.has(type)) chosen.push(bare(type, id));
      if (id !== KEY_EXCHANGE_NONE) additional.push(id);
    });
  }

  let esn: boolean | undefined;
  if (protocolId === ProtocolId.ESP || protocolId === ProtocolId.AH) {
    const esns = byType.get(TransformType.ESN);
    const esnOurs = (policy.esn ?? [false, true]).map((e) => (e ? ESN_YES : ESN_NO));
    // A missing ESN transform is read as "no ESN" (RFC 4303 peers that omit it never use ESN).
    const id =
      esns === undefined
        ? esnOurs.includes(ESN_NO)
          ? ESN_NO
          : undefined
        : esnOurs.find((x) => has(esns, x));
    if (id === undefined) return undefined;
    esn = id === ESN_YES;
    if (esns !== undefined) chosen.push(bare(TransformType.ESN, id));
  } else if (byType.has(TransformType.ESN)) return undefined;

  const suite = internSuite(encryption, prf, integrity, ke, additional, esn);
  return lenient ? { suite, transforms: chosen, lenient } : { suite, transforms: chosen };
}

/**
 * Negotiated suites are few (the combinations our policies allow), and every SA keeps one per IKE
 * SA and per child: one shared object per distinct suite instead of an object and an array per SA
 * (issue #14: 209 B less per held SA in the 5k-SA scale bench). Bounded, oldest out first: only
 * the combinations our policies allow can be negotiated, but a policy reload brings new ones.
 * Frozen: a shared suite is never written to (a rekey negotiates a new one), and a write would
 * throw rather than change every SA of that suite.
 */
const SUITES = new Map<string, NegotiatedSuite>();
const SUITES_MAX = 1024;

function internSuite(
  encryption: EncryptionChoice,
  prf: number | undefined,
  integrity: number | undefined,
  ke: number,
  additional: readonly number[],
  esn: boolean | undefined,
): NegotiatedSuite {
  const key = `${encryption.id}/${encryption.keyBits}/${prf}/${integrity}/${ke}/${additional.join(',')}/${esn}`;
  const found = SUITES.get(key);
  if (found !== undefined) return found;
  const suite: NegotiatedSuite = Object.freeze({
    encryption: Object.freeze({ id: encryption.id, keyBits: encryption.keyBits }),
    ...(prf !== undefined ? { prf } : {}),
    ...(integrity !== undefined ? { integrity } : {}),
    ...(ke !== KEY_EXCHANGE_NONE ? { keyExchange: ke } : {}),
    additionalKeyExchanges: Object.freeze(additional),
    ...(esn !== undefined ? { esn } : {}),
  });
  if (SUITES.size >= SUITES_MAX) SUITES.delete(SUITES.keys().next().value as string);
  SUITES.set(key, suite);
  return suite;
}

/** The shared object for `suite` (one read back from a store is a copy of its own). */
export function sharedSuite(suite: NegotiatedSuite): NegotiatedSuite {
  return internSuite(
    suite.encryption,
    suite.prf,
    suite.integrity,
    suite.keyExchange ?? KEY_EXCHANGE_NONE,
    suite.additionalKeyExchanges ?? [],
    suite.esn,
  );
}

/**
 * Responder: choose one of the peer's proposals (RFC 7296 §2.7). `prefer: 'ours'` (default) walks
 * our policies in order and takes the first offered proposal that fits; `'peer'` walks the peer's
 * proposals in order. Returns `{ kind: 'none' }` (answer NO_PROPOSAL_CHOSEN) when nothing fits.
 */
export function selectProposal(
  offered: readonly Proposal[],
  policies: readonly ProposalPolicy[],
  protocolId: number,
  prefer: 'ours' | 'peer' = 'ours',
  options: SelectOptions = {},
): ProposalSelection {
  const tryPair = (o: Proposal, p: ProposalPolicy): ProposalSelection | undefined => {
    const m = matchOne(o, p, protocolId, options);
    if (m === undefined) return undefined;
    return {
      kind: 'chosen',
      proposal: { number: o.number, protocolId, spi: new Uint8Array(0), transforms: m.transforms },
      suite: m.suite,
      peerSpi: o.spi,
      ...(m.lenient ? { lenient: m.lenient } : {}),
    };
  };
  if (prefer === 'ours') {
    for (const p of policies)
      for (const o of offered) {
        const r = tryPair(o, p);
        if (r !== undefined) return r;
      }
  } else {
    for (const o of offered)
      for (const p of policies) {
        const r = tryPair(o, p);
        if (r !== undefined) return r;
      }
  }
  return { kind: 'none' };
}

/** Our sent proposal read back as a policy, in the order we sent its transforms. */
function policyOf(p: Proposal): ProposalPolicy {
  const ids = (type: number) => p.transforms.filter((t) => t.type === type).map((t) => t.id);
  return {
    encryption: p.transforms
      .filter((t) => t.type === TransformType.ENCR)
      .map((t) => ({ id: t.id, keyBits: keyBitsOf(t) })),
    prf: ids(TransformType.PRF),
    integrity: ids(TransformType.INTEG),
    keyExchange: ids(TransformType.KE),
    additionalKeyExchanges: ADDKE_TYPES.map((t) => ids(t)),
    esn: ids(TransformType.ESN).map((x) => x === ESN_YES),
  };
}

export type ChosenProposalCheck =
  | { readonly kind: 'ok'; readonly suite: NegotiatedSuite; readonly peerSpi: Uint8Array }
  | { readonly kind: 'unacceptable'; readonly reason: string };

/**
 * Initiator: is the responder's single proposal one of ours, reduced to one transform per type
 * (RFC 7296 §2.7: "the responder MUST select exactly one proposal ... and MUST NOT add ... ")?
 * Answer 'unacceptable' by deleting the SA (the peer misbehaved; RFC 7296 §2.21.x leaves the exact
 * reaction to us).
 */
export function checkChosenProposal(
  chosen: readonly Proposal[],
  sent: readonly Proposal[],
  protocolId: number,
): ChosenProposalCheck {
  if (chosen.length !== 1)
    return { kind: 'unacceptable', reason: `${chosen.length} proposals in the answer` };
  const c = chosen[0] as Proposal;
  const ours = sent.find((s) => s.number === c.number);
  if (ours === undefined) return { kind: 'unacceptable', reason: `proposal #${c.number} was not offered` };
  const seen = new Set<number>();
  for (const t of c.transforms) {
    if (seen.has(t.type)) return { kind: 'unacceptable', reason: `two transforms of type ${t.type}` };
    seen.add(t.type);
  }
  const m = matchOne(c, policyOf(ours), protocolId);
  if (m === undefined)
    return { kind: 'unacceptable', reason: `proposal #${c.number} does not match what we sent` };
  return { kind: 'ok', suite: m.suite, peerSpi: c.spi };
}

/** Every key exchange method that appears as KE in `proposals` (for a peer's INVALID_KE_PAYLOAD). */
export function proposedKeyExchanges(proposals: readonly Proposal[]): number[] {
  const out: number[] = [];
  for (const p of proposals)
    for (const t of p.transforms)
      if (t.type === TransformType.KE && t.id !== KEY_EXCHANGE_NONE && !out.includes(t.id)) out.push(t.id);
  return out;
}

export type KeCheck = { readonly kind: 'ok' } | { readonly kind: 'invalid-ke'; readonly wanted: number };

/**
 * Responder: does the KE payload's group fit the chosen suite (RFC 7296 §1.2, §1.3, §3.4)? A
 * different group asks for INVALID_KE_PAYLOAD naming `wanted`. `keGroup` undefined means the
 * message had no KE payload.
 * @throws RemoteProtocolError INVALID_SYNTAX when a KE payload is missing although the suite has
 *   a key exchange, or present although it has none (§1.3.1, §3.4)
 */
export function checkKeyExchangePayload(suite: NegotiatedSuite, keGroup: number | undefined): KeCheck {
  if (suite.keyExchange === undefined) {
    if (keGroup !== undefined)
      throw new RemoteProtocolError(
        'IKEGATE_ERR_IKEV2_UNEXPECTED_PAYLOAD',
        'KE payload without a KE transform',
      );
    return { kind: 'ok' };
  }
  if (keGroup === undefined)
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_MISSING_PAYLOAD',
      'KE transform chosen but no KE payload',
    );
  return keGroup === suite.keyExchange ? { kind: 'ok' } : { kind: 'invalid-ke', wanted: suite.keyExchange };
}
