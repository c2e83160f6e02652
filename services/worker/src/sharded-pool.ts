/**
 * Virtual IPs in a cluster without a shared allocator: the pool's host addresses are split by
 * shard (host index mod shard count), and an SA takes its address from its own shard's part. Only
 * a shard's lease holder allocates in that part, so two workers never hand out the same address,
 * and the address moves with the SA on takeover (`claim`). The cost: each shard owns only
 * size/shards addresses (a /16 gives 64 per shard of 1024), so a pool must be sized for that.
 */
import type { AddressPoolLike } from './types.js';

export class ShardedPool implements AddressPoolLike {
  readonly #base: number;
  readonly #hosts: number;
  readonly #byKey = new Map<string, number>();
  readonly #used = new Set<number>();

  constructor(
    readonly name: string,
    network: Uint8Array,
    prefix: number,
    readonly shardCount: number,
    readonly dns?: readonly Uint8Array[],
  ) {
    if (network.length !== 4 || prefix < 8 || prefix > 30)
      throw new RangeError(`pool ${name}: IPv4 /8../30 only`);
    this.#base = Buffer.from(network).readUInt32BE(0);
    // Host indexes 2 .. 2^(32-prefix)-2: not the network, not the gateway (.1), not broadcast.
    this.#hosts = 2 ** (32 - prefix);
  }

  get inUse(): number {
    return this.#used.size;
  }

  get size(): number {
    return this.#hosts - 3;
  }

  allocate(key: string, shard = 0): Uint8Array | undefined {
    const held = this.#byKey.get(key);
    if (held !== undefined) return this.#address(held);
    const s = ((shard % this.shardCount) + this.shardCount) % this.shardCount;
    // The shard's part: indexes ≡ s (mod shardCount), from the first usable one (>= 2).
    let i = s;
    while (i < 2) i += this.shardCount;
    for (; i <= this.#hosts - 2; i += this.shardCount) {
      if (this.#used.has(i)) continue;
      this.#used.add(i);
      this.#byKey.set(key, i);
      return this.#address(i);
    }
    return undefined;
  }

  release(key: string): void {
    const i = this.#byKey.get(key);
    if (i === undefined) return;
    this.#byKey.delete(key);
    this.#used.delete(i);
  }

  claim(key: string, address: Uint8Array): void {
    const i = (Buffer.from(address).readUInt32BE(0) - this.#base) >>> 0;
    if (i < 2 || i > this.#hosts - 2) return;
    this.release(key);
    this.#used.add(i);
    this.#byKey.set(key, i);
  }

  #address(i: number): Uint8Array {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, (this.#base + i) >>> 0);
    return b;
  }
}
