import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { NotPlainData, PlainCodec } from './plain-codec.js';

/** Plain data as an SA state holds it: nested objects and arrays of scalars and octets. */
const plainValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(undefined),
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.constantFrom(-0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1.7e12 + 0.5),
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom('\uFEFF', '\uFEFFalice@example.org', 'ü\uFEFF'),
    fc.bigInt(),
    fc.uint8Array({ maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ minLength: 1, maxLength: 6 }).filter((k) => k !== '__proto__'),
      tie('value'),
      { maxKeys: 5, noNullPrototype: true },
    ),
  ),
})).value;

describe('plain codec (cold SAs, issue #14)', () => {
  it('reads back every plain value it wrote, equal in value and type; with copy no octets are views of the blob', () => {
    const codec = new PlainCodec();
    fc.assert(
      fc.property(plainValue, (v) => {
        const blob = codec.encode(v);
        assert.deepStrictEqual(codec.decode(blob, false), v);
        const copied = codec.decode(blob, true);
        blob.fill(0xa5);
        assert.deepStrictEqual(copied, v, 'intact after the blob is overwritten');
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses what is not plain data with NotPlainData, and writes nothing for it', () => {
    const codec = new PlainCodec();
    class Point {
      x = 1;
    }
    for (const [i, bad] of [
      () => 1,
      Symbol('s'),
      new Map(),
      new Point(),
      new Uint16Array(2),
      new Date(0),
      'a\uD800b',
      // eslint-disable-next-line no-sparse-arrays -- the case under test
      [1, , 3],
      Object.create(null) as object,
      { ['__proto__']: 1 },
      JSON.parse('{"__proto__": {"polluted": true}}') as object,
    ].entries())
      assert.throws(() => codec.encode({ a: [bad] }), NotPlainData, `value ${i}`);
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
    assert.deepEqual(codec.decode(codec.encode({ a: [1] }), true), { a: [1] }, 'still usable');
  });

  it('any string either comes back as it was or is refused (a lone surrogate), never altered', () => {
    const codec = new PlainCodec();
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (str) => {
        let blob: Uint8Array;
        try {
          blob = codec.encode({ id: str });
        } catch (e) {
          assert.ok(e instanceof NotPlainData);
          assert.equal((str as string & { isWellFormed(): boolean }).isWellFormed(), false);
          return;
        }
        assert.deepStrictEqual(codec.decode(blob, true), { id: str });
      }),
      { numRuns: 2000 },
    );
  });

  it('holds a bounded shape table: past maxShapes a new shape is refused, known ones still work', () => {
    const codec = new PlainCodec(8);
    const known = { a: 1, b: 2 };
    const blob = codec.encode(known);
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      try {
        codec.encode({ [`k${i}`]: i });
      } catch (e) {
        assert.ok(e instanceof NotPlainData);
        refused++;
      }
    }
    assert.equal(codec.shapes, 8);
    assert.equal(refused, 93);
    assert.deepEqual(codec.decode(blob, true), known);
    assert.deepEqual(codec.decode(codec.encode({ a: 3, b: 4 }), true), { a: 3, b: 4 });
    // A new shape past the table is refused however many keys it has.
    assert.throws(
      () => codec.encode(Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`x${i}`, i]))),
      NotPlainData,
    );
  });

  it('refuses a value past maxBytes, deeper than 32 levels, and any octets it did not write with a RangeError, never a hang or another error (fuzz)', () => {
    const codec = new PlainCodec(4096, 1024);
    assert.throws(() => codec.encode(new Uint8Array(2000)), NotPlainData);
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.throws(() => codec.encode(deep), NotPlainData);
    codec.encode({ status: 'established', n: 1 }); // one shape known
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          codec.decode(bytes, true);
        } catch (e) {
          assert.ok(e instanceof RangeError || e instanceof SyntaxError || e instanceof TypeError, String(e));
        }
      }),
      { numRuns: 5000 },
    );
  });
});
