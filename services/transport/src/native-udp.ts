/**
 * The native UDP addon (../native/udp_batch.c, built by scripts/build-native.mjs) behind
 * NodeUdpBind's batched path (issue #14): batched receive with UDP GRO, UDP_SEGMENT sends. Loaded
 * once; when it is not there (not built, not Linux) or `IKEGATE_UDP_RECEIVE=dgram` asks for node's
 * dgram, `nativeUdpFor()` says why and NodeUdpBind uses dgram.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An open socket of the addon (a Node-API external). */
export type NativeUdpHandle = { readonly __nativeUdp: unique symbol };

/** Called once per read: `segment` > 0 when the kernel coalesced datagrams of that size (the last may be shorter). */
export type NativeUdpReceive = (data: Buffer, segment: number, address: string, port: number) => void;

export interface NativeUdpAddon {
  /** Throws an Error with `.code` (EADDRINUSE, EACCES, EINVAL...) when the socket cannot be bound. */
  open(address: string, port: number, receiveBuffer: number, onMessage: NativeUdpReceive): NativeUdpHandle;
  /**
   * 0, or -errno when the kernel refused the datagram (it is dropped and counted). `segment` > 0
   * (and less than the length): one UDP_SEGMENT send of datagrams of that size, -EOPNOTSUPP
   * without sending when the kernel has no UDP_SEGMENT.
   */
  send(handle: NativeUdpHandle, data: Uint8Array, address: string, port: number, segment: number): number;
  /** The bound port; -1 once closed. */
  localPort(handle: NativeUdpHandle): number;
  /** SO_RCVBUF as the kernel reports it; -1 once closed. */
  receiveBuffer(handle: NativeUdpHandle): number;
  /** [sends refused, reads truncated, reads]; a refused coalesced send (segment > 0) is not counted. */
  counters(handle: NativeUdpHandle): [number, number, number];
  /** What the kernel offered this socket: UDP_SEGMENT sends (Linux >= 4.18), UDP_GRO (>= 5.0). */
  features(handle: NativeUdpHandle): { gso: boolean; gro: boolean };
  /** Idempotent. */
  close(handle: NativeUdpHandle): void;
}

/** Where scripts/build-native.mjs puts the addon. */
export const NATIVE_UDP_ADDON = fileURLToPath(new URL('../native/build/udp_batch.node', import.meta.url));

/** Chooses the receive path: `auto` (the default: the addon when it loads), `batched` or `dgram`. */
export const UDP_RECEIVE_ENV = 'IKEGATE_UDP_RECEIVE';

export type UdpReceivePath = 'batched' | 'dgram';

let loaded: { addon: NativeUdpAddon } | { why: string } | undefined;

/** The addon, or why there is none: not built, not Linux, or a load error. Cached. */
export function loadNativeUdp(): { addon: NativeUdpAddon } | { why: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { why: `${process.platform} is not Linux` });
  if (!existsSync(NATIVE_UDP_ADDON))
    return (loaded = { why: `${NATIVE_UDP_ADDON} is not built (npm run build:native)` });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(NATIVE_UDP_ADDON) as NativeUdpAddon });
  } catch (e) {
    return (loaded = { why: `${NATIVE_UDP_ADDON} did not load: ${(e as Error).message}` });
  }
}

/**
 * The addon when `want` (else `IKEGATE_UDP_RECEIVE`, else `auto`) allows it and it loads; `why`
 * explains dgram. Throws for `batched` without the addon, and for a value it does not know.
 */
export function nativeUdpFor(
  want: string | undefined = process.env[UDP_RECEIVE_ENV],
): { addon: NativeUdpAddon } | { why: string } {
  const choice = want === undefined || want === '' ? 'auto' : want;
  if (choice === 'dgram') return { why: `${UDP_RECEIVE_ENV}=dgram` };
  if (choice !== 'auto' && choice !== 'batched')
    throw new Error(`${UDP_RECEIVE_ENV} must be auto, batched or dgram, not ${JSON.stringify(want)}`);
  const native = loadNativeUdp();
  if ('why' in native && choice === 'batched')
    throw new Error(`${UDP_RECEIVE_ENV}=batched, but the native UDP addon is unavailable: ${native.why}`);
  return native;
}
