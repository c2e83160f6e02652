/**
 * RFC 9329 stream decode throughput: a realistic stream (1400-octet ESP frames with an IKE frame
 * every 64) fed in 16 KiB chunks, as a socket would deliver it. Reference, same run: one pass of
 * Buffer.indexOf over the same chunks (a memchr-speed scan, the floor for touching every chunk),
 * and one Buffer.copy of each chunk (the least a chunk-buffering decoder would pay).
 */
import { encodeEspFrame, encodeIkeFrame, IKETCP_PREFIX, IketcpDecoder } from '@ikegate/iketcp';
import { type BenchFigure, compare } from './harness.js';

function stream(): Uint8Array[] {
  const parts: Uint8Array[] = [IKETCP_PREFIX];
  const esp = new Uint8Array(1400).fill(0x5a);
  new DataView(esp.buffer).setUint32(0, 0x12345678);
  const ike = new Uint8Array(300).fill(0x11);
  new DataView(ike.buffer).setUint32(24, ike.length);
  for (let i = 0; i < 2048; i++) parts.push(i % 64 === 63 ? encodeIkeFrame(ike) : encodeEspFrame(esp));
  const all = Buffer.concat(parts);
  const chunks: Uint8Array[] = [];
  for (let off = 0; off < all.length; off += 16384) chunks.push(all.subarray(off, off + 16384));
  return chunks;
}

export async function bench(): Promise<BenchFigure[]> {
  const chunks = stream();
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const decode = () => {
    const d = new IketcpDecoder({ expectPrefix: true });
    let frames = 0;
    for (const c of chunks) {
      d.push(c);
      for (let ev = d.poll(); ev !== undefined; ev = d.poll()) frames++;
    }
    if (frames < 2048) throw new Error('decoder lost frames');
    return 1;
  };
  const scan = () => {
    let hits = 0;
    for (const c of chunks)
      hits += Buffer.from(c.buffer, c.byteOffset, c.byteLength).indexOf(0xfe) >= 0 ? 1 : 0;
    return 1 + hits * 0;
  };
  // Second reference: copying every chunk once into a cache-hot buffer, the least a decoder that
  // buffers whole chunks would pay; the ratio says what framing costs in units of one copy.
  const sink = Buffer.allocUnsafe(16384);
  const copy = () => {
    for (const c of chunks) Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(sink);
    return 1;
  };
  const r = compare(decode, scan, 3, 400);
  const rc = compare(decode, copy, 3, 400);
  const mb = bytes / 1e6;
  return [
    {
      name: 'iketcp decode, 1400 B ESP frames in 16 KiB chunks (vs copy)',
      value: rc.subject * mb,
      unit: 'MB/s',
      reference: { name: 'Buffer.copy of the same chunks', value: rc.reference * mb },
    },
    {
      name: 'iketcp decode, 1400 B ESP frames in 16 KiB chunks',
      value: r.subject * mb,
      unit: 'MB/s',
      reference: { name: 'Buffer.indexOf scan of the same chunks', value: r.reference * mb },
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatFigure } = await import('./harness.js');
  for (const f of await bench()) console.log(formatFigure(f));
}
