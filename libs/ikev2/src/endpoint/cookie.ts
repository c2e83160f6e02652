/**
 * Stateless COOKIEs (RFC 7296 §2.6): Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>),
 * here HMAC-SHA2-256 keyed by the secret. The secret rotates every `lifetimeMs` (drawn from the
 * injected randomness on the first use after it expired); a cookie made with the current or the
 * previous secret is accepted, so a peer that got one just before a rotation still gets in. The
 * cookie is bound to the peer's address (4 or 16 octets: IPv6 is hashed in full), its nonce and
 * its SPI, never to its port (a TCP reconnect has a new one, PROTOCOL.md).
 */
import { PrfId, type CryptoProvider, type RandomBytes } from '@ikegate/crypto';
import { equalConstantTime } from '../auth/index.js';
import { LocalUsageError } from '../errors.js';

export const DEFAULT_COOKIE_SECRET_LIFETIME_MS = 120_000;
const SECRET_LENGTH = 32;

interface Secret {
  readonly version: number;
  readonly key: Uint8Array;
  readonly since: number;
}

export class CookieJar {
  readonly #provider: CryptoProvider;
  readonly #random: RandomBytes;
  readonly #lifetimeMs: number;
  #current: Secret | undefined;
  #previous: Secret | undefined;

  constructor(provider: CryptoProvider, random: RandomBytes, lifetimeMs = DEFAULT_COOKIE_SECRET_LIFETIME_MS) {
    this.#provider = provider;
    this.#random = random;
    this.#lifetimeMs = lifetimeMs;
  }

  #secret(now: number): Secret {
    const c = this.#current;
    if (c && now - c.since < this.#lifetimeMs) return c;
    this.#previous = c;
    this.#current = {
      version: ((c?.version ?? -1) + 1) & 0xff,
      key: this.#random(SECRET_LENGTH).slice(),
      since: now,
    };
    return this.#current;
  }

  #mac(key: Uint8Array, ni: Uint8Array, address: Uint8Array, spiI: Uint8Array): Uint8Array {
    const prf = this.#provider.prf(PrfId.HMAC_SHA2_256);
    if (!prf) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'COOKIEs need HMAC-SHA2-256');
    return prf.compute(key, ni, address, spiI);
  }

  /** The cookie to send to the peer at `address` for this nonce and SPI. */
  make(ni: Uint8Array, address: Uint8Array, spiI: Uint8Array, now: number): Uint8Array {
    const s = this.#secret(now);
    const mac = this.#mac(s.key, ni, address, spiI);
    const out = new Uint8Array(1 + mac.length);
    out[0] = s.version;
    out.set(mac, 1);
    return out;
  }

  /** Whether `cookie` is one we made for exactly this nonce, address and SPI (current or previous secret). */
  check(cookie: Uint8Array, ni: Uint8Array, address: Uint8Array, spiI: Uint8Array, now: number): boolean {
    if (cookie.length < 2) return false;
    const current = this.#secret(now);
    const previous = this.#previous;
    // The previous secret only while cookies it made can still be fresh.
    const usable =
      previous !== undefined && now - previous.since < 2 * this.#lifetimeMs ? previous : undefined;
    const s = [current, usable].find((x) => x !== undefined && x.version === cookie[0]);
    if (!s) return false;
    return equalConstantTime(cookie.subarray(1), this.#mac(s.key, ni, address, spiI));
  }
}
