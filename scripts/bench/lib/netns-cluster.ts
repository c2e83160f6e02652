/**
 * A whole ikegate cluster inside one network namespace, for the tunnel bench's cluster path:
 * test/cluster/lib/cluster.ts's TestCluster (a real redis-server holding the shard leases, one
 * `ikegate worker` with a TUN, one `ikegate edge`, `ikegate control`, each its own process) run by
 * this file as a child process started with `ip netns exec`, so that every process TestCluster
 * starts, and its loopback (127.0.0.1: Redis, the gRPC relay, the admin and control APIs), is in
 * that namespace. The edge listens on all addresses of the namespace (TestCluster's data-plane
 * variant), so peers in a neighbouring namespace reach it at the namespace's veth address.
 *
 * Parent side: `NetnsCluster.start()` resolves with the ports once every shard is leased;
 * `stop()` closes the child's stdin, on which the child stops the cluster (TestCluster.stop: every
 * process it started, by pid, Redis too) and exits; SIGTERM to the child does the same. The child
 * also stops when its stdin closes because the parent died.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PSK, TestCluster, until } from '../../../test/cluster/lib/cluster.js';

/** The PSK of TestCluster's `*@example.org` peers (what a client must present). */
export const CLUSTER_PSK = PSK;

export interface NetnsClusterOptions {
  /** The virtual-IP pool the worker hands out from (split by shard), e.g. 10.75.128.0/17. */
  readonly pool: string;
  /** The network behind the cluster the peers reach (their traffic selector). */
  readonly localTs: string;
  /** The worker's TUN device (created in the namespace). */
  readonly tun: string;
  /** cluster.leaseTtlMs (default 4000, as the data-plane suites use). */
  readonly leaseTtlMs?: number;
}

/** What the child reports once the cluster is up (ports are on the namespace's addresses). */
export interface NetnsClusterReady {
  readonly kind: 'ready';
  readonly edgeTcp: number;
  readonly edgeIke: number;
  readonly edgeNatT: number;
  readonly workerAdmin: number;
  readonly edgeAdmin: number;
  readonly controlPort: number;
  readonly shards: number;
}

const STOP_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 120_000;

export class NetnsCluster {
  #child: ChildProcess | undefined;
  #stderr = '';

  constructor(
    readonly netns: string,
    readonly o: NetnsClusterOptions,
  ) {}

  /** Starts the child in the namespace; resolves when every shard has an owner. */
  async start(): Promise<NetnsClusterReady> {
    const self = new URL(import.meta.url).pathname;
    const child = spawn(
      'ip',
      ['netns', 'exec', this.netns, process.execPath, '--import', 'tsx', self, JSON.stringify(this.o)],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    this.#child = child;
    child.stderr?.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(
        () => reject(new Error(`cluster in ${this.netns}: not up in ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let m: { kind?: string; message?: string };
          try {
            m = JSON.parse(line) as typeof m;
          } catch {
            continue;
          }
          clearTimeout(timer);
          if (m.kind === 'ready') resolve(m as NetnsClusterReady);
          else reject(new Error(`cluster in ${this.netns}: ${m.message ?? line}`));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`cluster in ${this.netns} exited (${code}): ${this.#stderr.slice(-2000)}`));
      });
    });
  }

  /** Stops the cluster and the child (bounded: SIGTERM, then SIGKILL of the child after 30 s each). */
  async stop(): Promise<void> {
    const c = this.#child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = () => c.exitCode !== null || c.signalCode !== null;
    const wait = async (ms: number) => {
      for (const until = Date.now() + ms; !gone() && Date.now() < until;) await sleep(50);
    };
    c.stdin?.end();
    await wait(STOP_TIMEOUT_MS);
    if (!gone()) c.kill('SIGTERM');
    await wait(STOP_TIMEOUT_MS);
    if (!gone()) c.kill('SIGKILL');
  }
}

/** The child: runs the cluster in the namespace it was started in, until stdin closes or SIGTERM. */
async function child(o: NetnsClusterOptions): Promise<void> {
  const c = new TestCluster(o.leaseTtlMs ?? 4000, { pool: o.pool, localTs: o.localTs });
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await c.stop();
      rmSync(c.dir, { recursive: true, force: true });
      process.exit(0);
    })());
  process.stdin.on('end', () => void stop());
  process.stdin.resume();
  process.on('SIGTERM', () => void stop());
  try {
    await c.start();
    const w = await c.addWorker('w1', o.tun);
    const e = await c.addEdge('e1');
    await c.startControl();
    const shards = await until(
      () => c.shards(),
      (s) => s.owned === s.count,
      60_000,
    );
    if (shards.owned !== shards.count)
      throw new Error(`${shards.owned} of ${shards.count} shards leased after 60 s`);
    const ready: NetnsClusterReady = {
      kind: 'ready',
      edgeTcp: e.tcp,
      edgeIke: e.ike,
      edgeNatT: e.natT,
      workerAdmin: w.admin,
      edgeAdmin: e.admin,
      controlPort: c.controlPort,
      shards: shards.count,
    };
    console.log(JSON.stringify(ready));
  } catch (err) {
    const logs = [...c.workers, ...c.edges].map(
      (p) => `${p.id}: ${JSON.stringify(p.proc.lines.slice(-5))} ${p.proc.stderr.join('').slice(-800)}`,
    );
    console.log(JSON.stringify({ kind: 'error', message: `${(err as Error).message}; ${logs.join('; ')}` }));
    await stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`)
  await child(JSON.parse(process.argv[2]!) as NetnsClusterOptions);
