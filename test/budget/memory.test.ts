/**
 * Memory budget per held SA (issue #14): the scale bench's own measuring child (scripts/bench/
 * scale.ts --child: one Worker, the code `ikegate up` runs, fresh initiators, forced GCs around
 * the measurement) with 3,000 IKE+CHILD SAs. The bound is a regression guard above the measured
 * figure (8.2 KB per SA on the morning of 2026-12-06, 6.6 KB that evening, 5.8 KB at night; the
 * issue's target is 2 KiB): per-SA closures, spread contexts or retained INIT data coming back would cross it;
 * smaller losses (a few hundred octets) are for the scale bench to show. Memory, not time:
 * nothing here depends on the machine's speed or load.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const SCALE = fileURLToPath(new URL('../../scripts/bench/scale.ts', import.meta.url));
const SAS = 3000;
const HEAP_BUDGET_PER_SA = 8 * 1024;

test(`memory budget (issue #14): ${SAS} established IKE SAs with one CHILD SA each, held by one worker, cost at most ${HEAP_BUDGET_PER_SA} octets of heap each`, () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', SCALE, '--child'], {
    encoding: 'utf8',
    env: { ...process.env, SCALE_SAS: String(SAS) },
    timeout: 300_000,
    maxBuffer: 16 << 20,
  });
  assert.equal(r.status, 0, `scale child failed: ${r.stderr.slice(-2000)}`);
  const result = JSON.parse(r.stdout) as { heapPerSa: number; ikeSas: number; childSas: number };
  assert.equal(result.ikeSas, SAS, 'every IKE SA established and held');
  assert.equal(result.childSas, SAS, 'every CHILD SA installed and held');
  assert.ok(
    result.heapPerSa > 0 && result.heapPerSa <= HEAP_BUDGET_PER_SA,
    `heap per SA ${Math.round(result.heapPerSa)} octets (budget ${HEAP_BUDGET_PER_SA})`,
  );
});
