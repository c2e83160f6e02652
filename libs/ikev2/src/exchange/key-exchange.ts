/**
 * Key exchange glue for the tasks (RFC 7296 §1.2, §2.14; RFC 9370): the KE ephemeral of a request
 * we send is drawn from a seed kept in the state, so the state stays plain data and the private
 * key can be recreated when the response arrives (even on another worker after a takeover).
 * Peer KE data that does not decode is the peer's protocol error (RemoteProtocolError).
 */
import type { CryptoProvider, KeyExchangeInitiation, PrfAlgorithm, RandomBytes } from '@ikegate/crypto';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';

export function prfOf(provider: CryptoProvider, id: number | undefined): PrfAlgorithm {
  const prf = id === undefined ? undefined : provider.prf(id);
  if (!prf) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `PRF ${id} unsupported`);
  return prf;
}

/**
 * The KE ephemeral is drawn from a seed kept in the state, so the initiation can be recreated
 * when the response arrives without holding a closure. The seed is as secret as the private key.
 */
export function seededRandom(provider: CryptoProvider, seed: Uint8Array): RandomBytes {
  let counter = 0;
  return (length: number) => {
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const block = provider.hash('sha512', seed, Uint8Array.of(counter >>> 8, counter & 0xff));
      counter++;
      const take = Math.min(block.length, length - off);
      out.set(block.subarray(0, take), off);
      off += take;
    }
    return out;
  };
}

/**
 * Ephemerals built when an IKE_SA_INIT (or IKE_INTERMEDIATE) request is sent, kept until its
 * response comes back, so the private key is not derived from its seed a second time (an extra
 * scalar multiplication per setup). A pure memo: a miss rebuilds the same key from the seed, as
 * after a failover. Bounded (oldest dropped first); an entry is taken out when it is used.
 */
const INITIATION_MEMO_LIMIT = 4096;
const initiations = new Map<string, KeyExchangeInitiation>();

export function keInitiation(
  provider: CryptoProvider,
  group: number,
  seed: Uint8Array,
): KeyExchangeInitiation {
  const key = `${provider.name}:${group}:${Buffer.from(seed.buffer, seed.byteOffset, seed.byteLength).toString('base64')}`;
  const hit = initiations.get(key);
  if (hit !== undefined) {
    initiations.delete(key);
    return hit;
  }
  const method = provider.keyExchange(group);
  if (!method) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `key exchange ${group} unsupported`);
  const made = method.initiate(seededRandom(provider, seed));
  if (initiations.size >= INITIATION_MEMO_LIMIT) initiations.delete(initiations.keys().next().value!);
  initiations.set(key, made);
  return made;
}

export function keRespond(
  provider: CryptoProvider,
  group: number,
  data: Uint8Array,
  random: RandomBytes,
): { publicData: Uint8Array; sharedSecret: Uint8Array } {
  const method = provider.keyExchange(group);
  if (!method) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `key exchange ${group} unsupported`);
  try {
    return method.respond(data, random);
  } catch (e) {
    throw asIkeError(e);
  }
}

export function keComplete(init: KeyExchangeInitiation, data: Uint8Array): Uint8Array {
  try {
    return init.complete(data);
  } catch (e) {
    throw asIkeError(e);
  }
}

/** Crypto's RemoteProtocolError (bad KE data) becomes ours, answered with INVALID_SYNTAX. */
function asIkeError(e: unknown): unknown {
  if (e instanceof Error && e.name === 'RemoteProtocolError' && !(e instanceof RemoteProtocolError))
    return new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', e.message);
  return e;
}
