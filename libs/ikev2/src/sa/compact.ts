/**
 * A state read back from a store (a takeover) made as small as a live one (issue #14). The
 * snapshot codec gives every byte field a buffer of its own (a 96-B view, an 88-B ArrayBuffer and
 * its elements: about 210 B each, some 20 per SA, empty ones included) and every suite an object
 * of its own: an adopted SA's state took 5.8 KB of heap where a live one takes 1.8 KB. Here the
 * values stay, the layout becomes the live one's: a core's SPIs, keys and nonces in one buffer,
 * a cached response with its request digest in one, a child's SPIs in one, empty values the shared
 * NO_KEY, suites the shared ones, a path's two addresses in one, and a selector's two in one (or
 * one array when they are equal: the peer's virtual address holds that address's array).
 */
import { NO_KEY } from '@ikegate/crypto';
import { sameSelectors } from '../exchange/child-sa.js';
import { sharedSuite } from '../negotiation/index.js';
import type { TrafficSelector } from '../codec/index.js';
import type { CachedResponse, ChildSaState, IkePath, IkeSaCore, IkeSaState } from './types.js';
import { bytesEqual, copyAll, copyPair } from './work.js';

const orShared = (b: Uint8Array): Uint8Array => (b.length === 0 ? NO_KEY : b);

function compactResponse(r: CachedResponse, path: IkePath | undefined): CachedResponse {
  const [bytes, requestDigest] = copyPair(r.bytes, r.requestDigest);
  const remote = path?.remote.address;
  const address = remote !== undefined && bytesEqual(remote, r.source.address) ? remote : r.source.address;
  return { ...r, bytes, requestDigest, source: { ...r.source, address } };
}

function compactCore(c: IkeSaCore, path: IkePath | undefined): IkeSaCore {
  const k = c.keys;
  const [spiI, spiR, skD, skAi, skAr, skEi, skEr, skPi, skPr, ni, nr] = copyAll(
    [c.spiI, c.spiR, k.skD, k.skAi, k.skAr, k.skEi, k.skEr, k.skPi, k.skPr, c.ni, c.nr].map(orShared),
  ) as Uint8Array[] as [
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
    Uint8Array,
  ];
  return {
    ...c,
    spiI,
    spiR,
    suite: sharedSuite(c.suite),
    keys: { skD, skAi, skAr, skEi, skEr, skPi, skPr },
    ni,
    nr,
    ...(c.lastResponse ? { lastResponse: compactResponse(c.lastResponse, path) } : {}),
    ...(c.lastSyncResponse ? { lastSyncResponse: compactResponse(c.lastSyncResponse, path) } : {}),
  };
}

/** A selector's two addresses: one array when equal (the peer's virtual address itself), else one buffer. */
function compactSelector(t: TrafficSelector, vip: Uint8Array | undefined): TrafficSelector {
  if (bytesEqual(t.startAddress, t.endAddress)) {
    const one = vip !== undefined && bytesEqual(t.startAddress, vip) ? vip : t.startAddress;
    return { ...t, startAddress: one, endAddress: one };
  }
  const [startAddress, endAddress] = copyPair(t.startAddress, t.endAddress);
  return { ...t, startAddress, endAddress };
}

function compactPath(p: IkePath): IkePath {
  const [local, remote] = copyPair(p.local.address, p.remote.address);
  return { ...p, local: { ...p.local, address: local }, remote: { ...p.remote, address: remote } };
}

/**
 * The policy's own selectors when they are the same (as a live responder's child holds them; the
 * same values either way), else compacted.
 */
function compactSelectors(
  list: readonly TrafficSelector[],
  policy: readonly TrafficSelector[] | undefined,
  vip: Uint8Array | undefined,
): readonly TrafficSelector[] {
  if (policy !== undefined && sameSelectors(list, policy)) return policy;
  return list.map((t) => compactSelector(t, vip));
}

function compactChild(c: ChildSaState, policy: SelectorPolicy | undefined): ChildSaState {
  const [inboundSpi, outboundSpi] = copyPair(c.inboundSpi, c.outboundSpi);
  const vip = c.virtualIp;
  return {
    ...c,
    inboundSpi,
    outboundSpi,
    suite: sharedSuite(c.suite),
    tsLocal: compactSelectors(c.tsLocal, policy?.localTs, vip),
    tsRemote: compactSelectors(c.tsRemote, policy?.remoteTs, vip),
  };
}

/** Our policy's selectors, which a child not narrowed holds as they are (child-sa.ts). */
interface SelectorPolicy {
  readonly localTs: readonly TrafficSelector[];
  readonly remoteTs: readonly TrafficSelector[];
}

/** `s` with the live layout (above); every value the same. `policy`: the SA's policy. */
export function compactState(s: IkeSaState, policy?: SelectorPolicy): IkeSaState {
  const path = s.path && compactPath(s.path);
  return {
    ...s,
    ...(path ? { path } : {}),
    ...(s.current ? { current: compactCore(s.current, path) } : {}),
    ...(s.previous ? { previous: compactCore(s.previous, path) } : {}),
    ...(s.collision ? { collision: compactCore(s.collision, path) } : {}),
    children: s.children.map((c) => compactChild(c, policy)),
  };
}
