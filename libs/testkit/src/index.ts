/**
 * Helpers shared by tests and benchmarks only. Nothing in a production path imports this package.
 */
export { fuzzRuns, fuzzSeed } from './fuzz.js';
export { fromHex, toHex } from './hex.js';
export { SeededRandom, seededUnit } from './random.js';
export { isCi, requirement } from './requirement.js';
export { type ApiAccess, type ApiRole, writeApiAccess } from './api-access.js';
export { makeTestPki, type TestPki } from './pki.js';
export { outcomeWithin } from './deadline.js';
export { freePort } from './ports.js';
