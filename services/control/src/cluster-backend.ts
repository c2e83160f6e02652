/**
 * The control API's view of a cluster: members and leases from Redis, SAs and pool holders from
 * each worker's admin endpoint (admin-api.ts), drains through Redis (workers) or the edge's admin
 * endpoint. Calls carry the cluster's internal credential and the caller's name (for the worker's
 * audit line), have a deadline each, and run in parallel; a member that does not answer is
 * reported in `unreachable`, never waited on past its deadline.
 */
import type { LeaseTable } from '@ikegate/store';
import type { SaQuery, SaSummary, MemberInfo, RedisMembership } from '@ikegate/worker';
import type {
  CommandResult,
  ControlBackend,
  EdgeView,
  SaCommand,
  SaListing,
  ShardView,
  WorkerView,
} from './backend.js';
import { type PoolHolder, ProblemError } from './problem.js';

export interface ClusterBackendOptions {
  readonly workers: RedisMembership;
  readonly edges: RedisMembership;
  readonly leases: LeaseTable;
  readonly shardCount: number;
  /** `Authorization` value for admin calls (the internal token). */
  readonly authorization: string;
  /** Per call; default 3000 ms. */
  readonly timeoutMs?: number;
  /** The control process's own applied managed-config version. */
  readonly controlVersion: () => number;
  readonly actor?: () => string | undefined;
}

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

export class ClusterBackend implements ControlBackend {
  readonly clustered = true;
  readonly #o: ClusterBackendOptions;

  constructor(o: ClusterBackendOptions) {
    this.#o = o;
  }

  async #call<T>(admin: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
    const r = await fetch(`http://${admin}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        authorization: this.#o.authorization,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(this.#o.timeoutMs ?? 3000),
    });
    if (r.status >= 300) {
      await r.body?.cancel();
      throw new HttpStatusError(r.status);
    }
    return (await r.json()) as T;
  }

  /** `fn` on every worker at once: the answers, and who did not answer. */
  async #fanOut<T>(fn: (m: MemberInfo) => Promise<T>, only?: string) {
    const members = (await this.#o.workers.list()).filter((m) => only === undefined || m.id === only);
    const settled = await Promise.allSettled(members.map(fn));
    const ok: { member: MemberInfo; value: T }[] = [];
    const unreachable: string[] = [];
    settled.forEach((s, i) => {
      if (s.status === 'fulfilled') ok.push({ member: members[i]!, value: s.value });
      else unreachable.push(members[i]!.id);
    });
    return { ok, unreachable };
  }

  async sas(q: SaQuery & { readonly worker?: string }): Promise<SaListing> {
    const { worker, ...query } = q;
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const { ok, unreachable } = await this.#fanOut(
      (m) =>
        this.#call<{ items: SaSummary[]; more: boolean; counts: Record<string, number> }>(
          m.admin,
          `/internal/v1/sas?${params}`,
        ),
      worker,
    );
    // The merge of each worker's first `limit` after the same SPI: the global first `limit`.
    const all = ok.flatMap((r) => r.value.items).sort((a, b) => (a.spi < b.spi ? -1 : 1));
    const counts: Record<string, number> = {};
    for (const r of ok) for (const [k, v] of Object.entries(r.value.counts)) counts[k] = (counts[k] ?? 0) + v;
    return {
      items: all.slice(0, q.limit),
      more: all.length > q.limit || ok.some((r) => r.value.more),
      counts,
      unreachable,
    };
  }

  /** The worker holding `spi`; 503 when it is nowhere to be found but some worker did not answer. */
  async #find(spi: string) {
    const { ok, unreachable } = await this.#fanOut((m) =>
      this.#call<SaSummary>(m.admin, `/internal/v1/sas/${spi}`).catch((e: unknown) => {
        if (e instanceof HttpStatusError && e.status === 404) return undefined;
        throw e;
      }),
    );
    const found = ok.find((r) => r.value !== undefined);
    if (!found && unreachable.length > 0)
      throw new ProblemError(
        'unavailable',
        `IKE SA ${spi} is on none of the workers that answered; ${unreachable.join(', ')} did not`,
      );
    return found;
  }

  async sa(spi: string): Promise<SaSummary | undefined> {
    return (await this.#find(spi))?.value;
  }

  async command(spi: string, command: SaCommand): Promise<CommandResult> {
    const found = await this.#find(spi);
    if (!found) return 'not-found';
    try {
      await this.#call(found.member.admin, `/internal/v1/sas/${spi}/command`, {
        method: 'POST',
        body: { command },
      });
      return 'accepted';
    } catch (e) {
      if (e instanceof HttpStatusError && e.status === 404) return 'not-found';
      if (e instanceof HttpStatusError && e.status === 409) return 'not-ready';
      throw new ProblemError('unavailable', `worker ${found.member.id} did not take the command`);
    }
  }

  async poolHolders(name: string): Promise<{ holders: PoolHolder[]; unreachable: string[] }> {
    const { ok, unreachable } = await this.#fanOut((m) =>
      this.#call<{ holders: PoolHolder[] }>(
        m.admin,
        `/internal/v1/pools/${encodeURIComponent(name)}/holders`,
      ),
    );
    return {
      holders: ok.flatMap((r) => r.value.holders.map((h) => ({ ...h, worker: r.member.id }))),
      unreachable,
    };
  }

  async workers(): Promise<WorkerView[]> {
    const members = await this.#o.workers.list();
    const owners = await this.#o.leases.owners();
    const shards = new Map<string, number>();
    for (const l of owners.values()) shards.set(l.owner, (shards.get(l.owner) ?? 0) + 1);
    return Promise.all(
      members.map(async (m) => {
        const status = await this.#call<{ sas: number; pendingWrites: number; configVersion: number }>(
          m.admin,
          '/internal/v1/status',
        ).catch(() => undefined);
        return {
          id: m.id,
          relay: m.relay,
          admin: m.admin,
          healthy: status !== undefined,
          draining: m.draining === true,
          shards: shards.get(m.id) ?? 0,
          ...(status
            ? { sas: status.sas, pendingWrites: status.pendingWrites, configVersion: status.configVersion }
            : {}),
          ...(!status && m.configVersion !== undefined ? { configVersion: m.configVersion } : {}),
        };
      }),
    );
  }

  async edges(): Promise<EdgeView[]> {
    const members = await this.#o.edges.list();
    return Promise.all(
      members.map(async (m) => {
        const status = await this.#call<{ connections: number; draining: boolean; unowned: number }>(
          m.admin,
          '/internal/v1/status',
        ).catch(() => undefined);
        return {
          id: m.id,
          admin: m.admin,
          healthy: status !== undefined,
          draining: status?.draining ?? m.draining === true,
          ...(status ? { connections: status.connections, unowned: status.unowned } : {}),
        };
      }),
    );
  }

  async shards(): Promise<{ count: number; items: ShardView[] }> {
    const owners = await this.#o.leases.owners();
    const items: ShardView[] = [];
    for (let s = 0; s < this.#o.shardCount; s++) {
      const l = owners.get(s);
      items.push(l ? { shard: s, owner: l.owner, epoch: l.epoch, expiresAt: l.expiresAt } : { shard: s });
    }
    return { count: this.#o.shardCount, items };
  }

  async drainWorker(id: string, drain: boolean): Promise<'ok' | 'not-found'> {
    if (drain && !(await this.#o.workers.list()).some((m) => m.id === id)) return 'not-found';
    return (await this.#o.workers.setDraining(id, drain, this.#o.actor?.() ?? 'control'))
      ? 'ok'
      : 'not-found';
  }

  async drainEdge(id: string, graceSeconds: number): Promise<'ok' | 'not-found' | 'unreachable'> {
    const edge = (await this.#o.edges.list()).find((m) => m.id === id);
    if (!edge) return 'not-found';
    try {
      await this.#call(edge.admin, '/internal/v1/drain', { method: 'POST', body: { graceSeconds } });
      return 'ok';
    } catch {
      return 'unreachable';
    }
  }

  async configVersions() {
    // Asked now (the membership record is up to a lease round old); the record when no answer.
    const members = await this.#o.workers.list();
    type Status = {
      configVersion: number;
      invalid: { kind: 'peer' | 'pool'; name: string; error: string }[];
    };
    const statuses = await Promise.all(
      members.map((m) => this.#call<Status>(m.admin, '/internal/v1/status').catch(() => undefined)),
    );
    return [
      { id: 'control', kind: 'control' as const, version: this.#o.controlVersion() },
      ...members.map((m, i) => {
        const s = statuses[i];
        const version = s?.configVersion ?? m.configVersion;
        return {
          id: m.id,
          kind: 'worker' as const,
          ...(version !== undefined ? { version } : {}),
          ...(s ? { invalid: s.invalid } : {}),
        };
      }),
    ];
  }
}
