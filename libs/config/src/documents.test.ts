import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkFailoverDoc,
  checkPeerDoc,
  checkPoolDoc,
  compileDocuments,
  parseConfig,
  peerDoc,
  poolDoc,
  seedDocuments,
} from './index.js';

const globals = { lifetimes: { ikeSeconds: 14400, childSeconds: 3600, rekeyMarginSeconds: 300 } };
const ctx = { ...globals, pools: new Set(['rw']) };

describe('peer documents (the API and the config file accept the same peers, docs/api.md)', () => {
  it('a valid document round-trips through the normalized form', () => {
    const doc = {
      name: 'alice',
      id: 'alice@example.org',
      auth: { psk: 'a-long-enough-psk-0123' },
      pool: 'rw',
      localTs: ['10.0.0.0/8'],
      remoteTs: ['dynamic'],
      proposals: { esp: ['aes128gcm16'] },
      lifetimes: { childSeconds: 1800 },
      dpd: { intervalSeconds: 10 },
      failover: { waitSeconds: 5 },
    };
    const r = checkPeerDoc(doc, ctx);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
    assert.equal(r.value.espProposals?.length, 1);
    assert.deepEqual(r.value.lifetimes, { childSeconds: 1800 });
    assert.deepEqual(peerDoc(r.value), doc);
  });

  it('reports every issue with a path relative to the document, unknown fields included', () => {
    const r = checkPeerDoc(
      {
        name: 'bad name!',
        id: 'a*b',
        auth: { psk: 'short' },
        pool: 'rx',
        remoteTs: ['10.0.0.0/33'],
        proposals: { esp: ['aes999'] },
        lifetimes: { childSeconds: 120, rekeyMarginSeconds: 200 },
        colour: 'blue',
      },
      ctx,
    );
    assert.ok(!r.ok);
    const paths = r.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'auth.psk',
      'colour',
      'id',
      'lifetimes.rekeyMarginSeconds',
      'name',
      'pool',
      'proposals.esp[0]',
      'remoteTs[0]',
    ]);
    assert.match(r.issues.find((i) => i.path === 'pool')!.message, /did you mean "rw"/);
    assert.ok(!JSON.stringify(r.issues).includes('short'), 'no PSK text in any message');
  });

  it('a non-object document is one issue at the root', () => {
    for (const v of [null, 7, 'x', []]) {
      const r = checkPeerDoc(v, ctx);
      assert.ok(!r.ok);
      assert.ok(r.issues.length >= 1);
    }
  });
});

describe('pool and failover documents', () => {
  it('pools: /8../30 IPv4, no overlap with other pools (a pool of the same name is being replaced)', () => {
    const rw = checkPoolDoc({ name: 'rw', cidr: '10.10.0.0/24', dns: ['10.10.0.1'] }, []);
    assert.ok(rw.ok);
    assert.deepEqual(poolDoc(rw.value), { name: 'rw', cidr: '10.10.0.0/24', dns: ['10.10.0.1'] });
    const overlap = checkPoolDoc({ name: 'other', cidr: '10.10.0.128/25' }, [rw.value]);
    assert.ok(!overlap.ok && overlap.issues[0]!.path === 'cidr');
    assert.ok(
      checkPoolDoc({ name: 'rw', cidr: '10.10.0.0/23' }, [rw.value]).ok,
      'resizing itself is no overlap',
    );
    assert.ok(!checkPoolDoc({ name: 'big', cidr: '10.0.0.0/7' }, []).ok);
    assert.ok(!checkPoolDoc({ name: 'v6', cidr: 'fd00::/64' }, []).ok);
  });
  it('failover: only wait-for-reconnect, 0..3600 s', () => {
    assert.deepEqual(checkFailoverDoc({ policy: 'wait-for-reconnect', waitSeconds: 10 }), {
      ok: true,
      value: { policy: 'wait-for-reconnect', waitSeconds: 10 },
    });
    const bad = checkFailoverDoc({ policy: 'drop', waitSeconds: 99999 });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.issues.map((i) => i.path).sort(), ['policy', 'waitSeconds']);
  });
});

describe('seeding from the config file', () => {
  it('the file peers and pools become documents that compile back to the same peers', () => {
    const c = parseConfig(`
identity: { id: gw.example.org }
pools: [{ name: rw, cidr: 10.10.0.0/24 }]
peers:
  - { name: rw, id: '*@example.org', auth: { psk: 0123456789abcdef0 }, pool: rw, dpd: { intervalSeconds: 5 } }
  - { name: s2s, id: branch.example.org, auth: { psk: 0123456789abcdef1 }, remoteTs: [192.168.0.0/16] }
failover: { waitSeconds: 12 }
`);
    const docs = seedDocuments(c);
    assert.deepEqual(docs.failover, { policy: 'wait-for-reconnect', waitSeconds: 12 });
    const compiled = compileDocuments(docs, c);
    assert.deepEqual(compiled.issues, []);
    assert.deepEqual(
      compiled.peers.map((p) => [p.name, p.dpd]),
      c.peers.map((p) => [p.name, p.dpd]),
    );
    assert.deepEqual(compiled.peers, c.peers);
    assert.deepEqual(compiled.pools, c.pools);
  });
  it('a document that no longer validates is reported, the others compile', () => {
    const compiled = compileDocuments(
      {
        pools: [{ name: 'rw', cidr: '10.10.0.0/24' }],
        peers: [
          { name: 'ok', id: 'a@example.org', auth: { psk: '0123456789abcdef' }, pool: 'rw' },
          { name: 'orphan', id: 'b@example.org', auth: { psk: '0123456789abcdef' }, pool: 'gone' },
        ],
      },
      globals,
    );
    assert.deepEqual(
      compiled.peers.map((p) => p.name),
      ['ok'],
    );
    assert.equal(compiled.issues[0]!.name, 'orphan');
  });
});
