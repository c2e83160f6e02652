/**
 * RedisStore: the production store (ARCHITECTURE.md, "State, leases and HA").
 *
 * Every fenced operation is one Lua script that reads the shard's lease epoch and writes only if
 * it matches, so the check and the write are atomic on the server. All keys a script touches carry
 * the shard's hash tag `{s<shard>}` (see keys.ts), so they share a Redis Cluster slot. Lease expiry
 * is the lease key's PEXPIRE, measured on the server's clock (TIME inside the script), so the
 * workers' clocks never decide who owns a shard. The epoch counter is a separate key without a
 * TTL: it survives expiry and release, and only ever grows.
 *
 * Replication (docs/ha.md "Redis failover"): Redis replicates asynchronously, so a primary that
 * dies right after acknowledging a write may take it along, and the promoted replica would lack it,
 * or lack an epoch bump (a lower epoch on the new primary could let a fenced-off owner write again).
 * With `replicaAcks: n` every fenced write, lease grant and release is confirmed by n replicas
 * (WAIT) before its call resolves; one WAIT covers every write this connection sent before it, so
 * concurrent writes share it. A write the replicas did not confirm rejects with ReplicaAckError and
 * the caller writes it again (the worker keeps it pending), also after a switch to a new primary.
 * When the primary has fewer online replicas than asked (a failover left none yet), waiting cannot
 * help: writes are accepted unreplicated and counted (`replicaStats`); an operator who wants them
 * refused instead sets `min-replicas-to-write` on the servers.
 *
 * Listing a shard uses the shard's index set (SSCAN in bounded batches) instead of a keyspace SCAN,
 * which in Redis Cluster would have to visit every node.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Lease, LeaseGrant, LeaseRef, ShardContents, SyncState } from './contract.js';
import { FencedWriteError, LocalUsageError, ReplicaAckError } from './errors.js';
import {
  checkShardCount,
  DEFAULT_SHARD_COUNT,
  epochKey,
  indexKey,
  leaseKey,
  saKey,
  syncKey,
  VERSION_KEY,
} from './keys.js';
import type { Keyring } from './seal.js';
import { SealedStore, type ShardBackend, type SyncFields, syncFromFields } from './sealed-store.js';

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

/** How many replicas confirm a write before it counts as done (module comment, "Replication"). */
export interface ReplicaAckOptions {
  /**
   * Replicas that must acknowledge (WAIT) every fenced write (putSa, deleteSa, putSync) and every
   * lease grant or release before the call resolves. 0: no waiting (replication stays
   * asynchronous; a failover may lose the last writes). Standalone and Sentinel only.
   */
  readonly replicaAcks?: number;
  /** How long one WAIT may block the connection (default 500 ms). */
  readonly replicaAckTimeoutMs?: number;
}

/** Where the store lives: one server, a Sentinel-managed master, or a Redis Cluster. */
/** `username`: a Redis 6+ ACL user (AUTH username password); without it the default user. */
export type RedisConnection = ReplicaAckOptions &
  (
    | (RedisNode & { readonly username?: string; readonly password?: string; readonly db?: number })
    | {
        readonly sentinels: readonly RedisNode[];
        readonly name: string;
        readonly username?: string;
        readonly password?: string;
        readonly sentinelPassword?: string;
      }
    | { readonly nodes: readonly RedisNode[]; readonly username?: string; readonly password?: string }
  );

/** What the replica waits did so far (RedisBackend.replicaStats). */
export interface ReplicaAckStats {
  /** WAIT commands sent (each covers every write sent before it on the connection). */
  waits: number;
  /** Writes rejected because no replica confirmed them (ReplicaAckError, or WAIT itself failed). */
  unconfirmed: number;
  /** Writes accepted while the primary had fewer online replicas than `replicaAcks`. */
  unreplicated: number;
}

export const DEFAULT_REPLICA_ACK_TIMEOUT_MS = 500;
/** After a WAIT found too few online replicas, writes skip WAIT for this long (then look again). */
const FEW_REPLICAS_RECHECK_MS = 1000;

function credentialsOf(c: { readonly username?: string; readonly password?: string }): RedisOptions {
  return {
    ...(c.username === undefined ? {} : { username: c.username }),
    ...(c.password === undefined ? {} : { password: c.password }),
  };
}

export interface RedisStoreOptions {
  readonly connection: RedisConnection;
  readonly kek: Keyring;
  /** Shards are 0..shardCount-1; default 1024. `owners()` reads this many lease keys. */
  readonly shardCount?: number;
  /** Extra ioredis options (TLS, timeouts, retry strategy), merged under ours. */
  readonly redisOptions?: RedisOptions;
}

/** SSCAN batch size for listing a shard. */
const LIST_BATCH = 256;
/** Bound on SSCAN rounds for one listing; at LIST_BATCH per round, far beyond any shard's SAs. */
const MAX_LIST_ROUNDS = 100_000;
/** Lease keys read concurrently by owners(). */
const OWNERS_BATCH = 256;

// Fence prelude shared by the write scripts: KEYS[1] is the lease, ARGV[1] the writer's epoch.
// Replies 'F<live epoch>' ('F' alone: no live lease) and writes nothing when they differ.
const FENCE = `
local live = redis.call('HGET', KEYS[1], 'epoch')
if live ~= ARGV[1] then return 'F' .. (live or '') end
`;

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

const SCRIPTS = {
  // KEYS: lease, epoch. ARGV: owner, ttlMs, takeFrom ('' for none). Reply: {epoch, expiresAt} or nil.
  ikegateAcquire: {
    keys: 2,
    lua: `
local holder = redis.call('HGET', KEYS[1], 'owner')
if holder and holder ~= ARGV[1] and (ARGV[3] == '' or holder ~= ARGV[3]) then return false end
${NOW_MS}
local ttl = tonumber(ARGV[2])
local epoch = redis.call('INCR', KEYS[2])
local exp = string.format('%d', now + ttl)
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'epoch', epoch, 'expiresAt', exp)
redis.call('PEXPIRE', KEYS[1], ttl)
return {epoch, exp}
`,
  },
  // KEYS: lease. ARGV: owner, epoch, ttlMs. Reply: 1 renewed, 0 not the live tenure.
  ikegateRenew: {
    keys: 1,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
${NOW_MS}
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'expiresAt', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
`,
  },
  // renew of many leases of one owner (standalone/Sentinel only: the keys span hash slots).
  // KEYS: the leases. ARGV: owner, ttlMs, then each key's epoch. Reply: 1/0 per key, in order.
  ikegateRenewMany: {
    keys: undefined,
    lua: `
${NOW_MS}
local ttl = tonumber(ARGV[2])
local exp = string.format('%d', now + ttl)
local out = {}
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'owner', 'epoch')
  if cur[1] == ARGV[1] and cur[2] == ARGV[i + 2] then
    redis.call('HSET', KEYS[i], 'expiresAt', exp)
    redis.call('PEXPIRE', KEYS[i], ttl)
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
`,
  },
  // owners() in one call per batch (standalone/Sentinel only). KEYS: leases. Reply: owner, epoch,
  // expiresAt per key (false, read as nil, for a key without a live lease).
  ikegateLeases: {
    keys: undefined,
    lua: `
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'owner', 'epoch', 'expiresAt')
  out[3 * i - 2] = v[1] or false
  out[3 * i - 1] = v[2] or false
  out[3 * i] = v[3] or false
end
return out
`,
  },
  // KEYS: lease. ARGV: owner, epoch. Reply: 1 released, 0 not the live tenure.
  ikegateRelease: {
    keys: 1,
    lua: `
local cur = redis.call('HMGET', KEYS[1], 'owner', 'epoch')
if cur[1] ~= ARGV[1] or cur[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`,
  },
  // KEYS: lease, sa, index. ARGV: epoch, sealed value, SA key. Reply: 'OK' or 'F...'.
  ikegatePutSa: {
    keys: 3,
    lua: `${FENCE}
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 'OK'
`,
  },
  // KEYS: lease, sa, sync, index. ARGV: epoch, SA key. Reply: 'OK' or 'F...'.
  ikegateDeleteSa: {
    keys: 4,
    lua: `${FENCE}
redis.call('DEL', KEYS[2], KEYS[3])
redis.call('SREM', KEYS[4], ARGV[2])
return 'OK'
`,
  },
  // KEYS: lease, sa, sync. ARGV: epoch, field, decimal, field, decimal, ...
  // Reply: HGETALL of the merged checkpoint, 'M' when the SA does not exist, or 'F...'.
  ikegatePutSync: {
    keys: 3,
    lua: `${FENCE}
if redis.call('EXISTS', KEYS[2]) == 0 then return 'M' end
for i = 2, #ARGV - 1, 2 do
  local f, v = ARGV[i], ARGV[i + 1]
  local cur = redis.call('HGET', KEYS[3], f)
  if (not cur) or #v > #cur or (#v == #cur and v > cur) then redis.call('HSET', KEYS[3], f, v) end
end
return redis.call('HGETALL', KEYS[3])
`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptCall = (...args: (string | number | Buffer)[]) => Promise<unknown>;

function pairsToRecord(flat: readonly string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
  return h;
}

export class RedisBackend implements ShardBackend {
  readonly shardCount: number;
  readonly client: Redis | Cluster;
  readonly replicaAcks: number;
  readonly replicaAckTimeoutMs: number;
  readonly replicaStats: ReplicaAckStats = { waits: 0, unconfirmed: 0, unreplicated: 0 };
  /** Bumped whenever the connection closes: a WAIT only vouches for writes of its own connection. */
  #generation = 0;
  /** The next WAIT, not sent yet: writes whose replies arrived join it. */
  #barrier: { readonly generation: number; readonly done: Promise<boolean> } | undefined;
  /** Until then the primary is known to have fewer online replicas than replicaAcks. */
  #fewReplicasUntil = 0;

  constructor(options: RedisStoreOptions) {
    this.shardCount = options.shardCount ?? DEFAULT_SHARD_COUNT;
    checkShardCount(this.shardCount);
    const c = options.connection;
    this.replicaAcks = c.replicaAcks ?? 0;
    this.replicaAckTimeoutMs = c.replicaAckTimeoutMs ?? DEFAULT_REPLICA_ACK_TIMEOUT_MS;
    if (!Number.isInteger(this.replicaAcks) || this.replicaAcks < 0 || this.replicaAcks > 16) {
      throw new LocalUsageError(
        'IKEGATE_ERR_STORE_BAD_REPLICA_ACKS',
        `replicaAcks must be 0..16, got ${this.replicaAcks}`,
      );
    }
    if (!Number.isInteger(this.replicaAckTimeoutMs) || this.replicaAckTimeoutMs < 1) {
      throw new LocalUsageError(
        'IKEGATE_ERR_STORE_BAD_REPLICA_ACKS',
        `replicaAckTimeoutMs must be a positive integer, got ${this.replicaAckTimeoutMs}`,
      );
    }
    if (this.replicaAcks > 0 && 'nodes' in c) {
      throw new LocalUsageError(
        'IKEGATE_ERR_STORE_BAD_REPLICA_ACKS',
        'replicaAcks is not supported with a Redis Cluster (nodes) yet: WAIT would have to reach the node of each slot',
      );
    }
    this.client = connect(c, options.redisOptions ?? {});
    this.client.on('close', () => {
      this.#generation++;
      this.#fewReplicasUntil = 0;
    });
    for (const [name, s] of Object.entries(SCRIPTS)) {
      // keys undefined: the call passes the number of keys first (a variable-key script).
      this.client.defineCommand(
        name,
        s.keys === undefined ? { lua: s.lua } : { numberOfKeys: s.keys, lua: s.lua },
      );
    }
  }

  /**
   * Resolves once `replicaAcks` replicas confirmed every write this connection sent before now
   * (`generation`: the connection the caller's write went out on). Rejects with ReplicaAckError
   * when that is not known: the connection changed since, or an online replica did not confirm in
   * time. Resolves unconfirmed (counted) when the primary has too few online replicas to wait for.
   */
  async #replicated(generation: number): Promise<void> {
    if (this.replicaAcks === 0) return;
    if (generation !== this.#generation) {
      this.replicaStats.unconfirmed++;
      throw new ReplicaAckError(
        'the connection to Redis ended before replicas confirmed the write (failover?); write it again',
      );
    }
    if (Date.now() < this.#fewReplicasUntil) {
      this.replicaStats.unreplicated++;
      return;
    }
    let b = this.#barrier;
    if (b === undefined || b.generation !== generation) {
      const done = new Promise<boolean>((resolve, reject) => {
        // Sent after this I/O round: every write whose reply came in the same round joins it.
        setImmediate(() => {
          if (this.#barrier?.done === done) this.#barrier = undefined;
          this.#wait(generation).then(resolve, reject);
        });
      });
      b = { generation, done };
      this.#barrier = b;
    }
    let confirmed: boolean;
    try {
      confirmed = await b.done;
    } catch (e) {
      this.replicaStats.unconfirmed++; // ReplicaAckError, or the connection failed during WAIT
      throw e;
    }
    if (!confirmed) this.replicaStats.unreplicated++;
  }

  /** One WAIT: true when confirmed, false when too few replicas are online to confirm anything. */
  async #wait(generation: number): Promise<boolean> {
    this.replicaStats.waits++;
    const acked = Number(
      await (this.client as Redis).call('WAIT', this.replicaAcks, this.replicaAckTimeoutMs),
    );
    if (generation !== this.#generation) {
      throw new ReplicaAckError(
        'the connection to Redis changed before replicas confirmed the write (failover?); write it again',
      );
    }
    if (acked >= this.replicaAcks) return true;
    const info = String(await (this.client as Redis).info('replication'));
    const online = [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
    if (generation !== this.#generation || online >= this.replicaAcks) {
      throw new ReplicaAckError(
        `${acked} of ${this.replicaAcks} replicas confirmed the write within ${this.replicaAckTimeoutMs} ms; write it again`,
      );
    }
    // Fewer replicas than asked are online (e.g. the one left after a failover is the primary now):
    // the write is on this primary and nothing can confirm it. Stop waiting for a while.
    this.#fewReplicasUntil = Date.now() + FEW_REPLICAS_RECHECK_MS;
    return false;
  }

  async putSealed(shard: number, epoch: number, key: string, sealed: Uint8Array): Promise<void> {
    // ioredis sends only Buffers as binary; any other Uint8Array would go out as "1,2,3".
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const gen = this.#generation;
    const r = await this.run(
      'ikegatePutSa',
      leaseKey(shard),
      saKey(shard, key),
      indexKey(shard),
      epoch,
      bytes,
      key,
    );
    this.checkFence(r, shard, epoch);
    await this.#replicated(gen);
  }

  async getSealed(shard: number, key: string): Promise<Uint8Array | undefined> {
    const v = await this.client.getBuffer(saKey(shard, key));
    return v === null ? undefined : new Uint8Array(v);
  }

  async deleteSa(shard: number, epoch: number, key: string): Promise<void> {
    const gen = this.#generation;
    const r = await this.run(
      'ikegateDeleteSa',
      leaseKey(shard),
      saKey(shard, key),
      syncKey(shard, key),
      indexKey(shard),
      epoch,
      key,
    );
    this.checkFence(r, shard, epoch);
    await this.#replicated(gen);
  }

  async putSync(
    shard: number,
    epoch: number,
    key: string,
    fields: SyncFields,
  ): Promise<SyncState | undefined> {
    const gen = this.#generation;
    const r = await this.run(
      'ikegatePutSync',
      leaseKey(shard),
      saKey(shard, key),
      syncKey(shard, key),
      epoch,
      ...fields.flat(),
    );
    if (r === 'M') return undefined;
    this.checkFence(r, shard, epoch);
    await this.#replicated(gen);
    return syncFromFields(pairsToRecord(r as string[]));
  }

  async getSync(shard: number, key: string): Promise<SyncState | undefined> {
    const h = await this.client.hgetall(syncKey(shard, key));
    return Object.keys(h).length === 0 ? undefined : syncFromFields(h);
  }

  async listSealed(shard: number): Promise<ShardContents> {
    const sas = new Map<string, Uint8Array>();
    const sync = new Map<string, SyncState>();
    let cursor = '0';
    for (let round = 0; ; round++) {
      if (round >= MAX_LIST_ROUNDS) {
        throw new LocalUsageError(
          'IKEGATE_ERR_STORE_LIST_TOO_LONG',
          `shard ${shard} did not finish listing in ${MAX_LIST_ROUNDS} SSCAN rounds`,
        );
      }
      const [next, keys] = await this.client.sscan(indexKey(shard), cursor, 'COUNT', LIST_BATCH);
      const fresh = [...new Set(keys)].filter((k) => !sas.has(k));
      if (fresh.length > 0) {
        // One slot (the shard's hash tag), so MGET and the pipeline are valid in Redis Cluster too.
        const values = await this.client.mgetBuffer(...fresh.map((k) => saKey(shard, k)));
        const p = this.client.pipeline();
        for (const k of fresh) p.hgetall(syncKey(shard, k));
        const hashes = (await p.exec()) ?? [];
        fresh.forEach((k, i) => {
          const v = values[i];
          // An index entry without a value cannot outlive the script that removes both; skip it anyway.
          if (v === null || v === undefined) return;
          sas.set(k, new Uint8Array(v));
          const [err, h] = hashes[i] ?? [null, {}];
          if (err) throw err;
          const rec = h as Record<string, string>;
          if (Object.keys(rec).length > 0) sync.set(k, syncFromFields(rec));
        });
      }
      cursor = next;
      if (cursor === '0') break;
    }
    return { sas, sync };
  }

  async acquire(
    shard: number,
    owner: string,
    ttlMs: number,
    takeFrom?: string,
  ): Promise<LeaseGrant | undefined> {
    const gen = this.#generation;
    const r = await this.run(
      'ikegateAcquire',
      leaseKey(shard),
      epochKey(shard),
      owner,
      ttlMs,
      takeFrom ?? '',
    );
    if (r === null) return undefined;
    const [epoch, expiresAt] = r as [number, string];
    await this.client.incr(VERSION_KEY);
    // The epoch bump must survive a failover before anyone writes under it: a promoted replica
    // with the old epoch would hand the same epoch to the next owner, and both would pass the fence.
    await this.#replicated(gen);
    return { epoch, expiresAt: Number(expiresAt) };
  }

  async renew(shard: number, owner: string, epoch: number, ttlMs: number): Promise<boolean> {
    return (await this.run('ikegateRenew', leaseKey(shard), owner, epoch, ttlMs)) === 1;
  }

  /**
   * Whether scripts over several shards' keys are refused: a Redis Cluster client, or a sharded
   * server behind one address (a proxy, a sharded managed database) that answered CROSSSLOT once.
   */
  #keyByKey = false;

  #multiKeyRefused(e: unknown): boolean {
    if (!(e instanceof Error) || !/CROSSSLOT|different slots/i.test(e.message)) return false;
    this.#keyByKey = true;
    return true;
  }

  async renewMany(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<boolean[]> {
    // A Redis Cluster refuses a script over keys of several hash slots (each shard is its own).
    const oneByOne = () => Promise.all(leases.map((l) => this.renew(l.shard, owner, l.epoch, ttlMs)));
    if (this.client instanceof Cluster || this.#keyByKey) return oneByOne();
    const out: boolean[] = [];
    try {
      for (let i = 0; i < leases.length; i += OWNERS_BATCH) {
        const batch = leases.slice(i, i + OWNERS_BATCH);
        const reply = (await this.run(
          'ikegateRenewMany',
          batch.length,
          ...batch.map((l) => leaseKey(l.shard)),
          owner,
          ttlMs,
          ...batch.map((l) => l.epoch),
        )) as number[];
        for (const r of reply) out.push(r === 1);
      }
    } catch (e) {
      // Renewing twice is harmless: batches already done are renewed again, key by key.
      if (this.#multiKeyRefused(e)) return oneByOne();
      throw e;
    }
    return out;
  }

  async release(shard: number, owner: string, epoch: number): Promise<boolean> {
    const gen = this.#generation;
    const released = (await this.run('ikegateRelease', leaseKey(shard), owner, epoch)) === 1;
    if (released) {
      await this.client.incr(VERSION_KEY);
      await this.#replicated(gen);
    }
    return released;
  }

  async owners(): Promise<Map<number, Lease>> {
    const out = new Map<number, Lease>();
    for (let base = 0; base < this.shardCount; base += OWNERS_BATCH) {
      const shards = Array.from(
        { length: Math.min(OWNERS_BATCH, this.shardCount - base) },
        (_, i) => base + i,
      );
      if (!(this.client instanceof Cluster) && !this.#keyByKey) {
        // One script call per batch: 1,024 HMGETs per round had been most of an idle worker's
        // Redis time (issue #14); a Cluster reads key by key (the keys span hash slots).
        let flat: (string | null)[];
        try {
          flat = (await this.run('ikegateLeases', shards.length, ...shards.map((s) => leaseKey(s)))) as (
            string | null
          )[];
        } catch (e) {
          if (!this.#multiKeyRefused(e)) throw e;
          base -= OWNERS_BATCH; // this batch again, key by key
          continue;
        }
        shards.forEach((s, i) => {
          const owner = flat[3 * i];
          const epoch = flat[3 * i + 1];
          const expiresAt = flat[3 * i + 2];
          if (owner == null || epoch == null || expiresAt == null) return;
          out.set(s, { owner, epoch: Number(epoch), expiresAt: Number(expiresAt) });
        });
        continue;
      }
      const rows = await Promise.all(
        shards.map((s) => this.client.hmget(leaseKey(s), 'owner', 'epoch', 'expiresAt')),
      );
      rows.forEach(([owner, epoch, expiresAt], i) => {
        if (owner == null || epoch == null || expiresAt == null) return;
        out.set(shards[i]!, { owner, epoch: Number(epoch), expiresAt: Number(expiresAt) });
      });
    }
    return out;
  }

  async version(): Promise<number> {
    return Number((await this.client.get(VERSION_KEY)) ?? '0');
  }

  async close(): Promise<void> {
    await this.client.quit();
  }

  private run(name: ScriptName, ...args: (string | number | Buffer)[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<ScriptName, ScriptCall>)[name];
    return fn.call(this.client, ...args);
  }

  private checkFence(reply: unknown, shard: number, epoch: number): void {
    if (typeof reply === 'string' && reply.startsWith('F')) {
      const live = reply.slice(1);
      throw new FencedWriteError(shard, epoch, live === '' ? undefined : Number(live));
    }
  }
}

function connect(c: RedisConnection, extra: RedisOptions): Redis | Cluster {
  // replicaAcks/replicaAckTimeoutMs are ours, not ioredis options; nothing below spreads `c`.
  // Auto-pipelining batches owners()' concurrent reads per node, also in Cluster mode.
  const base: RedisOptions = { enableAutoPipelining: true, ...extra };
  if ('nodes' in c) {
    return new Cluster(
      c.nodes.map((n) => ({ host: n.host, port: n.port })),
      {
        enableAutoPipelining: true,
        redisOptions: { ...base, ...credentialsOf(c) },
      },
    );
  }
  if ('sentinels' in c) {
    return new Redis({
      ...base,
      sentinels: c.sentinels.map((n) => ({ host: n.host, port: n.port })),
      name: c.name,
      ...credentialsOf(c),
      // Sentinels speak TLS too when the data nodes do.
      ...(base.tls ? { sentinelTLS: base.tls, enableTLSForSentinelMode: true } : {}),
      ...(c.sentinelPassword === undefined ? {} : { sentinelPassword: c.sentinelPassword }),
    });
  }
  return new Redis({
    ...base,
    host: c.host,
    port: c.port,
    ...credentialsOf(c),
    ...(c.db === undefined ? {} : { db: c.db }),
  });
}

/** SaStore and LeaseTable in Redis (standalone, Sentinel or Cluster), values sealed with the KEK. */
export class RedisStore extends SealedStore {
  override readonly backend: RedisBackend;

  constructor(options: RedisStoreOptions) {
    const backend = new RedisBackend(options);
    super(backend, options.kek);
    this.backend = backend;
  }
}
