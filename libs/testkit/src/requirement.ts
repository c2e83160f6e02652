/**
 * What a suite needs from the machine: root, network namespaces, strongSwan, tcpdump/tshark, nft,
 * redis-server. A developer's machine may lack some of them, and the suite then skips with the
 * reason. A CI run must not: a suite skipped there reports green while proving nothing (issue #9).
 * Under CI a missing requirement is therefore a failed test whose name and message say what is
 * missing. `.ci/run` installs everything the suites need.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';

/** True in a CI run: `CI` set to anything but '', 'false' or '0' (CI systems set CI=true). */
export function isCi(): boolean {
  const v = process.env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

function missingUnderCi(missing: string): string {
  return (
    `CI=true, and what this suite needs is missing: ${missing}. ` +
    'A CI run must run the suite, not skip it: install what is missing (.ci/run lists the packages).'
  );
}

/**
 * Checks one requirement. `missing` is the skip reason (why the suite or test cannot run here), or
 * false/undefined when nothing is missing; then this returns false and does nothing else.
 *
 * Outside CI it returns `missing` unchanged, for `describe(name, { skip }, ...)`, `test(..., { skip })`
 * or `t.skip(reason)`.
 *
 * Under CI (see `isCi`) with something missing:
 * - without `t` (called while a file's tests are being declared, e.g. at module level): registers a
 *   test named "required under CI=true but missing: <reason>" that fails, in the suite being
 *   declared (the file's root at module level), and still returns the reason, so the guarded suite
 *   is reported skipped rather than failing halfway through on the missing tool. The file fails.
 * - with `t` (called inside a running test): throws an AssertionError naming the requirement, so
 *   that test fails instead of calling `t.skip`.
 *
 * Reads `CI` on every call.
 */
export function requirement(missing: string, t?: TestContext): string;
export function requirement(missing: string | false | undefined, t?: TestContext): string | false;
export function requirement(missing: string | false | undefined, t?: TestContext): string | false {
  if (missing === undefined || missing === false) return false;
  if (!isCi()) return missing;
  const message = missingUnderCi(missing);
  if (t !== undefined) assert.fail(message);
  test(`required under CI=true but missing: ${missing}`, () => {
    assert.fail(message);
  });
  return missing;
}
