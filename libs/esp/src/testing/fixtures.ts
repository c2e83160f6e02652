/** Test fixtures for @ikegate/esp: inner packets and SA pairs. Used by tests only. */
import { type CryptoProvider, EncryptionId, IntegrityId } from '@ikegate/crypto';
import { SeededRandom } from '@ikegate/testkit';
import { InboundSa, type InboundSaConfig } from '../inbound.js';
import { OutboundSa, type OutboundSaConfig } from '../outbound.js';
import { type EspSuite, type EspTransformIds, espSuite } from '../suite.js';

export interface SuiteCase {
  readonly name: string;
  readonly ids: EspTransformIds;
  readonly keyLength: number;
}

export const SUITES: readonly SuiteCase[] = [
  { name: 'AES-GCM-16-128', ids: { encryption: EncryptionId.AES_GCM_16, keyBits: 128 }, keyLength: 20 },
  { name: 'AES-GCM-16-256', ids: { encryption: EncryptionId.AES_GCM_16, keyBits: 256 }, keyLength: 36 },
  {
    name: 'ChaCha20-Poly1305',
    ids: { encryption: EncryptionId.CHACHA20_POLY1305, keyBits: 256 },
    keyLength: 36,
  },
  {
    name: 'AES-CBC-128 + HMAC-SHA2-256-128',
    ids: { encryption: EncryptionId.AES_CBC, keyBits: 128, integrity: IntegrityId.HMAC_SHA2_256_128 },
    keyLength: 16 + 32,
  },
  {
    name: 'AES-CBC-256 + HMAC-SHA2-384-192',
    ids: { encryption: EncryptionId.AES_CBC, keyBits: 256, integrity: IntegrityId.HMAC_SHA2_384_192 },
    keyLength: 32 + 48,
  },
  {
    name: 'AES-CBC-256 + HMAC-SHA2-512-256',
    ids: { encryption: EncryptionId.AES_CBC, keyBits: 256, integrity: IntegrityId.HMAC_SHA2_512_256 },
    keyLength: 32 + 64,
  },
];

export function suiteFor(provider: CryptoProvider, c: SuiteCase, seed = c.name): EspSuite {
  return espSuite(provider, c.ids, new SeededRandom(`key-${seed}`).bytes(c.keyLength));
}

export const SPI = 0x1234_5678;

export function saPair(
  suite: EspSuite,
  options: { esn?: boolean; replayWindow?: number; lastSequence?: bigint } = {},
  seed = 'iv',
): { out: OutboundSa; in: InboundSa } {
  const rng = new SeededRandom(seed);
  const outConfig: OutboundSaConfig = {
    spi: SPI,
    suite,
    esn: options.esn ?? false,
    lastSequence: options.lastSequence ?? 0n,
    random: (n) => rng.bytes(n),
  };
  const inConfig: InboundSaConfig = {
    spi: SPI,
    suite,
    esn: options.esn ?? false,
    replayWindow: options.replayWindow ?? 64,
    highestSequence: options.lastSequence ?? 0n,
  };
  return { out: new OutboundSa(outConfig), in: new InboundSa(inConfig) };
}

/** An IPv4 packet (RFC 791) of `length` octets (>= 20), payload filled from `fill`. */
export function ipv4(length: number, fill = 0xab): Uint8Array {
  const p = new Uint8Array(length).fill(fill);
  p[0] = 0x45;
  p[1] = 0;
  p[2] = length >>> 8;
  p[3] = length & 0xff;
  p[8] = 64;
  p[9] = 17;
  return p;
}

/** An IPv6 packet (RFC 8200) of `length` octets (>= 40). */
export function ipv6(length: number, fill = 0xcd): Uint8Array {
  const p = new Uint8Array(length).fill(fill);
  p[0] = 0x60;
  p[1] = 0;
  p[2] = 0;
  p[3] = 0;
  p[4] = (length - 40) >>> 8;
  p[5] = (length - 40) & 0xff;
  p[6] = 17;
  p[7] = 64;
  return p;
}
