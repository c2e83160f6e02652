/**
 * Configuration payload for road warriors (RFC 7296 §3.15, §3.15.1):
 *
 *   INTERNAL_IP4_ADDRESS  1   0 or 4 octets
 *   INTERNAL_IP4_DNS      3   0 or 4 octets
 *   INTERNAL_IP6_ADDRESS  8   0 or 17 octets (16-octet address | prefix length)
 *   INTERNAL_IP6_DNS     10   0 or 16 octets
 *
 * A zero-length attribute in a CFG_REQUEST asks for a value; a non-empty one suggests it. Lengths
 * are checked per type; a wrong one is INVALID_SYNTAX (RemoteProtocolError). Attributes we do not
 * use are ignored (§3.15.1: "...MUST ignore attributes it does not support"). Pool allocation is
 * the services' job; this file only encodes and decodes what was asked and what was assigned.
 */
import { CfgAttributeType, CfgType, PayloadType } from '../codec/constants.js';
import type { CfgAttribute, CpPayload } from '../codec/types.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { parseIpAddress } from './ip-address.js';

export const IP4_ATTRIBUTE_LENGTH = 4;
export const IP6_ADDRESS_ATTRIBUTE_LENGTH = 17;
export const IP6_DNS_ATTRIBUTE_LENGTH = 16;

export interface CfgWants {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
  readonly ipv4Dns: boolean;
  readonly ipv6Dns: boolean;
  /** An address the client suggested (e.g. the one it had before), if any. */
  readonly suggestedIpv4?: Uint8Array;
  readonly suggestedIpv6?: Ipv6Assignment;
}

export interface Ipv6Assignment {
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** What the services assigned (or what a CFG_REPLY said). Addresses are 4 / 16 octets. */
export interface CfgAssignment {
  readonly ipv4?: Uint8Array;
  readonly ipv6?: Ipv6Assignment;
  /** IPv4 and IPv6 DNS servers, in order. */
  readonly dns: readonly Uint8Array[];
}

const empty = (type: number): CfgAttribute => ({ type, value: new Uint8Array(0) });

/** A CFG_REQUEST asking for the families and DNS servers wanted. */
export function buildCfgRequest(want: {
  readonly ipv4?: boolean;
  readonly ipv6?: boolean;
  readonly dns?: boolean;
}): CpPayload {
  const attributes: CfgAttribute[] = [];
  const dns = want.dns ?? true;
  if (want.ipv4 ?? true) {
    attributes.push(empty(CfgAttributeType.INTERNAL_IP4_ADDRESS));
    if (dns) attributes.push(empty(CfgAttributeType.INTERNAL_IP4_DNS));
  }
  if (want.ipv6 ?? false) {
    attributes.push(empty(CfgAttributeType.INTERNAL_IP6_ADDRESS));
    if (dns) attributes.push(empty(CfgAttributeType.INTERNAL_IP6_DNS));
  }
  return { type: PayloadType.CP, critical: false, cfgType: CfgType.CFG_REQUEST, attributes };
}

function syntax(what: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_LENGTH', `CP: ${what}`);
}

function checkLength(a: CfgAttribute): void {
  const n = a.value.length;
  const ok = (full: number) => n === 0 || n === full;
  switch (a.type) {
    case CfgAttributeType.INTERNAL_IP4_ADDRESS:
    case CfgAttributeType.INTERNAL_IP4_DNS:
    case CfgAttributeType.INTERNAL_IP4_NETMASK:
      if (!ok(IP4_ATTRIBUTE_LENGTH)) throw syntax(`attribute ${a.type} of ${n} octets, want 0 or 4`);
      return;
    case CfgAttributeType.INTERNAL_IP6_ADDRESS:
      if (!ok(IP6_ADDRESS_ATTRIBUTE_LENGTH))
        throw syntax(`INTERNAL_IP6_ADDRESS of ${n} octets, want 0 or 17`);
      if (n === IP6_ADDRESS_ATTRIBUTE_LENGTH && a.value[16]! > 128)
        throw syntax(`IPv6 prefix length ${a.value[16]}`);
      return;
    case CfgAttributeType.INTERNAL_IP6_DNS:
      if (!ok(IP6_DNS_ATTRIBUTE_LENGTH)) throw syntax(`INTERNAL_IP6_DNS of ${n} octets, want 0 or 16`);
      return;
    default:
  }
}

const ipv6Of = (v: Uint8Array): Ipv6Assignment => ({ address: v.subarray(0, 16), prefixLength: v[16]! });

/**
 * What a CFG_REQUEST asks for. Views into the payload are returned (copy what must outlive it).
 * @throws RemoteProtocolError INVALID_SYNTAX for a CP that is not a request or a wrong attribute length
 */
export function parseCfgRequest(cp: CpPayload): CfgWants {
  if (cp.cfgType !== CfgType.CFG_REQUEST)
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_VALUE',
      `CP type ${cp.cfgType} where CFG_REQUEST was expected`,
    );
  let ipv4 = false;
  let ipv6 = false;
  let ipv4Dns = false;
  let ipv6Dns = false;
  let suggestedIpv4: Uint8Array | undefined;
  let suggestedIpv6: Ipv6Assignment | undefined;
  for (const a of cp.attributes) {
    checkLength(a);
    switch (a.type) {
      case CfgAttributeType.INTERNAL_IP4_ADDRESS:
        ipv4 = true;
        if (a.value.length > 0) suggestedIpv4 ??= a.value;
        break;
      case CfgAttributeType.INTERNAL_IP6_ADDRESS:
        ipv6 = true;
        if (a.value.length > 0) suggestedIpv6 ??= ipv6Of(a.value);
        break;
      case CfgAttributeType.INTERNAL_IP4_DNS:
        ipv4Dns = true;
        break;
      case CfgAttributeType.INTERNAL_IP6_DNS:
        ipv6Dns = true;
        break;
      default:
    }
  }
  return {
    ipv4,
    ipv6,
    ipv4Dns,
    ipv6Dns,
    ...(suggestedIpv4 !== undefined ? { suggestedIpv4 } : {}),
    ...(suggestedIpv6 !== undefined ? { suggestedIpv6 } : {}),
  };
}

const bytes = (a: string | Uint8Array) => (typeof a === 'string' ? parseIpAddress(a) : a);

/**
 * A CFG_REPLY carrying the assignment. DNS servers go out as INTERNAL_IP4_DNS or _IP6_DNS by length.
 * @throws LocalUsageError for addresses of the wrong length or a prefix length above 128
 */
export function buildCfgReply(assignment: {
  readonly ipv4?: string | Uint8Array;
  readonly ipv6?: { readonly address: string | Uint8Array; readonly prefixLength: number };
  readonly dns?: readonly (string | Uint8Array)[];
}): CpPayload {
  const bad = (what: string) => new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `CFG_REPLY: ${what}`);
  const attributes: CfgAttribute[] = [];
  if (assignment.ipv4 !== undefined) {
    const v = bytes(assignment.ipv4);
    if (v.length !== 4) throw bad('IPv4 address must be 4 octets');
    attributes.push({ type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: v.slice() });
  }
  if (assignment.ipv6 !== undefined) {
    const a = bytes(assignment.ipv6.address);
    const p = assignment.ipv6.prefixLength;
    if (a.length !== 16 || !Number.isInteger(p) || p < 0 || p > 128) throw bad('IPv6 address/prefix');
    const value = new Uint8Array(IP6_ADDRESS_ATTRIBUTE_LENGTH);
    value.set(a);
    value[16] = p;
    attributes.push({ type: CfgAttributeType.INTERNAL_IP6_ADDRESS, value });
  }
  for (const d of assignment.dns ?? []) {
    const v = bytes(d);
    if (v.length === 4) attributes.push({ type: CfgAttributeType.INTERNAL_IP4_DNS, value: v.slice() });
    else if (v.length === 16) attributes.push({ type: CfgAttributeType.INTERNAL_IP6_DNS, value: v.slice() });
    else throw bad(`DNS server of ${v.length} octets`);
  }
  return { type: PayloadType.CP, critical: false, cfgType: CfgType.CFG_REPLY, attributes };
}

/**
 * The assignment in a CFG_REPLY: the first address of each family, every DNS server in order.
 * Zero-length and unknown attributes are ignored. Views into the payload are returned.
 * @throws RemoteProtocolError INVALID_SYNTAX for a CP that is not a reply or a wrong attribute length
 */
export function parseCfgReply(cp: CpPayload): CfgAssignment {
  if (cp.cfgType !== CfgType.CFG_REPLY)
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_VALUE',
      `CP type ${cp.cfgType} where CFG_REPLY was expected`,
    );
  let ipv4: Uint8Array | undefined;
  let ipv6: Ipv6Assignment | undefined;
  const dns: Uint8Array[] = [];
  for (const a of cp.attributes) {
    checkLength(a);
    if (a.value.length === 0) continue;
    switch (a.type) {
      case CfgAttributeType.INTERNAL_IP4_ADDRESS:
        ipv4 ??= a.value;
        break;
      case CfgAttributeType.INTERNAL_IP6_ADDRESS:
        ipv6 ??= ipv6Of(a.value);
        break;
      case CfgAttributeType.INTERNAL_IP4_DNS:
      case CfgAttributeType.INTERNAL_IP6_DNS:
        dns.push(a.value);
        break;
      default:
    }
  }
  return { ...(ipv4 !== undefined ? { ipv4 } : {}), ...(ipv6 !== undefined ? { ipv6 } : {}), dns };
}
