/**
 * Issue #11, `ikegate drill` as users run it (the real `bin/ikegate.mjs`, `--json`): each drill
 * starts its own cluster of processes on loopback (redis-server, 3 workers, 2 edges, control),
 * sets up peers with live traffic, injects one fault and reports.
 *
 * What the outage is: every peer sends an IKE liveness check every 100 ms (over UDP the same
 * request again every 100 ms while unanswered); a peer's outage is the longest time between two
 * answered checks minus one interval, so it is measured to about 100 ms. The bar checked here is
 * the product's stated one (outage p99 < 2 s after kill -9 of a worker); nothing else is timed.
 *
 * Every SA must come back: the old owner sends an SA's IKE messages only after its state is in
 * Redis (write-ahead), the new owner resends what was outstanding, and an ikegate peer resends a
 * request lost with the old owner when the Message ID sync arrives (docs/ha.md).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import type { DrillResult } from '../../services/cli/src/drill/stats.js';
import { IKEGATE_BIN } from './lib/cluster.js';

const skip = requirement(
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'redis-server not installed',
);

interface DrillRun {
  readonly code: number | null;
  readonly result: DrillResult;
  readonly stderr: string;
}

function drill(...args: string[]): Promise<DrillRun> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [IKEGATE_BIN, 'drill', ...args, '--json', '--quiet'],
      { timeout: 240_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        try {
          resolve({ code, result: JSON.parse(stdout) as DrillResult, stderr });
        } catch {
          reject(
            new Error(
              `drill ${args.join(' ')}: exit ${code}, no JSON result; stderr: ${stderr.slice(-3000)}`,
            ),
          );
        }
      },
    );
  });
}

/** Every peer answers again at the end; a silent one fails with the cluster's drop counters. */
function noneSilent(r: DrillResult): void {
  const silent = r.perPeer.filter((p) => !p.recovered);
  assert.deepEqual(
    silent.map((p) => p.n),
    [],
    `peers stopped answering; drops: ${JSON.stringify(r.clusterDrops)}`,
  );
}

const check = (r: DrillResult, prefix: string) => {
  const c = r.checks.find((x) => x.name.startsWith(prefix));
  assert.ok(c, `a check "${prefix}..." in ${JSON.stringify(r.checks)}`);
  return c;
};

describe(
  'ikegate drill kill-worker: 2 edges, 3 workers, 100 peers (UDP and RFC 9329 TCP) with traffic (issue #11)',
  { skip },
  () => {
    let run: DrillRun;
    before(async () => {
      run = await drill(
        'kill-worker',
        // 100, not 200: with 200 peers in the drill's one process next to 3 workers, 2 edges, Redis
        // and control on CI's 2 cores, every peer (not only the victim's) saw ~0.5 s stalls and
        // p99 reached 2.1 s once (0 lost); 200 pass by hand (docs/ha.md).
        ...['--peers', '100', '--transport', 'mix', '--lease-ttl', '10', '--before', '2', '--after', '8'],
        ...['--max-p99', '2s'],
      );
    });

    test('kill -9 of the worker holding the most SAs: every SA it held is held by another worker with the same SPI, those served again answer within the 2 s bar, and no peer re-authenticated', (t) => {
      const r = run.result;
      t.diagnostic(
        `outage p50 ${r.outageMs.p50} ms, p99 ${r.outageMs.p99} ms, max ${r.outageMs.max} ms; affected ${r.affected.count}; lost ${r.sasLost}; re-auths ${r.reauths}; ESP lost ${r.esp.lost}/${r.esp.sent}; drops ${JSON.stringify(r.clusterDrops)}; drill event-loop delay max ${r.drillLoopDelayMs.max} ms`,
      );
      assert.equal(r.peers.established, 100);
      assert.match(r.timeline[0]!.what, /^kill -9 w\d \(pid \d+, (\d+) peer SAs/);
      const held = Number(/, (\d+) peer SAs/.exec(r.timeline[0]!.what)![1]);
      const victim = /^kill -9 (w\d)/.exec(r.timeline[0]!.what)![1]!;
      const counts = new Map<string, number>();
      for (const p of r.perPeer) counts.set(p.workerBefore!, (counts.get(p.workerBefore!) ?? 0) + 1);
      assert.equal(held, Math.max(...counts.values()), 'the victim held the most SAs');
      assert.equal(counts.get(victim), held);
      assert.ok(check(r, `SAs of ${victim} held by the others`).ok, JSON.stringify(r.checks));
      assert.equal(r.reauths, 0, 'no new IKE_SA_INIT from any peer');
      noneSilent(r);
      // The takeover itself, per SA of the victim that was served again: the stated bar.
      const served = r.perPeer.filter((p) => p.workerBefore === victim && p.recovered);
      assert.ok(served.length > 0);
      for (const p of served) assert.ok(p.outageMs < 2000, `peer ${p.n}: outage ${p.outageMs} ms`);
    });

    test('no SA lost and outage p99 < 2 s over every peer (the drill passes, exit 0)', () => {
      assert.deepEqual(run.result.failures, []);
      assert.equal(run.result.sasLost, 0);
      assert.ok(run.result.outageMs.p99 < 2000);
      assert.equal(run.code, 0);
    });
  },
);

describe(
  'ikegate drill drain-worker: a planned hand-off through the control API, 60 peers (UDP and RFC 9329 TCP)',
  { skip },
  () => {
    test("drain of the worker holding the most SAs: every SA it held moves with the same SPI, each answers again within the 2 s bar (the others' lease watch takes each shard within a poll of its release), none lost, no re-authentication", async (t) => {
      const { code, result: r } = await drill(
        'drain-worker',
        ...['--peers', '60', '--transport', 'mix', '--lease-ttl', '10', '--before', '2', '--after', '8'],
        ...['--max-p99', '2s'],
      );
      t.diagnostic(
        `outage p50 ${r.outageMs.p50} ms, p99 ${r.outageMs.p99} ms, max ${r.outageMs.max} ms; affected ${r.affected.count} (p99 ${r.affected.outageMs.p99} ms); lost ${r.sasLost}; re-auths ${r.reauths}; timeline ${JSON.stringify(r.timeline)}`,
      );
      assert.equal(r.peers.established, 60);
      const victim = /^drain (w\d) \((\d+) peer SAs/.exec(r.timeline[0]!.what);
      assert.ok(victim, r.timeline[0]!.what);
      assert.ok(Number(victim[2]) > 0);
      const held = check(r, `SAs of ${victim[1]} held by the others`);
      assert.ok(held.ok, held.detail);
      assert.equal(r.reauths, 0, 'no new IKE_SA_INIT from any peer');
      noneSilent(r);
      const moved = r.perPeer.filter((p) => p.workerBefore === victim[1]);
      assert.equal(moved.length, Number(victim[2]));
      for (const p of moved) {
        assert.notEqual(p.worker, victim[1], `peer ${p.n} left the drained worker`);
        assert.ok(p.outageMs < 2000, `peer ${p.n}: outage ${p.outageMs} ms`);
      }
      assert.equal(r.sasLost, 0);
      assert.equal(code, 0, JSON.stringify(r.failures));
    });
  },
);

describe(
  'ikegate drill stop-worker: SIGSTOP past the lease TTL (4 s), then SIGCONT (issue #11)',
  { skip },
  () => {
    let run: DrillRun;
    before(async () => {
      run = await drill(
        'stop-worker',
        ...['--peers', '30', '--transport', 'udp', '--lease-ttl', '4', '--before', '2', '--after', '5'],
      );
    });

    test('the stopped worker is fenced: its shards are taken while it is stopped, it drops them when it resumes, its SAs are held by the others and stay there; no re-authentication', (t) => {
      const r = run.result;
      t.diagnostic(
        `outage p50 ${r.outageMs.p50} ms, p99 ${r.outageMs.p99} ms; lost ${r.sasLost}; checks ${JSON.stringify(r.checks)}`,
      );
      assert.equal(r.peers.established, 30);
      const victim = /^SIGSTOP (w\d)/.exec(r.timeline[0]!.what)?.[1];
      assert.ok(victim, r.timeline[0]!.what);
      assert.ok(r.timeline.some((e) => e.source === 'drill' && e.what.startsWith(`SIGCONT ${victim}`)));
      const fenced = check(r, `${victim} fenced`);
      assert.ok(fenced.ok, fenced.detail);
      assert.match(fenced.detail, /holds 0 of its \d+ former peer SAs/);
      assert.ok(check(r, `SAs of ${victim} held by the others`).ok, JSON.stringify(r.checks));
      noneSilent(r);
      assert.ok(
        r.timeline.some((e) => e.what.startsWith(`${victim}: shard-lost`)),
        'it logged its refused renewals after SIGCONT',
      );
      assert.equal(r.reauths, 0);
    });

    test('every SA of the stopped worker answers from the others; none lost (including those moved to the resumed worker by rebalancing)', () => {
      assert.deepEqual(run.result.failures, []);
      assert.equal(run.result.sasLost, 0);
    });
  },
);

describe('ikegate drill kill-edge: 30 TCP peers, 2 edges (issue #11)', { skip }, () => {
  test('kill -9 of an edge: its TCP peers reconnect through the other edge and keep their IKE SAs; none lost, no re-authentication, the drill passes', async (t) => {
    const { code, result: r } = await drill(
      'kill-edge',
      ...['--peers', '30', '--transport', 'tcp', '--before', '2', '--after', '5'],
    );
    t.diagnostic(
      `outage p99 ${r.outageMs.p99} ms; ${JSON.stringify(r.checks)}; timeline ${JSON.stringify(r.timeline)}`,
    );
    assert.equal(r.peers.established, 30);
    const back = check(r, 'TCP peers of e1 back through another edge');
    assert.ok(back.ok, back.detail);
    assert.equal(back.detail, '15/15');
    assert.ok(
      r.perPeer.every((p) => p.edge === 'e2'),
      'every peer ends on e2',
    );
    assert.equal(r.sasLost, 0);
    assert.equal(r.reauths, 0);
    assert.equal(code, 0, JSON.stringify(r.failures));
  });
});
