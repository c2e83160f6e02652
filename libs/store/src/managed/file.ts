/**
 * FileManagedStore: the managed configuration of `ikegate up`, one process, kept in memory and
 * persisted to a state file beside the config (state-file.ts), or in memory only (`path` null, for
 * tests).
 *
 * How this works: every write (seed, commit) runs on one promise chain, so a commit's check of the
 * base version and its write are atomic within the process. The new state is written to the file
 * first and becomes the store's state only once the file is durable: a failed write rejects the
 * commit and changes nothing. The change log (the last `logLimit` commits) lives in memory only:
 * the file holds the current documents and no history, so a PSK that was replaced (rotated after
 * a leak) is gone from the disk with the commit that replaced it. After a restart a follower loads
 * the whole state (its first refresh always does). Documents are copied in and
 * frozen, so a caller can neither change stored state through an object it passed nor through one
 * it got back. One process owns the file: two stores on one file would overwrite each other.
 */
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';
import { LocalUsageError } from '../errors.js';
import {
  applyChanges,
  checkActor,
  checkBase,
  checkChanges,
  emptyManagedState,
  frozenCommit,
  SEED_ACTOR,
  seedChanges,
} from './changes.js';
import { readStateFile, serializeStateFile, writeStateFile } from './state-file.js';
import type { ConfigChange, ManagedState, ManagedStore, VersionedChanges } from './types.js';

export interface FileManagedStoreOptions {
  /** Commits kept in the change log (and in the file); default 1000. */
  readonly logLimit?: number;
  /** The clock stamped on commits (`VersionedChanges.at`); default Date.now. */
  readonly now?: () => number;
}

export const DEFAULT_FILE_LOG_LIMIT = 1000;

export function checkLogLimit(logLimit: number): void {
  if (!Number.isSafeInteger(logLimit) || logLimit < 1) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_CHANGE',
      `logLimit must be an integer >= 1, got ${logLimit}`,
    );
  }
}

export class FileManagedStore implements ManagedStore {
  readonly #path: string | null;
  readonly #logLimit: number;
  readonly #now: () => number;
  #state: ManagedState;
  #log: readonly VersionedChanges[];
  #tail: Promise<unknown> = Promise.resolve();
  readonly #subscribers = new Set<() => void>();
  #closed = false;

  private constructor(
    path: string | null,
    options: FileManagedStoreOptions,
    state: ManagedState,
    log: readonly VersionedChanges[],
  ) {
    this.#path = path;
    this.#logLimit = options.logLimit ?? DEFAULT_FILE_LOG_LIMIT;
    this.#now = options.now ?? Date.now;
    this.#state = state;
    this.#log = log.slice(-this.#logLimit);
  }

  /**
   * Opens the store on the state file at `path` (version 0 when there is none; the file is first
   * written by the first seed or commit), or in memory only when `path` is null.
   * @throws LocalUsageError IKEGATE_ERR_STORE_BAD_STATE when the file is not a valid state file (the
   *   message names the file and the problem; the file is left untouched).
   */
  static async open(path: string | null, options: FileManagedStoreOptions = {}): Promise<FileManagedStore> {
    checkLogLimit(options.logLimit ?? DEFAULT_FILE_LOG_LIMIT);
    const contents = path === null ? undefined : await readStateFile(path);
    return new FileManagedStore(path, options, contents?.state ?? emptyManagedState(), contents?.log ?? []);
  }

  async seed(initial: {
    peers: readonly PeerDoc[];
    pools: readonly PoolDoc[];
    failover: FailoverDoc;
  }): Promise<boolean> {
    return this.#write(0, seedChanges(initial), SEED_ACTOR);
  }

  async load(): Promise<ManagedState> {
    this.#checkOpen();
    const s = this.#state;
    return { version: s.version, peers: new Map(s.peers), pools: new Map(s.pools), failover: s.failover };
  }

  async version(): Promise<number> {
    this.#checkOpen();
    return this.#state.version;
  }

  async changesSince(version: number): Promise<VersionedChanges[] | undefined> {
    this.#checkOpen();
    checkBase(version);
    const current = this.#state.version;
    if (version === current) return [];
    // Ahead of the store (its state was replaced), or older than the log reaches: load instead.
    if (version > current) return undefined;
    const oldest = this.#log[0];
    if (oldest === undefined || oldest.version > version + 1) return undefined;
    return this.#log.slice(version + 1 - oldest.version);
  }

  async commit(base: number, changes: readonly ConfigChange[], actor: string): Promise<boolean> {
    checkBase(base);
    checkChanges(changes);
    checkActor(actor);
    return this.#write(base, changes, actor);
  }

  /** `onChange` runs (in a later turn, errors ignored) after each seed or commit of this store. */
  subscribe(onChange: () => void): () => void {
    this.#checkOpen();
    // A wrapper per call, so the same function subscribed twice is two subscriptions.
    const entry = () => onChange();
    this.#subscribers.add(entry);
    return () => {
      this.#subscribers.delete(entry);
    };
  }

  /** Waits for writes in progress; afterwards every method throws LocalUsageError STORE_CLOSED. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#subscribers.clear();
    await this.#tail;
  }

  #checkOpen(): void {
    if (this.#closed) throw new LocalUsageError('IKEGATE_ERR_STORE_CLOSED', 'the managed store is closed');
  }

  #write(base: number, changes: readonly ConfigChange[], actor: string): Promise<boolean> {
    this.#checkOpen();
    const run = this.#tail.then(async () => {
      this.#checkOpen();
      if (this.#state.version !== base) return false;
      const entry = frozenCommit(base + 1, changes, actor, this.#now());
      const state = applyChanges(this.#state, entry.changes, entry.version);
      const log = [...this.#log, entry].slice(-this.#logLimit);
      // No history on disk: an old PSK must not outlive its replacement (see the header).
      if (this.#path !== null) await writeStateFile(this.#path, serializeStateFile(state, []));
      this.#state = state;
      this.#log = log;
      this.#notify();
      return true;
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #notify(): void {
    for (const cb of this.#subscribers) {
      setImmediate(() => {
        try {
          cb();
        } catch {
          // A subscriber's failure is its own; the store and the other subscribers carry on.
        }
      });
    }
  }
}
