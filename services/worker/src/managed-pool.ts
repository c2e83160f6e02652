/**
 * One virtual IP pool whose network can change while addresses are held (the control API's
 * PUT /v1/pools/{name}). Host numbering as libs/config AddressPool: 0 is the network, 1 the
 * gateway, the last the broadcast; none of the three is handed out.
 *
 * Sharded (a cluster worker, `shardCount` set): an SA takes an address whose host index is
 * congruent to its shard modulo the shard count, so the workers holding different shards never
 * hand out the same address without talking to each other, and the address moves with the SA on
 * takeover (`claim`). Unsharded (`ikegate up`): any free address.
 *
 * The object stays the same for the pool's whole life (SA records keep a reference to release
 * through); `resize` swaps the network underneath and keeps every holder whose address is inside
 * the new one. The control API refuses a change that would leave a holder outside it, or that
 * moves the network's base while any address is held (a sharded index would change meaning);
 * a holder that still ends up outside (it was allocated between the check and the change) keeps
 * its address until its SA ends, and nobody else can be given it. `retire` (the pool was
 * deleted) stops new allocations; releases still work.
 */
import type { AddressPoolLike } from './types.js';

/** Allocation scans at most this many candidate indexes of a shard per call (bounded CPU). */
const MAX_SCAN = 1 << 16;

export class ManagedPool implements AddressPoolLike {
  #base = 0;
  #prefix = 32;
  #hosts = 0;
  #dns: readonly Uint8Array[] = [];
  #retired = false;
  readonly #byKey = new Map<string, number>();
  readonly #byIndex = new Map<number, string>();
  /** Unsharded: the next never-used index and indexes released since. */
  #nextFresh = 2;
  #free: number[] = [];

  constructor(
    readonly name: string,
    network: Uint8Array,
    prefix: number,
    dns: readonly Uint8Array[],
    readonly shardCount?: number,
  ) {
    this.#set(network, prefix, dns);
  }

  get cidr(): string {
    return `${this.#text(this.#base)}/${this.#prefix}`;
  }

  get dns(): readonly Uint8Array[] {
    return this.#dns;
  }

  get inUse(): number {
    return this.#byKey.size;
  }

  /** Addresses that can be handed out (network, gateway and broadcast excluded). */
  get size(): number {
    return this.#hosts - 3;
  }

  get retired(): boolean {
    return this.#retired;
  }

  allocate(key: string, shard = 0): Uint8Array | undefined {
    const held = this.#byKey.get(key);
    if (held !== undefined) return this.#address(held);
    if (this.#retired) return undefined;
    const i = this.shardCount === undefined ? this.#anyFree() : this.#freeInShard(shard);
    if (i === undefined) return undefined;
    this.#hold(key, i);
    return this.#address(i);
  }

  release(key: string): void {
    const i = this.#byKey.get(key);
    if (i === undefined) return;
    this.#byKey.delete(key);
    this.#byIndex.delete(i);
    if (this.shardCount === undefined && i <= this.#hosts - 2) this.#free.push(i);
  }

  /** Marks `address` as held by `key` (an SA taken over from another worker, or restored). */
  claim(key: string, address: Uint8Array): void {
    const i = this.#indexOf(address);
    this.release(key);
    const other = this.#byIndex.get(i);
    if (other !== undefined) this.#byKey.delete(other);
    this.#hold(key, i);
  }

  /** Who holds what: `key` as given to allocate (the worker maps it to its SA). */
  holders(): { key: string; address: Uint8Array }[] {
    return [...this.#byKey].map(([key, i]) => ({ key, address: this.#address(i) }));
  }

  /** Whether `address` is inside the current network (and not its network/gateway/broadcast). */
  contains(address: Uint8Array): boolean {
    const i = this.#indexOf(address);
    return i >= 2 && i <= this.#hosts - 2;
  }

  /** A new network (and DNS servers) under the same pool; holders keep their addresses. */
  resize(network: Uint8Array, prefix: number, dns: readonly Uint8Array[]): void {
    const held = this.holders();
    this.#byKey.clear();
    this.#byIndex.clear();
    this.#set(network, prefix, dns);
    for (const h of held) this.#hold(h.key, this.#indexOf(h.address));
    if (this.shardCount === undefined) {
      let top = 1;
      for (const i of this.#byIndex.keys()) if (i > top && i <= this.#hosts - 2) top = i;
      this.#nextFresh = top + 1;
      this.#free = [];
      for (let i = 2; i < this.#nextFresh; i++) if (!this.#byIndex.has(i)) this.#free.push(i);
    }
  }

  retire(): void {
    this.#retired = true;
  }

  #set(network: Uint8Array, prefix: number, dns: readonly Uint8Array[]): void {
    if (network.length !== 4 || prefix < 8 || prefix > 30)
      throw new RangeError(`pool ${this.name}: IPv4 /8../30 only`);
    this.#base = Buffer.from(network).readUInt32BE(0);
    this.#prefix = prefix;
    this.#hosts = 2 ** (32 - prefix);
    this.#dns = dns;
    this.#retired = false;
    this.#nextFresh = 2;
    this.#free = [];
  }

  #hold(key: string, i: number): void {
    this.#byKey.set(key, i);
    this.#byIndex.set(i, key);
  }

  #anyFree(): number | undefined {
    while (this.#free.length > 0) {
      const i = this.#free.pop()!;
      if (!this.#byIndex.has(i) && i <= this.#hosts - 2) return i;
    }
    while (this.#nextFresh <= this.#hosts - 2) {
      const i = this.#nextFresh++;
      if (!this.#byIndex.has(i)) return i;
    }
    return undefined;
  }

  #freeInShard(shard: number): number | undefined {
    const n = this.shardCount!;
    const s = ((shard % n) + n) % n;
    let i = s;
    while (i < 2) i += n;
    for (let scanned = 0; i <= this.#hosts - 2 && scanned < MAX_SCAN; i += n, scanned++) {
      if (!this.#byIndex.has(i)) return i;
    }
    return undefined;
  }

  #indexOf(address: Uint8Array): number {
    return (Buffer.from(address).readUInt32BE(0) - this.#base) | 0;
  }

  #address(i: number): Uint8Array {
    // Octet by octet: through a DataView, V8 moves a small array's octets out of the heap into a
    // backing store of their own (node 20: 26 B less heap, ~380 B more RSS per array).
    const n = (this.#base + i) >>> 0;
    return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }

  #text(n: number): string {
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
}
