/**
 * Textual IP addresses to wire octets and back (RFC 791 dotted quad; RFC 4291 §2.2 IPv6 text,
 * "::" compression and a trailing dotted quad). Used for traffic selectors, NAT detection and
 * configuration payloads. Strings come from our configuration, so bad input is a LocalUsageError.
 */
import { LocalUsageError } from '../errors.js';

function bad(text: string): LocalUsageError {
  return new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `not an IP address: ${JSON.stringify(text)}`);
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out[i] = Number(p);
  }
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const words = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const groups = s.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i] as string;
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIpv4(g);
        if (v4 === undefined) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(Number.parseInt(g, 16));
      else return undefined;
    }
    return out;
  };
  const head = words(halves[0] as string);
  const tail = halves.length === 2 ? words(halves[1] as string) : [];
  if (head === undefined || tail === undefined) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >>> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/**
 * "192.0.2.1" -> 4 octets, "2001:db8::1" -> 16 octets (fresh).
 * @throws LocalUsageError (IKEGATE_ERR_IKEV2_CONFIG) for anything else (zone ids included)
 */
export function parseIpAddress(text: string): Uint8Array {
  const r = text.includes(':') ? parseIpv6(text) : parseIpv4(text);
  if (r === undefined) throw bad(text);
  return r;
}

/** 4 or 16 octets to text (IPv6 in RFC 5952 form: lower case, longest zero run compressed). */
export function formatIpAddress(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `${b.length}-octet address`);
  const w: number[] = [];
  for (let i = 0; i < 16; i += 2) w.push((b[i]! << 8) | b[i + 1]!);
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(w);
  return `${hex(w.slice(0, bestAt))}::${hex(w.slice(bestAt + bestLen))}`;
}

/** Big-endian unsigned value of an address, for range arithmetic. */
export function addressToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

export function bigIntToAddress(v: bigint, length: 4 | 16): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
