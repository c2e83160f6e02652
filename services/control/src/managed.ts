/**
 * The managed configuration in a process: seeded from the config file the first time, followed
 * afterwards (libs/store ManagedFollower), applied to the worker's PeerDirectory change by change.
 *
 * Precedence (docs/configuration.md): the config file's `peers:`, `pools:` and `failover:` seed
 * the managed state when it is empty (a new state file, a new Redis). From then on the managed
 * state is the truth and the API changes it; a file whose documents differ from it is reported
 * at start (`config-file-differs`, with the names) and not applied. Everything else in the file
 * (identity, listeners, proposals, lifetimes, ...) is read from the file at every start.
 */
import { type Config, type PeerDoc, type PoolDoc, seedDocuments } from '@ikegate/config';
import { ManagedFollower, type ManagedStore } from '@ikegate/store';
import type { Logger, Metrics } from '@ikegate/telemetry';
import type { PeerDirectory } from '@ikegate/worker';

function differing<T extends { name: string }>(
  file: readonly T[],
  managed: ReadonlyMap<string, T>,
): string[] {
  const names = new Set([...file.map((d) => d.name), ...managed.keys()]);
  const byName = new Map(file.map((d) => [d.name, d]));
  return [...names].filter((n) => JSON.stringify(byName.get(n)) !== JSON.stringify(managed.get(n))).sort();
}

export interface ManagedOptions {
  readonly store: ManagedStore;
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** A worker's directory: every change is applied to it (control processes have none). */
  readonly directory?: PeerDirectory;
  /** Called after each applied change, e.g. the failover policy changed. */
  readonly applied?: (kind: 'peer' | 'pool' | 'failover' | 'reload') => void;
  readonly pollMs?: number;
}

/** Seeds (once), loads, starts following; resolves once the current state is applied. */
export async function startManaged(o: ManagedOptions): Promise<ManagedFollower> {
  const { log, metrics, directory } = o;
  const seed = seedDocuments(o.config);
  const seeded = await o.store.seed(seed);
  const follower = new ManagedFollower(o.store, { log, ...(o.pollMs ? { pollMs: o.pollMs } : {}) });
  follower.onChange((e) => {
    if (e.kind === 'reload') {
      directory?.reset(e.state);
      o.applied?.('reload');
    } else {
      for (const c of e.batch.changes) {
        if (c.kind === 'peer') directory?.setPeer(c.name, c.value, c.keepSas ?? false);
        else if (c.kind === 'pool') directory?.setPool(c.name, c.value);
        else directory?.setFailover(c.value);
        o.applied?.(c.kind);
      }
      log.info(
        {
          version: e.batch.version,
          actor: e.batch.actor,
          changes: e.batch.changes.map(
            (c) =>
              `${c.kind}${'name' in c ? ` ${c.name}` : ''}${c.kind !== 'failover' && c.value === null ? ' deleted' : ''}`,
          ),
        },
        'config-applied',
      );
    }
    metrics.configVersion.set(e.state.version);
  });
  await follower.start();
  const s = follower.state;
  if (seeded) log.info({ version: s.version, peers: s.peers.size, pools: s.pools.size }, 'config-seeded');
  else {
    const peers = differing<PeerDoc>(seed.peers, s.peers);
    const pools = differing<PoolDoc>(seed.pools, s.pools);
    const failover = JSON.stringify(seed.failover) !== JSON.stringify(s.failover);
    if (peers.length + pools.length > 0 || failover)
      log.warn(
        { peers, pools, failover, version: s.version },
        'config-file-differs: the managed state (changed through the API) is in force; the file only seeds an empty state',
      );
  }
  return follower;
}
