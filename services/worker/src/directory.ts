/**
 * The peers and pools a worker authenticates and addresses with, as the managed configuration
 * says now (issue #10: changed through the control API, applied without a restart).
 *
 * How this works: the follower of the managed store (libs/store ManagedFollower) hands over the
 * whole state once (`reset`) and then each commit's changes (`change`). Each peer document is
 * validated again here (the worker's own view of the global lifetimes) and compiled into the
 * `PeerSettings` the IKE contexts use: the PSK octets (read from its file now, for `psk.file`),
 * the trust anchors of its CA (only that CA authenticates its identity), its selectors, pool and
 * overrides. A document that does not compile here is skipped with a log line and a metric; the
 * others keep working. Lookups go through a PeerIndex, so matching costs the identity's length,
 * not the number of peers. Pools are ManagedPool objects that live as long as the pool's name.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import {
  checkPeerDoc,
  checkPoolDoc,
  DYNAMIC,
  type FailoverDoc,
  type Peer,
  type PeerDoc,
  PeerIndex,
  type Pool,
  type PoolDoc,
} from '@ikegate/config';
import type { TrafficSelector } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { ManagedPool } from './managed-pool.js';
import type { PeerSettings } from './types.js';

/** What a peer's overrides default to: the worker's global settings. */
export interface DirectoryGlobals {
  readonly ikeLifetimeSeconds: number;
  readonly childLifetimeSeconds: number;
  readonly rekeyMarginSeconds: number;
  readonly dpdSeconds: number;
}

/** The config's `remoteTs: [dynamic]`: any IPv4 address, narrowed to the assigned virtual IP. */
const ANY_V4: TrafficSelector = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: new Uint8Array([0, 0, 0, 0]),
  endAddress: new Uint8Array([255, 255, 255, 255]),
};

/** A configured peer as the directory holds it: the settings and the matching pattern. */
interface Entry {
  readonly settings: PeerSettings;
  readonly match: Peer['match'];
  readonly peer: Peer;
}

export interface DirectoryEvents {
  /** A peer was deleted (with `keepSas`: its SAs stay up) or changed; its SAs may need to know. */
  peerChanged?(name: string, change: 'put' | 'deleted', keepSas: boolean): void;
  /** A pool appeared, changed its network, or was deleted. */
  poolChanged?(pool: ManagedPool, change: 'put' | 'deleted'): void;
}

export interface DirectoryOptions {
  readonly globals: DirectoryGlobals;
  /** Cluster workers split pools by shard (ManagedPool); `ikegate up` does not. */
  readonly shardCount?: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly events?: DirectoryEvents;
  /** Reads PSK and CA files (tests give their own). */
  readonly readFile?: (path: string) => Uint8Array;
}

export class PeerDirectory {
  readonly #o: DirectoryOptions;
  readonly #entries = new Map<string, Entry>();
  readonly #pools = new Map<string, ManagedPool>();
  readonly #poolDocs = new Map<string, Pool>();
  #index = new PeerIndex<Entry>([]);
  /** Documents that did not compile here, by `kind:name`: shown through the API (GET /v1/config). */
  readonly #invalid = new Map<string, { kind: 'peer' | 'pool'; name: string; error: string }>();
  #anchors: X509Certificate[] = [];
  #failover: FailoverDoc = { policy: 'wait-for-reconnect', waitSeconds: 30 };

  constructor(o: DirectoryOptions) {
    this.#o = o;
  }

  get size(): number {
    return this.#entries.size;
  }

  get failover(): FailoverDoc {
    return this.#failover;
  }

  /** The peer settings for an identity (exact, then the most specific wildcard, then `*`). */
  match(peerId: string): PeerSettings | undefined {
    return this.#index.match(peerId)?.settings;
  }

  /**
   * Documents in the managed state that this worker could not apply (a PSK or CA file it cannot
   * read, a document its own config refuses): the rest applies; these keep their old settings.
   */
  invalid(): { kind: 'peer' | 'pool'; name: string; error: string }[] {
    return [...this.#invalid.values()];
  }

  peer(name: string): PeerSettings | undefined {
    return this.#entries.get(name)?.settings;
  }

  /** Every CA a certificate peer names (CERTREQ content); which one applies is per identity. */
  trustAnchors(): readonly X509Certificate[] {
    return this.#anchors;
  }

  /** The IPv4 subnets site-to-site peers are behind (their remote selectors): routed over the TUN. */
  remoteSubnets(): string[] {
    const out = new Set<string>();
    for (const e of this.#entries.values())
      for (const t of e.peer.remoteTsText) if (t !== DYNAMIC && !t.includes(':')) out.add(t);
    return [...out];
  }

  pool(name: string): ManagedPool | undefined {
    return this.#pools.get(name);
  }

  pools(): ManagedPool[] {
    return [...this.#pools.values()].filter((p) => !p.retired);
  }

  /** Replaces everything (first load, or the store's log no longer reached back to our version). */
  reset(state: {
    readonly peers: ReadonlyMap<string, PeerDoc> | readonly PeerDoc[];
    readonly pools: ReadonlyMap<string, PoolDoc> | readonly PoolDoc[];
    readonly failover: FailoverDoc;
  }): void {
    const pools = new Map([...valuesOf(state.pools)].map((p) => [p.name, p]));
    const peers = new Map([...valuesOf(state.peers)].map((p) => [p.name, p]));
    for (const name of [...this.#poolDocs.keys()]) if (!pools.has(name)) this.setPool(name, null);
    for (const [name, doc] of pools) this.setPool(name, doc);
    for (const name of [...this.#entries.keys()]) if (!peers.has(name)) this.#delete(name, false);
    for (const [name, doc] of peers) this.#put(name, doc);
    this.#reindex();
    this.#failover = state.failover;
  }

  setFailover(doc: FailoverDoc): void {
    this.#failover = doc;
    this.#o.metrics.configChanges.inc({ kind: 'failover', result: 'applied' });
  }

  /** Puts (doc) or deletes (null) one pool. */
  setPool(name: string, doc: PoolDoc | null): void {
    const { log, metrics } = this.#o;
    const existing = this.#pools.get(name);
    this.#invalid.delete(`pool:${name}`);
    if (doc === null) {
      this.#poolDocs.delete(name);
      if (existing && !existing.retired) {
        existing.retire();
        metrics.configChanges.inc({ kind: 'pool', result: 'deleted' });
        this.#o.events?.poolChanged?.(existing, 'deleted');
      }
      return;
    }
    const others = [...this.#poolDocs.values()].filter((p) => p.name !== name);
    const r = checkPoolDoc(doc, others);
    if (!r.ok) {
      metrics.configChanges.inc({ kind: 'pool', result: 'invalid' });
      log.error({ pool: name, issues: r.issues }, 'config-pool-invalid');
      const error = r.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      this.#invalid.set(`pool:${name}`, { kind: 'pool', name, error });
      return;
    }
    const p = r.value;
    const dns = p.dns.map((d) => d.address);
    this.#poolDocs.set(name, p);
    if (existing) {
      if (existing.cidr !== p.cidr.text || existing.retired || !sameDns(existing.dns, dns))
        existing.resize(p.cidr.address, p.cidr.prefix, dns);
    } else {
      this.#pools.set(name, new ManagedPool(name, p.cidr.address, p.cidr.prefix, dns, this.#o.shardCount));
    }
    metrics.configChanges.inc({ kind: 'pool', result: 'applied' });
    this.#shardCoverage(name, p.cidr.prefix);
    this.#o.events?.poolChanged?.(this.#pools.get(name)!, 'put');
  }

  /**
   * A cluster worker hands out the addresses whose host index is congruent to the SA's shard
   * (managed-pool.ts): a pool with fewer usable addresses than shards has none for the other
   * shards, and their clients are refused. Said once per change (log line and gauge), not per SA.
   */
  #shardCoverage(name: string, prefix: number): void {
    const shards = this.#o.shardCount;
    if (shards === undefined) return;
    const usable = Math.max(0, 2 ** (32 - prefix) - 3); // network, gateway, broadcast
    const without = Math.max(0, shards - usable);
    this.#o.metrics.poolShardsWithoutAddress.set({ pool: name }, without);
    if (without > 0)
      this.#o.log.warn(
        { pool: name, usable, shards, shardsWithoutAddress: without },
        'pool-smaller-than-shards: clients whose SA lands in those shards get no address (use at least a /22)',
      );
  }

  /** Puts (doc) or deletes (null) one peer; `keepSas` is passed on to the owner of its SAs. */
  setPeer(name: string, doc: PeerDoc | null, keepSas: boolean): void {
    if (doc === null ? this.#delete(name, keepSas) : this.#put(name, doc)) this.#reindex();
  }

  #delete(name: string, keepSas: boolean): boolean {
    this.#invalid.delete(`peer:${name}`);
    if (!this.#entries.delete(name)) return false;
    this.#o.metrics.configChanges.inc({ kind: 'peer', result: 'deleted' });
    this.#o.events?.peerChanged?.(name, 'deleted', keepSas);
    return true;
  }

  #put(name: string, doc: PeerDoc): boolean {
    const { log, metrics } = this.#o;
    const g = this.#o.globals;
    const r = checkPeerDoc(doc, {
      pools: new Set(this.#poolDocs.keys()),
      lifetimes: {
        ikeSeconds: g.ikeLifetimeSeconds,
        childSeconds: g.childLifetimeSeconds,
        rekeyMarginSeconds: g.rekeyMarginSeconds,
      },
    });
    let entry: Entry;
    try {
      if (!r.ok) throw new Error(r.issues.map((i) => `${i.path}: ${i.message}`).join('; '));
      entry = { settings: this.#compile(r.value), match: r.value.match, peer: r.value };
    } catch (e) {
      // The old settings (if any) stay: a bad update must not take a working peer down.
      metrics.configChanges.inc({ kind: 'peer', result: 'invalid' });
      log.error({ peer: name, err: (e as Error).message }, 'config-peer-invalid');
      this.#invalid.set(`peer:${name}`, { kind: 'peer', name, error: (e as Error).message });
      return false;
    }
    this.#invalid.delete(`peer:${name}`);
    this.#entries.set(name, entry);
    metrics.configChanges.inc({ kind: 'peer', result: 'applied' });
    this.#o.events?.peerChanged?.(name, 'put', false);
    return true;
  }

  #reindex(): void {
    this.#index = new PeerIndex(this.#entries.values());
    const seen = new Set<string>();
    this.#anchors = [];
    for (const e of this.#entries.values())
      for (const a of e.settings.trustAnchors ?? [])
        if (!seen.has(a.fingerprint256)) {
          seen.add(a.fingerprint256);
          this.#anchors.push(a);
        }
  }

  #compile(peer: Peer): PeerSettings {
    const read = this.#o.readFile ?? ((f: string) => new Uint8Array(readFileSync(f)));
    const g = this.#o.globals;
    const psk =
      peer.auth.kind === 'psk'
        ? new TextEncoder().encode(peer.auth.psk)
        : peer.auth.kind === 'psk-file'
          ? trimNewlines(read(peer.auth.file))
          : undefined;
    const trustAnchors =
      peer.auth.kind === 'cert' ? [new X509Certificate(Buffer.from(read(peer.auth.ca)))] : [];
    const pool = peer.pool !== null ? this.#pools.get(peer.pool) : undefined;
    const l = peer.lifetimes ?? {};
    const dpdSeconds = peer.dpd?.intervalSeconds ?? g.dpdSeconds;
    return {
      name: peer.name,
      ...(psk ? { psk } : {}),
      trustAnchors,
      localTs: peer.localTs,
      // 'dynamic': any address, narrowed by the state machine to the virtual IP it assigned.
      remoteTs: peer.remoteTs.map((t) => (t === DYNAMIC ? ANY_V4 : t)),
      ...(pool ? { pool } : {}),
      ...(peer.espProposals ? { espProposals: peer.espProposals } : {}),
      lifetimes: {
        ikeMs: (l.ikeSeconds ?? g.ikeLifetimeSeconds) * 1000,
        childMs: (l.childSeconds ?? g.childLifetimeSeconds) * 1000,
        marginMs: (l.rekeyMarginSeconds ?? g.rekeyMarginSeconds) * 1000,
      },
      dpdMs: dpdSeconds * 1000,
      ...(peer.failover ? { reconnectWaitSeconds: peer.failover.waitSeconds } : {}),
    };
  }
}

function valuesOf<T>(v: ReadonlyMap<string, T> | readonly T[]): Iterable<T> {
  return Array.isArray(v) ? v : (v as ReadonlyMap<string, T>).values();
}

function sameDns(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a.length === b.length && a.every((x, i) => Buffer.from(x).equals(Buffer.from(b[i]!)));
}

/** A PSK file's contents without a trailing newline. */
function trimNewlines(a: Uint8Array): Uint8Array {
  let n = a.length;
  while (n > 0 && (a[n - 1] === 0x0a || a[n - 1] === 0x0d)) n--;
  return a.subarray(0, n);
}
