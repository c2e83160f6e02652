import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { CfgAttributeType, CfgType, NotifyError, PayloadType } from '../codec/constants.js';
import type { CpPayload } from '../codec/types.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { buildCfgReply, buildCfgRequest, parseCfgReply, parseCfgRequest } from './config-payload.js';
import { formatIpAddress } from './ip-address.js';

const cp = (cfgType: number, attributes: { type: number; value: Uint8Array }[]): CpPayload => ({
  type: PayloadType.CP,
  critical: false,
  cfgType,
  attributes,
});

describe('configuration payload (RFC 7296 §3.15)', () => {
  test('a request for IPv4 and IPv6 with DNS round-trips into wants', () => {
    const req = buildCfgRequest({ ipv4: true, ipv6: true });
    assert.deepEqual(
      req.attributes.map((a) => [a.type, a.value.length]),
      [
        [1, 0],
        [3, 0],
        [8, 0],
        [10, 0],
      ],
    );
    assert.deepEqual(parseCfgRequest(req), { ipv4: true, ipv6: true, ipv4Dns: true, ipv6Dns: true });
  });
  test('a suggested address in a request is reported', () => {
    const w = parseCfgRequest(cp(CfgType.CFG_REQUEST, [{ type: 1, value: Uint8Array.of(10, 0, 0, 9) }]));
    assert.equal(toHex(w.suggestedIpv4!), '0a000009');
  });
  test('a reply carries 4-octet IPv4, 17-octet IPv6 (address | prefix) and DNS by family', () => {
    const reply = buildCfgReply({
      ipv4: '10.9.0.5',
      ipv6: { address: 'fd00::5', prefixLength: 64 },
      dns: ['10.9.0.1', 'fd00::1'],
    });
    assert.deepEqual(
      reply.attributes.map((a) => [a.type, a.value.length]),
      [
        [1, 4],
        [8, 17],
        [3, 4],
        [10, 16],
      ],
    );
    assert.equal(reply.attributes[1]!.value[16], 64);
    const back = parseCfgReply(reply);
    assert.equal(formatIpAddress(back.ipv4!), '10.9.0.5');
    assert.equal(formatIpAddress(back.ipv6!.address), 'fd00::5');
    assert.equal(back.ipv6!.prefixLength, 64);
    assert.deepEqual(back.dns.map(formatIpAddress), ['10.9.0.1', 'fd00::1']);
    assert.throws(() => buildCfgReply({ ipv6: { address: 'fd00::5', prefixLength: 129 } }), LocalUsageError);
  });
  test('wrong attribute lengths are INVALID_SYNTAX; unknown attributes are ignored', () => {
    const isSyntax = (e: unknown) =>
      e instanceof RemoteProtocolError && e.notify === NotifyError.INVALID_SYNTAX;
    assert.throws(
      () => parseCfgReply(cp(CfgType.CFG_REPLY, [{ type: 1, value: new Uint8Array(5) }])),
      isSyntax,
    );
    assert.throws(
      () => parseCfgReply(cp(CfgType.CFG_REPLY, [{ type: 8, value: new Uint8Array(16) }])),
      isSyntax,
    );
    assert.throws(
      () => parseCfgRequest(cp(CfgType.CFG_REQUEST, [{ type: 10, value: new Uint8Array(4) }])),
      isSyntax,
    );
    assert.throws(() => parseCfgReply(cp(CfgType.CFG_REQUEST, [])), isSyntax);
    assert.deepEqual(
      parseCfgReply(
        cp(CfgType.CFG_REPLY, [{ type: CfgAttributeType.APPLICATION_VERSION, value: new Uint8Array(7) }]),
      ),
      { dns: [] },
    );
  });
  test('fuzz: parsing any CP gives a value or RemoteProtocolError (STYLE rule 12)', () => {
    const attr = fc.record({
      type: fc.integer({ min: 0, max: 20 }),
      value: fc.uint8Array({ maxLength: 20 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.array(attr, { maxLength: 6 }), (t, attrs) => {
        for (const parse of [parseCfgReply, parseCfgRequest]) {
          try {
            parse(cp(t, attrs));
          } catch (e) {
            assert.ok(e instanceof RemoteProtocolError);
          }
        }
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});
