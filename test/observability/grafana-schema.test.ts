/**
 * Issue #13: the Grafana dashboards in helm/ikegate/dashboards pass Grafana's own schema, as the
 * types github.com/grafana/grafana-foundation-sdk/go v0.0.22 generates from it (strict decode:
 * unknown fields, wrong types and missing required panel options are errors; then the SDK's
 * Validate), and ikegate's rules: unique panel ids, known panel types, panels inside the
 * 24-column grid, every panel and target on the `${datasource}` variable, a non-empty PromQL expr
 * in every target, and every variable a query uses defined in the dashboard.
 *
 * The checker is test/observability/grafana-validate (Go), built by
 * `bash scripts/grafana-validate.sh build` into .grafana-validate/ (.ci/run does it). Its own
 * testdata holds one dashboard it must accept and bad ones, each differing from the good one in
 * one place, that it must reject with the expected message.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { DASHBOARD_DIR } from '../../scripts/dashboards.js';

const SRC = new URL('./grafana-validate/', import.meta.url).pathname;
const TESTDATA = join(SRC, 'testdata');
const BUILD = new URL('../../.grafana-validate/', import.meta.url).pathname;
const BIN = join(BUILD, 'bin/grafana-validate');

/** The same fingerprint of the checker's sources scripts/grafana-validate.sh stores after a build. */
function sourceStamp(): string {
  const go = readdirSync(SRC)
    .filter((f) => f.endsWith('.go'))
    .sort();
  const h = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', ...go]) h.update(readFileSync(join(SRC, f)));
  return h.digest('hex');
}

function checkerMissing(): string | false {
  if (!existsSync(BIN)) return 'grafana-validate not built: run `bash scripts/grafana-validate.sh build`';
  let stamp = '';
  try {
    stamp = readFileSync(join(BUILD, 'stamp'), 'utf8').trim();
  } catch {
    // no stamp: treated as stale
  }
  return stamp === sourceStamp()
    ? false
    : 'grafana-validate is older than its sources: run `bash scripts/grafana-validate.sh build`';
}

function validate(files: readonly string[]): { status: number; out: string } {
  const r = spawnSync(BIN, files, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** Each bad file and the problem the checker must name (it differs from good.json only there). */
const REJECTED: Record<string, RegExp> = {
  'bad-unknown-field.json': /schema: panels\[1\]\.targets\[0\]\.Dataquery: unexpected field 'legend'/,
  'bad-unknown-option.json':
    /schema: panels\[1\]\.options\.legend\.VizLegendOptions: unexpected field 'position'/,
  'bad-missing-option.json': /schema: panels\[0\]\.options\.textMode: required field is missing from input/,
  'bad-wrong-type.json':
    /schema: panels\[1\]\.gridPos\.h: json: cannot unmarshal string into Go value of type uint32/,
  'bad-duplicate-id.json': /panel "Setups per second": duplicate panel id 1 \(also "Peers online"\)/,
  'bad-empty-expr.json': /panel "Peers online" target A: empty PromQL expr/,
  'bad-fixed-datasource.json':
    /panel "Peers online": datasource \{type: "prometheus", uid: "prometheus-prod"\} does not refer to the \$\{datasource\} variable/,
  'bad-undefined-variable.json':
    /panel "Setups per second" target A: variable \$job is not defined in templating/,
  'bad-panel-type.json': /panel "Setups per second": unknown panel type "timeseriez"/,
  'bad-grid.json':
    /panel "Setups per second": gridPos \{x: 12, y: 0, w: 18, h: 8\} outside the 24-column grid/,
};

const skip = requirement(checkerMissing());

describe(
  'Grafana dashboards: Grafana schema (grafana-foundation-sdk v0.0.22) and ikegate rules (issue #13)',
  { skip },
  () => {
    test('every dashboard in helm/ikegate/dashboards passes the strict schema, Validate and the rules', () => {
      const files = readdirSync(DASHBOARD_DIR)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(DASHBOARD_DIR, f));
      assert.ok(files.length > 0, `no dashboards in ${DASHBOARD_DIR}`);
      const r = validate(files);
      assert.equal(r.status, 0, r.out);
      for (const f of files) assert.ok(r.out.includes(`ok ${f}\n`), `${f} not reported ok:\n${r.out}`);
      assert.match(r.out, new RegExp(`^${files.length} passed, 0 failed$`, 'm'));
    });

    test('the checker accepts testdata/good.json (a dashboard built like ours)', () => {
      const r = validate([join(TESTDATA, 'good.json')]);
      assert.equal(r.status, 0, r.out);
      assert.match(r.out, /^1 passed, 0 failed$/m);
    });

    test('the checker rejects each testdata/bad-*.json with the expected problem, and only that one', () => {
      const bad = readdirSync(TESTDATA)
        .filter((f) => f.startsWith('bad-'))
        .sort();
      assert.deepEqual(bad, Object.keys(REJECTED).sort(), 'every bad file has an expected message');
      for (const f of bad) {
        const r = validate([join(TESTDATA, f)]);
        assert.equal(r.status, 1, `${f} accepted:\n${r.out}`);
        const problems = r.out.split('\n').filter((l) => l.startsWith('FAIL '));
        assert.equal(problems.length, 1, `${f}: expected one problem:\n${r.out}`);
        assert.match(problems[0]!, REJECTED[f]!, f);
        assert.match(r.out, /^0 passed, 1 failed$/m);
      }
    });
  },
);
