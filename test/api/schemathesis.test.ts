/**
 * Issue #10 "Must show": Schemathesis (PyPI, pinned in scripts/schemathesis.sh) against
 * `/openapi.json` of a running cluster's control API — redis-server, 2 workers, 1 edge, control,
 * and a loadgen holding a few SAs so the SA routes have something to show — every operation, with
 * an admin token. Destructive calls run (DELETE of peers, pools, SAs; drains), so this suite has
 * its own cluster.
 *
 * The requirement: no 5xx, every response conforms to the operation's schema (status code,
 * content type, headers, body). `IKEGATE_ST_CHECKS` overrides the checks (default below),
 * `IKEGATE_ST_MAX_EXAMPLES` the examples per operation; the report lands in the cluster's
 * directory (printed on failure).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { TestCluster, until } from '../cluster/lib/cluster.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const ST = process.env.IKEGATE_ST_BIN ?? join(ROOT, '.venv-st', 'bin', 'st');
const CHECKS =
  process.env.IKEGATE_ST_CHECKS ??
  'not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance';
const MAX_EXAMPLES = process.env.IKEGATE_ST_MAX_EXAMPLES ?? '50';
/** The whole `st run` is bounded: killed after this long (it normally takes well under). */
const ST_TIMEOUT_MS = 8 * 60_000;

const skip = requirement(
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0
    ? 'redis-server not installed'
    : !existsSync(ST)
      ? `schemathesis (${ST}) not installed: bash scripts/schemathesis.sh install`
      : false,
);

describe(
  'Schemathesis against the control API of a running cluster (issue #10: OpenAPI 3.1, RFC 9457)',
  { skip },
  () => {
    const c = new TestCluster(3000);

    before(async () => {
      await c.start();
      await c.addWorker('w1');
      await c.addWorker('w2');
      const edge = await c.addEdge('e1');
      await c.startControl();
      await until(
        () => c.shards(),
        (s) => s.owned === 1024 && Object.keys(s.byWorker).length === 2,
      );
      const load = await c.loadgen(edge, { count: 20, transport: 'udp', idPrefix: 'st' });
      assert.equal(load.summary.established, 20, JSON.stringify(load.summary));
    });

    after(async () => {
      if (process.env.IKEGATE_CLUSTER_DEBUG)
        for (const p of [...c.workers.map((w) => w.proc), c.control!])
          console.error(
            p.name,
            JSON.stringify(p.lines.filter((l) => l.level !== 'info' && l.level !== 30).slice(-30)),
            p.stderr.join('').slice(-2000),
          );
      await c.stop();
    });

    test(`st run --checks ${CHECKS} over every operation: zero 5xx, every response as its schema says`, async (t) => {
      const report = join(c.dir, 'schemathesis');
      const args = [
        'run',
        `http://127.0.0.1:${c.controlPort}/openapi.json`,
        '--checks',
        CHECKS,
        '--header',
        `Authorization: Bearer ${c.access.tokens.admin}`,
        '--max-examples',
        MAX_EXAMPLES,
        '--seed',
        process.env.IKEGATE_ST_SEED ?? '10',
        '--workers',
        '2',
        '--request-timeout',
        '15',
        '--no-color',
        '--report',
        'junit',
        '--report-dir',
        report,
      ];
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(ST, args, { cwd: c.dir, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), ST_TIMEOUT_MS);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
      const shown = r.out.replaceAll(c.access.tokens.admin, '<admin token>');
      const at = shown.lastIndexOf('=== SUMMARY');
      const summary = at >= 0 ? shown.slice(shown.lastIndexOf('\n', at) + 1) : shown.slice(-4000);
      t.diagnostic(`st ${args.join(' ').replaceAll(c.access.tokens.admin, '<admin token>')}`);
      for (const line of summary.split('\n')) if (line.trim()) t.diagnostic(line);
      if (process.env.IKEGATE_ST_PRINT) console.error(shown);
      // What the control process logged about the failures (500s are logged with their error).
      const errors = c
        .control!.lines.filter((l) => l.level === 'error' || l.level === 'warn' || l.level === 'fatal')
        .map((l) => JSON.stringify(l));
      assert.equal(
        r.code,
        0,
        `schemathesis failed (exit ${r.code}; report in ${report}):\n${shown.slice(-20_000)}\n` +
          `control's errors and warnings:\n${errors.slice(-40).join('\n')}`,
      );
    });
  },
);
