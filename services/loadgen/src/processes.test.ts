/**
 * `ikegate loadgen --processes N` (issue #14: a load generator that can out-run the responder)
 * against the real gateway (`ikegate up --no-tun` on loopback): the split adds up, identities do not
 * collide across processes, a child that dies or hangs is counted as failures and never hangs the
 * run, and SIGTERM to the CLI under --hold reaches every child. Real child processes, no fakes.
 */
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { runLoadgenProcesses, splitEvenly, type ProcessesOptions } from './processes.js';
import { type LoadgenSummary, mergeSummaries } from './stats.js';
import { Gateway, gatewayPorts, HOST, IKEGATE_BIN, PSK } from './testing/gateway.js';

// Below Linux's ephemeral range and apart from loadgen.test.ts's 10000-28000.
const PORTS = gatewayPorts(30_000 + (process.pid % 500) * 5);

function options(count: number, processes: number, over: Partial<ProcessesOptions> = {}): ProcessesOptions {
  return {
    server: HOST,
    transport: 'udp',
    ports: PORTS,
    count,
    concurrency: 12,
    processes,
    idPattern: 'load-{n}@example.org',
    remoteId: 'gw.example.org',
    psk: new TextEncoder().encode(PSK),
    timeoutMs: 20_000,
    ...over,
  };
}

function assertConsistent(s: LoadgenSummary): void {
  assert.equal(s.attempted, s.count);
  assert.equal(s.established + s.failed, s.attempted);
  assert.equal(
    Object.values(s.failures).reduce((a, b) => a + b, 0),
    s.failed,
  );
  const ps = s.processes ?? [];
  assert.equal(
    ps.reduce((a, p) => a + p.count, 0),
    s.count,
    'the processes share the count',
  );
  assert.equal(
    ps.reduce((a, p) => a + p.established, 0),
    s.established,
  );
  assert.equal(
    ps.reduce((a, p) => a + p.concurrency, 0),
    s.concurrency,
  );
  // Disjoint, contiguous SA-number ranges covering 1..count.
  let next = 1;
  for (const p of ps) {
    assert.equal(p.firstN, next, JSON.stringify(ps));
    next += p.count;
  }
  assert.equal(next, s.count + 1);
}

/** True while a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pids: readonly number[]): Promise<boolean> {
  for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
  return !pids.some(alive);
}

describe('loadgen --processes: split arithmetic', () => {
  it('splits count and concurrency as evenly as integers allow, nothing lost', () => {
    assert.deepEqual(splitEvenly(10, 3), [4, 3, 3]);
    assert.deepEqual(splitEvenly(3, 3), [1, 1, 1]);
    for (const [total, n] of [
      [100_000, 7],
      [5, 5],
      [64, 3],
    ] as const) {
      const parts = splitEvenly(total, n);
      assert.equal(
        parts.reduce((a, b) => a + b, 0),
        total,
      );
      assert.ok(Math.max(...parts) - Math.min(...parts) <= 1);
    }
  });

  it('merges summaries: counts add up, a lost process counts all its setups as failed', () => {
    const summary = (count: number, established: number): LoadgenSummary => ({
      server: HOST,
      transport: 'udp',
      count,
      concurrency: 2,
      attempted: count,
      established,
      failed: count - established,
      failures: count > established ? { timeout: count - established } : {},
      held: established,
      lostAfterSetup: 0,
      durationMs: 1000,
      setupsPerSecond: established,
      setupsPerSecondFirstQuarter: 0,
      setupsPerSecondLastQuarter: 0,
      latencyMs: { p50: 1, p90: 1, p99: 1, max: 1, mean: 1 },
      clientCpuPercent: 50,
      sampleErrors: [],
    });
    const m = mergeSummaries({ server: HOST, transport: 'udp', count: 30, concurrency: 6 }, [
      {
        kind: 'reported',
        pid: 1,
        firstN: 1,
        summary: summary(10, 9),
        startedAt: 5000,
        completedAt: Array.from({ length: 9 }, (_, i) => 5100 + i * 100),
        latenciesMs: Array.from({ length: 9 }, () => 3),
        cpuMs: 500,
      },
      {
        kind: 'reported',
        pid: 2,
        firstN: 11,
        summary: summary(10, 10),
        startedAt: 5500,
        completedAt: Array.from({ length: 10 }, (_, i) => 5600 + i * 90),
        latenciesMs: Array.from({ length: 10 }, () => 5),
        cpuMs: 700,
      },
      {
        kind: 'lost',
        pid: 3,
        firstN: 21,
        count: 10,
        concurrency: 2,
        reason: 'process-exited',
        startedAt: 5000,
        lostAt: 5200,
      },
    ]);
    assert.equal(m.attempted, 30);
    assert.equal(m.established, 19);
    assert.equal(m.failed, 11);
    assert.deepEqual(m.failures, { timeout: 1, 'process-exited': 10 });
    assert.equal(m.durationMs, 1500); // first start 5000 to the last end 5500 + 1000
    assert.equal(m.clientCpuMs, 1200);
    assert.equal(m.clientCpuPercent, 80);
    // Nearest rank over all 19 samples (9 x 3 ms, 10 x 5 ms): the 10th is 5 ms.
    assert.equal(m.latencyMs.p50, 5);
    assert.equal(m.latencyMs.mean, 4.05);
    assert.deepEqual(
      m.processes?.map((p) => [p.pid, p.established, p.failed, p.outcome]),
      [
        [1, 9, 1, 'reported'],
        [2, 10, 0, 'reported'],
        [3, 0, 10, 'process-exited'],
      ],
    );
  });
});

describe('loadgen --processes against ikegate up (loopback)', () => {
  const gw = new Gateway(PORTS);
  before(() => gw.start());
  after(() => gw.stop());

  it('3 processes set up 90 IKE+CHILD SAs: counts add up, each identity load-1..load-90 exactly once, per-process CPU reported, deletes reach the gateway', async () => {
    const pids: number[] = [];
    const run = await runLoadgenProcesses(options(90, 3, { onProcessStarted: (_i, pid) => pids.push(pid) }));
    const s = run.summary;
    try {
      assertConsistent(s);
      assert.equal(s.established, 90, JSON.stringify(s));
      assert.equal(s.held, 90);
      assert.equal(s.processes?.length, 3);
      assert.deepEqual(
        s.processes?.map((p) => p.pid),
        pids,
      );
      for (const p of s.processes ?? []) {
        assert.equal(p.outcome, 'reported');
        assert.ok(p.cpuMs > 0, 'each process measured its own CPU');
      }
      // The total is the processes' CPU added up (each figure rounded to a ms on its own).
      const perProcess = (s.processes ?? []).reduce((a, p) => a + p.cpuMs, 0);
      assert.ok(Math.abs((s.clientCpuMs ?? -10) - perProcess) <= 3, `${s.clientCpuMs} vs ${perProcess}`);
      assert.equal(s.latencyMs.p50 > 0 && s.latencyMs.p50 <= s.latencyMs.max, true);
      const ids = await gw.loadPeerIds();
      assert.equal(ids.length, 90, 'the gateway holds every SA');
      assert.deepEqual(
        [...ids].sort(),
        Array.from({ length: 90 }, (_, i) => `load-${i + 1}@example.org`).sort(),
        'identities are load-1..load-90, none twice',
      );
    } finally {
      assert.equal(await run.stop({ deleteSas: true }), 90);
    }
    assert.equal(await gw.waitFor(0), 0, 'every process deleted its SAs');
    assert.ok(await waitGone(pids), 'every child exited');
  });

  it('a child killed at start is reported as process-exited failures for its share, and the run does not hang', async () => {
    const pids: number[] = [];
    const run = await runLoadgenProcesses(
      options(30, 3, {
        onProcessStarted: (i, pid) => {
          pids.push(pid);
          if (i === 1) process.kill(pid, 'SIGKILL');
        },
      }),
    );
    const s = run.summary;
    try {
      assertConsistent(s);
      assert.equal(s.established, 20, JSON.stringify(s));
      assert.deepEqual(s.failures, { 'process-exited': 10 });
      assert.equal(s.processes?.[1]?.outcome, 'process-exited');
      assert.equal(s.processes?.[1]?.failed, 10);
    } finally {
      await run.stop({ deleteSas: true });
    }
    assert.equal(await gw.waitFor(0), 0);
    assert.ok(await waitGone(pids));
  });

  it('a child that stops answering is killed at its deadline and counted as process-timeout', async () => {
    const pids: number[] = [];
    let frozen = false;
    const run = await runLoadgenProcesses(
      options(30, 3, {
        childDeadlineMs: 30_000,
        rate: 30, // about a second of setups per child: time to freeze one mid-run
        onProcessStarted: (_i, pid) => pids.push(pid),
        // Freeze child 0 once the setups have started (the first progress after `go`).
        onProgress: (p) => {
          if (!frozen && p.elapsedMs > 0 && pids[0] !== undefined) {
            frozen = true;
            process.kill(pids[0], 'SIGSTOP');
          }
        },
        progressIntervalMs: 50,
      }),
    );
    const s = run.summary;
    try {
      assert.ok(frozen);
      assertConsistent(s);
      assert.equal(s.processes?.[0]?.outcome, 'process-timeout', JSON.stringify(s));
      assert.equal(s.failures['process-timeout'], 10);
      assert.equal(s.established, 20);
    } finally {
      await run.stop({ deleteSas: true });
    }
    assert.ok(await waitGone(pids), 'the frozen child was killed');
    // Its SAs (if any came up before it froze) stay on the gateway until they time out there;
    // the other processes deleted theirs.
    const left = await gw.loadPeerIds();
    assert.ok(
      left.every((id) => Number(/load-(\d+)@/.exec(id)?.[1]) <= 10),
      `only child 0's SAs (1-10) may remain: ${left.join(' ')}`,
    );
  });

  it('through the CLI with --hold: one JSON summary, SIGTERM to the parent stops every child and deletes the SAs', async () => {
    // Child 0's SAs from the frozen-child case may still be held: count ours on top of them.
    const before = await gw.established();
    const child = spawn(
      process.execPath,
      [
        IKEGATE_BIN,
        'loadgen',
        ...['--server', HOST, '--remote-id', 'gw.example.org', '--psk', PSK],
        ...['--port-ike', String(PORTS.ike), '--port-natt', String(PORTS.natT)],
        ...['--count', '20', '--concurrency', '4', '--processes', '2', '--timeout', '20'],
        ...['--id', 'load-cli-{n}@example.org', '--json', '--hold', '--delete-at-end'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    try {
      for (let i = 0; i < 1200 && !stdout.includes('\n') && child.exitCode === null; i++) await sleep(100);
      const s = JSON.parse(stdout) as LoadgenSummary;
      assertConsistent(s);
      assert.equal(s.established, 20, stderr);
      const pids = (s.processes ?? []).map((p) => p.pid);
      assert.equal(pids.length, 2);
      assert.ok(pids.every(alive), 'children hold their SAs');
      assert.equal(await gw.waitFor(before + 20), before + 20);
      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.match(stderr, /20 SAs deleted/);
      assert.ok(await waitGone(pids), 'children exited with the parent');
      assert.equal(await gw.waitFor(before), before, 'the deletes reached the gateway');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
