import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ChildSaState, TsType } from '@ikegate/ikev2';
import { withEngineArrays } from './ha.js';
import { type ChildSnapshot, decodeSnapshot, encodeSnapshot, type SaSnapshot } from './snapshot.js';

const v4 = (a: string) => Uint8Array.from(a.split('.').map(Number));
const selector = (from: string, to: string) => ({
  tsType: TsType.TS_IPV4_ADDR_RANGE,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: v4(from),
  endAddress: v4(to),
});

test("takeover: an adopted child's record holds the engine child's selectors and encryption object when the values agree, as a live child's record does (issue #14), and its own copies when they do not", () => {
  const engine: ChildSaState = {
    inboundSpi: Uint8Array.of(0xc1, 0, 0, 1),
    outboundSpi: Uint8Array.of(0xc2, 0, 0, 2),
    suite: { encryption: { id: 20, keyBits: 256 }, additionalKeyExchanges: [], esn: false },
    tsLocal: [selector('0.0.0.0', '255.255.255.255')],
    tsRemote: [selector('10.64.0.9', '10.64.0.9')],
  };
  const written: ChildSnapshot = {
    inboundSpi: 0xc1000001,
    outboundSpi: 0xc2000002,
    encryption: { id: 20, keyBits: 256 },
    inKeys: new Uint8Array(36),
    outKeys: new Uint8Array(36),
    tsLocal: engine.tsLocal,
    tsRemote: engine.tsRemote,
    seqOut: 7n,
    seqIn: 9n,
  };
  // What the store gives back (the worker's own codec): the same values, every object a copy.
  const whole = {
    version: 2,
    spis: [],
    shard: 0,
    state: {},
    path: {},
    children: [written],
  } as unknown as SaSnapshot;
  const snap = decodeSnapshot(encodeSnapshot(whole)).children[0]!;
  assert.notEqual(snap.tsRemote, engine.tsRemote);
  const c = withEngineArrays(snap, [engine]);
  assert.equal(c.tsLocal, engine.tsLocal);
  assert.equal(c.tsRemote, engine.tsRemote);
  assert.equal(c.encryption, engine.suite.encryption);
  assert.deepEqual(
    { ...c, tsLocal: 0, tsRemote: 0, encryption: 0 },
    { ...snap, tsLocal: 0, tsRemote: 0, encryption: 0 },
  );
  // Another SPI, other selectors, or another key length: the snapshot's own values stay.
  assert.equal(withEngineArrays({ ...snap, inboundSpi: 5 }, [engine]).tsRemote, snap.tsRemote);
  const other = { ...snap, tsRemote: [selector('10.64.0.10', '10.64.0.10')] };
  assert.equal(withEngineArrays(other, [engine]).tsRemote, other.tsRemote);
  const aes128 = { ...snap, encryption: { id: 20, keyBits: 128 } };
  assert.equal(withEngineArrays(aes128, [engine]).encryption, aes128.encryption);
});
