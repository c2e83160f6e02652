import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { PassThrough } from 'node:stream';
import { PeerDirectory } from './directory.js';

const CA = new URL('../../../libs/crypto/src/testdata/ca-ecdsa.pem', import.meta.url).pathname;
const globals = {
  ikeLifetimeSeconds: 14400,
  childLifetimeSeconds: 3600,
  rekeyMarginSeconds: 300,
  dpdSeconds: 30,
};

function directory(files: Record<string, string> = {}, shardCount?: number) {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  const events: [string, string, boolean][] = [];
  const metrics = new Metrics({ processMetrics: false });
  const dir = new PeerDirectory({
    globals,
    log: createLogger({ destination: out, level: 'debug' }),
    metrics,
    ...(shardCount !== undefined ? { shardCount } : {}),
    events: { peerChanged: (n, c, k) => events.push([n, c, k]) },
    readFile: (p) => {
      if (p in files) return new TextEncoder().encode(files[p]);
      return new Uint8Array(readFileSync(p));
    },
  });
  dir.reset({
    pools: [{ name: 'rw', cidr: '10.10.0.0/24' }],
    peers: [
      { name: 'rw', id: '*@example.org', auth: { psk: 'road-warrior-psk-0123' }, pool: 'rw' },
      {
        name: 'alice',
        id: 'alice@example.org',
        auth: { psk: { file: '/etc/alice.psk' } },
        pool: 'rw',
        dpd: { intervalSeconds: 0 },
      },
      {
        name: 'branch',
        id: 'branch.example.org',
        auth: { ca: CA },
        remoteTs: ['192.168.5.0/24'],
        lifetimes: { childSeconds: 600 },
      },
    ],
    failover: { policy: 'wait-for-reconnect', waitSeconds: 30 },
  });
  return { dir, events, lines, metrics };
}

test('directory: exact ids beat wildcards; PSK files are read (trailing newline dropped); overrides compiled', () => {
  const { dir } = directory({ '/etc/alice.psk': 'alice-file-psk-0123456\n' });
  assert.equal(dir.match('ALICE@example.org')?.name, 'alice');
  assert.equal(new TextDecoder().decode(dir.match('alice@example.org')!.psk), 'alice-file-psk-0123456');
  assert.equal(dir.match('bob@example.org')?.name, 'rw');
  assert.equal(dir.match('bob@other.org'), undefined);
  assert.equal(dir.match('alice@example.org')!.dpdMs, 0, 'dpd off for alice');
  assert.equal(dir.match('bob@example.org')!.dpdMs, 30_000, 'global dpd');
  assert.equal(dir.match('branch.example.org')!.lifetimes!.childMs, 600_000);
  assert.equal(dir.match('branch.example.org')!.lifetimes!.ikeMs, 14_400_000);
  assert.deepEqual(dir.remoteSubnets(), ['192.168.5.0/24']);
  assert.equal(dir.pool('rw')!.cidr, '10.10.0.0/24');
});

test("directory: a certificate authenticates only its own peer's identity; PSK peers accept no certificate (RFC 7296 §2.15)", () => {
  const { dir } = directory({ '/etc/alice.psk': 'alice-file-psk-0123456' });
  assert.equal(dir.match('branch.example.org')!.trustAnchors!.length, 1);
  assert.equal(dir.match('bob@example.org')!.trustAnchors!.length, 0);
  assert.equal(dir.match('branch.example.org')!.psk, undefined);
  assert.equal(dir.trustAnchors().length, 1, 'CERTREQ names the one CA');
});

test('directory: a change applies to that peer alone; a bad document keeps the old settings, logged and counted', async () => {
  const { dir, events, lines, metrics } = directory({ '/etc/alice.psk': 'alice-file-psk-0123456' });
  const before = dir.match('bob@example.org');
  dir.setPeer(
    'rw',
    { name: 'rw', id: '*@example.org', auth: { psk: 'a-new-road-warrior-psk' }, pool: 'rw' },
    false,
  );
  assert.equal(new TextDecoder().decode(dir.match('bob@example.org')!.psk), 'a-new-road-warrior-psk');
  assert.notEqual(dir.match('bob@example.org'), before);
  dir.setPeer('rw', { name: 'rw', id: '*@example.org', auth: { psk: 'short' }, pool: 'rw' }, false);
  assert.equal(new TextDecoder().decode(dir.match('bob@example.org')!.psk), 'a-new-road-warrior-psk');
  assert.ok(lines.some((l) => l.includes('config-peer-invalid')));
  assert.ok(!lines.some((l) => l.includes('short') && l.includes('psk"')), 'the bad PSK is not logged');
  dir.setPeer(
    'alice',
    { name: 'alice', id: 'alice@example.org', auth: { psk: { file: '/nonexistent' } }, pool: 'rw' },
    false,
  );
  assert.equal(
    new TextDecoder().decode(dir.match('alice@example.org')!.psk),
    'alice-file-psk-0123456',
    'unreadable file: old settings',
  );
  dir.setPeer('alice', null, true);
  assert.equal(dir.match('alice@example.org')?.name, 'rw', 'alice falls to the wildcard now');
  assert.deepEqual(events.at(-1), ['alice', 'deleted', true]);
  const m = await metrics.render();
  assert.match(m, /ikegate_config_changes_total\{kind="peer",result="invalid"\} 2/);
});

test('directory: pools live as long as their name; a deleted pool stops allocating, a resized one keeps holders', () => {
  const { dir } = directory({ '/etc/alice.psk': 'alice-file-psk-0123456' });
  const pool = dir.pool('rw')!;
  const a = pool.allocate('x')!;
  dir.setPool('rw', { name: 'rw', cidr: '10.10.0.0/23' });
  assert.equal(dir.pool('rw'), pool, 'same object');
  assert.deepEqual(pool.allocate('x'), a);
  assert.equal(pool.size, 509);
  dir.setPool('rw', null);
  assert.equal(pool.allocate('y'), undefined);
  assert.deepEqual(dir.pools(), []);
  dir.setPool('other', { name: 'other', cidr: '10.10.1.0/24' });
  assert.equal(dir.pool('other')?.cidr, '10.10.1.0/24', 'a deleted pool no longer blocks its range');
  dir.setPool('clash', { name: 'clash', cidr: '10.10.1.128/25' });
  assert.equal(dir.pool('clash'), undefined, 'an overlapping pool is refused here too');
});

test('directory: a cluster pool with fewer usable addresses than shards is said once (log line and gauge): a /24 leaves 771 of 1024 shards without an address', async () => {
  const { dir, lines, metrics } = directory({ '/etc/alice.psk': 'alice-file-psk-0123456' }, 1024);
  const warned = () => lines.filter((l) => l.includes('pool-smaller-than-shards'));
  assert.equal(warned().length, 1, 'the /24 of the first load');
  assert.match(warned()[0]!, /"usable":253,"shards":1024,"shardsWithoutAddress":771/);
  assert.match(await metrics.render(), /ikegate_pool_shards_without_address\{pool="rw"\} 771/);
  dir.setPool('rw', { name: 'rw', cidr: '10.10.0.0/21' });
  assert.equal(warned().length, 1, 'a /21 covers every shard: nothing more said');
  assert.match(await metrics.render(), /ikegate_pool_shards_without_address\{pool="rw"\} 0/);
  // `ikegate up` (no shards): any free address, nothing to say.
  const single = directory({ '/etc/alice.psk': 'alice-file-psk-0123456' });
  assert.equal(single.lines.filter((l) => l.includes('pool-smaller-than-shards')).length, 0);
});
