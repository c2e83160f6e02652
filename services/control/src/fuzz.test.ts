/**
 * Random and mutated requests against the real control API (in-process, real worker behind it):
 * never a 5xx, never a crash; every 4xx is a problem document; a 2xx only for bodies the schemas
 * and libs/config accept. Complements Schemathesis (test/api), which is driven by the OpenAPI.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { testGateway, type TestGateway } from './testing/gateway.js';

let gw: TestGateway;
before(async () => {
  gw = await testGateway();
});
after(() => gw.close());

const field = fc.constantFrom(
  'name',
  'id',
  'auth',
  'pool',
  'localTs',
  'remoteTs',
  'proposals',
  'lifetimes',
  'dpd',
  'failover',
  'cidr',
  'dns',
  'waitSeconds',
  'policy',
  'x',
);
const value = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(
    'rw',
    '10.0.0.0/8',
    'dynamic',
    '*@example.org',
    'aes256gcm16',
    '0123456789abcdef0123',
    '10.77.0.0/25',
  ),
  fc.array(fc.constantFrom('10.0.0.0/8', 'dynamic', 'x', '::/0', 'aes128gcm16'), { maxLength: 3 }),
  fc.record({
    psk: fc.oneof(fc.string(), fc.constant('0123456789abcdef0123'), fc.record({ file: fc.string() })),
  }),
  fc.record({ ca: fc.string() }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string({ maxLength: 8 })), {
    maxKeys: 3,
  }),
);
const body = fc.oneof(fc.dictionary(field, value, { maxKeys: 6 }), fc.anything(), fc.string());
const route = fc.constantFrom(
  ['POST', '/v1/peers'],
  ['PUT', '/v1/peers/fz'],
  ['PATCH', '/v1/peers/rw'],
  ['POST', '/v1/pools'],
  ['PUT', '/v1/pools/fz'],
  ['PUT', '/v1/policies/failover'],
  ['PUT', '/v1/policies/failover/overrides/rw'],
  ['POST', '/v1/sas/0000000000000001/rekey'],
  ['POST', '/v1/workers/w1/drain'],
);

test('random bodies on every mutating route: a 2xx or a 4xx problem document, never a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(route, body, fc.boolean(), async ([method, url], b, raw) => {
      const payload = raw && typeof b === 'string' ? b : JSON.stringify(b);
      const r = await gw.call(
        'admin',
        method,
        url,
        payload ?? 'null',
        method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
      );
      assert.ok(r.status < 500, `${method} ${url} ${payload} -> ${r.status} ${r.body}`);
      if (r.status >= 400) {
        assert.match(String(r.headers['content-type']), /^application\/problem\+json/, r.body);
        const p = r.json();
        assert.equal(p.status, r.status);
        assert.match(p.type, /^urn:ikegate:problem:[a-z-]+$/);
      }
    }),
    { numRuns: Math.min(fuzzRuns(), 2000), seed: fuzzSeed() },
  );
  // Whatever was accepted, the peer documents in force still compile and the gateway still serves.
  assert.equal((await gw.call('viewer', 'GET', '/v1/peers?limit=1000')).status, 200);
  assert.equal(gw.directory.size, gw.managed.state.peers.size, 'every stored peer compiled on the worker');
});

test('random query strings and path segments: never a 5xx', async () => {
  const q = fc.dictionary(
    fc.constantFrom(
      'limit',
      'cursor',
      'peer',
      'identity',
      'worker',
      'edge',
      'transport',
      'state',
      'virtualIp',
      'keepSas',
      'pool',
      'auth',
      'owner',
      'unowned',
      'zz',
    ),
    fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer().map(String),
      fc.constantFrom('true', '', '-1', '1e3', 'established', 'udp'),
    ),
    { maxKeys: 4 },
  );
  const path = fc.constantFrom(
    '/v1/sas',
    '/v1/peers',
    '/v1/pools',
    '/v1/shards',
    '/v1/peers/',
    '/v1/sas/',
    '/v1/pools/',
    '/v1/peers/rw',
    '/v1/workers',
  );
  await fc.assert(
    fc.asyncProperty(path, fc.string({ maxLength: 20 }), q, async (p, seg, query) => {
      const url = `${p}${p.endsWith('/') ? encodeURIComponent(seg) : ''}?${new URLSearchParams(query)}`;
      for (const method of ['GET', 'DELETE']) {
        const r = await gw.call(method === 'GET' ? 'viewer' : 'admin', method, url);
        assert.ok(r.status < 500, `${method} ${url} -> ${r.status} ${r.body}`);
      }
    }),
    { numRuns: Math.min(fuzzRuns(), 1000), seed: fuzzSeed() },
  );
});
