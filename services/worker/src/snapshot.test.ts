import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fuzzRuns } from '@ikegate/testkit';
import { decodeSnapshot, encodeSnapshot, type SaSnapshot } from './snapshot.js';

const snap = (extra: Partial<SaSnapshot> = {}): SaSnapshot => ({
  version: 2,
  spis: ['0011223344556677'],
  shard: 5,
  state: {
    status: 'established',
    spiI: Buffer.from('0102', 'hex'),
    nested: { k: new Uint8Array([9, 8]) },
  } as never,
  path: {
    connection: 'e1|tcp:3',
    transport: 'tcp',
    local: { address: '127.0.0.1', port: 4500 },
    remote: { address: '127.0.0.1', port: 40000 },
  },
  children: [
    {
      inboundSpi: 0x12345678,
      outboundSpi: 0x9abcdef0,
      encryption: { id: 20, keyBits: 256 },
      inKeys: new Uint8Array(36).fill(1),
      outKeys: new Uint8Array(36).fill(2),
      tsLocal: [],
      tsRemote: [],
      seqOut: (1n << 40n) + 5n,
      seqIn: 17n,
    },
  ],
  ...extra,
});

test('snapshot: octets (Uint8Array and Buffer) and 64-bit sequence numbers survive the store round trip', () => {
  const back = decodeSnapshot(encodeSnapshot(snap()));
  const st = back.state as unknown as { spiI: Uint8Array; nested: { k: Uint8Array } };
  assert.ok(st.spiI instanceof Uint8Array);
  assert.deepEqual([...st.spiI], [1, 2]);
  assert.deepEqual([...st.nested.k], [9, 8]);
  assert.equal(back.children[0]!.seqOut, (1n << 40n) + 5n);
  assert.deepEqual([...back.children[0]!.inKeys], new Array(36).fill(1));
});

test('snapshot: anything else from the store is refused with a clear error, never half-read', () => {
  assert.throws(
    () => decodeSnapshot(new TextEncoder().encode('{"version":2}')),
    /not an ikegate SA snapshot/,
  );
  assert.throws(
    () => decodeSnapshot(encodeSnapshot({ ...snap(), version: 1 } as unknown as SaSnapshot)),
    /version 1 \(an earlier engine\)/,
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeSnapshot(bytes);
      } catch (e) {
        assert.ok(e instanceof Error);
      }
    }),
    { numRuns: fuzzRuns() },
  );
});

test("snapshot: octets are written as hex (what every released worker reads), and a snapshot with base64 octets (the next release's format) is read too (rolling upgrade both ways, issue #14)", () => {
  const json = new TextDecoder().decode(encodeSnapshot(snap()));
  assert.match(json, /"spiI":\{"\$u8":"0102"\}/);
  assert.doesNotMatch(json, /"\$b"/);
  const base64Written = json.replace(/\{"\$u8":"([^"]*)"\}/g, (_m, hex: string) => {
    return JSON.stringify({ $b: Buffer.from(hex, 'hex').toString('base64') });
  });
  assert.notEqual(base64Written, json);
  const back = decodeSnapshot(new TextEncoder().encode(base64Written));
  assert.deepEqual([...(back.state as unknown as { spiI: Uint8Array }).spiI], [1, 2]);
  assert.deepEqual([...back.children[0]!.outKeys], new Array(36).fill(2));
  assert.equal(back.children[0]!.seqIn, 17n);
});
