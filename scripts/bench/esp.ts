/**
 * ESP data-plane benchmark: encapsulate + decapsulate of one tunnel-mode packet per operation,
 * each figure measured interleaved (compare()) against its reference in the same run: a raw
 * node:crypto AEAD seal + open of a payload of the inner packet's size done per packet
 * (createCipheriv, setAAD, update, final, getAuthTag; createDecipheriv, setAAD, setAuthTag,
 * update, final). The target: encap+decap >= 70% of raw AEAD for 1400-octet packets.
 * Standalone: `node --import tsx scripts/bench/esp.ts`; in the table: `npm run bench -- esp`.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { type CryptoProvider, EncryptionId, nobleProvider, nodeProvider } from '@ikegate/crypto';
import { espSuite, InboundSa, OutboundSa } from '@ikegate/esp';
import { type BenchFigure, compare, formatFigure } from './harness.js';

const SPI = 0x1234_5678;

function ipv4(length: number): Uint8Array {
  const p = new Uint8Array(length).fill(0x5a);
  p[0] = 0x45;
  p[2] = length >>> 8;
  p[3] = length & 0xff;
  return p;
}

function keyMaterial(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + 3) & 0xff);
}

/** One encapsulate + decapsulate per call. Throws if the round trip ever fails (a broken bench). */
function espRoundTrip(
  provider: CryptoProvider,
  encryption: number,
  keyBits: number,
  size: number,
): () => number {
  const suite = espSuite(provider, { encryption, keyBits }, keyMaterial(keyBits / 8 + 4));
  const out = new OutboundSa({ spi: SPI, suite, esn: true });
  const inb = new InboundSa({ spi: SPI, suite, esn: true });
  const inner = ipv4(size);
  return () => {
    const e = out.encapsulate(inner);
    if (e.kind !== 'packet') throw new Error(`encapsulate: ${e.kind}`);
    const d = inb.decapsulate(e.packet);
    if (d.kind !== 'inner') throw new Error(`decapsulate: ${d.reason}`);
    return 1;
  };
}

/** Raw node:crypto AEAD seal + open of `size` octets, per packet, the reference. */
function rawAead(cipher: 'aes-256-gcm' | 'chacha20-poly1305', size: number): () => number {
  const key = Buffer.from(keyMaterial(32));
  const nonce = Buffer.alloc(12, 1);
  const aad = Buffer.alloc(8, 2);
  const plaintext = Buffer.from(ipv4(size));
  let counter = 0;
  return () => {
    nonce.writeUInt32BE(++counter >>> 0, 8);
    const c = createCipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(plaintext);
    c.final();
    const tag = c.getAuthTag();
    const d = createDecipheriv(cipher as 'aes-256-gcm', key, nonce, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    d.update(ct);
    d.final();
    return 1;
  };
}

export async function bench(): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  const cases: {
    label: string;
    provider: CryptoProvider;
    id: number;
    cipher: 'aes-256-gcm' | 'chacha20-poly1305';
    size: number;
    target?: number;
  }[] = [
    {
      label: 'AES-256-GCM',
      provider: nodeProvider,
      id: EncryptionId.AES_GCM_16,
      cipher: 'aes-256-gcm',
      size: 64,
    },
    {
      label: 'AES-256-GCM',
      provider: nodeProvider,
      id: EncryptionId.AES_GCM_16,
      cipher: 'aes-256-gcm',
      size: 512,
    },
    {
      label: 'AES-256-GCM',
      provider: nodeProvider,
      id: EncryptionId.AES_GCM_16,
      cipher: 'aes-256-gcm',
      size: 1400,
      target: 0.7,
    },
    {
      label: 'ChaCha20-Poly1305',
      provider: nodeProvider,
      id: EncryptionId.CHACHA20_POLY1305,
      cipher: 'chacha20-poly1305',
      size: 1400,
    },
    {
      label: 'AES-256-GCM',
      provider: nobleProvider,
      id: EncryptionId.AES_GCM_16,
      cipher: 'aes-256-gcm',
      size: 1400,
    },
  ];
  for (const c of cases) {
    const subject = espRoundTrip(c.provider, c.id, 256, c.size);
    const reference = rawAead(c.cipher, c.size);
    const r = compare(subject, reference);
    figures.push({
      name: `ESP encap+decap ${c.label} ${c.size}B (${c.provider.name})`,
      value: r.subject,
      unit: 'pkt/s',
      reference: { name: `raw node:crypto ${c.cipher} seal+open ${c.size}B`, value: r.reference },
      ...(c.target !== undefined ? { target: c.target } : {}),
    });
  }
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await bench()) console.log(formatFigure(f));
}
