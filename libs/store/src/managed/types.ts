/**
 * The managed configuration store: peers, pools and the failover policy that the control API
 * changes at run time (issue #10, docs/api.md), versioned, with a change log every worker follows.
 *
 * How this works: the state is a set of documents (libs/config PeerDoc / PoolDoc / FailoverDoc) at
 * a version. A writer commits a list of changes on top of the version it read (`commit(base, …)`):
 * the store applies them atomically as version base+1 only if its version is still `base`, so two
 * control replicas never lose each other's writes (optimistic concurrency). Every commit is kept
 * in a bounded change log; a follower (every worker, every control replica) applies the changes
 * after its version in order, or reloads everything when the log no longer reaches back that far.
 * `subscribe` is a prompt to look (pub/sub in Redis), never the data itself; followers also poll
 * `version()`, so a lost notification delays a change by at most one poll.
 *
 * Implementations: `FileManagedStore` (`ikegate up`: in memory, persisted to a state file beside
 * the config) and `RedisManagedStore` (a cluster: PSKs sealed with the KEK). One contract suite
 * (`testing/managed-contract.ts`) runs against both.
 */
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';

export interface ManagedState {
  /** 0: nothing was ever written (not seeded). */
  readonly version: number;
  readonly peers: ReadonlyMap<string, PeerDoc>;
  readonly pools: ReadonlyMap<string, PoolDoc>;
  readonly failover: FailoverDoc;
}

/** One change: a document put (value) or deleted (null). */
export type ConfigChange =
  | {
      readonly kind: 'peer';
      readonly name: string;
      readonly value: PeerDoc | null;
      /** A deleted peer's SAs stay up until they end by themselves (DELETE /v1/peers/x?keepSas=true). */
      readonly keepSas?: boolean;
    }
  | { readonly kind: 'pool'; readonly name: string; readonly value: PoolDoc | null }
  | { readonly kind: 'failover'; readonly value: FailoverDoc };

/** The changes one commit made, and the version it made. */
export interface VersionedChanges {
  readonly version: number;
  readonly changes: readonly ConfigChange[];
  /** Who made them (an API actor, `config-file` for the seed); for the audit trail. */
  readonly actor: string;
  /** Milliseconds since the epoch, the committer's clock. */
  readonly at: number;
}

export interface ManagedStore {
  /**
   * Writes `initial` as version 1 when the store holds no managed state (version 0), atomically
   * with respect to other seeders; true if it wrote, false if state was already there.
   */
  seed(initial: {
    peers: readonly PeerDoc[];
    pools: readonly PoolDoc[];
    failover: FailoverDoc;
  }): Promise<boolean>;
  /** Everything at one version. */
  load(): Promise<ManagedState>;
  /** The current version (cheap: followers poll it). */
  version(): Promise<number>;
  /**
   * The commits after `version`, oldest first (empty when `version` is current), or undefined when
   * the log no longer holds all of them: the caller must `load()` instead. Also undefined when
   * `version` is beyond the store's own (its state was replaced, e.g. a flushed Redis).
   */
  changesSince(version: number): Promise<VersionedChanges[] | undefined>;
  /**
   * Applies `changes` atomically as version `base + 1` if the stored version is `base`; returns
   * false and writes nothing otherwise (someone else committed first: catch up and retry).
   */
  commit(base: number, changes: readonly ConfigChange[], actor: string): Promise<boolean>;
  /**
   * `onChange` is called soon after any commit by any process (best effort); returns an unsubscribe.
   * It may also be called with nothing new (e.g. once a Redis subscription is in place or back after
   * a reconnect, since commits announced meanwhile are lost): it is a prompt to look, never the data.
   * Errors it throws are ignored.
   */
  subscribe(onChange: () => void): () => void;
  close(): Promise<void>;
}
