/**
 * `npm run bench`: runs every benchmark module in scripts/bench/ (each exports
 * `bench(): Promise<BenchFigure[]>`) and prints one table. Every figure that has a reference was
 * measured against it in the same run on the same core. Pin to one core with
 * `taskset -c 1 npm run bench` for steadier numbers.
 * Usage: npm run bench [-- name ...]   (names: crypto, esp, iketcp, ikev2-codec, ikev2-setup)
 */
import { readdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { type BenchFigure, formatFigure } from './bench/harness.js';

const dir = new URL('./bench/', import.meta.url);
const wanted = process.argv.slice(2);
const modules = readdirSync(dir)
  .filter((f) => f.endsWith('.ts') && f !== 'harness.ts')
  .map((f) => f.replace(/\.ts$/, ''))
  .filter((name) => wanted.length === 0 || wanted.includes(name))
  .sort();

console.log(
  `ikegate bench — node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}, ${cpus().length} cores`,
);
let failed = false;
for (const name of modules) {
  console.log(`\n## ${name}`);
  try {
    const mod = (await import(new URL(`${name}.ts`, dir).href)) as { bench?: () => Promise<BenchFigure[]> };
    if (typeof mod.bench !== 'function') throw new Error(`${name}.ts exports no bench()`);
    for (const figure of await mod.bench()) console.log(formatFigure(figure));
  } catch (err) {
    failed = true;
    console.log(`  failed: ${(err as Error).stack ?? String(err)}`);
  }
}
process.exit(failed ? 1 : 0);
