import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '@ikegate/telemetry';
import { randomPsk, testGateway, type TestGateway } from './testing/gateway.js';

async function until<T>(what: string, f: () => T | Promise<T>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('peers through the API are live at once (issue #10: create, PSK change, delete)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await testGateway();
  });
  after(() => gw.close());

  test('a peer created through the API authenticates on the next IKE_AUTH, with no restart (RFC 7296 §2.15)', async () => {
    const psk = randomPsk();
    const before = await gw.connect('alice@corp.example', psk);
    assert.equal(before.established, false, 'unknown identity is refused');
    const r = await gw.call('admin', 'POST', '/v1/peers', {
      name: 'alice',
      id: 'alice@corp.example',
      auth: { psk },
      pool: 'rw',
    });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.headers.location, '/v1/peers/alice');
    assert.deepEqual(r.json().auth, { kind: 'psk' });
    assert.ok(!r.body.includes(psk));
    const c = await gw.connect('alice@corp.example', psk);
    assert.equal(c.established, true);
    assert.match(c.vip ?? '', /^10\.77\.0\.\d+$/);
  });

  test('a PSK change through PATCH: the old key fails on the next setup, the new one works, the SA up stays', async () => {
    const old = randomPsk();
    assert.equal(
      (
        await gw.call('admin', 'PUT', '/v1/peers/bob', {
          id: 'bob@corp.example',
          auth: { psk: old },
          pool: 'rw',
        })
      ).status,
      201,
    );
    const first = await gw.connect('bob@corp.example', old);
    assert.equal(first.established, true);
    const fresh = randomPsk();
    const p = await gw.call(
      'admin',
      'PATCH',
      '/v1/peers/bob',
      { auth: { psk: fresh }, dpd: { intervalSeconds: 20 } },
      'application/merge-patch+json',
    );
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(p.json().dpd, { intervalSeconds: 20 });
    assert.equal((await gw.connect('bob@corp.example', old)).established, false);
    assert.equal((await gw.connect('bob@corp.example', fresh)).established, true);
    assert.equal(first.client.get(first.spi)?.status, 'established', 'the SA made with the old key stays up');
    assert.ok(!gw.logLines.some((l) => l.includes(old) || l.includes(fresh)), 'no PSK in any log line');
  });

  test('deleting a peer sends DELETE for its SAs and frees their addresses; keepSas=true keeps them', async () => {
    const psk = randomPsk();
    await gw.call('admin', 'POST', '/v1/peers', {
      name: 'carol',
      id: 'carol@corp.example',
      auth: { psk },
      pool: 'rw',
    });
    const c = await gw.connect('carol@corp.example', psk);
    assert.equal(c.established, true);
    const inUse = async () => (await gw.call('viewer', 'GET', '/v1/pools/rw')).json().inUse as number;
    const held = await inUse();
    const d = await gw.call('admin', 'DELETE', '/v1/peers/carol');
    assert.equal(d.status, 200, d.body);
    await until('the client to hear DELETE', () => c.client.get(c.spi) === undefined);
    await until('the address to be free', async () => (await inUse()) === held - 1);
    assert.equal((await gw.call('viewer', 'GET', '/v1/peers/carol')).status, 404);

    await gw.call('admin', 'POST', '/v1/peers', {
      name: 'dave',
      id: 'dave@corp.example',
      auth: { psk },
      pool: 'rw',
    });
    const k = await gw.connect('dave@corp.example', psk);
    assert.equal((await gw.call('admin', 'DELETE', '/v1/peers/dave?keepSas=true')).json().keepSas, true);
    await sleep(50);
    assert.equal(k.client.get(k.spi)?.status, 'established');
    assert.equal(
      (await gw.connect('dave@corp.example', psk)).established,
      false,
      'but nobody new gets in as dave',
    );
  });

  test('a pool cannot shrink or move below its holders (409 with the holders), nor be deleted while named or used', async () => {
    const psk = randomPsk();
    await gw.call('admin', 'POST', '/v1/pools', { name: 'small', cidr: '10.88.0.0/24' });
    await gw.call('admin', 'POST', '/v1/peers', {
      name: 'erin',
      id: 'erin@corp.example',
      auth: { psk },
      pool: 'small',
    });
    const c = await gw.connect('erin@corp.example', psk);
    assert.equal(c.vip, '10.88.0.2');
    const grow = await gw.call('admin', 'PUT', '/v1/pools/small', { cidr: '10.88.0.0/23' });
    assert.equal(grow.status, 200, grow.body);
    const shrink = await gw.call('admin', 'PUT', '/v1/pools/small', { cidr: '10.88.0.0/30' });
    assert.equal(shrink.status, 200, 'still holds .2, the only host of a /30');
    const cut = await gw.call('admin', 'PUT', '/v1/pools/small', { cidr: '10.88.0.4/30' });
    assert.equal(cut.status, 409, cut.body);
    assert.equal(cut.headers['content-type'], 'application/problem+json; charset=utf-8');
    assert.equal(cut.json().type, 'urn:ikegate:problem:in-use');
    assert.deepEqual(
      cut.json().holders.map((h: { address: string; peerId: string }) => [h.address, h.peerId]),
      [['10.88.0.2', 'erin@corp.example']],
    );
    const del = await gw.call('admin', 'DELETE', '/v1/pools/small');
    assert.equal(del.status, 409);
    assert.deepEqual(del.json().peers, ['erin']);
    assert.equal(del.json().holders.length, 1);
    assert.equal((await gw.call('viewer', 'GET', '/v1/pools/small')).json().cidr, '10.88.0.0/30');
  });

  test('SAs: keyset pages return every SA that exists throughout exactly once while others come and go', async () => {
    const psk = randomPsk();
    await gw.call('admin', 'POST', '/v1/peers', {
      name: 'many',
      id: '*@many.example',
      auth: { psk },
      pool: 'rw',
    });
    const stable = await Promise.all(
      Array.from({ length: 12 }, (_, i) => gw.connect(`s${i}@many.example`, psk)),
    );
    const stableSpis = new Set(
      stable.map((s) => gw.worker.list().find((x) => x.peerId === `s${stable.indexOf(s)}@many.example`)!.spi),
    );
    const seen: string[] = [];
    let cursor: string | null = null;
    let churn = 0;
    do {
      const r = await gw.call(
        'viewer',
        'GET',
        `/v1/sas?limit=3&peer=many${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.equal(r.status, 200, r.body);
      const page = r.json();
      seen.push(...page.items.map((s: { spi: string }) => s.spi));
      cursor = page.next;
      // Churn between pages: a new SA, and one of the new ones deleted.
      const extra = await gw.connect(`churn${churn++}@many.example`, psk);
      if (churn % 2 === 0)
        await gw.call(
          'operator',
          'DELETE',
          `/v1/sas/${gw.worker.list().find((x) => x.peerId === `churn${churn - 2}@many.example`)?.spi}`,
        );
      void extra;
    } while (cursor);
    for (const spi of stableSpis)
      assert.equal(seen.filter((s) => s === spi).length, 1, `${spi} exactly once`);
    assert.equal(new Set(seen).size, seen.length, 'no SA twice');
    const counts = (await gw.call('viewer', 'GET', '/v1/sas?peer=many&limit=1')).json().counts;
    assert.ok(counts.established >= 12);
  });

  test('SA commands: 202 on an established SA, 409 (not 202) on one that is not, 404 on none', async () => {
    const sa = gw.worker.list().find((s) => s.status === 'established')!;
    assert.equal((await gw.call('operator', 'POST', `/v1/sas/${sa.spi}/liveness`)).status, 202);
    const noBody = await gw.call('operator', 'POST', '/v1/edges/e1/drain');
    assert.equal(noBody.status, 409, `an optional body may be left out: ${noBody.body}`);
    assert.equal(noBody.json().type, 'urn:ikegate:problem:not-clustered');
    const rk = await gw.call('operator', 'POST', `/v1/sas/${sa.spi}/rekey`, { what: 'children' });
    assert.equal(rk.status, 202, rk.body);
    const none = await gw.call('operator', 'DELETE', '/v1/sas/00000000000000ff');
    assert.equal(none.status, 404);
    assert.equal(none.json().type, 'urn:ikegate:problem:not-found');
    // A half-open SA: IKE_SA_INIT answered, IKE_AUTH never sent (a client whose frames stop).
    const one = await gw.call('viewer', 'GET', `/v1/sas/${sa.spi.toUpperCase()}`);
    assert.equal(one.status, 200);
    assert.equal(one.json().spi, sa.spi);
    assert.ok(one.json().lastActivity);
    assert.ok(one.json().createdAt);
  });

  test('failover policy: the cluster value and per-peer overrides', async () => {
    const p = await gw.call('admin', 'PUT', '/v1/policies/failover', { waitSeconds: 7 });
    assert.equal(p.status, 200, p.body);
    assert.equal(gw.directory.failover.waitSeconds, 7);
    const o = await gw.call('admin', 'PUT', '/v1/policies/failover/overrides/rw', { waitSeconds: 3 });
    assert.deepEqual(o.json().overrides, [{ peer: 'rw', waitSeconds: 3 }]);
    assert.deepEqual((await gw.call('viewer', 'GET', '/v1/peers/rw')).json().failover, { waitSeconds: 3 });
    assert.equal(
      (await gw.call('admin', 'DELETE', '/v1/policies/failover/overrides/rw')).json().overrides.length,
      0,
    );
    assert.equal(
      (await gw.call('admin', 'DELETE', '/v1/policies/failover/overrides/rw')).status,
      200,
      'idempotent',
    );
    assert.equal((await gw.call('admin', 'DELETE', '/v1/policies/failover/overrides/nobody')).status, 404);
    assert.equal(
      (await gw.call('admin', 'PUT', '/v1/policies/failover', { waitSeconds: 99999 })).status,
      400,
    );
  });
});

test('If-Match: a change applies only at the version it names (412 otherwise); every change answers its ETag', async () => {
  const gw = await testGateway();
  try {
    const r = await gw.call(
      'admin',
      'PATCH',
      '/v1/pools/rw',
      { dns: ['10.77.0.1'] },
      'application/merge-patch+json',
    );
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json().dns, ['10.77.0.1']);
    const etag = String(r.headers.etag);
    assert.equal(etag, `"${gw.managed.state.version}"`);
    const stale = `"${gw.managed.state.version - 1}"`;
    const call = (ifMatch: string) =>
      gw.app.inject({
        method: 'PATCH',
        url: '/v1/pools/rw',
        headers: {
          authorization: `Bearer ${gw.tokens.admin}`,
          'content-type': 'application/merge-patch+json',
          'if-match': ifMatch,
        },
        payload: { dns: null },
      });
    const refused = await call(stale);
    assert.equal(refused.statusCode, 412, refused.body);
    assert.equal(refused.json().type, 'urn:ikegate:problem:precondition-failed');
    assert.equal((await call('not-a-version')).statusCode, 400);
    const ok = await call(etag);
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json().dns, []);
  } finally {
    await gw.close();
  }
});

test('a document a worker cannot apply (an unreadable PSK file) keeps its old settings and shows in GET /v1/config', async () => {
  const gw = await testGateway();
  try {
    const p = await gw.call(
      'admin',
      'PATCH',
      '/v1/peers/rw',
      { auth: { psk: { file: 'missing.psk' } } },
      'application/merge-patch+json',
    );
    assert.equal(p.status, 200, p.body);
    const c = (await gw.call('viewer', 'GET', '/v1/config')).json();
    const local = c.members.find((m: { id: string }) => m.id === 'local');
    assert.equal(local.version, c.version, 'the version is applied…');
    assert.equal(local.invalid.length, 1, '…except this document');
    assert.equal(local.invalid[0].name, 'rw');
    assert.match(local.invalid[0].error, /ENOENT/);
    assert.equal(
      (await gw.connect('old@example.org', 'file-peer-psk-0123456789')).established,
      true,
      'the old key still works',
    );
    await gw.call(
      'admin',
      'PATCH',
      '/v1/peers/rw',
      { auth: { psk: 'file-peer-psk-0123456789' } },
      'application/merge-patch+json',
    );
    assert.deepEqual((await gw.call('viewer', 'GET', '/v1/config')).json().members[0].invalid, []);
  } finally {
    await gw.close();
  }
});

describe('bad input gets a 4xx problem document naming the field (RFC 9457)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await testGateway();
  });
  after(() => gw.close());

  const cases: [string, string, string, unknown, number, string | RegExp][] = [
    [
      'unknown field',
      'POST',
      '/v1/peers',
      { name: 'x', id: 'x@y.z', auth: { psk: '0123456789abcdef' }, colour: 1 },
      400,
      'colour',
    ],
    ['a bad field in an optional body', 'POST', '/v1/sas/0000000000000001/rekey', { what: '' }, 400, 'what'],
    [
      'an unknown field in an optional body',
      'POST',
      '/v1/edges/e1/drain',
      { graceSeconds: 3, x: 1 },
      400,
      'x',
    ],
    [
      'a bad merge patch',
      'PATCH',
      '/v1/peers/rw',
      { dpd: { intervalSeconds: 'x' } },
      400,
      'dpd.intervalSeconds',
    ],
    ['no body on a route that needs one', 'PUT', '/v1/policies/failover', undefined, 400, ''],
    ['short PSK', 'POST', '/v1/peers', { name: 'x', id: 'x@y.z', auth: { psk: 'short' } }, 400, 'auth.psk'],
    [
      'both PSK and CA',
      'POST',
      '/v1/peers',
      { name: 'x', id: 'x@y.z', auth: { psk: '0123456789abcdef', ca: '/ca.pem' } },
      400,
      'auth',
    ],
    [
      'bad CIDR host bits',
      'POST',
      '/v1/peers',
      { name: 'x', id: 'x@y.z', auth: { psk: '0123456789abcdef' }, remoteTs: ['10.0.0.1/8'] },
      400,
      'remoteTs[0]',
    ],
    [
      'unknown pool',
      'POST',
      '/v1/peers',
      { name: 'x', id: 'x@y.z', auth: { psk: '0123456789abcdef' }, pool: 'nope' },
      400,
      'pool',
    ],
    [
      'bad proposal',
      'POST',
      '/v1/peers',
      {
        name: 'x',
        id: 'x@y.z',
        auth: { psk: '0123456789abcdef' },
        pool: 'rw',
        proposals: { esp: ['aes999'] },
      },
      400,
      'proposals.esp[0]',
    ],
    [
      'string for an integer (no coercion)',
      'PUT',
      '/v1/policies/failover',
      { waitSeconds: '10' },
      400,
      'waitSeconds',
    ],
    ['bad name in path', 'GET', '/v1/peers/..%2Fetc', undefined, 400, 'name'],
    ['bad SPI', 'GET', '/v1/sas/nothex', undefined, 400, 'spi'],
    ['limit out of range', 'GET', '/v1/sas?limit=0', undefined, 400, 'limit'],
    ['unknown query parameter', 'GET', '/v1/sas?colour=1', undefined, 400, 'colour'],
    ['forged cursor', 'GET', '/v1/sas?cursor=AAAA', undefined, 400, 'cursor'],
    ['overlapping pool', 'POST', '/v1/pools', { name: 'p2', cidr: '10.77.0.128/25' }, 400, 'cidr'],
    [
      'name mismatch',
      'PUT',
      '/v1/peers/a',
      { name: 'b', id: 'a@y.z', auth: { psk: '0123456789abcdef' } },
      400,
      'name',
    ],
  ];
  for (const [what, method, url, body, status, field] of cases) {
    test(`${what} -> ${status} naming ${field}`, async () => {
      const r = await gw.call('admin', method, url, body);
      assert.equal(r.status, status, r.body);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
      const p = r.json();
      assert.equal(p.status, status);
      assert.match(p.type, /^urn:ikegate:problem:/);
      assert.ok(
        (p.errors ?? []).some((e: { field: string }) =>
          typeof field === 'string' ? e.field === field : field.test(e.field),
        ),
        `errors name ${field}: ${r.body}`,
      );
    });
  }

  test('malformed JSON, a wrong content type and an oversized body are 400, 415, 413', async () => {
    const bad = await gw.call('admin', 'POST', '/v1/peers', '{"name":', 'application/json');
    assert.equal(bad.status, 400);
    assert.equal(bad.json().type, 'urn:ikegate:problem:malformed-body');
    assert.equal(
      (await gw.call('admin', 'POST', '/v1/peers', 'name=x', 'application/x-www-form-urlencoded')).status,
      415,
    );
    assert.equal((await gw.call('admin', 'POST', '/v1/peers', 'name=x', 'text/plain')).status, 415);
    const big = await gw.call('admin', 'POST', '/v1/peers', {
      name: 'x',
      id: 'x'.repeat(70_000),
      auth: { psk: '0123456789abcdef' },
    });
    assert.equal(big.status, 413);
    assert.equal(big.json().type, 'urn:ikegate:problem:body-too-large');
  });

  test('a known path with another method is 405 with Allow (RFC 9110 §15.5.6); an unknown path 404', async () => {
    const r = await gw.call('admin', 'PUT', '/v1/sas/0000000000000001');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, DELETE');
    assert.equal(r.json().type, 'urn:ikegate:problem:method-not-allowed');
    assert.equal((await gw.call('admin', 'GET', '/v1/nothing')).status, 404);
    // A method no route has, with no body and no content type: still 405, not a body error.
    const q = await gw.app.inject({ method: 'QUERY' as 'GET', url: '/healthz' });
    assert.equal(q.statusCode, 405, q.body);
    assert.equal(q.headers.allow, 'GET');
  });

  test('a duplicate name is 409 already-exists; a duplicate identity is 409 naming the other peer', async () => {
    const doc = { name: 'dup', id: 'dup@y.z', auth: { psk: '0123456789abcdef' }, remoteTs: ['192.0.2.0/24'] };
    assert.equal((await gw.call('admin', 'POST', '/v1/peers', doc)).status, 201);
    const again = await gw.call('admin', 'POST', '/v1/peers', doc);
    assert.equal(again.status, 409);
    assert.equal(again.json().type, 'urn:ikegate:problem:already-exists');
    const sameId = await gw.call('admin', 'POST', '/v1/peers', { ...doc, name: 'dup2', id: 'DUP@y.z' });
    assert.equal(sameId.status, 409);
    assert.match(sameId.json().detail, /peer "dup"/);
  });
});

describe('authorization: every route x {no token, bad token, viewer, operator, admin}', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await testGateway();
  });
  after(() => gw.close());

  test('no response and no log line carries a PSK', async () => {
    const psk = randomPsk();
    assert.equal(
      (await gw.call('admin', 'PUT', '/v1/peers/secret', { id: 'secret@y.z', auth: { psk }, pool: 'rw' }))
        .status,
      201,
    );
    const bodies = await Promise.all(
      [
        '/v1/peers',
        '/v1/peers/secret',
        '/v1/pools',
        '/v1/sas',
        '/v1/policies/failover',
        '/v1/config',
        '/metrics',
        '/openapi.json',
      ].map(async (u) => (await gw.call('admin', 'GET', u)).body),
    );
    for (const b of bodies) assert.ok(!b.includes(psk));
    assert.ok(!gw.logLines.some((l) => l.includes(psk)));
    assert.ok(gw.logLines.some((l) => l.includes('"msg":"audit"') && l.includes('"actor":"test-admin"')));
  });
  // Last: it deletes what it may (the admin's DELETE of /v1/peers/rw is a real one).
  test('each route answers 401 without or with a bad token, 403 below its role, not 401/403 at or above it', async () => {
    const spec = (await gw.call('none', 'GET', '/openapi.json')).json();
    const ranks = { viewer: 0, operator: 1, admin: 2 } as const;
    let checked = 0;
    for (const [path, ops] of Object.entries(
      spec.paths as Record<string, Record<string, { 'x-ikegate-role'?: keyof typeof ranks }>>,
    )) {
      for (const [method, op] of Object.entries(ops)) {
        const url = path
          .replace('{name}', 'rw')
          .replace('{spi}', '0000000000000001')
          .replace('{id}', 'w1')
          .replace('{peer}', 'rw');
        const role = op['x-ikegate-role'];
        const body = method === 'get' || method === 'delete' ? undefined : {};
        const statuses: Record<string, number> = {};
        for (const who of [
          'none',
          { authorization: 'Bearer ikg_not-a-real-token' },
          'viewer',
          'operator',
          'admin',
        ] as const) {
          const r = await gw.call(who, method.toUpperCase(), url, body);
          statuses[typeof who === 'string' ? who : 'bad'] = r.status;
          if (r.status === 401) assert.equal(r.headers['www-authenticate'], 'Bearer realm="ikegate"');
        }
        if (!role) {
          assert.ok(
            Object.values(statuses).every((s) => s !== 401 && s !== 403),
            `${method} ${path} is public`,
          );
          continue;
        }
        assert.equal(statuses.none, 401, `${method} ${path} without a token`);
        assert.equal(statuses.bad, 401, `${method} ${path} with a bad token`);
        for (const r of ['viewer', 'operator', 'admin'] as const) {
          const allowed = ranks[r] >= ranks[role];
          if (allowed)
            assert.ok(![401, 403].includes(statuses[r]!), `${method} ${path} as ${r}: ${statuses[r]}`);
          else assert.equal(statuses[r], 403, `${method} ${path} as ${r}`);
        }
        checked++;
      }
    }
    assert.ok(checked >= 20, `checked ${checked} protected operations`);
  });
});

test('without an access file only /healthz, /readyz, /metrics and /openapi.json exist (safe default)', async () => {
  const gw = await testGateway(undefined, { accessFile: false });
  try {
    assert.equal((await gw.call('none', 'GET', '/healthz')).status, 200);
    assert.equal((await gw.call('none', 'GET', '/metrics')).status, 200);
    assert.equal((await gw.call('none', 'GET', '/v1/sas')).status, 404);
    assert.equal((await gw.call('admin', 'DELETE', '/v1/sas/0000000000000001')).status, 404);
    const paths = Object.keys((await gw.call('none', 'GET', '/openapi.json')).json().paths);
    assert.deepEqual(paths.sort(), ['/healthz', '/metrics', '/openapi.json', '/readyz']);
  } finally {
    await gw.close();
  }
});

test("a worker's admin endpoint refuses everyone but the cluster's internal credential when no access file is set", async () => {
  const gw = await testGateway();
  const { AccessControl, internalToken } = await import('./access.js');
  const { buildWorkerAdmin } = await import('./admin-api.js');
  const kek = new Uint8Array(32).fill(5);
  const access = new AccessControl({
    file: null,
    internalSecret: kek,
    log: createLogger({ level: 'silent' }),
  });
  access.start();
  const admin = buildWorkerAdmin({
    log: createLogger({ level: 'silent' }),
    metrics: gw.metrics,
    access,
    worker: gw.worker,
    ready: () => true,
    status: () => ({
      id: 'w1',
      shards: [],
      draining: false,
      configVersion: 1,
      pendingWrites: 0,
      invalid: [],
    }),
  });
  try {
    const c = await gw.connect('zed@example.org', 'file-peer-psk-0123456789');
    assert.equal(c.established, true);
    const spi = gw.worker.list()[0]!.spi;
    const as = (authorization?: string) => (authorization ? { authorization } : {});
    const internal = `Bearer ${internalToken(kek)}`;
    const other = `Bearer ${internalToken(new Uint8Array(32).fill(6))}`;
    for (const auth of [undefined, other, `Bearer ${gw.tokens.admin}`]) {
      const r = await admin.inject({
        method: 'POST',
        url: `/internal/v1/sas/${spi}/command`,
        headers: as(auth),
        payload: { command: 'liveness' },
      });
      assert.equal(r.statusCode, 401, `refused with ${auth?.slice(0, 12)}`);
    }
    const ok = await admin.inject({
      method: 'POST',
      url: `/internal/v1/sas/${spi}/command`,
      headers: as(internal),
      payload: { command: 'liveness' },
    });
    assert.equal(ok.statusCode, 202, ok.body);
    const page = await admin.inject({
      method: 'GET',
      url: '/internal/v1/sas?limit=10',
      headers: as(internal),
    });
    assert.equal(page.json().items.length, 1);
    assert.equal((await admin.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
  } finally {
    access.stop();
    await admin.close();
    await gw.close();
  }
});
