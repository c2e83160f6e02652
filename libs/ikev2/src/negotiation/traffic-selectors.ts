/**
 * Traffic selectors (RFC 7296 §2.9, §3.13.1): narrowing a peer's proposal to our policy,
 * containment, building selectors from CIDR text, and substituting a road warrior's virtual IP
 * (RFC 7296 §2.23 end, §3.15: its TSi becomes the address we assigned in CP).
 *
 * Narrowing is intersection: each proposed selector meets each allowed one (same TS type only,
 * so IPv4 and IPv6 never mix; protocol 0 means any; port ranges intersect; the OPAQUE range
 * 65535..0 of §3.13.1 only survives against a selector that allows every port). Results covered by
 * another result are dropped. If the first proposed selector is "specific" (one address: the packet
 * that triggered the request, §2.9) and more selectors follow, it is a hint, not a request of its
 * own: results that contain it are put first. An empty result means TS_UNACCEPTABLE; the caller
 * answers it.
 */
import { TsType } from '../codec/constants.js';
import type { TrafficSelector } from '../codec/types.js';
import { LocalUsageError } from '../errors.js';
import { addressToBigInt, bigIntToAddress, parseIpAddress } from './ip-address.js';

export const ANY_PROTOCOL = 0;
const MAX_PORT = 65535;

interface Range {
  readonly tsType: number;
  readonly len: 4 | 16;
  readonly proto: number;
  readonly ps: number;
  readonly pe: number;
  readonly as: bigint;
  readonly ae: bigint;
}

function toRange(t: TrafficSelector): Range | undefined {
  const len = t.tsType === TsType.TS_IPV4_ADDR_RANGE ? 4 : t.tsType === TsType.TS_IPV6_ADDR_RANGE ? 16 : 0;
  if (len === 0 || t.startAddress.length !== len || t.endAddress.length !== len) return undefined;
  const as = addressToBigInt(t.startAddress);
  const ae = addressToBigInt(t.endAddress);
  if (as > ae) return undefined;
  return { tsType: t.tsType, len, proto: t.ipProtocol, ps: t.startPort, pe: t.endPort, as, ae };
}

/**
 * Ranges of our own (policy) selectors, which are shared, read-only objects narrowed against on
 * every CHILD SA: converted to BigInt ranges once, not per exchange (issue #14, per setup).
 */
const policyRanges = new WeakMap<readonly TrafficSelector[], readonly Range[]>();

function rangesOf(allowed: readonly TrafficSelector[]): readonly Range[] {
  let r = policyRanges.get(allowed);
  if (r === undefined) {
    r = allowed.map(toRange).filter((x): x is Range => x !== undefined);
    policyRanges.set(allowed, r);
  }
  return r;
}

function fromRange(r: Range): TrafficSelector {
  const start = bigIntToAddress(r.as, r.len);
  return {
    tsType: r.tsType,
    ipProtocol: r.proto,
    startPort: r.ps,
    endPort: r.pe,
    startAddress: start,
    // One address (a road warrior's virtual IP): one array for both ends, not two equal copies
    // (selectors are read-only data; issue #14: memory per SA).
    endAddress: r.as === r.ae ? start : bigIntToAddress(r.ae, r.len),
  };
}

const isOpaque = (r: { ps: number; pe: number }) => r.ps > r.pe;
const allPorts = (r: { ps: number; pe: number }) => r.ps === 0 && r.pe === MAX_PORT;

function ports(a: Range, b: Range): [number, number] | undefined {
  if (isOpaque(a) || isOpaque(b)) {
    if ((isOpaque(a) || allPorts(a)) && (isOpaque(b) || allPorts(b))) return [MAX_PORT, 0];
    return undefined;
  }
  const s = Math.max(a.ps, b.ps);
  const e = Math.min(a.pe, b.pe);
  return s <= e ? [s, e] : undefined;
}

function intersect(a: Range, b: Range): Range | undefined {
  if (a.tsType !== b.tsType) return undefined;
  if (a.proto !== ANY_PROTOCOL && b.proto !== ANY_PROTOCOL && a.proto !== b.proto) return undefined;
  const p = ports(a, b);
  if (p === undefined) return undefined;
  const as = a.as > b.as ? a.as : b.as;
  const ae = a.ae < b.ae ? a.ae : b.ae;
  if (as > ae) return undefined;
  return {
    tsType: a.tsType,
    len: a.len,
    proto: a.proto === ANY_PROTOCOL ? b.proto : a.proto,
    ps: p[0],
    pe: p[1],
    as,
    ae,
  };
}

function covers(o: Range, i: Range): boolean {
  if (o.tsType !== i.tsType) return false;
  if (o.proto !== ANY_PROTOCOL && o.proto !== i.proto) return false;
  const portsOk = isOpaque(i) ? isOpaque(o) || allPorts(o) : !isOpaque(o) && o.ps <= i.ps && i.pe <= o.pe;
  return portsOk && o.as <= i.as && i.ae <= o.ae;
}

/** Does `outer` include every packet `inner` does? Malformed selectors contain nothing. */
export function trafficSelectorContains(outer: TrafficSelector, inner: TrafficSelector): boolean {
  const o = toRange(outer);
  const i = toRange(inner);
  return o !== undefined && i !== undefined && covers(o, i);
}

/** One address (the "specific" selector of a triggering packet, RFC 7296 §2.9). */
export function isSpecificTrafficSelector(t: TrafficSelector): boolean {
  const r = toRange(t);
  return r !== undefined && r.as === r.ae;
}

/**
 * RFC 7296 §2.9 narrowing of `proposed` (the peer's TSi or TSr) to `allowed` (our policy for that
 * side). Returns fresh selectors; empty means TS_UNACCEPTABLE. Malformed selectors (wrong address
 * length, start above end, unknown type) are skipped.
 */
export function narrowTrafficSelectors(
  proposed: readonly TrafficSelector[],
  allowed: readonly TrafficSelector[],
  /** `allowed` is a long-lived, unchanging (policy) list: its ranges are kept for the next call. */
  allowedIsPolicy = false,
): TrafficSelector[] {
  const p = proposed.map(toRange);
  const a = allowedIsPolicy
    ? rangesOf(allowed)
    : allowed.map(toRange).filter((x): x is Range => x !== undefined);
  const first = p[0];
  const hint = first !== undefined && proposed.length > 1 && first.as === first.ae ? first : undefined;
  const found: Range[] = [];
  for (const x of p) {
    if (x === undefined) continue;
    for (const y of a) {
      const r = intersect(x, y);
      if (r !== undefined) found.push(r);
    }
  }
  const kept: Range[] = [];
  found.forEach((r, i) => {
    const absorbed = found.some((o, j) => j !== i && covers(o, r) && (!covers(r, o) || j < i));
    if (!absorbed) kept.push(r);
  });
  if (hint !== undefined) {
    const withHint = kept.filter((r) => covers(r, hint));
    const rest = kept.filter((r) => !covers(r, hint));
    return [...withHint, ...rest].map(fromRange);
  }
  return kept.map(fromRange);
}

export interface SelectorOptions {
  /** IP protocol number; 0 (default) means any. */
  readonly ipProtocol?: number;
  readonly startPort?: number;
  readonly endPort?: number;
}

/**
 * "10.0.0.0/24", "::/0" or a bare address (a /32 or /128) to a selector; ports default to all.
 * @throws LocalUsageError (IKEGATE_ERR_IKEV2_CONFIG) for bad text or a prefix out of range
 */
export function trafficSelectorFromCidr(cidr: string, options: SelectorOptions = {}): TrafficSelector {
  const slash = cidr.indexOf('/');
  const addr = parseIpAddress(slash < 0 ? cidr : cidr.slice(0, slash));
  const bits = addr.length * 8;
  const prefixText = slash < 0 ? String(bits) : cidr.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText) || Number(prefixText) > bits)
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `bad prefix length in ${JSON.stringify(cidr)}`);
  const hostBits = BigInt(bits - Number(prefixText));
  const mask = (1n << hostBits) - 1n;
  const v = addressToBigInt(addr);
  const len = addr.length as 4 | 16;
  return {
    tsType: len === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocol: options.ipProtocol ?? ANY_PROTOCOL,
    startPort: options.startPort ?? 0,
    endPort: options.endPort ?? MAX_PORT,
    startAddress: bigIntToAddress(v & ~mask, len),
    endAddress: bigIntToAddress(v | mask, len),
  };
}

/**
 * RFC 7296 §2.23/§3.15: a road warrior proposes TSi 0.0.0.0/0 (or ::/0, or its old address);
 * the responder narrows each TSi to the virtual address(es) it assigned in the CP reply. Selectors
 * of a family without an assigned address, and those not containing it, are dropped; protocol
 * and ports are kept. Returns fresh selectors (empty: TS_UNACCEPTABLE).
 * @param virtualIps 4- or 16-octet addresses
 */
export function substituteVirtualIp(
  tsi: readonly TrafficSelector[],
  virtualIps: readonly Uint8Array[],
): TrafficSelector[] {
  const hosts: Range[] = [];
  for (const ip of virtualIps) {
    if (ip.length !== 4 && ip.length !== 16) continue;
    const v = addressToBigInt(ip);
    hosts.push({
      tsType: ip.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
      len: ip.length as 4 | 16,
      proto: ANY_PROTOCOL,
      ps: 0,
      pe: MAX_PORT,
      as: v,
      ae: v,
    });
  }
  const out: TrafficSelector[] = [];
  for (const t of tsi) {
    const r = toRange(t);
    if (r === undefined) continue;
    for (const h of hosts) {
      const x = intersect(r, h);
      if (x !== undefined && !out.some((o) => trafficSelectorContains(o, fromRange(x))))
        out.push(fromRange(x));
    }
  }
  return out;
}
