/**
 * What the TUN test fixtures (tun-echo.ts, tun-burst.ts, tun-ring.ts) share inside their own
 * process: the JSON-line protocol they report in, bounded waits, and the numbered IPv4/UDP
 * datagrams they write and check. The test side (starting a fixture in a namespace, reading its
 * result) is in netns.ts.
 */
import { createSocket, type Socket } from 'node:dgram';
import { TunUnavailableError } from '../open.js';
import { internetChecksum } from './icmp.js';

/** Prints `obj` as one JSON line on stdout: how a fixture reports to its test. */
export function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/**
 * Runs a fixture's `main`; if it rejects, prints {"event":"error", reason, message} (reason: the
 * TunUnavailableError's reason, else 'error') and exits 1.
 */
export function fixtureMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const reason = err instanceof TunUnavailableError ? err.reason : 'error';
    emit({ event: 'error', reason, message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

/** How long a fixture waits, by default, for what it expects to happen. */
export const WAIT_MS = 10_000;

/** Polls `cond` every 5 ms until it holds (true) or `ms` have passed (false). */
export async function until(cond: () => boolean, ms = WAIT_MS): Promise<boolean> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited >= ms) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/** What `p` settles to, or `timedOut` if it has not within `ms`; the timer is cleared either way. */
export async function within<T, U>(p: Promise<T>, ms: number, timedOut: U): Promise<T | U> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<U>((resolve) => (timer = setTimeout(() => resolve(timedOut), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A UDP socket bound to `address`:`port` (0: any port), with `recvBufferSize` when given. */
export async function bindUdp(address: string, port: number, recvBufferSize?: number): Promise<Socket> {
  const sock = createSocket({ type: 'udp4', ...(recvBufferSize === undefined ? {} : { recvBufferSize }) });
  await new Promise<void>((resolve) => sock.bind(port, address, resolve));
  return sock;
}

/** Payload octet k of datagram i. */
export const fill = (i: number, k: number): number => (i * 31 + k * 7) & 0xff;

/** Where a numbered datagram goes: IPv4 source and destination, and the destination UDP port (source port 4000). */
export interface UdpRoute {
  src: readonly [number, number, number, number];
  dst: readonly [number, number, number, number];
  port: number;
}

/**
 * Writes IPv4/UDP datagram i of `total` octets (UDP checksum 0) into `p` and returns that view:
 * the payload is i (4 octets, when `total` is 32 or more) over fill(i, k).
 */
export function numberedDatagram(
  route: UdpRoute,
  i: number,
  total: number,
  p: Uint8Array = new Uint8Array(total),
): Uint8Array {
  const v = new DataView(p.buffer, p.byteOffset, total);
  p.fill(0, 0, 28);
  p[0] = 0x45;
  v.setUint16(2, total);
  v.setUint16(4, i & 0xffff);
  p[8] = 64;
  p[9] = 17;
  p.set(route.src, 12);
  p.set(route.dst, 16);
  v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  v.setUint16(20, 4000);
  v.setUint16(22, route.port);
  v.setUint16(24, total - 20);
  for (let k = 28; k < total; k++) p[k] = fill(i, k - 28);
  if (total >= 32) v.setUint32(28, i);
  return p.subarray(0, total);
}

/** Whether the UDP payload of a numbered datagram carries fill(j, k) after its 4-octet number. */
export function patternIntact(payload: Uint8Array, j: number): boolean {
  for (let k = 4; k < payload.length; k++) if (payload[k] !== fill(j, k)) return false;
  return true;
}
