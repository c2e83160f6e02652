import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADDRESS_CACHE_MAX, addressBytes, toIkePath } from './paths.js';

test('paths: IPv6 peer addresses reach the IKE engine in full (COOKIE and NAT detection input, RFC 7296 §2.6, §2.23); v4-mapped ones as IPv4', () => {
  assert.deepEqual([...addressBytes('192.0.2.7')], [192, 0, 2, 7]);
  assert.deepEqual([...addressBytes('::ffff:192.0.2.7')], [192, 0, 2, 7]);
  const a = addressBytes('fd00::2');
  const b = addressBytes('fd00::3');
  assert.equal(a.length, 16);
  assert.notDeepEqual([...a], [...b], 'two IPv6 peers are two addresses, not one zeroed one');
  assert.deepEqual([...addressBytes('fe80::1%eth0')], [...addressBytes('fe80::1')]);
  const p = toIkePath({
    connection: 'e1|tls:4',
    transport: 'tls',
    local: { address: 'fd00::1', port: 443 },
    remote: { address: 'fd00::2', port: 50123 },
  });
  assert.equal(p.transport, 'tcp', 'TLS is TCP to IKE (RFC 9329 §8)');
  assert.equal(p.id, 'e1|tls:4');
  assert.deepEqual([...p.remote.address], [...a]);
});

test('paths: one read-only array per address text, shared by every path with that address; the cache stays at ADDRESS_CACHE_MAX addresses however many distinct (spoofed) sources arrive', () => {
  const p1 = toIkePath({
    connection: 'udp:1',
    transport: 'udp',
    local: { address: '192.0.2.1', port: 500 },
    remote: { address: '198.51.100.7', port: 500 },
  });
  const p2 = toIkePath({
    connection: 'udp:2',
    transport: 'udp',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '198.51.100.7', port: 4500 },
  });
  assert.equal(p1.local.address, p2.local.address, "the gateway's address: one array");
  assert.equal(p1.remote.address, p2.remote.address, "a peer's address across its paths: one array");
  const first = addressBytes('203.0.113.1');
  for (let i = 0; i < ADDRESS_CACHE_MAX + 10; i++)
    addressBytes(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  const again = addressBytes('203.0.113.1');
  assert.notEqual(again, first, 'the oldest entry went: the cache is bounded');
  assert.deepEqual([...again], [203, 0, 113, 1]);
});

test('paths: one local endpoint object per gateway address and port for every SA path (issue #14, memory per SA); remote endpoints stay per path', () => {
  const path = (n: number, localPort: number) =>
    toIkePath({
      connection: `udp:${n}`,
      transport: 'udp',
      local: { address: '192.0.2.1', port: localPort },
      remote: { address: `198.51.100.${n}`, port: 4500 },
    });
  const a = path(1, 4500);
  const b = path(2, 4500);
  const c = path(3, 500);
  assert.equal(a.local, b.local, 'same address and port: one object');
  assert.notEqual(a.local, c.local, 'another port: another endpoint');
  assert.deepEqual([c.local.port, [...c.local.address]], [500, [192, 0, 2, 1]]);
  assert.deepEqual([...b.remote.address], [198, 51, 100, 2]);
  const sameRemote = toIkePath({
    connection: 'udp:5',
    transport: 'udp',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '198.51.100.1', port: 4500 },
  });
  assert.notEqual(sameRemote.remote, a.remote, 'remote endpoints are not shared, even for one peer address');
  assert.equal(sameRemote.local, a.local);
  // Bounded like the address cache: many local ports still give correct endpoints.
  for (let port = 1; port <= ADDRESS_CACHE_MAX + 10; port++) assert.equal(path(9, port).local.port, port);
  const again = path(4, 4500);
  assert.deepEqual([again.local.port, [...again.local.address]], [4500, [192, 0, 2, 1]]);
});
