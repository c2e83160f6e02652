import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, Metrics } from './index.js';

test('logger: one JSON line per event, secrets redacted at any logged depth (STYLE: never keys in logs)', async () => {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ destination: out, name: 'test' });
  log.info({ spi: 'aabb', psk: 'topsecret', child: { keys: 'k', key: 'x' } }, 'ike-sa-established');
  await new Promise((r) => setImmediate(r));
  const lines = chunks.join('').trim().split('\n');
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(line.msg, 'ike-sa-established');
  assert.equal(line.spi, 'aabb');
  assert.equal(line.level, 'info');
  assert.ok(!lines[0]!.includes('topsecret'));
  assert.deepEqual(line.child, { keys: '[redacted]', key: '[redacted]' });
});

test('metrics: counters render in the Prometheus exposition format with bounded labels', async () => {
  const m = new Metrics({ processMetrics: false });
  m.drops.inc({ layer: 'iketcp', reason: 'bad_prefix' });
  m.frames.inc({ transport: 'tcp', kind: 'ike', direction: 'in' }, 3);
  const text = await m.render();
  assert.match(text, /ikegate_drops_total\{layer="iketcp",reason="bad_prefix"\} 1/);
  assert.match(text, /ikegate_frames_total\{transport="tcp",kind="ike",direction="in"\} 3/);
  assert.match(m.contentType, /text\/plain/);
});
