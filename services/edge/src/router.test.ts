import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import type { Membership } from '@ikegate/worker';
import type { Store } from '@ikegate/store';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { outcomeWithin } from '@ikegate/testkit';
import { REFRESH_TIMEOUT_MS, ShardRouter } from './router.js';

const path = {
  connection: 'udp:test',
  transport: 'udp' as const,
  local: { address: '192.0.2.1', port: 4500 },
  remote: { address: '198.51.100.1', port: 4500 },
};

test('a store that stops answering (a partition over a live connection) does not freeze the reroute queue: each refresh gives up after REFRESH_TIMEOUT_MS, a waiting frame still expires (reroute_exhausted), and the next refresh after the store is back applies its table', async () => {
  const metrics = new Metrics({ processMetrics: false });
  let answering = false;
  const stalled = new Promise<never>(() => undefined);
  const calls = { version: 0 };
  const store = {
    version: () => (calls.version++, answering ? Promise.resolve(2) : stalled),
    owners: () => Promise.resolve(new Map([[0, { owner: 'w1', epoch: 1 }]])),
  } as unknown as Store;
  const members = { list: () => Promise.resolve([]) } as unknown as Membership;
  const router = new ShardRouter({
    edgeId: 'e1',
    store,
    members,
    shardCount: 4,
    metrics,
    onFrame: () => undefined,
    log: createLogger({ destination: new PassThrough(), level: 'silent' }),
  });
  try {
    const started = Date.now();
    // A ref'd wait: the router's own timers do not keep the process up.
    const first = await outcomeWithin(router.refresh(), REFRESH_TIMEOUT_MS + 3000);
    assert.match(first, /route refresh timed out/);
    assert.ok(Date.now() - started >= REFRESH_TIMEOUT_MS - 50);
    router.deliverLater({ kind: 'ike', path, bytes: new Uint8Array(28), shard: 1 });
    // REROUTE_WAIT_MS (5 s) and a refresh deadline at most after it: the frame is dropped.
    const until = Date.now() + 5000 + 2 * REFRESH_TIMEOUT_MS + 500;
    while (router.waiting > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    assert.equal(router.waiting, 0, 'the waiting frame expired');
    const text = await metrics.render();
    assert.match(text, /ikegate_drops_total\{layer="edge",reason="reroute_exhausted"\} 1/);
    answering = true;
    await router.refresh();
    assert.equal(router.table[0], 'w1', 'the table read once the store answers');
  } finally {
    router.stop();
  }
});
