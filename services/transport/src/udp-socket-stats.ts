/**
 * What the kernel knows about one of our UDP sockets and node does not tell: how many datagrams it
 * dropped because the socket's receive buffer was full (or a checksum failed). A burst that
 * arrives while the event loop is busy (a GC pause, a long batch) lands in that buffer; past its
 * size the kernel drops, silently for the process, and a tunnel's inner TCP backs off. Read from
 * the socket tables of the process's network namespace, /proc/self/net/udp and udp6 (proc_net(5)):
 * the `drops` column of the row whose local address is the socket's.
 */
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';

/** What a UDP bind asks the kernel for, and what it got. */
export interface UdpSocketStats {
  /** The receive buffer asked for (SO_RCVBUF), in octets; 0: the kernel's default was kept. */
  readonly requestedReceiveBuffer: number;
  /** What the kernel reports (Linux: twice what it granted, its bookkeeping included). */
  readonly receiveBuffer: number;
  /** Datagrams the kernel dropped at this socket since it was opened; undefined when unreadable. */
  readonly drops: number | undefined;
  /** How datagrams reach JavaScript: `batched` (the native addon, UDP GRO) or node's `dgram`. */
  readonly receivePath: 'batched' | 'dgram';
  /** Datagrams the kernel refused to send (EAGAIN, ENOBUFS...), dropped; undefined on dgram (it queues). */
  readonly sendErrors: number | undefined;
}

/**
 * The receive buffer a UDP bind asks for by default: 4 MiB, about 1,500 full-size ESP datagrams,
 * or 30 ms of a 500 Mbit/s tunnel. With the kernel's default (208 KiB here, ~75 datagrams) a
 * 2-ms pause of the event loop overflowed it (issue #14).
 */
export const DEFAULT_UDP_RECEIVE_BUFFER = 4 << 20;

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');

/** The 16 octets of an IPv6 address in text form, or undefined. */
function ipv6Octets(address: string): number[] | undefined {
  if (!isIPv6(address)) return undefined;
  let text = address.split('%')[0]!;
  // A trailing dotted quad (::ffff:192.0.2.1) as two groups.
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return undefined;
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/**
 * The table (`udp` or `udp6`) and the local-address column of a socket bound to `address`:`port`
 * as the kernel prints it: each 32-bit word of the address in host byte order (`order`, this
 * machine's by default), then the port. Undefined for an address that is not numeric.
 */
export function procUdpLocal(
  address: string,
  port: number,
  order: 'LE' | 'BE' = endianness(),
): { table: 'udp' | 'udp6'; local: string } | undefined {
  const p = port.toString(16).toUpperCase().padStart(4, '0');
  const word = (o: readonly number[], w: number) =>
    order === 'LE'
      ? hex2(o[w + 3]!) + hex2(o[w + 2]!) + hex2(o[w + 1]!) + hex2(o[w]!)
      : hex2(o[w]!) + hex2(o[w + 1]!) + hex2(o[w + 2]!) + hex2(o[w + 3]!);
  if (isIPv4(address)) return { table: 'udp', local: `${word(address.split('.').map(Number), 0)}:${p}` };
  const o = ipv6Octets(address);
  if (!o) return undefined;
  let local = '';
  for (let w = 0; w < 16; w += 4) local += word(o, w);
  return { table: 'udp6', local: `${local}:${p}` };
}

/**
 * The `drops` of the first row of a /proc/net/udp table whose local address is `local`, or
 * undefined when there is none (or the row is not what proc_net(5) describes). Never throws.
 */
export function dropsInTable(table: string, local: string): number | undefined {
  for (const line of table.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    if (f.length < 13 || f[1] !== local) continue;
    const drops = Number(f[12]);
    return Number.isSafeInteger(drops) && drops >= 0 ? drops : undefined;
  }
  return undefined;
}

/** The kernel's drop count of our socket bound to `address`:`port`, or undefined. */
export function udpSocketDrops(address: string, port: number): number | undefined {
  const where = procUdpLocal(address, port);
  if (!where) return undefined;
  try {
    return dropsInTable(readFileSync(`/proc/self/net/${where.table}`, 'latin1'), where.local);
  } catch {
    return undefined; // no /proc (another OS, a sandbox)
  }
}
