/**
 * Proposal building and selection (RFC 7296 §2.7, §3.3), SK protection from raw key octets, and
 * the seeded key-exchange ephemeral that lets the state stay plain data.
 */
import type { CryptoProvider, KeyExchangeInitiation, RandomBytes } from '@ikegate/crypto';
import {
  type Proposal,
  ProtocolId,
  type SaPayload,
  type SkProtection,
  type Transform,
  TransformAttributeType,
  TransformType,
  transformKeyLength,
  EsnId,
  PayloadType,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { NotifyError } from '../codec/index.js';
import type { EspProposalPolicy, EspSuite, IkeKeys, IkeProposalPolicy, IkeSuite } from './types.js';

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Unsigned big-endian comparison, shorter-is-lower on a common prefix (RFC 7296 §2.8.1 nonces). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

function encrTransform(a: { id: number; keyBits: number }): Transform {
  return {
    type: TransformType.ENCR,
    id: a.id,
    attributes: [{ type: TransformAttributeType.KEY_LENGTH, value: a.keyBits }],
  };
}

const t = (type: number, id: number): Transform => ({ type, id, attributes: [] });

/** IKE SA proposals, one per policy entry; `spi` is empty in IKE_SA_INIT, 8 octets in a rekey. */
export function ikeSaPayload(
  policies: readonly IkeProposalPolicy[],
  spi: Uint8Array,
  keFirst?: number,
  withAdditionalKe = false,
): SaPayload {
  const proposals: Proposal[] = policies.map((p, i) => {
    const ke =
      keFirst !== undefined && p.keyExchange.includes(keFirst)
        ? [keFirst, ...p.keyExchange.filter((g) => g !== keFirst)]
        : p.keyExchange;
    return {
      number: i + 1,
      protocolId: ProtocolId.IKE,
      spi,
      transforms: [
        ...p.encryption.map(encrTransform),
        ...p.prf.map((id) => t(TransformType.PRF, id)),
        ...p.integrity.map((id) => t(TransformType.INTEG, id)),
        ...ke.map((id) => t(TransformType.KE, id)),
        ...(withAdditionalKe ? (p.additionalKeyExchange1 ?? []) : []).map((id) =>
          t(TransformType.ADDKE1, id),
        ),
      ],
    };
  });
  return { type: PayloadType.SA, critical: false, proposals };
}

export function ikeSuiteSaPayload(s: IkeSuite, spi: Uint8Array, number = 1): SaPayload {
  const transforms = [encrTransform(s.encryption), t(TransformType.PRF, s.prf)];
  if (s.integrity !== 0) transforms.push(t(TransformType.INTEG, s.integrity));
  transforms.push(t(TransformType.KE, s.keyExchange));
  if (s.additionalKeyExchange1 !== undefined)
    transforms.push(t(TransformType.ADDKE1, s.additionalKeyExchange1));
  return {
    type: PayloadType.SA,
    critical: false,
    proposals: [{ number, protocolId: ProtocolId.IKE, spi, transforms }],
  };
}

export function espSaPayload(
  policies: readonly EspProposalPolicy[],
  spi: Uint8Array,
  pfsGroup?: number,
): SaPayload {
  return {
    type: PayloadType.SA,
    critical: false,
    proposals: policies.map((p, i) => ({
      number: i + 1,
      protocolId: ProtocolId.ESP,
      spi,
      transforms: [
        ...p.encryption.map(encrTransform),
        ...p.integrity.map((id) => t(TransformType.INTEG, id)),
        ...(pfsGroup !== undefined ? [t(TransformType.KE, pfsGroup)] : []),
        t(TransformType.ESN, EsnId.NO_ESN),
      ],
    })),
  };
}

export function espSuiteSaPayload(s: EspSuite, spi: Uint8Array, pfsGroup?: number, number = 1): SaPayload {
  const transforms = [encrTransform(s.encryption)];
  if (s.integrity !== 0) transforms.push(t(TransformType.INTEG, s.integrity));
  if (pfsGroup !== undefined) transforms.push(t(TransformType.KE, pfsGroup));
  transforms.push(t(TransformType.ESN, EsnId.NO_ESN));
  return {
    type: PayloadType.SA,
    critical: false,
    proposals: [{ number, protocolId: ProtocolId.ESP, spi, transforms }],
  };
}

function noProposal(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_NO_PROPOSAL', why, NotifyError.NO_PROPOSAL_CHOSEN);
}

function ofType(p: Proposal, type: number): Transform[] {
  return p.transforms.filter((x) => x.type === type);
}

function pickEncr(p: Proposal, ours: readonly { id: number; keyBits: number }[]) {
  for (const o of ours)
    for (const x of ofType(p, TransformType.ENCR))
      if (x.id === o.id && (transformKeyLength(x) ?? 0) === o.keyBits) return o;
  return undefined;
}

function pickId(p: Proposal, type: number, ours: readonly number[]): number | undefined {
  const theirs = ofType(p, type).map((x) => x.id);
  if (ours.length === 0) return theirs.length === 0 || theirs.includes(0) ? 0 : undefined;
  return ours.find((id) => theirs.includes(id));
}

/**
 * Responder selection for IKE: the first of the peer's proposals that one of ours covers, with
 * our preference inside it; the peer's KE group is kept when acceptable (RFC 7296 §1.3).
 */
export function selectIkeSuite(
  sa: SaPayload,
  policies: readonly IkeProposalPolicy[],
  peerKeGroup: number | undefined,
  allowAdditionalKe = true,
): { suite: IkeSuite; proposal: Proposal } {
  for (const p of sa.proposals) {
    if (p.protocolId !== ProtocolId.IKE) continue;
    for (const ours of policies) {
      const encryption = pickEncr(p, ours.encryption);
      const prf = pickId(p, TransformType.PRF, ours.prf);
      const integrity = pickId(p, TransformType.INTEG, ours.integrity);
      const theirKe = ofType(p, TransformType.KE).map((x) => x.id);
      const acceptable = ours.keyExchange.filter((g) => theirKe.includes(g));
      if (!encryption || prf === undefined || prf === 0 || integrity === undefined || acceptable.length === 0)
        continue;
      const keyExchange =
        peerKeGroup !== undefined && acceptable.includes(peerKeGroup) ? peerKeGroup : acceptable[0]!;
      // RFC 9370 §2.2.2: ADDKE1 is optional only if the peer also offers NONE (0).
      const theirAdd = ofType(p, TransformType.ADDKE1).map((x) => x.id);
      let additionalKeyExchange1: number | undefined;
      if (theirAdd.length > 0) {
        additionalKeyExchange1 = allowAdditionalKe
          ? (ours.additionalKeyExchange1 ?? []).find((g) => g !== 0 && theirAdd.includes(g))
          : undefined;
        if (additionalKeyExchange1 === undefined && !theirAdd.includes(0)) continue;
      }
      const suite: IkeSuite = {
        encryption,
        prf,
        integrity,
        keyExchange,
        ...(additionalKeyExchange1 !== undefined ? { additionalKeyExchange1 } : {}),
      };
      return { suite, proposal: p };
    }
  }
  throw noProposal('no acceptable IKE proposal');
}

export function selectEspSuite(
  sa: SaPayload,
  policies: readonly EspProposalPolicy[],
  pfsGroup: number | undefined,
): { suite: EspSuite; proposal: Proposal; keGroup?: number } {
  for (const p of sa.proposals) {
    if (p.protocolId !== ProtocolId.ESP || p.spi.length !== 4) continue;
    for (const ours of policies) {
      const encryption = pickEncr(p, ours.encryption);
      const integrity = pickId(p, TransformType.INTEG, ours.integrity);
      const esn = ofType(p, TransformType.ESN).map((x) => x.id);
      if (!encryption || integrity === undefined) continue;
      if (esn.length > 0 && !esn.includes(EsnId.NO_ESN)) continue;
      const theirKe = ofType(p, TransformType.KE).map((x) => x.id);
      if (pfsGroup !== undefined && theirKe.length > 0 && !theirKe.includes(pfsGroup)) continue;
      const keGroup = pfsGroup !== undefined && theirKe.includes(pfsGroup) ? pfsGroup : undefined;
      return keGroup === undefined
        ? { suite: { encryption, integrity }, proposal: p }
        : { suite: { encryption, integrity }, proposal: p, keGroup };
    }
  }
  throw noProposal('no acceptable ESP proposal');
}

/** Reads the single-choice suite an IKE responder returned. */
export function acceptedIkeSuite(sa: SaPayload, policies: readonly IkeProposalPolicy[]): IkeSuite {
  const p = sa.proposals[0];
  if (sa.proposals.length !== 1 || p === undefined) throw noProposal('responder must choose one proposal');
  const { suite } = selectIkeSuite({ ...sa, proposals: [p] }, policies, undefined);
  const ke = ofType(p, TransformType.KE);
  if (ke.length !== 1 || ke[0]!.id !== suite.keyExchange) throw noProposal('responder KE choice');
  const add = ofType(p, TransformType.ADDKE1);
  if (add.length > 1 || (add[0]?.id ?? 0) !== (suite.additionalKeyExchange1 ?? 0))
    throw noProposal('responder ADDKE1 choice');
  return suite;
}

function ikeKeyLengths(provider: CryptoProvider, s: IkeSuite): { skE: number; skA: number } {
  const aead = provider.aead(s.encryption.id, s.encryption.keyBits);
  if (aead) return { skE: aead.keyLength, skA: 0 };
  const cipher = provider.cipher(s.encryption.id, s.encryption.keyBits);
  const integ = provider.integrity(s.integrity);
  if (!cipher || !integ) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'unsupported IKE suite');
  return { skE: cipher.keyLength, skA: integ.keyLength };
}

export { ikeKeyLengths };

export function espKeyLengths(provider: CryptoProvider, s: EspSuite): { encr: number; integ: number } {
  const aead = provider.aead(s.encryption.id, s.encryption.keyBits);
  if (aead) return { encr: aead.keyLength, integ: 0 };
  const cipher = provider.cipher(s.encryption.id, s.encryption.keyBits);
  const integ = provider.integrity(s.integrity);
  if (!cipher || !integ) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'unsupported ESP suite');
  return { encr: cipher.keyLength, integ: integ.keyLength };
}

export function prfOf(provider: CryptoProvider, id: number) {
  const prf = provider.prf(id);
  if (!prf) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `PRF ${id} unsupported`);
  return prf;
}

/** SK protection for one direction: `initiatorSends` picks SK_ei/SK_ai, otherwise SK_er/SK_ar. */
export function skProtection(
  provider: CryptoProvider,
  s: IkeSuite,
  keys: IkeKeys,
  initiatorSends: boolean,
): SkProtection {
  const e = initiatorSends ? keys.skEi : keys.skEr;
  const a = initiatorSends ? keys.skAi : keys.skAr;
  const aead = provider.aead(s.encryption.id, s.encryption.keyBits);
  if (aead) return { kind: 'aead', key: aead.create(e), ivLength: aead.ivLength, icvLength: aead.icvLength };
  const cipher = provider.cipher(s.encryption.id, s.encryption.keyBits);
  const integ = provider.integrity(s.integrity);
  if (!cipher || !integ) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'unsupported IKE suite');
  return {
    kind: 'cbc',
    key: cipher.create(e),
    blockSize: cipher.blockSize,
    ivLength: cipher.ivLength,
    integrity: integ.create(a),
    icvLength: integ.icvLength,
  };
}

/**
 * The KE ephemeral is drawn from a seed kept in the state, so the initiation can be recreated
 * when the response arrives without holding a closure. The seed is as secret as the private key.
 */
export function seededRandom(provider: CryptoProvider, seed: Uint8Array): RandomBytes {
  let counter = 0;
  return (length: number) => {
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const block = provider.hash('sha512', seed, Uint8Array.of(counter >>> 8, counter & 0xff));
      counter++;
      const take = Math.min(block.length, length - off);
      out.set(block.subarray(0, take), off);
      off += take;
    }
    return out;
  };
}

/**
 * Ephemerals built when an IKE_SA_INIT (or IKE_INTERMEDIATE) request is sent, kept until its
 * response comes back, so the private key is not derived from its seed a second time (an extra
 * scalar multiplication per setup). A pure memo: a miss rebuilds the same key from the seed, as
 * after a failover. Bounded (oldest dropped first); an entry is taken out when it is used.
 */
const INITIATION_MEMO_LIMIT = 4096;
const initiations = new Map<string, KeyExchangeInitiation>();

export function keInitiation(
  provider: CryptoProvider,
  group: number,
  seed: Uint8Array,
): KeyExchangeInitiation {
  const key = `${provider.name}:${group}:${Buffer.from(seed.buffer, seed.byteOffset, seed.byteLength).toString('base64')}`;
  const hit = initiations.get(key);
  if (hit !== undefined) {
    initiations.delete(key);
    return hit;
  }
  const method = provider.keyExchange(group);
  if (!method) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `key exchange ${group} unsupported`);
  const made = method.initiate(seededRandom(provider, seed));
  if (initiations.size >= INITIATION_MEMO_LIMIT) initiations.delete(initiations.keys().next().value!);
  initiations.set(key, made);
  return made;
}

export function keRespond(
  provider: CryptoProvider,
  group: number,
  data: Uint8Array,
  random: RandomBytes,
): { publicData: Uint8Array; sharedSecret: Uint8Array } {
  const method = provider.keyExchange(group);
  if (!method) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `key exchange ${group} unsupported`);
  try {
    return method.respond(data, random);
  } catch (e) {
    throw asIkeError(e);
  }
}

export function keComplete(init: KeyExchangeInitiation, data: Uint8Array): Uint8Array {
  try {
    return init.complete(data);
  } catch (e) {
    throw asIkeError(e);
  }
}

/** Crypto's RemoteProtocolError (bad KE data) becomes ours, answered with INVALID_SYNTAX. */
function asIkeError(e: unknown): unknown {
  if (e instanceof Error && e.name === 'RemoteProtocolError' && !(e instanceof RemoteProtocolError))
    return new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', e.message);
  return e;
}
