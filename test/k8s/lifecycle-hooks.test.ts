/**
 * Issue #12: the chart's preStop hooks (helm/ikegate/files/lifecycle.mjs, run by the edge and
 * worker containers) against real ikegate processes on loopback: redis-server, two workers, an
 * edge and control (test/cluster/lib), with 20 IKE SAs held by the load generator, and the hook
 * given only what the pod gives it (the control URL, an operator token file, its pod name).
 *
 * - worker-prestop drains the worker through the control API (POST /v1/workers/{id}/drain),
 *   returns once it holds no shard lease, loses no SA (every SPI it held is still held, by the
 *   other worker), and undrains the id so the pod that replaces it takes shards again.
 * - edge-prestop drains the edge (POST /v1/edges/{id}/drain): its /readyz answers 503, which is
 *   what takes it out of the Service's endpoints.
 * - With no other worker serving, worker-prestop does not drain (nobody could take the shards).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { type EdgeProc, type Proc, TestCluster, until, type WorkerProc } from '../cluster/lib/cluster.js';

const HOOK = new URL('../../helm/ikegate/files/lifecycle.mjs', import.meta.url).pathname;
const skip = requirement(
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'redis-server not installed',
);

interface HookRun {
  readonly status: number | null;
  readonly lines: { msg: string; [k: string]: unknown }[];
  readonly out: string;
}

describe(
  'helm/ikegate preStop hooks against a running cluster (issue #12)',
  { skip, timeout: 240_000 },
  () => {
    const c = new TestCluster(3000);
    let w1: WorkerProc;
    let w2: WorkerProc;
    let e1: EdgeProc;
    let load: Proc | undefined;
    let tokenFile = '';

    /** Runs the hook as the container's preStop would (its environment only); bounded. */
    function hook(action: string, id: string, seconds: number): Promise<HookRun> {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, [HOOK, action], {
          env: {
            PATH: process.env.PATH,
            IKEGATE_URL: `http://127.0.0.1:${c.controlPort}`,
            IKEGATE_TOKEN_FILE: tokenFile,
            IKEGATE_MEMBER_ID: id,
            IKEGATE_DRAIN_SECONDS: String(seconds),
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
        child.once('exit', (status) => {
          clearTimeout(timer);
          const lines = out
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .map((l) => JSON.parse(l) as HookRun['lines'][number]);
          resolve({ status, lines, out });
        });
      });
    }

    before(async () => {
      await c.start();
      w1 = await c.addWorker('w1');
      w2 = await c.addWorker('w2');
      e1 = await c.addEdge('e1');
      await c.startControl();
      await until(
        () => c.shards(),
        (v) => v.owned === 1024 && Object.keys(v.byWorker).length === 2,
      );
      tokenFile = join(c.dir, 'lifecycle.token');
      writeFileSync(tokenFile, `${c.access.tokens.operator}\n`, { mode: 0o600 });
      const { proc, summary } = await c.loadgen(e1, { count: 20, transport: 'udp', idPrefix: 'hook' });
      load = proc;
      assert.equal(summary.established, 20, JSON.stringify(summary));
    });

    after(async () => {
      await load?.stop();
      await c.stop();
    });

    test('worker-prestop: drained through the API, no shard left, every SA kept with its SPI, the id undrained for its successor', async () => {
      const before = await c.sasByWorker();
      const held = before.get('w1') ?? [];
      const all = [...before.values()].flat();
      assert.ok(held.length > 0, `w1 holds SAs: ${JSON.stringify(Object.fromEntries(before))}`);
      const acquiredBefore = w2.proc.count('shard-acquired');
      const r = await hook('worker-prestop', 'w1', 60);
      assert.equal(r.status, 0, r.out);
      assert.ok(w2.proc.count('shard-acquired') > acquiredBefore, 'w2 took shards from the drained w1');
      const drained = r.lines.find((l) => l.msg === 'worker-drained');
      assert.ok(drained, `the hook saw w1 holding no shard: ${r.out}`);
      assert.equal(drained.shardsHeld, 0);
      assert.ok(
        r.lines.some((l) => l.msg === 'worker-undrained-for-successor'),
        r.out,
      );
      assert.ok(
        w1.proc.lines.some((l) => l.msg === 'worker-draining'),
        'w1 logged worker-draining',
      );
      // Every shard had an owner when the hook returned; an SA may still be moving back to w1 (its
      // id is undrained, so placement rebalances), so each SPI is looked for until it is found.
      const now = await until(
        async () => [...(await c.sasByWorker()).values()].flat(),
        (v) => all.every((spi) => v.includes(spi)),
        20_000,
      );
      for (const spi of all) assert.ok(now.includes(spi), `SA ${spi} lost by the drain`);
      // The worker notices the undrain at its next lease round and says so in its member record.
      const draining = async () =>
        ((await c.ctl('/v1/workers')).body as { items: { id: string; draining: boolean }[] }).items.find(
          (w) => w.id === 'w1',
        )?.draining;
      assert.equal(await until(draining, (d) => d === false, 15_000), false, 'w1 undrained');
    });

    test('edge-prestop: drained through the API, its /readyz answers 503', async () => {
      assert.equal((await c.api(e1.admin, '/readyz', { role: 'none' })).status, 200);
      const r = await hook('edge-prestop', 'e1', 1);
      assert.equal(r.status, 0, r.out);
      assert.ok(
        r.lines.some((l) => l.msg === 'edge-drain-started'),
        r.out,
      );
      assert.equal((await c.api(e1.admin, '/readyz', { role: 'none' })).status, 503);
    });

    test('worker-prestop with no other worker serving does not drain', async () => {
      await w2.proc.stop();
      await until(
        () => c.shards(),
        (v) => v.byWorker.w1 === 1024,
        30_000,
      );
      const r = await hook('worker-prestop', 'w1', 60);
      assert.equal(r.status, 0, r.out);
      assert.ok(
        r.lines.some((l) => l.msg === 'worker-drain-skipped'),
        r.out,
      );
      const workers = (await c.ctl('/v1/workers')).body as { items: { id: string; draining: boolean }[] };
      assert.equal(workers.items.find((w) => w.id === 'w1')?.draining, false);
    });
  },
);
