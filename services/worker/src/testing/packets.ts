import { parseIpv4 } from '../ipv4.js';

/** ICMP echo request, IPv4, from `src` to `dst` (checksums zero: the worker does not check them). */
export function icmp(src: string, dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0]);
  p.set(parseIpv4(src), 12);
  p.set(parseIpv4(dst), 16);
  p[20] = 8;
  return p;
}
