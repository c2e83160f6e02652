/**
 * RedisManagedStore: the managed configuration of a cluster, in the Redis that holds the SA store.
 *
 *   {ikegate:cfg}:version    integer, the current version (absent: 0)
 *   {ikegate:cfg}:peers      hash name -> PeerDoc JSON, PSKs sealed (psk.ts)
 *   {ikegate:cfg}:pools      hash name -> PoolDoc JSON
 *   {ikegate:cfg}:failover   FailoverDoc JSON
 *   {ikegate:cfg}:log        stream, one entry per commit with id `<version>-1`:
 *                            v, actor, at, changes (JSON, PSKs sealed); trimmed to `logLimit` entries
 *   {ikegate:cfg}:changed    pub/sub channel: the new version, published after each commit
 *
 * How this works: every key carries the hash tag `{ikegate:cfg}`, so they share one Redis Cluster
 * slot and each operation is one Lua script: a commit checks the version and writes the documents,
 * the version and the log entry atomically on the server (no WATCH: WATCH belongs to a connection,
 * and this store shares its client, auto-pipelined, with the rest of the process, so a WATCH by one
 * commit would be cleared by another's EXEC). Reads (`load`, `changesSince`) are scripts too, so
 * the version and what they return are one snapshot. Since log entry ids are versions, the commits
 * after v are `XRANGE log <v+1> +`, and a log that no longer reaches back to v+1 shows as a first
 * entry after v+1: the caller reloads.
 *
 * Notifications are a prompt to look, never the data: a dedicated subscriber connection
 * (`client.duplicate()`) prompts its subscribers on every message, once subscribed, and again after
 * each reconnect (ioredis re-subscribes by itself; we subscribe again and prompt, since messages
 * published while it was down are lost). Followers poll `version()` as well.
 */
import type { Cluster, Redis } from 'ioredis';
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';
import { LocalUsageError } from '../errors.js';
import type { Sealer } from '../seal.js';
import {
  checkActor,
  checkBase,
  checkChanges,
  isRecord,
  SEED_ACTOR,
  seedChanges,
  storedChangeProblem,
  UNSEEDED_FAILOVER,
} from './changes.js';
import { checkLogLimit } from './file.js';
import { openPeerDoc, sealPeerDoc } from './psk.js';
import type { ConfigChange, ManagedState, ManagedStore, VersionedChanges } from './types.js';

export const MANAGED_KEY_TAG = '{ikegate:cfg}';
export const MANAGED_KEYS = {
  version: `${MANAGED_KEY_TAG}:version`,
  peers: `${MANAGED_KEY_TAG}:peers`,
  pools: `${MANAGED_KEY_TAG}:pools`,
  failover: `${MANAGED_KEY_TAG}:failover`,
  log: `${MANAGED_KEY_TAG}:log`,
} as const;
export const DEFAULT_MANAGED_CHANNEL = `${MANAGED_KEY_TAG}:changed`;
export const DEFAULT_REDIS_LOG_LIMIT = 10_000;

export interface RedisManagedStoreOptions {
  /** Commits kept in the log stream; default 10000. */
  readonly logLimit?: number;
  /** The pub/sub channel commits are announced on; default `{ikegate:cfg}:changed`. */
  readonly channel?: string;
  /** The clock stamped on commits (`VersionedChanges.at`); default Date.now. */
  readonly now?: () => number;
}

const KEYS = [
  MANAGED_KEYS.version,
  MANAGED_KEYS.peers,
  MANAGED_KEYS.pools,
  MANAGED_KEYS.failover,
  MANAGED_KEYS.log,
];

const SCRIPTS = {
  // KEYS: version, peers, pools, failover, log.
  // ARGV: base, actor, at, changes JSON, logLimit, failover JSON or '', then (kind, name, JSON or ''
  // for a delete) per peer/pool change, in order. Reply: the new version, or 0 when the version is
  // not `base`. At version 0 whatever is left under the keys is cleared first: a seed starts clean.
  // The trim is exact (MAXLEN, not ~): commits are rare, and `~` trims only whole stream nodes
  // (100 entries by default), which would leave a small logLimit without effect.
  ikegateManagedCommit: {
    keys: 5,
    lua: `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur ~= tonumber(ARGV[1]) then return 0 end
if cur == 0 then redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5]) end
for i = 7, #ARGV - 2, 3 do
  local h = KEYS[2]
  if ARGV[i] == 'pool' then h = KEYS[3] end
  if ARGV[i + 2] == '' then redis.call('HDEL', h, ARGV[i + 1]) else redis.call('HSET', h, ARGV[i + 1], ARGV[i + 2]) end
end
if ARGV[6] ~= '' then redis.call('SET', KEYS[4], ARGV[6]) end
local v = string.format('%d', cur + 1)
redis.call('SET', KEYS[1], v)
redis.call('XADD', KEYS[5], 'MAXLEN', ARGV[5], v .. '-1', 'v', v, 'actor', ARGV[2], 'at', ARGV[3], 'changes', ARGV[4])
return cur + 1
`,
  },
  // KEYS: version, peers, pools, failover. Reply: {version, peers flat, pools flat, failover or nil}.
  ikegateManagedLoad: {
    keys: 4,
    lua: `
return {redis.call('GET', KEYS[1]) or '0', redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]),
  redis.call('GET', KEYS[4])}
`,
  },
  // KEYS: version, log. ARGV: first version wanted. Reply: {version, XRANGE entries from there}.
  ikegateManagedChanges: {
    keys: 2,
    lua: `
return {redis.call('GET', KEYS[1]) or '0', redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+')}
`,
  },
} as const;

type ScriptName = keyof typeof SCRIPTS;
type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;
type StreamEntry = [id: string, fields: string[]];

function corrupt(what: string): LocalUsageError {
  return new LocalUsageError('IKEGATE_ERR_STORE_BAD_STATE', `managed config in Redis: ${what}`);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw corrupt(`${where} is not JSON`);
  }
}

export class RedisManagedStore implements ManagedStore {
  readonly #client: Redis | Cluster;
  readonly #sealer: Sealer;
  readonly #logLimit: number;
  readonly #channel: string;
  readonly #now: () => number;
  readonly #subscribers = new Set<() => void>();
  #subscriber: Redis | Cluster | undefined;
  #closed = false;

  /**
   * `client` stays the caller's: the store defines its scripts on it, uses it for every command
   * and never closes it. PSKs are sealed with `sealer` (the SA store's KEK keyring).
   */
  constructor(client: Redis | Cluster, sealer: Sealer, options: RedisManagedStoreOptions = {}) {
    this.#client = client;
    this.#sealer = sealer;
    this.#logLimit = options.logLimit ?? DEFAULT_REDIS_LOG_LIMIT;
    checkLogLimit(this.#logLimit);
    this.#channel = options.channel ?? DEFAULT_MANAGED_CHANNEL;
    this.#now = options.now ?? Date.now;
    for (const [name, s] of Object.entries(SCRIPTS)) {
      client.defineCommand(name, { numberOfKeys: s.keys, lua: s.lua });
    }
  }

  async seed(initial: {
    peers: readonly PeerDoc[];
    pools: readonly PoolDoc[];
    failover: FailoverDoc;
  }): Promise<boolean> {
    return this.#write(0, seedChanges(initial), SEED_ACTOR);
  }

  /**
   * @throws SealedValueError when a peer's PSK does not open (another KEK, altered or moved);
   *   LocalUsageError IKEGATE_ERR_STORE_BAD_STATE when a stored value is not what this store writes.
   */
  async load(): Promise<ManagedState> {
    this.#checkOpen();
    const [v, peersFlat, poolsFlat, failover] = (await this.#run(
      'ikegateManagedLoad',
      ...KEYS.slice(0, 4),
    )) as [string, string[], string[], string | null];
    const version = this.#parseVersion(v);
    if (version === 0) return { version, peers: new Map(), pools: new Map(), failover: UNSEEDED_FAILOVER };
    const peers = new Map<string, PeerDoc>();
    for (const [name, doc] of this.#docs(peersFlat, MANAGED_KEYS.peers)) {
      peers.set(name, openPeerDoc(this.#sealer, name, doc as unknown as PeerDoc));
    }
    const pools = new Map<string, PoolDoc>();
    for (const [name, doc] of this.#docs(poolsFlat, MANAGED_KEYS.pools)) {
      pools.set(name, doc as unknown as PoolDoc);
    }
    let fo: unknown = UNSEEDED_FAILOVER;
    if (failover !== null) {
      fo = parseJson(failover, MANAGED_KEYS.failover);
      if (!isRecord(fo)) throw corrupt(`${MANAGED_KEYS.failover} is not an object`);
    }
    return { version, peers, pools, failover: fo as FailoverDoc };
  }

  async version(): Promise<number> {
    this.#checkOpen();
    return this.#parseVersion((await this.#client.get(MANAGED_KEYS.version)) ?? '0');
  }

  /** @throws as `load`, for a PSK or an entry of the log. */
  async changesSince(version: number): Promise<VersionedChanges[] | undefined> {
    this.#checkOpen();
    checkBase(version);
    const [v, entries] = (await this.#run(
      'ikegateManagedChanges',
      MANAGED_KEYS.version,
      MANAGED_KEYS.log,
      version + 1,
    )) as [string, StreamEntry[]];
    const current = this.#parseVersion(v);
    if (version === current) return [];
    if (version > current) return undefined;
    const out: VersionedChanges[] = [];
    for (const [id, fields] of entries) {
      const e = this.#logEntry(id, fields);
      // The log must hold every version from version+1 on; a trimmed (or lost) head means reload.
      if (e.version !== version + 1 + out.length) return undefined;
      out.push(e);
    }
    return out.length > 0 && out[out.length - 1]!.version >= current ? out : undefined;
  }

  async commit(base: number, changes: readonly ConfigChange[], actor: string): Promise<boolean> {
    checkBase(base);
    checkChanges(changes);
    checkActor(actor);
    return this.#write(base, changes, actor);
  }

  /**
   * `onChange` is called on each commit announced on the channel, once the subscription is in place
   * and after each reconnect of the subscriber connection (errors thrown by it are ignored). The
   * subscriber connection is opened by the first call and closed by `close()`.
   */
  subscribe(onChange: () => void): () => void {
    this.#checkOpen();
    const entry = () => onChange();
    this.#subscribers.add(entry);
    this.#startSubscriber();
    return () => {
      this.#subscribers.delete(entry);
    };
  }

  /** Ends the subscriber connection; the client passed to the constructor is left open. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subscribers.clear();
    this.#subscriber?.disconnect();
    this.#subscriber = undefined;
  }

  async #write(base: number, changes: readonly ConfigChange[], actor: string): Promise<boolean> {
    this.#checkOpen();
    const at = this.#now();
    const atRest = changes.map((c): unknown =>
      c.kind === 'peer' && c.value !== null ? { ...c, value: sealPeerDoc(this.#sealer, c.name, c.value) } : c,
    );
    let failover = '';
    const docs: string[] = [];
    atRest.forEach((c, i) => {
      const change = changes[i]!;
      if (change.kind === 'failover') failover = JSON.stringify(change.value);
      else
        docs.push(
          change.kind,
          change.name,
          change.value === null ? '' : JSON.stringify((c as ConfigChange).value),
        );
    });
    const reply = await this.#run(
      'ikegateManagedCommit',
      ...KEYS,
      base,
      actor,
      at,
      JSON.stringify(atRest),
      this.#logLimit,
      failover,
      ...docs,
    );
    const version = Number(reply);
    if (version === 0) return false;
    // Best effort: a lost announcement delays followers by one poll.
    this.#client.publish(this.#channel, String(version)).catch(() => undefined);
    return true;
  }

  #docs(flat: readonly string[], key: string): Map<string, Record<string, unknown>> {
    const out = new Map<string, Record<string, unknown>>();
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const name = flat[i]!;
      const doc = parseJson(flat[i + 1]!, `${key} field ${JSON.stringify(name)}`);
      if (!isRecord(doc) || doc.name !== name) {
        throw corrupt(`${key} field ${JSON.stringify(name)} is not a document named ${JSON.stringify(name)}`);
      }
      out.set(name, doc);
    }
    return out;
  }

  #logEntry(id: string, flat: readonly string[]): VersionedChanges {
    const where = `${MANAGED_KEYS.log} entry ${id}`;
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i]!, flat[i + 1]!);
    const version = Number(f.get('v'));
    const at = Number(f.get('at'));
    const actor = f.get('actor');
    if (
      !Number.isSafeInteger(version) ||
      `${version}-1` !== id ||
      actor === undefined ||
      !Number.isFinite(at)
    ) {
      throw corrupt(`${where} lacks a version matching its id, an actor or a time`);
    }
    const changes = parseJson(f.get('changes') ?? '', `${where} changes`);
    if (!Array.isArray(changes)) throw corrupt(`${where} changes is not an array`);
    changes.forEach((c: unknown, i) => {
      const problem = storedChangeProblem(c);
      if (problem !== undefined) throw corrupt(`${where} changes[${i}]${problem}`);
    });
    const opened = (changes as ConfigChange[]).map((c) =>
      c.kind === 'peer' && c.value !== null ? { ...c, value: openPeerDoc(this.#sealer, c.name, c.value) } : c,
    );
    return { version, actor, at, changes: opened };
  }

  #parseVersion(v: string): number {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw corrupt(`${MANAGED_KEYS.version} is ${JSON.stringify(v)}`);
    return n;
  }

  #startSubscriber(): void {
    if (this.#subscriber !== undefined) return;
    // Two calls, not one on the union: Redis and Cluster declare duplicate() with other parameters.
    const c = this.#client;
    const sub: Redis | Cluster = c.isCluster ? (c as Cluster).duplicate() : (c as Redis).duplicate();
    this.#subscriber = sub;
    const subscribe = () => {
      sub.subscribe(this.#channel).then(
        () => this.#prompt(),
        () => undefined, // the connection broke meanwhile; the next 'ready' subscribes again
      );
    };
    // ioredis reconnects on its own and reports each failure here; followers poll meanwhile.
    sub.on('error', () => undefined);
    sub.on('message', (channel: string) => {
      if (channel === this.#channel) this.#prompt();
    });
    let connected = false;
    sub.on('ready', () => {
      if (connected) subscribe();
      connected = true;
    });
    subscribe();
  }

  #prompt(): void {
    if (this.#closed) return;
    for (const cb of this.#subscribers) {
      try {
        cb();
      } catch {
        // A subscriber's failure is its own; the others are still prompted.
      }
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new LocalUsageError('IKEGATE_ERR_STORE_CLOSED', 'the managed store is closed');
  }

  #run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    const fn = (this.#client as unknown as Record<ScriptName, ScriptCall>)[name];
    return fn.call(this.#client, ...args);
  }
}
