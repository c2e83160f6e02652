/**
 * RFC 7296 §3.15 Configuration payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C| RESERVED    |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   CFG Type    |                    RESERVED                   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                   Configuration Attributes                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Configuration Attribute (§3.15.1):
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |R|         Attribute Type      |            Length             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                             Value                             ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The R bit is reserved: ignored on receipt, sent as zero. Each attribute takes at least 4
 * octets, so the attribute list is bounded by the payload length.
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { CfgAttributeType, PayloadType } from '../constants.js';
import type { CfgAttribute, CpPayload } from '../types.js';

/** CFG Type (1) + RESERVED (3). */
export const CP_FIELDS_LENGTH = 4;
/** R bit + Attribute Type (2) + Length (2). */
export const CFG_ATTRIBUTE_HEADER_LENGTH = 4;

export function decodeCp(body: Uint8Array, critical: boolean): CpPayload {
  need(body, CP_FIELDS_LENGTH, 'CP payload');
  const attributes: CfgAttribute[] = [];
  let off = CP_FIELDS_LENGTH;
  const h = CFG_ATTRIBUTE_HEADER_LENGTH;
  while (off < body.length) {
    if (body.length - off < h) throw syntax('configuration attribute truncated');
    const type = u16(body, off) & 0x7fff;
    const len = u16(body, off + 2);
    if (off + h + len > body.length) throw syntax('configuration attribute overruns the payload');
    attributes.push({ type, value: body.subarray(off + h, off + h + len) });
    off += h + len;
  }
  return { type: PayloadType.CP, critical, cfgType: body[0]!, attributes };
}

/** §3.15.1 value lengths: 0 (a request) or the type's fixed length. */
export function verifyCp(p: CpPayload): string | undefined {
  const fixed: Record<number, number[]> = {
    [CfgAttributeType.INTERNAL_IP4_ADDRESS]: [4],
    [CfgAttributeType.INTERNAL_IP4_NETMASK]: [4],
    [CfgAttributeType.INTERNAL_IP4_DNS]: [4],
    [CfgAttributeType.INTERNAL_IP4_NBNS]: [4],
    [CfgAttributeType.INTERNAL_IP4_DHCP]: [4],
    [CfgAttributeType.INTERNAL_IP6_ADDRESS]: [17],
    [CfgAttributeType.INTERNAL_IP6_DNS]: [16],
    [CfgAttributeType.INTERNAL_IP6_DHCP]: [16],
    [CfgAttributeType.INTERNAL_IP4_SUBNET]: [8],
    [CfgAttributeType.INTERNAL_IP6_SUBNET]: [17],
  };
  for (const a of p.attributes) {
    const ok = fixed[a.type];
    if (ok && a.value.length !== 0 && !ok.includes(a.value.length))
      return `attribute ${a.type} of ${a.value.length} octets`;
  }
  return undefined;
}

export function encodeCp(p: CpPayload): Uint8Array {
  const h = CFG_ATTRIBUTE_HEADER_LENGTH;
  const out = new Uint8Array(CP_FIELDS_LENGTH + p.attributes.reduce((n, a) => n + h + a.value.length, 0));
  out[0] = p.cfgType;
  let off = CP_FIELDS_LENGTH;
  for (const a of p.attributes) {
    put16(out, off, a.type & 0x7fff);
    put16(out, off + 2, a.value.length);
    out.set(a.value, off + h);
    off += h + a.value.length;
  }
  return out;
}
