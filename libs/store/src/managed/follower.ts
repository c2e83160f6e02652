/**
 * ManagedFollower: one process's view of the managed configuration (every worker, every control
 * replica), kept within a poll of the store, and the one way to change it (`mutate`).
 *
 * How this works: the follower holds an immutable `state` at some version. To catch up (`refresh`)
 * it reads the store's version; when it is ahead, it asks for the commits since its own version and
 * applies them one by one, each into a new state (new Maps), telling listeners per commit
 * (`changes`). When the log no longer reaches back (`changesSince` is undefined), or the store went
 * back (its state was replaced), it loads everything and tells listeners once (`reload`). A refresh
 * runs when the store prompts (subscribe), every `pollMs`, and on demand; runs never overlap, and a
 * caller always gets a run that started after its call, so a change committed before the call is
 * in `state` when it resolves. While the store cannot be reached, the follower keeps its last state,
 * logs the outage once, and tries again at each poll.
 *
 * `mutate` is optimistic concurrency: read the latest state, let the caller plan changes on it,
 * commit them on that version; when another writer got there first, catch up and plan again.
 */
import { LocalUsageError } from '../errors.js';
import { applyChanges, emptyManagedState } from './changes.js';
import type { ConfigChange, ManagedState, ManagedStore, VersionedChanges } from './types.js';

/** What the follower logs through (a pino Logger from @ikegate/telemetry fits). */
export interface FollowerLog {
  warn(o: object, msg: string): void;
  info(o: object, msg: string): void;
}

export interface ManagedFollowerOptions {
  /** How often the store's version is read, besides prompts; default 500 ms. */
  readonly pollMs?: number;
  readonly log?: FollowerLog;
}

/** One step of the applied state: a commit applied on top, or everything loaded again. */
export type ManagedChangeEvent =
  | { readonly kind: 'changes'; readonly batch: VersionedChanges; readonly state: ManagedState }
  | { readonly kind: 'reload'; readonly previous: ManagedState; readonly state: ManagedState };

export const DEFAULT_POLL_MS = 500;
export const DEFAULT_MUTATE_ATTEMPTS = 10;

const silent: FollowerLog = { warn: () => undefined, info: () => undefined };

export class ManagedFollower {
  readonly #store: ManagedStore;
  readonly #pollMs: number;
  readonly #log: FollowerLog;
  readonly #listeners = new Set<(e: ManagedChangeEvent) => void>();
  #state: ManagedState = emptyManagedState();
  /** Runs are chained on `#tail`, so they never overlap; `#queued` is the one not started yet. */
  #tail: Promise<unknown> = Promise.resolve();
  #queued: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #started: Promise<void> | undefined;
  #stopped = false;
  /** Set by the first load: until then a refresh loads instead of following the log. */
  #loaded = false;
  /** True from the first failed refresh to the next successful one: one warning per outage. */
  #failing = false;

  constructor(store: ManagedStore, options: ManagedFollowerOptions = {}) {
    this.#store = store;
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    if (!Number.isFinite(this.#pollMs) || this.#pollMs < 1) {
      throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_TTL', `pollMs must be >= 1, got ${this.#pollMs}`);
    }
    this.#log = options.log ?? silent;
  }

  /** The applied state; version 0 and empty before `start`. Never changed in place: replaced. */
  get state(): ManagedState {
    return this.#state;
  }

  /**
   * Subscribes, loads the state once (listeners get a `reload` from the empty state), and starts
   * polling. A second call returns the first call's promise.
   * @throws whatever the store's `load` throws (nothing is left running then).
   */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  async #start(): Promise<void> {
    // Subscribed before loading, so a commit between the load and the subscription is not missed.
    this.#unsubscribe = this.#store.subscribe(() => void this.#poll());
    try {
      await this.refresh();
    } catch (e) {
      this.stop();
      throw e;
    }
    if (this.#stopped) return;
    this.#timer = setInterval(() => void this.#poll(), this.#pollMs);
    this.#timer.unref();
  }

  /**
   * Catches up with the store now. Resolves once a refresh that started after this call has
   * finished; concurrent callers share it.
   * @throws what the store throws (e.g. Redis down); `state` is then the last one applied.
   */
  refresh(): Promise<void> {
    // A run queued and not started yet is shared: it will read the store after this call.
    if (this.#queued !== undefined) return this.#queued;
    const run = this.#tail.then(() => {
      this.#queued = undefined;
      return this.#catchUp();
    });
    this.#queued = run;
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Calls `cb` for each step of `state` from now on; returns a function that stops that. */
  onChange(cb: (e: ManagedChangeEvent) => void): () => void {
    const entry = (e: ManagedChangeEvent) => cb(e);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  /**
   * Commits the changes `plan` makes on the latest state, planning again on the new state whenever
   * another writer committed first, up to `maxAttempts` (default 10) times. Once it resolves,
   * `state` includes the commit (unless the store failed right after it; then the next poll brings
   * it, and a warning is logged). No changes: nothing is committed, and the version is the current one.
   * @throws what `plan` throws, unchanged (nothing committed); what the store throws;
   *   LocalUsageError IKEGATE_ERR_STORE_CONFIG_CONFLICT after `maxAttempts` lost races.
   */
  async mutate<T>(
    actor: string,
    plan: (state: ManagedState) => { changes: ConfigChange[]; result: T },
    options: { maxAttempts?: number } = {},
  ): Promise<{ version: number; result: T }> {
    const maxAttempts = options.maxAttempts ?? DEFAULT_MUTATE_ATTEMPTS;
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      await this.refresh();
      const base = this.#state;
      const { changes, result } = plan(base);
      if (changes.length === 0) return { version: base.version, result };
      if (await this.#store.commit(base.version, changes, actor)) {
        const version = base.version + 1;
        try {
          await this.refresh();
        } catch (e) {
          this.#log.warn(
            { version, err: (e as Error).message },
            'managed-config-refresh-after-commit-failed',
          );
        }
        return { version, result };
      }
    }
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_CONFIG_CONFLICT',
      `the managed configuration changed under ${actor}'s change ${maxAttempts} times in a row; nothing was committed`,
    );
  }

  /** Stops polling and the subscription; `state` stays readable, `refresh` and `mutate` still work. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** A refresh for a timer or a prompt: failures are logged once per outage, never thrown. */
  async #poll(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.refresh();
      if (this.#failing) {
        this.#failing = false;
        this.#log.info({ version: this.#state.version }, 'managed-config-store-recovered');
      }
    } catch (e) {
      if (!this.#failing) {
        this.#failing = true;
        this.#log.warn(
          { version: this.#state.version, err: (e as Error).message },
          'managed-config-store-unreachable',
        );
      }
    }
  }

  async #catchUp(): Promise<void> {
    // The first run loads everything: replaying a long log from version 0 would only be slower.
    if (!this.#loaded) return this.#reload();
    const ours = this.#state.version;
    const theirs = await this.#store.version();
    if (theirs === ours) return;
    if (theirs > ours) {
      const batches = await this.#store.changesSince(ours);
      if (batches !== undefined && this.#applyAll(batches)) return;
    } else {
      this.#log.warn({ version: ours, storeVersion: theirs }, 'managed-config-store-went-back');
    }
    await this.#reload();
  }

  /** Applies consecutive commits; false (having applied a prefix) when they do not follow on. */
  #applyAll(batches: readonly VersionedChanges[]): boolean {
    for (const batch of batches) {
      if (batch.version !== this.#state.version + 1) return false;
      this.#state = applyChanges(this.#state, batch.changes, batch.version);
      this.#emit({ kind: 'changes', batch, state: this.#state });
    }
    return true;
  }

  async #reload(): Promise<void> {
    const state = await this.#store.load();
    const previous = this.#state;
    this.#state = state;
    this.#loaded = true;
    this.#emit({ kind: 'reload', previous, state });
  }

  #emit(e: ManagedChangeEvent): void {
    for (const cb of this.#listeners) {
      try {
        cb(e);
      } catch (err) {
        this.#log.warn(
          { version: e.state.version, err: (err as Error).message },
          'managed-config-listener-failed',
        );
      }
    }
  }
}
