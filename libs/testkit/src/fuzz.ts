import { isCi } from './requirement.js';

/**
 * How many fast-check cases a parser property runs. CI (CI=true) runs at least 10^5 per parser;
 * a developer's run defaults to 10^4 so the suite stays quick. IKEGATE_FUZZ_RUNS overrides both.
 */
export function fuzzRuns(): number {
  const env = process.env.IKEGATE_FUZZ_RUNS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n > 0) return n;
  }
  return isCi() ? 100_000 : 10_000;
}

/** A fixed seed when IKEGATE_FUZZ_SEED is set (to replay a failure), otherwise fast-check's own. */
export function fuzzSeed(): number | undefined {
  const env = process.env.IKEGATE_FUZZ_SEED;
  return env ? Number(env) : undefined;
}
