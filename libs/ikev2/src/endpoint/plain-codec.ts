/**
 * Plain data (objects, arrays, strings, numbers, booleans, null, undefined, bigints, Uint8Arrays)
 * as compact bytes, for the endpoint's cold SAs (cold.ts, issue #14). Objects are written as
 * their values only; their key lists ("shapes") are kept once per codec, shared by every blob it
 * writes. An SA's state has a dozen shapes; past `maxShapes` a new one is refused, so the table is
 * bounded whatever it is given. In-process only: the bytes mean nothing to another process.
 *
 * Not V8's serialiser: it writes every property name into every blob (~1,370 B per state against
 * ~600 here) and calls back into JavaScript for each typed array (~15 us per state against ~4).
 */

/** Thrown for what is not plain data, or too big: the caller keeps the value as it is. */
export class NotPlainData extends Error {
  override readonly name = 'NotPlainData';
}

const enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  /** An integer 0 <= v <= 2^53 - 1, as a varint. */
  Uint = 4,
  /** An integer -(2^53 - 1) <= v < 0, as the varint of -v. */
  NegInt = 5,
  /** Any other number, as float64 (little-endian). */
  Float = 6,
  /** A string: the varint of its UTF-8 length, then the octets. */
  String = 7,
  /** A Uint8Array: the varint of its length, then the octets. */
  Bytes = 8,
  /** An array: the varint of its length, then the items. */
  Array = 9,
  /** A plain object: the varint of its shape, then its values in the shape's key order. */
  Object = 10,
  /** A bigint: its decimal text as a String. */
  BigInt = 11,
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const TEXT = new TextEncoder();
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const FLOAT = new Float64Array(1);
const FLOAT_BYTES = new Uint8Array(FLOAT.buffer);

export class PlainCodec {
  /**
   * The shapes by their first key (property names are internalised strings that keep their
   * hash): one map read, then a comparison of key lists, which are few per first key.
   */
  readonly #byFirstKey = new Map<string, number[]>();
  readonly #shapes: string[][] = [];
  /** Reused for every write; zeroed after each (it held the value's octets). */
  #buf = new Uint8Array(2048);
  #at = 0;

  constructor(
    /** Shapes at most. */
    readonly maxShapes = 4096,
    /** The largest encoding it writes. */
    readonly maxBytes = 64 * 1024,
  ) {}

  get shapes(): number {
    return this.#shapes.length;
  }

  /** The octets of `v`, in a buffer of their own length. @throws NotPlainData */
  encode(v: unknown): Uint8Array {
    this.#at = 0;
    try {
      this.#value(v, 0);
      return this.#buf.slice(0, this.#at);
    } finally {
      this.#buf.fill(0, 0, this.#at);
    }
  }

  /**
   * The value `bytes` holds. `copy`: every Uint8Array in it is a copy; else a view of `bytes`.
   * @throws RangeError on octets this codec did not write
   */
  decode(bytes: Uint8Array, copy: boolean): unknown {
    const r = { at: 0 };
    const v = this.#read(bytes, r, copy, 0);
    if (r.at !== bytes.length) throw new RangeError('trailing octets');
    return v;
  }

  #room(n: number): void {
    const need = this.#at + n;
    if (need > this.maxBytes) throw new NotPlainData(`more than ${this.maxBytes} octets`);
    if (need <= this.#buf.length) return;
    const grown = new Uint8Array(Math.min(this.maxBytes, Math.max(need, this.#buf.length * 2)));
    grown.set(this.#buf.subarray(0, this.#at));
    this.#buf.fill(0);
    this.#buf = grown;
  }

  #byte(b: number): void {
    this.#room(1);
    this.#buf[this.#at++] = b;
  }

  #varint(n: number): void {
    this.#room(8);
    const b = this.#buf;
    while (n >= 0x80) {
      b[this.#at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    b[this.#at++] = n;
  }

  #octets(o: Uint8Array): void {
    this.#varint(o.length);
    this.#room(o.length);
    this.#buf.set(o, this.#at);
    this.#at += o.length;
  }

  /** ASCII written as it is (SA states hold ASCII names and ids); anything else as UTF-8. */
  #string(s: string): void {
    const n = s.length;
    this.#room(8 + n);
    const start = this.#at;
    this.#varint(n);
    const b = this.#buf;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.#at = start;
        // A lone surrogate would come back as U+FFFD.
        if (!(s as string & { isWellFormed(): boolean }).isWellFormed())
          throw new NotPlainData('a string with a lone surrogate');
        return this.#octets(TEXT.encode(s));
      }
      b[this.#at++] = c;
    }
  }

  #shape(keys: string[]): number {
    const first = keys.length > 0 ? keys[0]! : '';
    const candidates = this.#byFirstKey.get(first);
    if (candidates !== undefined)
      for (const id of candidates) if (sameKeys(this.#shapes[id]!, keys)) return id;
    if (this.#shapes.length >= this.maxShapes) throw new NotPlainData('shape table full');
    if (keys.includes('__proto__')) throw new NotPlainData('a __proto__ key');
    const id = this.#shapes.length;
    this.#shapes.push(keys);
    if (candidates === undefined) this.#byFirstKey.set(first, [id]);
    else candidates.push(id);
    return id;
  }

  #value(v: unknown, depth: number): void {
    if (depth > 32) throw new NotPlainData('nested too deep');
    switch (typeof v) {
      case 'undefined':
        return this.#byte(Tag.Undefined);
      case 'boolean':
        return this.#byte(v ? Tag.True : Tag.False);
      case 'number':
        if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
          this.#byte(v >= 0 ? Tag.Uint : Tag.NegInt);
          return this.#varint(Math.abs(v));
        }
        this.#byte(Tag.Float);
        FLOAT[0] = v;
        this.#room(8);
        this.#buf.set(FLOAT_BYTES, this.#at);
        this.#at += 8;
        return;
      case 'string':
        this.#byte(Tag.String);
        return this.#string(v);
      case 'bigint':
        this.#byte(Tag.BigInt);
        return this.#string(v.toString());
      case 'object':
        break;
      default:
        throw new NotPlainData(`a ${typeof v}`);
    }
    if (v === null) return this.#byte(Tag.Null);
    if (v instanceof Uint8Array && (v.constructor === Uint8Array || v.constructor === Buffer)) {
      this.#byte(Tag.Bytes);
      return this.#octets(v);
    }
    if (Array.isArray(v)) {
      this.#byte(Tag.Array);
      this.#varint(v.length);
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) throw new NotPlainData('a sparse array'); // a hole would come back as undefined
        this.#value(v[i], depth + 1);
      }
      return;
    }
    if (Object.getPrototypeOf(v) !== Object.prototype) throw new NotPlainData('not a plain object');
    const id = this.#shape(Object.keys(v));
    this.#byte(Tag.Object);
    this.#varint(id);
    const values = Object.values(v); // in the order of `keys`
    for (let i = 0; i < values.length; i++) this.#value(values[i], depth + 1);
  }

  #readVarint(b: Uint8Array, r: { at: number }): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      if (r.at >= b.length) throw new RangeError('truncated');
      const x = b[r.at++]!;
      n += (x & 0x7f) * scale;
      if ((x & 0x80) === 0) return n;
      scale *= 0x80;
    }
    throw new RangeError('varint too long');
  }

  #readOctets(b: Uint8Array, r: { at: number }): Uint8Array {
    const n = this.#readVarint(b, r);
    if (r.at + n > b.length) throw new RangeError('truncated');
    const o = b.subarray(r.at, r.at + n);
    r.at += n;
    return o;
  }

  #read(b: Uint8Array, r: { at: number }, copy: boolean, depth: number): unknown {
    if (depth > 32) throw new RangeError('nested too deep');
    if (r.at >= b.length) throw new RangeError('truncated');
    const tag = b[r.at++]!;
    switch (tag) {
      case Tag.Undefined:
        return undefined;
      case Tag.Null:
        return null;
      case Tag.False:
        return false;
      case Tag.True:
        return true;
      case Tag.Uint:
        return this.#readVarint(b, r);
      case Tag.NegInt:
        return -this.#readVarint(b, r);
      case Tag.Float: {
        if (r.at + 8 > b.length) throw new RangeError('truncated');
        FLOAT_BYTES.set(b.subarray(r.at, r.at + 8));
        r.at += 8;
        return FLOAT[0];
      }
      case Tag.String:
        return UTF8.decode(this.#readOctets(b, r));
      case Tag.BigInt:
        return BigInt(UTF8.decode(this.#readOctets(b, r)));
      case Tag.Bytes: {
        const o = this.#readOctets(b, r);
        return copy ? new Uint8Array(o) : o;
      }
      case Tag.Array: {
        const n = this.#readVarint(b, r);
        if (n > b.length - r.at) throw new RangeError('truncated');
        const out: unknown[] = [];
        for (let i = 0; i < n; i++) out.push(this.#read(b, r, copy, depth + 1));
        return out;
      }
      case Tag.Object: {
        const keys = this.#shapes[this.#readVarint(b, r)];
        if (keys === undefined) throw new RangeError('unknown shape');
        const out: Record<string, unknown> = {};
        for (const k of keys) out[k] = this.#read(b, r, copy, depth + 1);
        return out;
      }
      default:
        throw new RangeError(`unknown tag ${tag}`);
    }
  }
}
