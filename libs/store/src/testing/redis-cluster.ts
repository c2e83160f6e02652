/**
 * A real multi-node Redis Cluster for tests, on loopback: `primaries` redis-server processes in
 * cluster mode (no replicas), the 16384 slots split evenly between them (CLUSTER ADDSLOTSRANGE),
 * joined with CLUSTER MEET (`redis-cli --cluster create` is not needed). So a key, a script or a
 * pipeline whose keys span slots of different nodes fails for real, and the client has to follow
 * the slot map (MOVED) across nodes. Ports the kernel just handed out as free, temporary
 * directories, every wait bounded; `stop()` kills every process and removes the directories.
 *
 * Returns a skip reason instead when the binary is missing or the cluster does not form.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@ikegate/testkit';
import { dataArgs, Proc, withClient } from './redis-sentinel.js';

const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const FORM_TIMEOUT_MS = 30_000;
const SLOTS = 16384;

export interface RedisClusterServers {
  /** Every primary: pass as `{ nodes }` to RedisStore / `cluster.redis.nodes`. */
  readonly nodes: readonly { host: string; port: number }[];
  stop(): Promise<void>;
}

export async function startRedisCluster(
  binary = 'redis-server',
  primaries = 3,
): Promise<RedisClusterServers | string> {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return `${binary} not available (${probe.error?.message ?? `exit ${probe.status}`}); Redis Cluster skipped`;
  }
  const dirs: string[] = [];
  const procs: Proc[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  };
  try {
    const nodes: Proc[] = [];
    for (let i = 0; i < primaries; i++) {
      let started: Proc | undefined;
      for (let attempt = 0; attempt < START_ATTEMPTS && !started; attempt++) {
        // The cluster bus listens on port + 10000.
        const port = await freePort({ alsoOffset: 10_000 });
        const dir = mkdtempSync(join(tmpdir(), 'ikegate-rcluster-'));
        dirs.push(dir);
        const p = new Proc(port, binary, [
          ...dataArgs(port, dir),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-announce-ip',
          HOST,
          '--cluster-node-timeout',
          '5000',
        ]);
        procs.push(p);
        if (await p.waitOutput('Ready to accept connections')) started = p;
        else await p.kill('SIGKILL');
      }
      if (!started)
        throw new Error(`${binary} did not start on a free port after ${START_ATTEMPTS} attempts`);
      nodes.push(started);
    }
    const per = Math.ceil(SLOTS / primaries);
    await Promise.all(
      nodes.map((n, i) =>
        withClient(n.port, (r) =>
          r.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(SLOTS, (i + 1) * per) - 1)),
        ),
      ),
    );
    for (const n of nodes.slice(1))
      await withClient(nodes[0]!.port, (r) => r.call('CLUSTER', 'MEET', HOST, String(n.port)));
    for (let until = Date.now() + FORM_TIMEOUT_MS; ; await sleep(100)) {
      const infos = await Promise.all(
        nodes.map((n) =>
          withClient(n.port, (r) => r.call('CLUSTER', 'INFO') as Promise<string>).catch(() => ''),
        ),
      );
      if (
        infos.every((i) => i.includes('cluster_state:ok') && i.includes(`cluster_known_nodes:${primaries}`))
      )
        break;
      if (Date.now() > until) throw new Error(`the ${primaries} nodes did not form a cluster in time`);
    }
    return { nodes: nodes.map((n) => ({ host: HOST, port: n.port })), stop };
  } catch (e) {
    await stop();
    return `${(e as Error).message}; Redis Cluster skipped`;
  }
}
