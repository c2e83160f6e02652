/**
 * A real Redis Sentinel topology for tests, on loopback: one primary, one replica (`replicaof`)
 * and three sentinels (`redis-server <conf> --sentinel`, quorum 2), each on a port the kernel just
 * handed out as free, each in its own temporary directory, no persistence. Failure detection is
 * fast (`down-after-milliseconds` 1000, `failover-timeout` 5000), so after the primary dies the
 * sentinels promote the replica within a few seconds. `stop()` kills every process it started and
 * removes the directories; every wait has a deadline.
 *
 * Topologies started side by side must not steer each other's nodes: a killed primary's port may
 * be handed to another test's redis-server while this topology's sentinels still try to demote
 * it (SLAVEOF). So each topology gets its own master name (sentinels ignore hello messages about
 * other names) and its own name for SLAVEOF (renamed on its nodes, `sentinel rename-command` for
 * its sentinels; REPLICAOF off): a sentinel's SLAVEOF fails on any node not of its topology.
 *
 * Returns a skip reason instead when the binary is missing (the caller turns it into a failure
 * under CI=true with @ikegate/testkit `requirement`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@ikegate/testkit';
import { Redis } from 'ioredis';

const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
/** Sentinels discover each other (hello messages every 2 s) and the replica within this. */
const TOPOLOGY_TIMEOUT_MS = 30_000;

export interface SentinelNode {
  readonly host: string;
  readonly port: number;
}

/** One redis-server process of the topology (a data node or a sentinel). */
export interface RedisProcess {
  readonly port: number;
  readonly pid: number;
  readonly alive: boolean;
  /** Sends `signal` and, unless it is SIGSTOP/SIGCONT, waits (bounded) for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SentinelTopologyOptions {
  /** Master name the sentinels monitor (default `ikegate-<random>`, one per topology). */
  readonly name?: string;
  /** `sentinel down-after-milliseconds` (default 1000). */
  readonly downAfterMs?: number;
  /** `sentinel failover-timeout` (default 5000). */
  readonly failoverTimeoutMs?: number;
}

export interface SentinelTopology {
  readonly name: string;
  /** Where the sentinels listen: pass as `{ sentinels, name }` to RedisStore / `cluster.redis`. */
  readonly sentinels: readonly SentinelNode[];
  /** The data nodes: the initial primary first, then the replica. */
  readonly nodes: readonly RedisProcess[];
  readonly sentinelProcesses: readonly RedisProcess[];
  /** The port of the primary a majority of the sentinels name now. */
  primaryPort(timeoutMs?: number): Promise<number>;
  /** The data node that is the primary now (by the sentinels' majority). */
  primary(timeoutMs?: number): Promise<RedisProcess>;
  /**
   * Waits until a majority of sentinels name a primary other than `oldPort` and that node says it
   * is a master (ROLE). Returns its port; throws after `timeoutMs`.
   */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

/** A redis-server child process with the tail of its output (also used by redis-cluster.ts). */
export class Proc implements RedisProcess {
  readonly child: ChildProcess;
  #out = '';

  constructor(
    readonly port: number,
    binary: string,
    args: string[],
  ) {
    this.child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (b: Buffer) => {
      this.#out = (this.#out + b.toString('utf8')).slice(-8192);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get output(): string {
    return this.#out;
  }

  /** Resolves true once `text` appeared in its output, false on exit or after the deadline. */
  async waitOutput(text: string, timeoutMs = READY_TIMEOUT_MS): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      if (this.#out.includes(text)) return true;
      if (!this.alive) return false;
      await sleep(20);
    }
    return false;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.child.kill(signal);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') return;
    const until = Date.now() + 10_000;
    while (this.alive && Date.now() < until) await sleep(20);
    if (this.alive) this.child.kill('SIGKILL');
    while (this.alive && Date.now() < until + 5000) await sleep(20);
  }
}

/** One short-lived connection to a node, closed after `f` (bounded by ioredis' connect timeout). */
export async function withClient<T>(port: number, f: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await f(r);
  } finally {
    r.disconnect();
  }
}

async function sentinelMaster(sentinelPort: number, name: string): Promise<number | undefined> {
  try {
    const addr = await withClient(
      sentinelPort,
      (r) => r.call('SENTINEL', 'get-master-addr-by-name', name) as Promise<string[] | null>,
    );
    return addr ? Number(addr[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function roleOf(port: number): Promise<string | undefined> {
  try {
    const role = await withClient(port, (r) => r.call('ROLE') as Promise<unknown[]>);
    return String(role[0]);
  } catch {
    return undefined;
  }
}

async function linkUp(replicaPort: number): Promise<boolean> {
  try {
    const info = await withClient(replicaPort, (r) => r.info('replication'));
    return info.includes('master_link_status:up');
  } catch {
    return false;
  }
}

async function sentinelView(
  sentinelPort: number,
  name: string,
): Promise<{ replicas: number; sentinels: number } | undefined> {
  try {
    const flat = await withClient(
      sentinelPort,
      (r) => r.call('SENTINEL', 'master', name) as Promise<string[]>,
    );
    const h: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]!] = flat[i + 1]!;
    return { replicas: Number(h['num-slaves'] ?? 0), sentinels: Number(h['num-other-sentinels'] ?? 0) };
  } catch {
    return undefined;
  }
}

export function dataArgs(port: number, dir: string): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    // Replicas reconnect and acknowledge quickly; the topology is on loopback.
    '--repl-ping-replica-period',
    '1',
  ];
}

export async function startSentinelTopology(
  binary = 'redis-server',
  options: SentinelTopologyOptions = {},
): Promise<SentinelTopology | string> {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return `${binary} not available (${probe.error?.message ?? `exit ${probe.status}`}); Sentinel topology skipped`;
  }
  const token = randomBytes(6).toString('hex');
  const name = options.name ?? `ikegate-${token}`;
  const slaveof = `ikegate_slaveof_${token}`;
  const nodeArgs = (port: number, dir: string) => [
    ...dataArgs(port, dir),
    '--rename-command',
    'SLAVEOF',
    slaveof,
    '--rename-command',
    'REPLICAOF',
    '',
  ];
  const downAfter = options.downAfterMs ?? 1000;
  const failoverTimeout = options.failoverTimeoutMs ?? 5000;
  const dirs: string[] = [];
  const procs: Proc[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  };
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'ikegate-sentinel-'));
    dirs.push(d);
    return d;
  };
  /** Starts a process and waits for `ready` in its output; retries on another port if it fails. */
  const launch = async (args: (port: number, dir: string) => string[], ready: string) => {
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const port = await freePort();
      const p = new Proc(port, binary, args(port, tempDir()));
      procs.push(p);
      if (await p.waitOutput(ready)) return p;
      await p.kill('SIGKILL');
    }
    throw new Error(`${binary} did not start on a free port after ${START_ATTEMPTS} attempts`);
  };

  try {
    const primary = await launch(nodeArgs, 'Ready to accept connections');
    const replica = await launch(
      (port, dir) => [...nodeArgs(port, dir), '--replicaof', HOST, String(primary.port)],
      'Ready to accept connections',
    );
    // The sentinels' first INFO of the primary should already list the replica (it is re-read
    // only every 10 s), so they start once the replication link is up.
    for (let until = Date.now() + TOPOLOGY_TIMEOUT_MS; !(await linkUp(replica.port)); await sleep(50)) {
      if (Date.now() > until) throw new Error('the replica did not sync with the primary in time');
    }
    const sentinelProcs: Proc[] = [];
    for (let i = 0; i < 3; i++) {
      sentinelProcs.push(
        await launch((port, dir) => {
          const conf = join(dir, 'sentinel.conf');
          writeFileSync(
            conf,
            [
              `port ${port}`,
              `bind ${HOST}`,
              `dir ${dir}`,
              `sentinel monitor ${name} ${HOST} ${primary.port} 2`,
              `sentinel down-after-milliseconds ${name} ${downAfter}`,
              `sentinel failover-timeout ${name} ${failoverTimeout}`,
              `sentinel parallel-syncs ${name} 1`,
              `sentinel rename-command ${name} SLAVEOF ${slaveof}`,
              '',
            ].join('\n'),
          );
          return [conf, '--sentinel'];
        }, '+monitor master'),
      );
    }
    // A failover needs the sentinels to know each other (a majority elects the leader) and the
    // replica (the candidate).
    for (let until = Date.now() + TOPOLOGY_TIMEOUT_MS; ; await sleep(200)) {
      const views = await Promise.all(sentinelProcs.map((s) => sentinelView(s.port, name)));
      if (views.every((v) => v !== undefined && v.replicas >= 1 && v.sentinels >= 2)) break;
      if (Date.now() > until)
        throw new Error(`the sentinels did not discover each other in time: ${JSON.stringify(views)}`);
    }

    const nodes = [primary, replica];
    const primaryPort = async (timeoutMs = 10_000): Promise<number> => {
      for (let until = Date.now() + timeoutMs; ; await sleep(100)) {
        const named = await Promise.all(sentinelProcs.map((s) => sentinelMaster(s.port, name)));
        const votes = new Map<number, number>();
        for (const p of named) if (p !== undefined) votes.set(p, (votes.get(p) ?? 0) + 1);
        const top = [...votes].find(([, n]) => n >= 2);
        if (top) return top[0];
        if (Date.now() > until)
          throw new Error(`no primary named by a majority of sentinels: ${JSON.stringify(named)}`);
      }
    };
    return {
      name,
      sentinels: sentinelProcs.map((s) => ({ host: HOST, port: s.port })),
      nodes,
      sentinelProcesses: sentinelProcs,
      primaryPort,
      async primary(timeoutMs?: number) {
        const port = await primaryPort(timeoutMs);
        const node = nodes.find((n) => n.port === port);
        if (!node) throw new Error(`the sentinels name ${port}, not a node of this topology`);
        return node;
      },
      async waitForFailover(oldPort: number, timeoutMs = 30_000) {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const port = await primaryPort(Math.max(1, until - Date.now())).catch(() => undefined);
          if (port !== undefined && port !== oldPort && (await roleOf(port)) === 'master') return port;
          if (Date.now() > until) throw new Error(`no failover away from ${oldPort} within ${timeoutMs} ms`);
          await sleep(100);
        }
      },
      stop,
    };
  } catch (e) {
    await stop();
    return `${(e as Error).message}; Sentinel topology skipped`;
  }
}
