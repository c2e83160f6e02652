/**
 * Test fixture for requirement.test.ts, run as its own node process (node's test runner decides the
 * exit code there). A suite guarded at module level by IKEGATE_FIXTURE_SUITE_MISSING and a test
 * guarded inside its body by IKEGATE_FIXTURE_TEST_MISSING; either variable unset means nothing is
 * missing. Each body that runs prints a marker line, so the caller can tell ran from skipped.
 */
import { describe, test } from 'node:test';
import { requirement } from '../requirement.js';

describe(
  'fixture suite guarded at module level',
  { skip: requirement(process.env.IKEGATE_FIXTURE_SUITE_MISSING) },
  () => {
    test('body', () => {
      console.log('fixture: suite body ran');
    });
  },
);

test('fixture test guarded inside its body', (t) => {
  const why = requirement(process.env.IKEGATE_FIXTURE_TEST_MISSING, t);
  if (why) return t.skip(why);
  console.log('fixture: test body ran');
});
