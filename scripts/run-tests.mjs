#!/usr/bin/env node
// Runs every *.test.ts under libs/, services/ and test/ with node's built-in test runner
// (through tsx). Node 20's --test does not expand globs, so the file list is built here.
// Usage: node scripts/run-tests.mjs [path-substring ...]  (filters the file list)
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const roots = ['libs', 'services', 'test'];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.ts')) files.push(relative(root, p));
  }
}
for (const r of roots) {
  try {
    walk(join(root, r));
  } catch {
    // a missing top-level folder has no tests
  }
}
const filters = process.argv.slice(2);
const selected = files.filter((f) => filters.length === 0 || filters.some((s) => f.includes(s))).sort();
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
    ...selected,
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(res.status ?? 1);
