import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import {
  ConfigError,
  DYNAMIC,
  loadConfig,
  matchPeer,
  parseConfig,
  PeerIndex,
  type PeerIdPattern,
} from './index.js';

const MINIMAL = `
identity: { id: gw.example.org }
pools: [{ name: rw, cidr: 10.10.0.0/24, dns: [10.10.0.1] }]
peers:
  - { name: road-warriors, id: '*@example.org', auth: { psk: 'sixteen-chars-ok' }, pool: rw }
`;

function issuesOf(text: string): { path: string; message: string }[] {
  try {
    parseConfig(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return [...e.issues];
  }
  assert.fail('expected a ConfigError');
}

describe('parseConfig: a valid configuration', () => {
  it('fills every default', () => {
    const c = parseConfig(MINIMAL);
    assert.equal(c.identity.id, 'gw.example.org');
    assert.equal(c.identity.idType, 2); // ID_FQDN, RFC 7296 §3.5
    assert.equal(c.identity.certificate, null);
    assert.deepEqual(c.listen.udp, {
      address: '0.0.0.0',
      ikePort: 500,
      natTPort: 4500,
      enabled: true,
      receiveBufferBytes: 4 << 20,
    });
    assert.deepEqual(c.listen.tcp, { address: '0.0.0.0', port: 4500, enabled: true });
    assert.deepEqual(c.listen.tls, {
      address: '0.0.0.0',
      port: 443,
      enabled: true,
      certificate: null,
      key: null,
    });
    assert.deepEqual(c.control, {
      address: '127.0.0.1',
      port: 8080,
      accessFile: null,
      tls: null,
      stateFile: null,
    });
    assert.deepEqual(c.proposals.ikeText, ['aes256gcm16-prfsha256-x25519', 'aes256gcm16-prfsha384-ecp384']);
    assert.deepEqual(c.proposals.espText, ['aes256gcm16', 'aes128gcm16']);
    assert.equal(c.proposals.ike.length, 2);
    assert.equal(c.proposals.esp.length, 2);
    assert.deepEqual(c.lifetimes, { ikeSeconds: 14400, childSeconds: 3600, rekeyMarginSeconds: 300 });
    assert.deepEqual(c.dpd, { intervalSeconds: 30 });
    assert.deepEqual(c.dataplane, {
      tun: { name: 'ikg0', mtu: 1400 },
      coldChildAfterSeconds: 60,
      masquerade: { enabled: true, outInterface: null },
    });
    assert.deepEqual(c.failover, { policy: 'wait-for-reconnect', waitSeconds: 30 });
    assert.deepEqual(c.log, { level: 'info' });
    const pool = c.pools[0]!;
    assert.equal(pool.cidr.prefix, 24);
    assert.deepEqual(pool.cidr.address, Uint8Array.of(10, 10, 0, 0));
    assert.deepEqual(pool.gateway.address, Uint8Array.of(10, 10, 0, 1));
    assert.deepEqual(pool.dns[0]!.address, Uint8Array.of(10, 10, 0, 1));
    const peer = c.peers[0]!;
    assert.deepEqual(peer.match, { kind: 'suffix', suffix: '@example.org' });
    assert.deepEqual(peer.auth, { kind: 'psk', psk: 'sixteen-chars-ok' });
    assert.deepEqual(peer.remoteTs, [DYNAMIC]);
    assert.deepEqual(peer.localTs, [
      {
        tsType: 7, // TS_IPV4_ADDR_RANGE, RFC 7296 §3.13.1
        ipProtocol: 0,
        startPort: 0,
        endPort: 65535,
        startAddress: Uint8Array.of(0, 0, 0, 0),
        endAddress: Uint8Array.of(255, 255, 255, 255),
      },
    ]);
  });

  it('accepts the same configuration as JSON', () => {
    const json = JSON.stringify({
      identity: { id: 'vpn@example.org' },
      peers: [{ name: 's2s', id: '192.0.2.7', auth: { ca: '/etc/ca.pem' }, remoteTs: ['2001:db8::/32'] }],
    });
    const c = parseConfig(json);
    assert.equal(c.identity.idType, 3); // ID_RFC822_ADDR
    const ts = c.peers[0]!.remoteTs[0];
    assert.ok(ts !== undefined && ts !== DYNAMIC);
    assert.equal(ts.tsType, 8); // TS_IPV6_ADDR_RANGE
    assert.equal(ts.endAddress[4], 0xff);
    assert.equal(ts.startAddress[3], 0xb8);
    assert.deepEqual(c.peers[0]!.auth, { kind: 'cert', ca: '/etc/ca.pem' });
  });

  it('IPv4 identity is ID_IPV4_ADDR; null sections take defaults', () => {
    const c = parseConfig('identity: { id: 192.0.2.1 }\nlisten:\ndataplane: { tun: }\n');
    assert.equal(c.identity.idType, 1);
    assert.equal(c.dataplane.tun.name, 'ikg0');
  });

  it('docs/ikegate.example.yaml loads, with relative paths resolved against its directory', () => {
    const path = fileURLToPath(new URL('../../../docs/ikegate.example.yaml', import.meta.url));
    const c = loadConfig(path);
    assert.equal(c.source, path);
    assert.equal(c.identity.id, 'gw.example.org');
    assert.deepEqual(
      c.peers.map((p) => p.name),
      ['road-warriors', 'branch-berlin'],
    );
    const branch = c.peers[1]!;
    assert.equal(branch.auth.kind, 'psk');
    assert.equal(c.pools[0]!.cidr.text, '10.10.0.0/24');
    assert.equal(matchPeer(c, 'alice@example.org')?.name, 'road-warriors');
    assert.equal(matchPeer(c, 'berlin.example.org')?.name, 'branch-berlin');
  });

  it('loadConfig names the file when it cannot be read', () => {
    assert.throws(
      () => loadConfig('/nonexistent/ikegate.yaml'),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith('/nonexistent/ikegate.yaml:'),
    );
  });
});

describe('parseConfig: every error names its field path', () => {
  const base = (extra: string): string => `${MINIMAL}${extra}`;
  const cases: [name: string, text: string, path: string, message: RegExp][] = [
    ['missing identity', 'peers: []', 'identity', /required/],
    ['bad identity id', 'identity: { id: "not a name" }', 'identity.id', /FQDN/],
    ['tcp port 0', base('listen: { tcp: { port: 0 } }'), 'listen.tcp.port', /must be an integer 1-65535/],
    ['udp port string', base('listen: { udp: { ikePort: "500" } }'), 'listen.udp.ikePort', /integer 1-65535/],
    [
      'udp receive buffer over 2^31 - 1',
      base('listen: { udp: { receiveBufferBytes: 2147483648 } }'),
      'listen.udp.receiveBufferBytes',
      /integer 0-2147483647/,
    ],
    [
      'udp receive buffer negative',
      base('listen: { udp: { receiveBufferBytes: -1 } }'),
      'listen.udp.receiveBufferBytes',
      /integer 0-2147483647/,
    ],
    ['bad address', base('control: { address: 10.0.0 }'), 'control.address', /IPv4 or IPv6/],
    ['enabled not bool', base('listen: { tls: { enabled: "yes" } }'), 'listen.tls.enabled', /true or false/],
    ['tls cert without key', base('listen: { tls: { certificate: a.pem } }'), 'listen.tls.key', /together/],
    ['tcp/tls clash', base('listen: { tls: { port: 4500 } }'), 'listen.tls.port', /conflicts/],
    [
      'cluster relay without TLS (issue #11: secure by default)',
      base('cluster: { kek: { file: k.hex } }'),
      'cluster.relayTls',
      /mutual TLS.*insecureRelay: true/,
    ],
    [
      'cluster relay TLS and insecureRelay together',
      base('cluster: { kek: { file: k.hex }, insecureRelay: true, relayTls: { ca: ca.pem } }'),
      'cluster.insecureRelay',
      /contradicts/,
    ],
    [
      'redis ACL user without a password',
      base('cluster: { kek: { file: k.hex }, insecureRelay: true, redis: { username: ikegate } }'),
      'cluster.redis.username',
      /password/,
    ],
    [
      'redis TLS certificate without key',
      base(
        'cluster: { kek: { file: k.hex }, insecureRelay: true, redis: { tls: { ca: ca.pem, certificate: c.pem } } }',
      ),
      'cluster.redis.tls',
      /together/,
    ],
    [
      'cluster relay TLS without its CA',
      base('cluster: { kek: { file: k.hex }, relayTls: {} }'),
      'cluster.relayTls.ca',
      /required/,
    ],
    [
      'cluster relay certificate without key',
      base('cluster: { kek: { file: k.hex }, relayTls: { ca: ca.pem, certificate: c.pem } }'),
      'cluster.relayTls',
      /together/,
    ],
    [
      'unknown ike token',
      base('proposals: { ike: [aes256gcm16-prfsha256-x9999] }'),
      'proposals.ike[0]',
      /x9999/,
    ],
    ['esp with prf', base('proposals: { esp: [aes256gcm16-prfsha256] }'), 'proposals.esp[0]', /PRF/],
    ['empty ike list', base('proposals: { ike: [] }'), 'proposals.ike', /at least one/],
    [
      'pool host bits',
      'identity: { id: gw.example.org }\npools: [{ name: p, cidr: 10.0.0.1/24 }]',
      'pools[0].cidr',
      /10\.0\.0\.0\/24/,
    ],
    [
      'pool /31',
      'identity: { id: g.example.org }\npools: [{ name: p, cidr: 10.0.0.0/31 }]',
      'pools[0].cidr',
      /\/30/,
    ],
    [
      'pool name missing',
      'identity: { id: g.example.org }\npools: [{ cidr: 10.0.0.0/24 }]',
      'pools[0].name',
      /required/,
    ],
    [
      'duplicate pool',
      'identity: { id: g.example.org }\npools: [{ name: p, cidr: 10.0.0.0/24 }, { name: p, cidr: 10.1.0.0/24 }]',
      'pools[1].name',
      /duplicate pool name/,
    ],
    [
      'overlapping pools',
      'identity: { id: g.example.org }\npools: [{ name: p, cidr: 10.0.0.0/16 }, { name: q, cidr: 10.0.5.0/24 }]',
      'pools[1].cidr',
      /overlaps pool "p"/,
    ],
    [
      'bad dns',
      'identity: { id: g.example.org }\npools: [{ name: p, cidr: 10.0.0.0/24, dns: [x] }]',
      'pools[0].dns[0]',
      /address/,
    ],
    [
      'short psk',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: b, auth: { psk: short }, remoteTs: [10.0.0.0/8] }, { name: c, id: d, auth: { psk: short } , remoteTs: [10.0.0.0/8]}]',
      'peers[1].auth.psk',
      /must be a string of at least 16 characters/,
    ],
    [
      'psk and ca',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: b, auth: { psk: 0123456789abcdef, ca: x } }]',
      'peers[0].auth',
      /exactly one/,
    ],
    ['unknown pool', base('').replace('pool: rw', 'pool: rx'), 'peers[0].pool', /did you mean "rw"/],
    [
      'dynamic without pool',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: b, auth: { ca: x } }]',
      'peers[0].remoteTs',
      /needs a pool/,
    ],
    [
      'dynamic in localTs',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: b, auth: { ca: x }, localTs: [dynamic], remoteTs: [10.0.0.0/8] }]',
      'peers[0].localTs[0]',
      /only allowed in remoteTs/,
    ],
    [
      'bad remote cidr',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: b, auth: { ca: x }, remoteTs: [10.0.0.0/33] }]',
      'peers[0].remoteTs[0]',
      /prefix/,
    ],
    [
      'wildcard in the middle',
      'identity: { id: g.example.org }\npeers: [{ name: a, id: "a*b", auth: { ca: x }, remoteTs: [10.0.0.0/8] }]',
      'peers[0].id',
      /first character/,
    ],
    [
      'duplicate peer name',
      base('') + '  - { name: road-warriors, id: x.example.org, auth: { ca: c }, remoteTs: [10.0.0.0/8] }\n',
      'peers[1].name',
      /duplicate/,
    ],
    [
      'margin >= lifetime',
      base('lifetimes: { childSeconds: 300 }'),
      'lifetimes.rekeyMarginSeconds',
      /less than/,
    ],
    [
      'tun name too long',
      base('dataplane: { tun: { name: a-very-long-interface } }'),
      'dataplane.tun.name',
      /15 characters/,
    ],
    ['mtu', base('dataplane: { tun: { mtu: 100 } }'), 'dataplane.tun.mtu', /integer 576-9000/],
    ['failover policy', base('failover: { policy: immediate }'), 'failover.policy', /wait-for-reconnect/],
    ['log level', base('log: { level: verbose }'), 'log.level', /one of/],
    ['section not a mapping', base('dpd: 30'), 'dpd', /mapping/],
    ['root not a mapping', '[1, 2]', '(root)', /mapping/],
    ['yaml syntax', 'identity: {', '(yaml)', /./],
    ['duplicate yaml key', 'identity: { id: a.b }\nidentity: { id: a.b }', '(yaml)', /unique|duplicate/i],
  ];
  for (const [name, text, path, message] of cases) {
    it(`${name} → ${path}`, () => {
      const issues = issuesOf(text);
      const hit = issues.find((i) => i.path === path);
      assert.ok(hit, `no issue at ${path}; got ${JSON.stringify(issues)}`);
      assert.match(hit.message, message);
    });
  }

  it('collects all errors at once and prints them one per line', () => {
    try {
      parseConfig(
        'identity: { id: gw.example.org }\nlisten: { tcp: { port: 0 }, udp: { ikePort: 70000 } }\nlog: { level: x }',
      );
      assert.fail('expected ConfigError');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(
        e.issues.map((i) => i.path),
        ['listen.udp.ikePort', 'listen.tcp.port', 'log.level'],
      );
      assert.equal(e.code, 'IKEGATE_ERR_CONFIG');
      assert.match(e.message, /^<string>: invalid configuration \(3 errors\)\n {2}listen\.udp\.ikePort: /);
    }
  });

  it('unknown keys are errors with a "did you mean"', () => {
    const issues = issuesOf(base('lifetimes: { ikeSecond: 100 }\ndataplane: { tun: { mut: 1400 } }\nzzz: 1'));
    assert.match(
      issues.find((i) => i.path === 'lifetimes.ikeSecond')!.message,
      /did you mean "ikeSeconds"\?/,
    );
    assert.match(issues.find((i) => i.path === 'dataplane.tun.mut')!.message, /did you mean "mtu"\?/);
    const far = issues.find((i) => i.path === 'zzz')!;
    assert.doesNotMatch(far.message, /did you mean/);
    assert.match(far.message, /unknown key/);
  });
});

test('cluster: the relay over mutual TLS, or plaintext only when insecureRelay says so (issue #11)', () => {
  const tls = parseConfig(
    `${MINIMAL}cluster: { kek: { file: /k.hex }, relayTls: { ca: /ca.pem, certificate: /w.pem, key: /w.key } }\n`,
  );
  assert.deepEqual(tls.cluster?.relayTls, { ca: '/ca.pem', certificate: '/w.pem', key: '/w.key' });
  assert.equal(tls.cluster?.insecureRelay, false);
  const perProcess = parseConfig(`${MINIMAL}cluster: { kek: { file: /k.hex }, relayTls: { ca: /ca.pem } }\n`);
  assert.deepEqual(perProcess.cluster?.relayTls, { ca: '/ca.pem', certificate: null, key: null });
  const plain = parseConfig(`${MINIMAL}cluster: { kek: { file: /k.hex }, insecureRelay: true }\n`);
  assert.equal(plain.cluster?.relayTls, null);
  assert.equal(plain.cluster?.insecureRelay, true);
});

test('cluster.redis.replicaAcks: 1 by default with sentinels, 0 otherwise; refused with nodes (Redis failover, issue #11)', () => {
  const cluster = (redis: string) =>
    parseConfig(`${MINIMAL}cluster: { kek: { file: /k.hex }, insecureRelay: true, redis: ${redis} }\n`)
      .cluster?.redis;
  const sentinel = cluster('{ sentinels: [{ host: 10.0.0.5, port: 26379 }], name: gw }');
  assert.equal(sentinel?.replicaAcks, 1);
  assert.equal(sentinel?.replicaAckTimeoutMs, 500);
  assert.equal(cluster('{ host: 10.0.0.5 }')?.replicaAcks, 0);
  const set = cluster('{ host: 10.0.0.5, replicaAcks: 2, replicaAckTimeoutMs: 250 }');
  assert.equal(set?.replicaAcks, 2);
  assert.equal(set?.replicaAckTimeoutMs, 250);
  const issues = issuesOf(
    `${MINIMAL}cluster: { kek: { file: /k.hex }, insecureRelay: true, redis: { nodes: [{ host: 10.0.0.5 }], replicaAcks: 1 } }\n`,
  );
  assert.deepEqual(
    issues.map((i) => i.path),
    ['cluster.redis.replicaAcks'],
  );
});

describe('matchPeer', () => {
  const c = parseConfig(`
identity: { id: gw.example.org }
pools: [{ name: rw, cidr: 10.10.0.0/24 }]
peers:
  - { name: any, id: '*', auth: { ca: ca.pem }, pool: rw }
  - { name: example, id: '*@example.org', auth: { ca: ca.pem }, pool: rw }
  - { name: alice, id: alice@example.org, auth: { psk: 0123456789abcdef }, pool: rw }
`);
  it('an exact id beats every wildcard', () => {
    assert.equal(matchPeer(c, 'alice@example.org')?.name, 'alice');
    assert.equal(matchPeer(c, 'ALICE@example.org')?.name, 'alice');
  });
  it('the most specific wildcard wins, whatever the order (`*` last)', () => {
    assert.equal(matchPeer(c, 'bob@example.org')?.name, 'example');
    const reversed = { peers: [c.peers[2]!, c.peers[1]!, c.peers[0]!] };
    assert.equal(matchPeer(reversed, 'bob@example.org')?.name, 'example');
    assert.equal(matchPeer(reversed, 'bob@other.org')?.name, 'any');
  });
  it('PeerIndex agrees with a naive scan (exact, then longest suffix, then *) on random ids', () => {
    const alphabet = ['a', 'b', '@', '.'];
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ unit: fc.constantFrom(...alphabet), minLength: 1, maxLength: 5 }), {
          maxLength: 8,
        }),
        fc.boolean(),
        fc.string({ unit: fc.constantFrom(...alphabet, 'A'), maxLength: 7 }),
        (patterns, withAny, id) => {
          const peers: { name: string; match: PeerIdPattern }[] = patterns.map((p, i) => ({
            name: `p${i}`,
            match: i % 2 === 0 ? { kind: 'exact', id: p } : { kind: 'suffix', suffix: p },
          }));
          if (withAny) peers.push({ name: 'any', match: { kind: 'any' } });
          const lower = id.toLowerCase();
          const exact = peers.find((p) => p.match.kind === 'exact' && p.match.id.toLowerCase() === lower);
          const suffixes = peers
            .filter((p) => p.match.kind === 'suffix' && lower.endsWith(p.match.suffix.toLowerCase()))
            .sort(
              (x, y) =>
                (y.match as { suffix: string }).suffix.length - (x.match as { suffix: string }).suffix.length,
            );
          const expected = exact ?? suffixes[0] ?? peers.find((p) => p.match.kind === 'any');
          assert.equal(new PeerIndex(peers).match(id)?.name, expected?.name);
        },
      ),
      { numRuns: 2000 },
    );
  });
  it('no match is undefined', () => {
    assert.equal(matchPeer({ peers: [c.peers[1]!] }, 'bob@other.org'), undefined);
  });
});

describe('parseConfig never throws anything but ConfigError', () => {
  const check = (text: string): void => {
    try {
      parseConfig(text);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      assert.ok(e.issues.length > 0);
      for (const i of e.issues) assert.ok(typeof i.path === 'string' && i.path !== '' && i.message !== '');
    }
  };
  const runs = Math.min(fuzzRuns(), 5000);
  it('on fc.anything() serialized as JSON', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => check(JSON.stringify(v) ?? '')),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });
  it('on random strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), check), { numRuns: runs, seed: fuzzSeed() });
  });
  it('on configurations with random values at known keys', () => {
    const value = fc.oneof(
      fc.anything(),
      fc.constantFrom('10.0.0.0/24', 'dynamic', '*', 'aes256gcm16', '0123456789abcdef0', 'rw', null),
    );
    const doc = fc.record(
      {
        identity: fc.record({ id: value, certificate: value }, { requiredKeys: [] }),
        listen: fc.record({ udp: value, tcp: fc.record({ port: value }), tls: value }, { requiredKeys: [] }),
        proposals: fc.record({ ike: fc.array(value), esp: value }, { requiredKeys: [] }),
        pools: fc.array(fc.record({ name: value, cidr: value, dns: value }, { requiredKeys: [] })),
        peers: fc.array(
          fc.record(
            {
              name: value,
              id: value,
              auth: fc.record({ psk: value, ca: value }, { requiredKeys: [] }),
              pool: value,
              localTs: value,
              remoteTs: fc.array(value),
            },
            { requiredKeys: [] },
          ),
        ),
        lifetimes: value,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(doc, (d) => check(JSON.stringify(d) ?? '')),
      { numRuns: Math.min(runs, 1000), seed: fuzzSeed() },
    );
  });
});
