import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { TsType } from '../codec/constants.js';
import type { TrafficSelector } from '../codec/types.js';
import { LocalUsageError } from '../errors.js';
import { formatIpAddress, parseIpAddress } from './ip-address.js';
import {
  isSpecificTrafficSelector,
  narrowTrafficSelectors,
  substituteVirtualIp,
  trafficSelectorContains,
  trafficSelectorFromCidr,
} from './traffic-selectors.js';

const ts = trafficSelectorFromCidr;
const show = (t: TrafficSelector) =>
  `${formatIpAddress(t.startAddress)}-${formatIpAddress(t.endAddress)} p${t.ipProtocol} ${t.startPort}-${t.endPort}`;

describe('IP address text (RFC 4291 §2.2, RFC 5952)', () => {
  test('parses and formats IPv4 and IPv6, rejects junk', () => {
    assert.equal(toHex(parseIpAddress('192.0.2.1')), 'c0000201');
    assert.equal(toHex(parseIpAddress('2001:db8::1')), '20010db8000000000000000000000001');
    assert.equal(toHex(parseIpAddress('::ffff:192.0.2.1')), '00000000000000000000ffffc0000201');
    assert.equal(formatIpAddress(parseIpAddress('2001:0db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
    assert.equal(formatIpAddress(parseIpAddress('::')), '::');
    for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', ''])
      assert.throws(() => parseIpAddress(bad), LocalUsageError, bad);
  });
});

describe('traffic selectors from CIDR and containment (RFC 7296 §3.13.1)', () => {
  test('prefixes become address ranges; host bits are masked', () => {
    assert.equal(show(ts('10.0.0.77/24')), '10.0.0.0-10.0.0.255 p0 0-65535');
    assert.equal(show(ts('::/0')), '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff p0 0-65535');
    assert.equal(ts('::/0').tsType, TsType.TS_IPV6_ADDR_RANGE);
    assert.equal(
      show(ts('192.0.2.9', { ipProtocol: 6, startPort: 443, endPort: 443 })),
      '192.0.2.9-192.0.2.9 p6 443-443',
    );
    assert.throws(() => ts('10.0.0.0/33'), LocalUsageError);
  });
  test('containment honours protocol, ports and family', () => {
    assert.ok(
      trafficSelectorContains(
        ts('10.0.0.0/8'),
        ts('10.1.2.0/24', { ipProtocol: 17, startPort: 53, endPort: 53 }),
      ),
    );
    assert.ok(!trafficSelectorContains(ts('10.0.0.0/8', { ipProtocol: 6 }), ts('10.1.2.0/24')));
    assert.ok(!trafficSelectorContains(ts('::/0'), ts('10.0.0.1')));
    assert.ok(isSpecificTrafficSelector(ts('10.0.0.1')));
  });
});

describe('narrowing (RFC 7296 §2.9)', () => {
  test('intersection of a wide proposal with our policy, families kept apart', () => {
    const r = narrowTrafficSelectors([ts('0.0.0.0/0'), ts('::/0')], [ts('10.0.0.0/24'), ts('2001:db8::/64')]);
    assert.deepEqual(r.map(show), [
      '10.0.0.0-10.0.0.255 p0 0-65535',
      '2001:db8::-2001:db8::ffff:ffff:ffff:ffff p0 0-65535',
    ]);
    assert.deepEqual(narrowTrafficSelectors([ts('192.168.0.0/16')], [ts('10.0.0.0/8')]), []);
  });
  test('protocol and ports intersect', () => {
    const r = narrowTrafficSelectors(
      [ts('10.0.0.0/24', { ipProtocol: 6, startPort: 1000, endPort: 3000 })],
      [ts('10.0.0.0/8', { startPort: 2000, endPort: 65535 })],
    );
    assert.deepEqual(r.map(show), ['10.0.0.0-10.0.0.255 p6 2000-3000']);
  });
  test('the first, specific selector is a hint: the range holding it comes first (§2.9)', () => {
    const proposed = [ts('10.0.2.7', { ipProtocol: 6, startPort: 80, endPort: 80 }), ts('10.0.0.0/16')];
    const r = narrowTrafficSelectors(proposed, [ts('10.0.1.0/24'), ts('10.0.2.0/24')]);
    assert.deepEqual(r.map(show), ['10.0.2.0-10.0.2.255 p0 0-65535', '10.0.1.0-10.0.1.255 p0 0-65535']);
  });
  test('OPAQUE ports survive only against all ports', () => {
    const opaque: TrafficSelector = { ...ts('10.0.0.0/24'), startPort: 65535, endPort: 0 };
    assert.equal(narrowTrafficSelectors([opaque], [ts('10.0.0.0/8')]).length, 1);
    assert.equal(
      narrowTrafficSelectors([opaque], [ts('10.0.0.0/8', { startPort: 1, endPort: 2 })]).length,
      0,
    );
  });
});

describe('virtual IP substitution (RFC 7296 §2.23, §3.15)', () => {
  test("a road warrior's 0.0.0.0/0 and ::/0 become its assigned addresses; unassigned families drop", () => {
    const r = substituteVirtualIp([ts('0.0.0.0/0'), ts('::/0')], [parseIpAddress('10.9.0.5')]);
    assert.deepEqual(r.map(show), ['10.9.0.5-10.9.0.5 p0 0-65535']);
    const both = substituteVirtualIp(
      [ts('0.0.0.0/0', { ipProtocol: 17 }), ts('::/0')],
      [parseIpAddress('10.9.0.5'), parseIpAddress('fd00::5')],
    );
    assert.deepEqual(both.map(show), ['10.9.0.5-10.9.0.5 p17 0-65535', 'fd00::5-fd00::5 p0 0-65535']);
  });
});

/** Naive reference over a small universe: addresses 0..15 of 10.0.0.0/28 and ::/124, ports 0..7. */
describe('narrowing agrees with point-wise set intersection (seeded, STYLE rule 10)', () => {
  const sel = fc
    .record({
      v6: fc.boolean(),
      a: fc.integer({ min: 0, max: 15 }),
      b: fc.integer({ min: 0, max: 15 }),
      proto: fc.constantFrom(0, 6, 17),
      p: fc.integer({ min: 0, max: 7 }),
      q: fc.integer({ min: 0, max: 7 }),
      allPorts: fc.boolean(),
    })
    .map(({ v6, a, b, proto, p, q, allPorts }): TrafficSelector => {
      const addr = (x: number) =>
        v6 ? parseIpAddress(`::${x.toString(16)}`) : parseIpAddress(`10.0.0.${x}`);
      return {
        tsType: v6 ? TsType.TS_IPV6_ADDR_RANGE : TsType.TS_IPV4_ADDR_RANGE,
        ipProtocol: proto,
        startPort: allPorts ? 0 : Math.min(p, q),
        endPort: allPorts ? 65535 : Math.max(p, q),
        startAddress: addr(Math.min(a, b)),
        endAddress: addr(Math.max(a, b)),
      };
    });
  const contains = (t: TrafficSelector, v6: boolean, addr: number, port: number, proto: number) =>
    (t.tsType === TsType.TS_IPV6_ADDR_RANGE) === v6 &&
    (t.ipProtocol === 0 || t.ipProtocol === proto) &&
    t.startPort <= port &&
    port <= t.endPort &&
    t.startAddress[t.startAddress.length - 1]! <= addr &&
    addr <= t.endAddress[t.endAddress.length - 1]!;
  test('a point is in the result exactly when it is in some proposed and some allowed selector', () => {
    fc.assert(
      fc.property(fc.array(sel, { maxLength: 4 }), fc.array(sel, { maxLength: 4 }), (proposed, allowed) => {
        const r = narrowTrafficSelectors(proposed, allowed);
        for (const v6 of [false, true])
          for (let addr = 0; addr < 16; addr++)
            for (let port = 0; port < 8; port++)
              for (const proto of [1, 6, 17]) {
                const want =
                  proposed.some((p) => contains(p, v6, addr, port, proto)) &&
                  allowed.some((a) => contains(a, v6, addr, port, proto));
                const got = r.some((x) => contains(x, v6, addr, port, proto));
                assert.equal(got, want, `${v6} ${addr} ${port} ${proto}`);
              }
        for (const x of r)
          for (const a of r)
            if (x !== a) assert.ok(!trafficSelectorContains(x, a), 'no result covers another');
        for (const x of r)
          assert.ok(
            allowed.some((a) => trafficSelectorContains(a, x)),
            'each result is within our policy',
          );
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});
