/**
 * Virtual IP allocation from one IPv4 pool (RFC 7296 §3.15 INTERNAL_IP4_ADDRESS). In-memory and
 * per process; a cluster-wide lease table would sit behind the same calls.
 *
 * Host numbering inside the network: 0 is the network address, 1 the gateway (ours), the last one
 * the broadcast address; none of those three is ever handed out. Nothing is preallocated, so a /8
 * costs no more than a /24 until addresses are used.
 */
import type { Cidr } from './net.js';
import { formatIp, parseCidr } from './net.js';

export class AddressPool {
  readonly cidr: Cidr;
  /** The gateway address (first host), reserved. */
  readonly gateway: Uint8Array;
  private readonly base: number;
  private readonly hostCount: number;
  private readonly byPeer = new Map<string, number>();
  private readonly used = new Set<number>();
  private readonly released: number[] = [];
  /** Next never-used host number. */
  private nextFresh = 2;

  /** Throws RangeError for anything but an IPv4 network of prefix /30 or shorter. */
  constructor(cidr: Cidr | string) {
    const c = typeof cidr === 'string' ? parseCidr(cidr) : cidr;
    if (typeof c === 'string') throw new RangeError(`AddressPool: ${c}`);
    if (c.address.length !== 4 || c.prefix > 30 || c.prefix < 0) {
      throw new RangeError('AddressPool: needs an IPv4 network of prefix /30 or shorter');
    }
    this.cidr = c;
    this.base = ((c.address[0]! << 24) | (c.address[1]! << 16) | (c.address[2]! << 8) | c.address[3]!) >>> 0;
    this.hostCount = 2 ** (32 - c.prefix);
    this.gateway = this.toAddress(1);
  }

  /** Addresses that can be handed out (network, gateway and broadcast excluded). */
  get size(): number {
    return this.hostCount - 3;
  }

  get inUse(): number {
    return this.used.size;
  }

  /**
   * The address held by `peerKey`, allocating one if it holds none. The same key gets the same
   * address until released. Undefined when the pool is exhausted. The returned array is fresh.
   */
  allocate(peerKey: string): Uint8Array | undefined {
    const held = this.byPeer.get(peerKey);
    if (held !== undefined) return this.toAddress(held);
    let host: number | undefined;
    while (host === undefined && this.released.length > 0) {
      const h = this.released.pop()!;
      if (!this.used.has(h)) host = h;
    }
    if (host === undefined && this.nextFresh <= this.hostCount - 2) host = this.nextFresh++;
    if (host === undefined) return undefined;
    this.used.add(host);
    this.byPeer.set(peerKey, host);
    return this.toAddress(host);
  }

  /** Returns the address held by `peerKey` to the pool; a no-op if it holds none. */
  release(peerKey: string): void {
    const host = this.byPeer.get(peerKey);
    if (host === undefined) return;
    this.byPeer.delete(peerKey);
    this.used.delete(host);
    this.released.push(host);
  }

  /** The address `peerKey` holds, without allocating. */
  lookup(peerKey: string): Uint8Array | undefined {
    const held = this.byPeer.get(peerKey);
    return held === undefined ? undefined : this.toAddress(held);
  }

  toString(): string {
    return `AddressPool(${this.cidr.text}, gateway ${formatIp(this.gateway)}, ${this.inUse}/${this.size} in use)`;
  }

  private toAddress(host: number): Uint8Array {
    const n = (this.base + host) >>> 0;
    return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
}
