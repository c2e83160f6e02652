/**
 * `requirement`: a skip reason outside CI, a failure under CI=true. The CI half is checked in a
 * child node process running testing/requirement-suite.ts, because what counts is what node's test
 * runner reports there (exit code, TAP lines), not what the helper returns.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isCi, requirement } from './requirement.js';

const FIXTURE = fileURLToPath(new URL('./testing/requirement-suite.ts', import.meta.url));

interface FixtureRun {
  readonly status: number | null;
  readonly out: string;
}

function runFixture(env: { CI?: string; suiteMissing?: string; testMissing?: string }): FixtureRun {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  // The runner running this file tells its children to report to it; this child reports to us.
  delete childEnv.NODE_TEST_CONTEXT;
  delete childEnv.CI;
  delete childEnv.IKEGATE_FIXTURE_SUITE_MISSING;
  delete childEnv.IKEGATE_FIXTURE_TEST_MISSING;
  if (env.CI !== undefined) childEnv.CI = env.CI;
  if (env.suiteMissing !== undefined) childEnv.IKEGATE_FIXTURE_SUITE_MISSING = env.suiteMissing;
  if (env.testMissing !== undefined) childEnv.IKEGATE_FIXTURE_TEST_MISSING = env.testMissing;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test-reporter=tap', FIXTURE], {
    env: childEnv,
    encoding: 'utf8',
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** Runs `fn` with CI set to `value` (or unset), restoring the previous value afterwards. */
function withCi<T>(value: string | undefined, fn: () => T): T {
  const before = process.env.CI;
  if (value === undefined) delete process.env.CI;
  else process.env.CI = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.CI;
    else process.env.CI = before;
  }
}

describe('isCi', () => {
  test('CI=true and other non-empty values are CI; unset, empty, "false" and "0" are not', () => {
    for (const v of ['true', '1', 'yes']) assert.equal(withCi(v, isCi), true, v);
    for (const v of [undefined, '', 'false', '0']) assert.equal(withCi(v, isCi), false, String(v));
  });
});

describe('requirement outside CI', () => {
  test('returns the skip reason unchanged, and false when nothing is missing', (t) => {
    withCi(undefined, () => {
      assert.equal(requirement('needs frobnicator'), 'needs frobnicator');
      assert.equal(requirement('needs frobnicator', t), 'needs frobnicator');
      assert.equal(requirement(false), false);
      assert.equal(requirement(undefined), false);
    });
  });

  test('a guarded suite and a guarded test are reported skipped with the reason, and the run passes', () => {
    const suite = runFixture({ suiteMissing: 'needs frobnicator' });
    assert.equal(suite.status, 0, suite.out);
    assert.match(suite.out, /^ok \d+ - fixture suite guarded at module level # SKIP needs frobnicator$/m);
    assert.doesNotMatch(suite.out, /suite body ran/);
    assert.doesNotMatch(suite.out, /^not ok/m);

    const inTest = runFixture({ testMissing: 'needs frobnicator' });
    assert.equal(inTest.status, 0, inTest.out);
    assert.match(inTest.out, /^ok \d+ - fixture test guarded inside its body # SKIP needs frobnicator$/m);
    assert.doesNotMatch(inTest.out, /test body ran/);
  });
});

describe('requirement under CI=true', () => {
  test('with nothing missing, both guarded bodies run and the run passes', () => {
    const r = runFixture({ CI: 'true' });
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /fixture: suite body ran/);
    assert.match(r.out, /fixture: test body ran/);
    assert.doesNotMatch(r.out, /# SKIP/);
  });

  test('a suite guarded at module level fails the run with a test naming what is missing', () => {
    const r = runFixture({ CI: 'true', suiteMissing: 'needs frobnicator' });
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /^not ok \d+ - required under CI=true but missing: needs frobnicator$/m);
    assert.match(r.out, /CI=true, and what this suite needs is missing: needs frobnicator\./);
    // The guarded suite itself does not run half-way into the missing tool.
    assert.doesNotMatch(r.out, /suite body ran/);
  });

  test('a test guarded inside its body fails with a message naming what is missing instead of skipping', () => {
    const r = runFixture({ CI: 'true', testMissing: 'needs frobnicator' });
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /^not ok \d+ - fixture test guarded inside its body$/m);
    assert.match(r.out, /CI=true, and what this suite needs is missing: needs frobnicator\./);
    assert.doesNotMatch(r.out, /# SKIP/);
    assert.doesNotMatch(r.out, /test body ran/);
  });

  test('inside a running test it throws an AssertionError naming the requirement', (t) => {
    withCi('true', () => {
      assert.throws(() => requirement('needs frobnicator', t), {
        name: 'AssertionError',
        message: /missing: needs frobnicator/,
      });
      assert.equal(requirement(false, t), false);
    });
  });
});
