/**
 * The managed state file of `ikegate up` (FileManagedStore): its format, its checks, and the atomic
 * write.
 *
 *   { "format": "ikegate-managed-state", "formatVersion": 1, "version": n,
 *     "peers": [PeerDoc...], "pools": [PoolDoc...], "failover": FailoverDoc,
 *     "log": [VersionedChanges...]   (the last commits, oldest first, the newest being `version`) }
 *
 * How this works: reading checks the structure the store relies on (documents stay opaque beyond a
 * string `name`) and rejects anything else with the file's path and the JSON path of the first
 * problem, so a corrupt or foreign file is never taken for an empty state and overwritten. Writing
 * goes to `<file>.tmp` (created afresh with mode 0600: PSKs are kept as written, as in the config
 * file), is fsynced, renamed over the file, and the directory is fsynced, so a crash leaves either
 * the old file or the new one.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';
import { LocalUsageError } from '../errors.js';
import { deepFreeze, isRecord, type JsonRecord, storedChangeProblem } from './changes.js';
import type { ConfigChange, ManagedState, VersionedChanges } from './types.js';

export const STATE_FILE_FORMAT = 'ikegate-managed-state';
export const STATE_FILE_FORMAT_VERSION = 1;
const FILE_MODE = 0o600;

export interface StateFileContents {
  readonly state: ManagedState;
  readonly log: readonly VersionedChanges[];
}

class Invalid extends Error {}

function need(ok: boolean, path: string, what: string): asserts ok {
  if (!ok) throw new Invalid(`${path} ${what}`);
}

function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkDocs(v: unknown, path: string): Map<string, JsonRecord> {
  need(Array.isArray(v), path, 'must be an array');
  const out = new Map<string, JsonRecord>();
  v.forEach((d: unknown, i) => {
    const p = `${path}[${i}]`;
    need(isRecord(d), p, 'must be an object');
    need(typeof d.name === 'string' && d.name.length > 0, `${p}.name`, 'must be a non-empty string');
    need(!out.has(d.name), `${p}.name`, `repeats ${JSON.stringify(d.name)}`);
    out.set(d.name, d);
  });
  return out;
}

function checkLog(v: unknown, version: number): VersionedChanges[] {
  need(Array.isArray(v), 'log', 'must be an array');
  v.forEach((e: unknown, i) => {
    const p = `log[${i}]`;
    need(isRecord(e), p, 'must be an object');
    need(isVersion(e.version) && e.version >= 1, `${p}.version`, 'must be an integer >= 1');
    need(
      e.version === version - (v.length - 1 - i),
      `${p}.version`,
      `is ${e.version}: the log must hold consecutive versions ending at "version" (${version})`,
    );
    need(typeof e.actor === 'string', `${p}.actor`, 'must be a string');
    need(typeof e.at === 'number' && Number.isFinite(e.at), `${p}.at`, 'must be a number');
    need(Array.isArray(e.changes), `${p}.changes`, 'must be an array');
    e.changes.forEach((c: unknown, j) => {
      const problem = storedChangeProblem(c);
      if (problem !== undefined) throw new Invalid(`${p}.changes[${j}]${problem}`);
    });
  });
  return v as VersionedChanges[];
}

function parse(text: string): StateFileContents {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new Invalid(`is not JSON (${(e as Error).message})`);
  }
  need(isRecord(root), 'the top level', 'must be an object');
  need(
    root.format === STATE_FILE_FORMAT,
    'format',
    `must be ${JSON.stringify(STATE_FILE_FORMAT)}, got ${JSON.stringify(root.format)}: not an ikegate managed state file`,
  );
  need(
    root.formatVersion === STATE_FILE_FORMAT_VERSION,
    'formatVersion',
    `must be ${STATE_FILE_FORMAT_VERSION}, got ${JSON.stringify(root.formatVersion)}`,
  );
  need(isVersion(root.version), 'version', 'must be an integer >= 0');
  const peers = checkDocs(root.peers, 'peers');
  const pools = checkDocs(root.pools, 'pools');
  need(isRecord(root.failover), 'failover', 'must be an object');
  const log = checkLog(root.log, root.version);
  deepFreeze(root);
  return {
    state: {
      version: root.version,
      peers: peers as unknown as Map<string, PeerDoc>,
      pools: pools as unknown as Map<string, PoolDoc>,
      failover: root.failover as unknown as FailoverDoc,
    },
    log,
  };
}

/**
 * The state file's contents, or undefined when there is no file at `path`.
 * @throws LocalUsageError IKEGATE_ERR_STORE_BAD_STATE naming the file and what is wrong with it;
 *   other read errors (permissions, a directory at `path`) pass through as they are.
 */
export async function readStateFile(path: string): Promise<StateFileContents | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return parse(text);
  } catch (e) {
    if (!(e instanceof Invalid)) throw e;
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_STATE',
      `managed state file ${path}: ${e.message}; it was left as it is (move it away to start from the config file)`,
    );
  }
}

export function serializeStateFile(state: ManagedState, log: readonly VersionedChanges[]): string {
  const doc = {
    format: STATE_FILE_FORMAT,
    formatVersion: STATE_FILE_FORMAT_VERSION,
    version: state.version,
    peers: [...state.peers.values()],
    pools: [...state.pools.values()],
    failover: state.failover,
    log: log.map((e) => ({ version: e.version, actor: e.actor, at: e.at, changes: e.changes })),
  } satisfies JsonRecord & { log: { changes: readonly ConfigChange[] }[] };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** Replaces the file at `path` with `text` atomically and durably (see the header). */
export async function writeStateFile(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  // A fresh file ('wx' after removing a leftover): its mode is ours and a symlink is never followed.
  await rm(tmp, { force: true });
  const fh = await open(tmp, 'wx', FILE_MODE);
  try {
    await fh.chmod(FILE_MODE);
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
