import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { parseConfig } from '@ikegate/config';
import { createLogger } from '@ikegate/telemetry';
import { outcomeWithin, requirement } from '@ikegate/testkit';
import { startRedisServer } from '../../../libs/store/src/testing/redis-server.js';
import { openStore, REDIS_COMMAND_TIMEOUT_MS } from './roles.js';

test("a role's Redis calls give up after REDIS_COMMAND_TIMEOUT_MS when Redis stops answering over a live connection (a paused host), and work again once it answers: nothing without a deadline of its own hangs (control API, edge heartbeats)", async (t) => {
  const redis = await startRedisServer();
  if (typeof redis === 'string') return t.skip(requirement(redis, t));
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-roles-'));
  const kek = join(dir, 'kek.hex');
  writeFileSync(kek, randomBytes(32).toString('hex'));
  const config = parseConfig(
    `
identity: { id: gw.example.org }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
cluster:
  redis: { host: 127.0.0.1, port: ${redis.port} }
  kek: { file: ${kek} }
  insecureRelay: true
`,
    join(dir, 'ikegate.yaml'),
  );
  const store = openStore(config, createLogger({ destination: new PassThrough(), level: 'silent' }));
  try {
    assert.equal(await store.version(), 0);
    redis.pause!();
    const started = Date.now();
    const paused = await outcomeWithin(store.version(), REDIS_COMMAND_TIMEOUT_MS + 5000);
    assert.match(paused, /timed out/);
    assert.ok(Date.now() - started >= REDIS_COMMAND_TIMEOUT_MS - 100);
    redis.resume!();
    assert.equal(await store.version(), 0, 'answers again once Redis does');
  } finally {
    redis.resume!();
    await store.close().catch(() => undefined);
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
