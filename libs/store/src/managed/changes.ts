/**
 * The pure half of the managed configuration store, shared by both stores and the follower: what
 * a well-formed commit is, and how a batch of changes turns one state into the next.
 *
 * How this works: documents are opaque JSON values here (libs/config validates them before they
 * reach a store). A store takes a copy of every document it is given through a JSON round trip, so
 * the memory store and Redis keep exactly the same thing (no `undefined` fields, no shared objects),
 * and freezes what it hands out. `applyChanges` never changes its input: it returns a new state with
 * new Maps, so a follower's `state` can be read while the next one is being built.
 */
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';
import { LocalUsageError } from '../errors.js';
import type { ConfigChange, ManagedState, VersionedChanges } from './types.js';

/** The actor recorded for the seed commit (version 1, written from the config file). */
export const SEED_ACTOR = 'config-file';

/**
 * `failover` of a store that was never seeded (version 0): the config file's default policy.
 * Nothing should act on a version-0 state; this only keeps `ManagedState.failover` total.
 */
export const UNSEEDED_FAILOVER: FailoverDoc = Object.freeze({
  policy: 'wait-for-reconnect',
  waitSeconds: 30,
});

export function emptyManagedState(): ManagedState {
  return { version: 0, peers: new Map(), pools: new Map(), failover: UNSEEDED_FAILOVER };
}

export type JsonRecord = Record<string, unknown>;

export function isRecord(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Freezes a JSON value in place, recursively; returns it. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** A frozen copy of a JSON value as JSON would carry it (undefined fields dropped). */
export function frozenJson<T>(v: T): T {
  return deepFreeze(JSON.parse(JSON.stringify(v)) as T);
}

function bad(message: string): LocalUsageError {
  return new LocalUsageError('IKEGATE_ERR_STORE_BAD_CHANGE', message);
}

export function checkBase(base: number): void {
  if (!Number.isSafeInteger(base) || base < 0) throw bad(`base version must be an integer >= 0, got ${base}`);
}

export function checkActor(actor: string): void {
  if (typeof actor !== 'string' || actor.length === 0 || actor.length > 200) {
    throw bad('actor must be a string of 1..200 characters');
  }
}

/**
 * Checks the shape a store relies on: a known kind, a non-empty name that is the document's own
 * `name`, and no PSK already in the form a store keeps at rest (`{ psk: { sealed } }`), which a
 * store would take for its own on reading it back.
 * @throws LocalUsageError IKEGATE_ERR_STORE_BAD_CHANGE naming the change (by index) and the problem.
 */
export function checkChanges(changes: readonly ConfigChange[]): void {
  if (!Array.isArray(changes)) throw bad('changes must be an array');
  changes.forEach((c: ConfigChange, i) => {
    const where = `change ${i}`;
    if (!isRecord(c)) throw bad(`${where} is not an object`);
    if (c.kind === 'failover') {
      if (!isRecord(c.value)) throw bad(`${where} (failover) needs a document`);
      return;
    }
    if (c.kind !== 'peer' && c.kind !== 'pool') {
      throw bad(`${where} has unknown kind ${JSON.stringify((c as { kind?: unknown }).kind)}`);
    }
    if (typeof c.name !== 'string' || c.name.length === 0) throw bad(`${where} (${c.kind}) needs a name`);
    if (c.value === null) return;
    if (!isRecord(c.value)) throw bad(`${where} (${c.kind} ${c.name}) value must be a document or null`);
    if (c.value.name !== c.name) {
      throw bad(
        `${where}: ${c.kind} ${JSON.stringify(c.name)} carries a document named ${JSON.stringify(c.value.name)}`,
      );
    }
    if (c.kind === 'peer') {
      const auth: unknown = c.value.auth;
      if (isRecord(auth) && isRecord(auth.psk) && 'sealed' in auth.psk) {
        throw bad(`${where}: peer ${JSON.stringify(c.name)} has a PSK in sealed form; give the PSK itself`);
      }
    }
  });
}

/** The changes that write `initial` over an empty state, in the order a seed commit records them. */
export function seedChanges(initial: {
  peers: readonly PeerDoc[];
  pools: readonly PoolDoc[];
  failover: FailoverDoc;
}): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const seen = { peer: new Set<string>(), pool: new Set<string>() };
  const add = (kind: 'peer' | 'pool', doc: PeerDoc | PoolDoc) => {
    if (seen[kind].has(doc.name)) throw bad(`seed has ${kind} ${JSON.stringify(doc.name)} twice`);
    seen[kind].add(doc.name);
    changes.push(
      kind === 'peer'
        ? { kind, name: doc.name, value: doc as PeerDoc }
        : { kind, name: doc.name, value: doc as PoolDoc },
    );
  };
  for (const p of initial.peers) add('peer', p);
  for (const p of initial.pools) add('pool', p);
  changes.push({ kind: 'failover', value: initial.failover });
  checkChanges(changes);
  return changes;
}

/**
 * The state after `changes`, as version `version`; `state` is not changed. Documents are used as
 * given (the stores hand out frozen copies).
 */
export function applyChanges(
  state: ManagedState,
  changes: readonly ConfigChange[],
  version: number,
): ManagedState {
  let peers: Map<string, PeerDoc> | undefined;
  let pools: Map<string, PoolDoc> | undefined;
  let failover = state.failover;
  for (const c of changes) {
    switch (c.kind) {
      case 'peer':
        peers ??= new Map(state.peers);
        if (c.value === null) peers.delete(c.name);
        else peers.set(c.name, c.value);
        break;
      case 'pool':
        pools ??= new Map(state.pools);
        if (c.value === null) pools.delete(c.name);
        else pools.set(c.name, c.value);
        break;
      case 'failover':
        failover = c.value;
        break;
    }
  }
  return { version, peers: peers ?? new Map(state.peers), pools: pools ?? new Map(state.pools), failover };
}

/**
 * What is wrong with a change read back from storage (a state file, the Redis log), as a suffix for
 * its path (`.kind must be ...`), or undefined when it has the shape the stores rely on.
 */
export function storedChangeProblem(c: unknown): string | undefined {
  if (!isRecord(c)) return ' must be an object';
  if (c.kind === 'failover') return isRecord(c.value) ? undefined : '.value must be an object';
  if (c.kind !== 'peer' && c.kind !== 'pool') return '.kind must be "peer", "pool" or "failover"';
  if (typeof c.name !== 'string' || c.name.length === 0) return '.name must be a non-empty string';
  if (c.value !== null && !isRecord(c.value)) return '.value must be an object or null';
  if (c.keepSas !== undefined && typeof c.keepSas !== 'boolean') return '.keepSas must be a boolean';
  return undefined;
}

/** A frozen copy of one commit, as a store keeps it in its log. */
export function frozenCommit(
  version: number,
  changes: readonly ConfigChange[],
  actor: string,
  at: number,
): VersionedChanges {
  return deepFreeze({ version, changes: frozenJson(changes), actor, at });
}
