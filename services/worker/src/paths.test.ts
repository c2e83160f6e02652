import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addressBytes, toIkePath } from './paths.js';

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
