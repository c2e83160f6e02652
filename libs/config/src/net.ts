/**
 * IP address and CIDR parsing for configuration values. Strict on purpose: no leading zeros in
 * IPv4 octets (ambiguous with octal in other tools), no host bits set in a CIDR.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface IpAddress {
  /** 4 or 16 octets. */
  readonly address: Uint8Array;
  /** As written in the configuration. */
  readonly text: string;
}

export interface Cidr {
  /** The network address (host bits zero); 4 or 16 octets. */
  readonly address: Uint8Array;
  readonly prefix: number;
  /** Canonical `address/prefix` as written (validated). */
  readonly text: string;
}

const IPV4_OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses an IPv4 or IPv6 literal, or returns undefined. */
export function parseIp(text: string): Uint8Array | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.');
    if (!parts.every((p) => IPV4_OCTET.test(p))) return undefined;
    return Uint8Array.from(parts.map(Number));
  }
  if (isIPv6(text) && !text.includes('%')) return parseIpv6(text);
  return undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  let s = text;
  // An embedded dotted-quad IPv4 suffix (::ffff:1.2.3.4) is rewritten as two hex groups.
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIp(last);
    if (v4 === undefined || v4.length !== 4) return undefined;
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined): number[] =>
    h === undefined || h === '' ? [] : h.split(':').map((g) => parseInt(g, 16));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  if ([...head, ...rest].some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
}

/** Text form of an address (IPv4 dotted quad; IPv6 uncompressed-but-short groups). */
export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return Array.from(address).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((address[i]! << 8) | address[i + 1]!).toString(16));
  return groups.join(':');
}

/** Applies a prefix mask; returns a fresh array. */
export function maskAddress(address: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(address);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** The last address of the network (all host bits one). */
export function lastAddress(network: Uint8Array, prefix: number): Uint8Array {
  const out = Uint8Array.from(network);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! | (0xff >> bits);
  }
  return out;
}

/**
 * Parses `address/prefix`. With `allowBare`, a lone address is a host route (/32 or /128).
 * Returns a message describing the problem instead of throwing.
 */
export function parseCidr(text: string, allowBare = false): Cidr | string {
  const slash = text.indexOf('/');
  if (slash < 0 && !allowBare) return 'must be a CIDR like 10.0.0.0/24';
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(addrText);
  if (address === undefined) return `"${addrText}" is not an IPv4 or IPv6 address`;
  const max = address.length * 8;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return `prefix must be an integer 0-${max}`;
    prefix = Number(p);
  }
  const network = maskAddress(address, prefix);
  if (!network.every((b, i) => b === address[i])) {
    return `host bits are set (did you mean ${formatIp(network)}/${prefix}?)`;
  }
  return { address: network, prefix, text: slash < 0 ? `${addrText}/${prefix}` : text };
}
