/**
 * RFC 7296 §3.13 Traffic Selector payloads (TSi = 44, TSr = 45).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Number of TSs |                 RESERVED                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       <Traffic Selectors>                     ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Traffic Selector (§3.13.1):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   TS Type     |IP Protocol ID*|       Selector Length         |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |           Start Port*         |           End Port*           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                         Starting Address*                     ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                         Ending Address*                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Number of TSs is one octet and each selector is at least 8 octets, so the selector list is
 * bounded by both the count and the payload length.
 * TS_IPV4_ADDR_RANGE selectors are 16 octets, TS_IPV6_ADDR_RANGE 40. A selector of a type ikegate
 * does not know is kept with empty addresses (its length is honoured), so narrowing skips it.
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { TsType } from '../constants.js';
import type { TrafficSelector, TsPayload } from '../types.js';

/** Number of TSs (1) + RESERVED (3). */
export const TS_FIELDS_LENGTH = 4;
const SELECTOR_HEADER = 8;
const IPV4_SELECTOR_LENGTH = 16;
const IPV6_SELECTOR_LENGTH = 40;

export function decodeTs(body: Uint8Array, critical: boolean, type: 44 | 45): TsPayload {
  need(body, TS_FIELDS_LENGTH, 'TS payload');
  const count = body[0]!;
  const selectors: TrafficSelector[] = [];
  let off = TS_FIELDS_LENGTH;
  for (let i = 0; i < count; i++) {
    if (body.length - off < SELECTOR_HEADER) throw syntax('traffic selector truncated');
    const tsType = body[off]!;
    const len = u16(body, off + 2);
    if (len < SELECTOR_HEADER || off + len > body.length) throw syntax(`selector length ${len}`);
    const addrLen = tsType === TsType.TS_IPV4_ADDR_RANGE ? 4 : tsType === TsType.TS_IPV6_ADDR_RANGE ? 16 : 0;
    if (addrLen > 0 && len !== SELECTOR_HEADER + 2 * addrLen)
      throw syntax(`TS type ${tsType} of length ${len}`);
    selectors.push({
      tsType,
      ipProtocol: body[off + 1]!,
      startPort: u16(body, off + 4),
      endPort: u16(body, off + 6),
      startAddress: body.subarray(off + 8, off + 8 + addrLen),
      endAddress: body.subarray(off + 8 + addrLen, off + 8 + 2 * addrLen),
    });
    off += len;
  }
  if (off !== body.length) throw syntax('octets after the last traffic selector');
  return { type, critical, selectors };
}

/** §3.13.1: start ≤ end for ports and addresses (an "opaque" 65535-0 port range is allowed). */
export function verifyTs(p: TsPayload): string | undefined {
  if (p.selectors.length === 0) return 'no traffic selectors';
  for (const s of p.selectors) {
    if (s.startAddress.length === 0) continue;
    if (Buffer.compare(s.startAddress, s.endAddress) > 0) return 'start address above end address';
    if (s.startPort > s.endPort && !(s.startPort === 65535 && s.endPort === 0))
      return 'start port above end port';
  }
  return undefined;
}

export function encodeTs(p: TsPayload): Uint8Array {
  const len =
    TS_FIELDS_LENGTH +
    p.selectors.reduce((n, s) => n + SELECTOR_HEADER + s.startAddress.length + s.endAddress.length, 0);
  const out = new Uint8Array(len);
  out[0] = p.selectors.length;
  let off = TS_FIELDS_LENGTH;
  for (const s of p.selectors) {
    const slen = SELECTOR_HEADER + s.startAddress.length + s.endAddress.length;
    out[off] = s.tsType;
    out[off + 1] = s.ipProtocol;
    put16(out, off + 2, slen);
    put16(out, off + 4, s.startPort);
    put16(out, off + 6, s.endPort);
    out.set(s.startAddress, off + 8);
    out.set(s.endAddress, off + 8 + s.startAddress.length);
    off += slen;
  }
  return out;
}

export { IPV4_SELECTOR_LENGTH, IPV6_SELECTOR_LENGTH };
