/**
 * RFC 7296 §3.15 Configuration payload.
 *
 * | CFG Type (8) | RESERVED (24) | Configuration Attributes ~
 * Attribute (§3.15.1): |R| Attribute Type (15) | Length (16) | Value ~
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { CfgAttributeType, PayloadType } from '../constants.js';
import type { CfgAttribute, CpPayload } from '../types.js';

export function decodeCp(body: Uint8Array, critical: boolean): CpPayload {
  need(body, 4, 'CP payload');
  const attributes: CfgAttribute[] = [];
  let off = 4;
  while (off < body.length) {
    if (body.length - off < 4) throw syntax('configuration attribute truncated');
    const type = u16(body, off) & 0x7fff;
    const len = u16(body, off + 2);
    if (off + 4 + len > body.length) throw syntax('configuration attribute overruns the payload');
    attributes.push({ type, value: body.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
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
  const out = new Uint8Array(4 + p.attributes.reduce((n, a) => n + 4 + a.value.length, 0));
  out[0] = p.cfgType;
  let off = 4;
  for (const a of p.attributes) {
    put16(out, off, a.type & 0x7fff);
    put16(out, off + 2, a.value.length);
    out.set(a.value, off + 4);
    off += 4 + a.value.length;
  }
  return out;
}
