/**
 * RFC 7296 §3.3 Security Association payload: proposals, transforms, attributes.
 *
 * Proposal substructure (§3.3.1):
 *  0                   1                   2                   3
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Last Substruc |   RESERVED    |         Proposal Length       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                        SPI (variable)                         ~
 * ~                        <Transforms>                           ~
 *
 * Transform substructure (§3.3.2):
 * | Last Substruc |   RESERVED    |        Transform Length       |
 * |Transform Type |   RESERVED    |          Transform ID         |
 * ~                      Transform Attributes                     ~
 *
 * Attribute (§3.3.5): |A| Attribute Type (15) | AF=1: Value (16) ; AF=0: Length (16) | Value
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType, ProtocolId, TransformAttributeType } from '../constants.js';
import type { Proposal, SaPayload, Transform, TransformAttribute } from '../types.js';

export const PROPOSAL_HEADER_LENGTH = 8;
export const TRANSFORM_HEADER_LENGTH = 8;
const LAST = 0;
const MORE_PROPOSALS = 2;
const MORE_TRANSFORMS = 3;
/** Proposal Num is one octet; more proposals than that cannot be numbered (§3.3.1). */
export const MAX_PROPOSALS = 255;

function decodeAttributes(b: Uint8Array): TransformAttribute[] {
  const attrs: TransformAttribute[] = [];
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 4) throw syntax('transform attribute truncated');
    const word = u16(b, off);
    const type = word & 0x7fff;
    if (word & 0x8000) {
      attrs.push({ type, value: u16(b, off + 2) });
      off += 4;
    } else {
      const len = u16(b, off + 2);
      if (off + 4 + len > b.length) throw syntax('TLV attribute overruns its transform');
      attrs.push({ type, value: b.subarray(off + 4, off + 4 + len) });
      off += 4 + len;
    }
  }
  return attrs;
}

function decodeTransforms(b: Uint8Array, count: number): Transform[] {
  const out: Transform[] = [];
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (b.length - off < TRANSFORM_HEADER_LENGTH) throw syntax('transform truncated');
    const last = b[off]!;
    const len = u16(b, off + 2);
    if (len < TRANSFORM_HEADER_LENGTH || off + len > b.length) throw syntax(`transform length ${len}`);
    const isLast = i === count - 1;
    if (last !== (isLast ? LAST : MORE_TRANSFORMS)) throw syntax(`transform Last Substruc ${last}`);
    out.push({
      type: b[off + 4]!,
      id: u16(b, off + 6),
      attributes: decodeAttributes(b.subarray(off + 8, off + len)),
    });
    off += len;
  }
  if (off !== b.length) throw syntax('octets after the last transform');
  return out;
}

export function decodeSa(body: Uint8Array, critical: boolean): SaPayload {
  const proposals: Proposal[] = [];
  let off = 0;
  while (off < body.length) {
    if (proposals.length >= MAX_PROPOSALS) throw syntax('too many proposals');
    if (body.length - off < PROPOSAL_HEADER_LENGTH) throw syntax('proposal truncated');
    const last = body[off]!;
    const len = u16(body, off + 2);
    if (len < PROPOSAL_HEADER_LENGTH || off + len > body.length) throw syntax(`proposal length ${len}`);
    const p = body.subarray(off, off + len);
    const spiSize = p[6]!;
    const count = p[7]!;
    need(p, PROPOSAL_HEADER_LENGTH + spiSize, 'proposal SPI');
    proposals.push({
      number: p[4]!,
      protocolId: p[5]!,
      spi: p.subarray(8, 8 + spiSize),
      transforms: decodeTransforms(p.subarray(8 + spiSize), count),
    });
    off += len;
    const isLast = off === body.length;
    if (last !== (isLast ? LAST : MORE_PROPOSALS)) throw syntax(`proposal Last Substruc ${last}`);
  }
  if (proposals.length === 0) throw syntax('SA payload without proposals');
  return { type: PayloadType.SA, critical, proposals };
}

/**
 * Allowed values (§3.3.1): proposal numbers start at 1 and rise by one; SPI size fits the protocol
 * (0 or 8 for IKE, 4 for ESP/AH); at least one transform. Returns a reason, or undefined if fine.
 */
export function verifySa(p: SaPayload): string | undefined {
  let expected = 1;
  for (const prop of p.proposals) {
    if (prop.number !== expected) return `proposal number ${prop.number}, expected ${expected}`;
    expected++;
    if (prop.transforms.length === 0) return `proposal ${prop.number} has no transforms`;
    if (prop.protocolId === ProtocolId.IKE && prop.spi.length !== 0 && prop.spi.length !== 8)
      return 'IKE SPI size';
    if ((prop.protocolId === ProtocolId.ESP || prop.protocolId === ProtocolId.AH) && prop.spi.length !== 4)
      return 'ESP/AH SPI size';
  }
  return undefined;
}

/** The Key Length attribute (§3.3.5), if the transform has one. */
export function transformKeyLength(t: Transform): number | undefined {
  const a = t.attributes.find((x) => x.type === TransformAttributeType.KEY_LENGTH);
  return typeof a?.value === 'number' ? a.value : undefined;
}

function encodeTransform(t: Transform, isLast: boolean): Uint8Array {
  const attrs = t.attributes.map((a) => {
    if (typeof a.value === 'number') {
      const x = new Uint8Array(4);
      put16(x, 0, 0x8000 | a.type);
      put16(x, 2, a.value);
      return x;
    }
    const x = new Uint8Array(4 + a.value.length);
    put16(x, 0, a.type & 0x7fff);
    put16(x, 2, a.value.length);
    x.set(a.value, 4);
    return x;
  });
  const len = TRANSFORM_HEADER_LENGTH + attrs.reduce((n, a) => n + a.length, 0);
  const out = new Uint8Array(len);
  out[0] = isLast ? LAST : MORE_TRANSFORMS;
  put16(out, 2, len);
  out[4] = t.type;
  put16(out, 6, t.id);
  let off = TRANSFORM_HEADER_LENGTH;
  for (const a of attrs) {
    out.set(a, off);
    off += a.length;
  }
  return out;
}

export function encodeSa(p: SaPayload): Uint8Array {
  const props = p.proposals.map((prop, i) => {
    const ts = prop.transforms.map((t, j) => encodeTransform(t, j === prop.transforms.length - 1));
    const len = PROPOSAL_HEADER_LENGTH + prop.spi.length + ts.reduce((n, t) => n + t.length, 0);
    const out = new Uint8Array(len);
    out[0] = i === p.proposals.length - 1 ? LAST : MORE_PROPOSALS;
    put16(out, 2, len);
    out[4] = prop.number;
    out[5] = prop.protocolId;
    out[6] = prop.spi.length;
    out[7] = prop.transforms.length;
    out.set(prop.spi, 8);
    let off = 8 + prop.spi.length;
    for (const t of ts) {
      out.set(t, off);
      off += t.length;
    }
    return out;
  });
  const out = new Uint8Array(props.reduce((n, x) => n + x.length, 0));
  let off = 0;
  for (const x of props) {
    out.set(x, off);
    off += x.length;
  }
  return out;
}
