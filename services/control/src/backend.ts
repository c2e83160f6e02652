/**
 * What the control API reads and commands, behind one narrow interface with two implementations:
 * `LocalBackend` (`ikegate up`: the worker in this process) and `ClusterBackend`
 * (cluster-backend.ts: the members in Redis, their admin endpoints over HTTP). The managed
 * configuration (peers, pools, policies) is not here: both use a ManagedFollower for that.
 */
import type { SaQuery, SaSummary, Worker } from '@ikegate/worker';
import type { PoolHolder } from './problem.js';

export type SaCommand = 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness';
export type CommandResult = 'accepted' | 'not-found' | 'not-ready';

export interface SaListing {
  readonly items: SaSummary[];
  readonly more: boolean;
  readonly counts: Record<string, number>;
  /** Workers that did not answer (their SAs are missing). */
  readonly unreachable: string[];
}

export interface WorkerView {
  readonly id: string;
  readonly relay?: string;
  readonly admin?: string;
  readonly healthy: boolean;
  readonly draining: boolean;
  readonly shards: number;
  readonly sas?: number;
  readonly configVersion?: number;
  readonly pendingWrites?: number;
}

export interface EdgeView {
  readonly id: string;
  readonly admin?: string;
  readonly healthy: boolean;
  readonly draining: boolean;
  readonly connections?: number;
  readonly unowned?: number;
}

export interface ShardView {
  readonly shard: number;
  readonly owner?: string;
  readonly epoch?: number;
  /** ms since the epoch. */
  readonly expiresAt?: number;
}

export interface ControlBackend {
  /** False for `ikegate up`: the cluster routes answer 409 not-clustered. */
  readonly clustered: boolean;
  sas(q: SaQuery & { readonly worker?: string }): Promise<SaListing>;
  sa(spi: string): Promise<SaSummary | undefined>;
  command(spi: string, command: SaCommand): Promise<CommandResult>;
  /** Who holds addresses of a pool, on every worker. */
  poolHolders(name: string): Promise<{ holders: PoolHolder[]; unreachable: string[] }>;
  workers(): Promise<WorkerView[]>;
  edges(): Promise<EdgeView[]>;
  shards(): Promise<{ count: number; items: ShardView[] }>;
  /** Marks a worker draining (its shards move to the others) or not; not-found: no such member. */
  drainWorker(id: string, drain: boolean): Promise<'ok' | 'not-found'>;
  drainEdge(id: string, graceSeconds: number): Promise<'ok' | 'not-found' | 'unreachable'>;
  /** The managed configuration version each member applied. */
  configVersions(): Promise<
    {
      id: string;
      kind: 'worker' | 'control';
      version?: number;
      invalid?: { kind: 'peer' | 'pool'; name: string; error: string }[];
    }[]
  >;
}

/** `ikegate up`: one worker in this process owns everything. */
export class LocalBackend implements ControlBackend {
  readonly clustered = false;
  constructor(
    private readonly worker: Worker,
    private readonly appliedVersion: () => number,
    private readonly invalid: () => { kind: 'peer' | 'pool'; name: string; error: string }[] = () => [],
  ) {}

  async sas(q: SaQuery & { readonly worker?: string }): Promise<SaListing> {
    if (q.worker !== undefined && q.worker !== 'local')
      return { items: [], more: false, counts: {}, unreachable: [] };
    const { worker: _, ...rest } = q;
    return { ...this.worker.page(rest), unreachable: [] };
  }

  async sa(spi: string): Promise<SaSummary | undefined> {
    return this.worker.get(spi);
  }

  async command(spi: string, command: SaCommand): Promise<CommandResult> {
    if (!this.worker.get(spi)) return 'not-found';
    return this.worker.command(spi, command) ? 'accepted' : 'not-ready';
  }

  async poolHolders(name: string) {
    return {
      holders: this.worker.poolHolders(name).map((h) => ({ ...h, worker: 'local' })),
      unreachable: [],
    };
  }

  async workers(): Promise<WorkerView[]> {
    return [
      {
        id: 'local',
        healthy: true,
        draining: false,
        shards: 0,
        sas: this.worker.ikeSaCount,
        configVersion: this.appliedVersion(),
      },
    ];
  }

  async edges(): Promise<EdgeView[]> {
    return [{ id: 'local', healthy: true, draining: false }];
  }

  async shards() {
    return { count: 0, items: [] };
  }

  async drainWorker(): Promise<'ok' | 'not-found'> {
    return 'not-found';
  }

  async drainEdge(): Promise<'ok' | 'not-found' | 'unreachable'> {
    return 'not-found';
  }

  async configVersions() {
    return [
      { id: 'local', kind: 'worker' as const, version: this.appliedVersion(), invalid: this.invalid() },
    ];
  }
}
