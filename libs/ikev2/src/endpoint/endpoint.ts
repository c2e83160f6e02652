/**
 * The IKE endpoint (quinn-proto's `Endpoint` to the IKE SA's `Connection`): everything that
 * arrives at a worker's IKE port goes through `receive`, sans-IO.
 *
 * How this works:
 * - Demultiplexing: a message is routed by our SPI (the responder SPI when the I flag is set, the
 *   initiator SPI otherwise; ARCHITECTURE.md routing rule) to its SA; an IKE_SA_INIT request
 *   (responder SPI zero) goes to the half-open SA of the same (SPIi, peer address) if there is
 *   one, else it may create one.
 * - Unauthenticated input never allocates lasting state by itself: a new IKE_SA_INIT request is
 *   screened first without keeping anything — COOKIE demanded when the live half-open count is at
 *   `cookieThreshold` (RFC 7296 §2.6), NO_PROPOSAL_CHOSEN and INVALID_KE_PAYLOAD answered
 *   statelessly, the half-open caps (total and per address) and the SA cap enforced — and only a
 *   request that passes becomes a half-open SA, which expires after `halfOpenMs` if IKE_AUTH does
 *   not complete. A request for an unknown SPI may get an unprotected INVALID_IKE_SPI (RFC 7296
 *   §2.21.4), rate-limited and never larger than the request (no amplification).
 * - Time: every SA's earliest deadline (`nextTimeout(state)`) sits in one heap; the driver arms
 *   one timer for `nextTimeout()` and calls `timeout(now)`. Early or late firing is harmless.
 * - Output: every call returns what to do, in order (STYLE.md rule 2): transmissions, and what
 *   happened to which SA (`sa-action`: established, path-validated, child installed/removed,
 *   deleted, persist, rejected, dropped). The service never infers protocol facts.
 *
 * Counts for gauges are kept incrementally (no scans). SPIs the SAs allocate are unique in the
 * endpoint and indexed after every step, including a rekey's new SPIs and the old ones until the
 * old SA is gone.
 */
import type { CryptoProvider, RandomBytes } from '@ikegate/crypto';
import {
  decodeMessage,
  ExchangeType,
  HeaderFlag,
  type IkeMessage,
  IKE_HEADER_LENGTH,
  NotifyError,
  NotifyStatus,
  PayloadType,
  encodeMessage,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import {
  DEFAULT_HALF_OPEN_MS,
  notifyInitResponse,
  respondInit,
  screenInitRequest,
} from '../exchange/ike-init.js';
import { createIkeSa, settledState, step } from '../sa/ike-sa.js';
import { compactState } from '../sa/compact.js';
import { nextTimeout } from '../sa/lifetimes.js';
import type {
  IkePath,
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaEvent,
  IkeSaPolicy,
  IkeSaState,
  IkeSaStatus,
  Rejection,
  StepResult,
} from '../sa/types.js';
import { findNotify, findPayload, hex, notify } from '../sa/work.js';
import { CookieJar, DEFAULT_COOKIE_SECRET_LIFETIME_MS } from './cookie.js';
import { coldCandidate, freezeState, peekState, thawState } from './cold.js';
import { DeadlineHeap, type HeapItem } from './deadline-heap.js';
import { LruList, type LruNode } from './lru.js';

export interface EndpointLimits {
  /** IKE SAs held at most (half-open included); new IKE_SA_INITs past it are dropped. */
  readonly maxSas: number;
  /** Half-open SAs (IKE_SA_INIT answered, IKE_AUTH not done) at most. */
  readonly maxHalfOpen: number;
  /** Half-open SAs from one peer address at most. */
  readonly maxHalfOpenPerAddress: number;
  /** COOKIEs are demanded while at least this many SAs are half-open (RFC 7296 §2.6). */
  readonly cookieThreshold: number;
  /** A half-open SA is dropped this long after IKE_SA_INIT unless IKE_AUTH completed. */
  readonly halfOpenMs: number;
  /** INVALID_IKE_SPI answers per second at most (0: never answer an unknown SPI). */
  readonly invalidSpiPerSecond: number;
  /**
   * Established SAs held as objects at most (issue #14: memory per held SA). Beyond it, the least
   * recently used quiet ones (cold.ts: no exchange in flight) are held encoded, ~1.7 KB less
   * each, and rebuilt on their next event. Infinity: never.
   */
  readonly maxHotSas: number;
}

export const DEFAULT_ENDPOINT_LIMITS: EndpointLimits = {
  maxSas: 250_000,
  maxHalfOpen: 20_000,
  maxHalfOpenPerAddress: 5_000,
  cookieThreshold: 1_000,
  halfOpenMs: DEFAULT_HALF_OPEN_MS,
  invalidSpiPerSecond: 100,
  maxHotSas: 4096,
};

/** One IKE SA held by the endpoint. `data` is the service's own record for it. */
export interface SaEntry<T> extends HeapItem {
  readonly id: number;
  /** The shard the SA lives in (its SPIs encode it; ARCHITECTURE.md). */
  readonly shard: number;
  /** A cold SA's state is rebuilt when read (15-30 us): read `status` where it is enough. */
  state: IkeSaState;
  /** `state.status`, without rebuilding a cold state. */
  readonly status: IkeSaStatus;
  /** `state.lastInboundAt`, without rebuilding a cold state. */
  readonly lastInboundAt: number;
  /** The state without making a cold SA hot (a snapshot for the store): a copy of a cold one. */
  peekState(): IkeSaState;
  ctx: IkeSaContext;
  data: T | undefined;
  /** Our IKE SPIs (hex) this SA is found by: the current SA's, and a rekeyed one's until it is gone. */
  readonly spis: readonly string[];
}

/** What an entry tells its endpoint about its cold form. */
interface ColdKeeper {
  /** `e` was rebuilt from its cold form: it is the most recently used. */
  thawed(e: Entry<unknown>): void;
}

/**
 * One held SA. Every field is set in the constructor, so none is added later: a field added
 * after construction moves the object's fields into a separate array (issue #14). Its state is
 * an object (`#hot`) or, cold, the bytes of one (`#cold`, cold.ts).
 */
class Entry<T> implements SaEntry<T>, LruNode {
  spis: readonly string[] = NO_SPIS;
  halfOpenKey: string | undefined = undefined;
  halfOpenAddress: string | undefined = undefined;
  pathId: string | undefined = undefined;
  status: IkeSaStatus;
  deadline = Number.POSITIVE_INFINITY;
  heapIndex = -1;
  lruPrev: LruNode | undefined = undefined;
  lruNext: LruNode | undefined = undefined;
  #hot: IkeSaState | undefined;
  #cold: Uint8Array | undefined = undefined;
  /** A cold state's lastInboundAt. */
  #coldInboundAt = 0;

  constructor(
    readonly id: number,
    readonly shard: number,
    state: IkeSaState,
    public ctx: IkeSaContext,
    public data: T | undefined,
    readonly keeper: ColdKeeper,
  ) {
    this.#hot = state;
    this.status = state.status;
  }

  get state(): IkeSaState {
    const hot = this.#hot;
    if (hot !== undefined) return hot;
    const s = thawState(this.#cold!, this.ctx.policy);
    this.#cold = undefined;
    this.#hot = s;
    this.keeper.thawed(this);
    return s;
  }

  set state(s: IkeSaState) {
    const cold = this.#cold;
    this.#cold = undefined;
    this.#hot = s;
    if (cold !== undefined) {
      cold.fill(0);
      this.keeper.thawed(this);
    }
  }

  peekState(): IkeSaState {
    return this.#hot ?? peekState(this.#cold!);
  }

  get lastInboundAt(): number {
    return this.#hot !== undefined ? this.#hot.lastInboundAt : this.#coldInboundAt;
  }

  get cold(): boolean {
    return this.#hot === undefined;
  }

  /** Holds the state as bytes if it is a cold candidate; false when it stays an object. */
  freeze(): boolean {
    const s = this.#hot;
    if (s === undefined || !coldCandidate(s)) return false;
    let blob: Uint8Array;
    try {
      blob = freezeState(s);
    } catch {
      return false; // not plain data (plain-codec.ts): held as it is
    }
    this.#cold = blob;
    this.#coldInboundAt = s.lastInboundAt;
    this.#hot = undefined;
    return true;
  }

  /** Its state is unreadable (`thawState` threw): the SA is given up, and reads give `s`. */
  bury(s: IkeSaState): void {
    this.#cold?.fill(0);
    this.#cold = undefined;
    this.#hot = s;
  }
}

export interface EndpointConfig {
  readonly provider: CryptoProvider;
  readonly random: RandomBytes;
  /** The policy IKE_SA_INIT requests are screened against (proposals, fragmentation). */
  readonly policy: IkeSaPolicy;
  /** A candidate 8-octet IKE SPI for a new SA in `shard`; the endpoint retries while it collides. */
  readonly ikeSpi: (shard: number) => Uint8Array;
  /**
   * The context of a new responder SA in `shard` (before its peer is authenticated; its
   * `forPeer` gives the peer's own). Its `allocateIkeSpi` is replaced by the endpoint's.
   */
  readonly responderContext: (sa: SaEntry<unknown>) => IkeSaContext;
  readonly limits?: Partial<EndpointLimits>;
  readonly cookieSecretLifetimeMs?: number;
}

type SaAction = Exclude<IkeSaAction, { kind: 'send' }>;

export type EndpointOutput<T> =
  /** Put `bytes` on `path` (over TCP close the stream after it when `closeAfter` is set). */
  | {
      readonly kind: 'transmit';
      readonly path: IkePath;
      readonly bytes: Uint8Array;
      readonly closeAfter?: string;
      readonly sa?: SaEntry<T>;
    }
  /** Something happened to an SA (STYLE.md: explicit events, the service never guesses). */
  | { readonly kind: 'sa-action'; readonly sa: SaEntry<T>; readonly action: SaAction }
  /** A message dropped before any SA took it (no state touched). */
  | { readonly kind: 'dropped'; readonly reason: string; readonly path?: IkePath }
  /** An IKE_SA_INIT refused statelessly (NO_PROPOSAL_CHOSEN, INVALID_KE_PAYLOAD, COOKIE demanded). */
  | (Rejection & { readonly path: IkePath })
  | { readonly kind: 'lenient'; readonly what: 'aead-with-integrity'; readonly exchange: string };

export interface EndpointStats {
  readonly sas: number;
  readonly established: number;
  readonly halfOpen: number;
  /** Whether COOKIEs are being demanded right now. */
  readonly cookieMode: boolean;
  /** SAs in the order of use that `maxHotSas` bounds (objects that may go cold). */
  readonly hot: number;
  /** SAs held encoded (cold.ts); the others are objects. */
  readonly cold: number;
  /** Cold SAs rebuilt since the endpoint started (each on an event: a message, a timer, a read). */
  readonly thaws: number;
}

const MAX_SPI_TRIES = 16;
const INVALID_SPI_RESPONSE_LENGTH = IKE_HEADER_LENGTH + 8;

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/**
 * A context as the service gave it, with the endpoint's IKE SPI allocator. Members are read from
 * the service's context when the engine reads them; its functions are called on it (a service's
 * context may be a class whose methods use `this`).
 */
class EndpointContext implements IkeSaContext {
  readonly #inner: IkeSaContext;
  readonly allocateIkeSpi: () => Uint8Array;

  constructor(inner: IkeSaContext, allocateIkeSpi: () => Uint8Array) {
    this.#inner = inner;
    this.allocateIkeSpi = allocateIkeSpi;
  }

  get provider() {
    return this.#inner.provider;
  }
  get random() {
    return this.#inner.random;
  }
  get policy() {
    return this.#inner.policy;
  }
  get certificate() {
    return this.#inner.certificate;
  }
  get trustAnchors() {
    return this.#inner.trustAnchors;
  }
  get expectedPeerId() {
    return this.#inner.expectedPeerId;
  }
  get now() {
    return this.#inner.now;
  }
  allocateChildSpi(): Uint8Array {
    return this.#inner.allocateChildSpi();
  }
  psk(peerId: string): Uint8Array | undefined {
    return this.#inner.psk(peerId);
  }
  get assignAddress() {
    const inner = this.#inner;
    return inner.assignAddress && ((peerId: string) => inner.assignAddress!(peerId));
  }
  get trustAnchorsFor() {
    const inner = this.#inner;
    return inner.trustAnchorsFor && ((peerId: string) => inner.trustAnchorsFor!(peerId));
  }
  get forPeer() {
    const inner = this.#inner;
    return inner.forPeer && ((peerId: string) => inner.forPeer!(peerId));
  }
}

export class IkeEndpoint<T> {
  readonly #cfg: EndpointConfig;
  readonly #limits: EndpointLimits;
  readonly #cookies: CookieJar;
  readonly #bySpi = new Map<string, Entry<T>>();
  readonly #halfOpen = new Map<string, Entry<T>>();
  readonly #halfOpenPerAddress = new Map<string, number>();
  /** The SAs on each path: the entry itself while it is the only one (most paths), else a set. */
  readonly #byPath = new Map<string, Entry<T> | Set<Entry<T>>>();
  readonly #entries = new Set<Entry<T>>();
  readonly #heap = new DeadlineHeap<Entry<T>>();
  readonly #reserved = new Set<string>();
  /** Hot (object) SAs that may go cold, least recently used first. */
  readonly #hot = new LruList<Entry<T>>();
  #cold = 0;
  #thaws = 0;
  readonly #keeper: ColdKeeper = {
    thawed: (e) => {
      // An SA no longer held (forgotten while cold) is rebuilt for whoever still has its entry.
      if (!this.#entries.has(e as Entry<T>)) return;
      this.#cold--;
      this.#thaws++;
      this.#hot.touch(e as Entry<T>);
    },
  };
  #established = 0;
  #nextId = 1;
  #invalidSpiTokens = 0;
  #invalidSpiRefillAt = 0;

  constructor(cfg: EndpointConfig) {
    this.#cfg = cfg;
    this.#limits = { ...DEFAULT_ENDPOINT_LIMITS, ...cfg.limits };
    this.#cookies = new CookieJar(
      cfg.provider,
      cfg.random,
      cfg.cookieSecretLifetimeMs ?? DEFAULT_COOKIE_SECRET_LIFETIME_MS,
    );
  }

  get limits(): EndpointLimits {
    return this.#limits;
  }

  get stats(): EndpointStats {
    return {
      sas: this.#entries.size,
      established: this.#established,
      halfOpen: this.#halfOpen.size,
      cookieMode: this.#cookieMode(),
      hot: this.#hot.size,
      cold: this.#cold,
      thaws: this.#thaws,
    };
  }

  /** When the driver must call `timeout` next (ms on its clock), or undefined for never. */
  nextTimeout(): number | undefined {
    return this.#heap.peek()?.deadline;
  }

  get(spiHex: string): SaEntry<T> | undefined {
    return this.#bySpi.get(spiHex.toLowerCase());
  }

  entries(): IterableIterator<SaEntry<T>> {
    return this.#entries.values();
  }

  // --- input -------------------------------------------------------------------------------------

  /**
   * One IKE message from the peer at `path` (no non-ESP marker, no RFC 9329 length). `shard` is
   * where a new SA would live (the edge's routing choice). `bytes` is only read during the call.
   */
  receive(bytes: Uint8Array, path: IkePath, shard: number, now: number): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    if (bytes.length < IKE_HEADER_LENGTH) {
      out.push({ kind: 'dropped', reason: 'short', path });
      return out;
    }
    const flags = bytes[19]!;
    const fromInitiator = (flags & HeaderFlag.INITIATOR) !== 0;
    const ours = fromInitiator ? bytes.subarray(8, 16) : bytes.subarray(0, 8);
    if (fromInitiator && isZero(ours)) {
      if (bytes[18] !== ExchangeType.IKE_SA_INIT || (flags & HeaderFlag.RESPONSE) !== 0) {
        out.push({ kind: 'dropped', reason: 'zero-spi', path });
        return out;
      }
      const existing = this.#halfOpen.get(this.#halfOpenKey(bytes.subarray(0, 8), path));
      if (existing) this.#step(existing, { kind: 'message', bytes, path, now }, out);
      else this.#newInit(bytes, path, shard, now, out);
      return out;
    }
    const entry = this.#bySpi.get(hex(ours));
    if (!entry) {
      this.#unknownSpi(bytes, path, now, out);
      return out;
    }
    if (entry.cold && (flags & HeaderFlag.RESPONSE) !== 0) {
      // A cold SA has no request outstanding (coldCandidate): what the step would say, unrebuilt
      // (a forged response costs no rebuild).
      out.push({ kind: 'sa-action', sa: entry, action: { kind: 'dropped', reason: 'unexpected-response' } });
      return out;
    }
    this.#step(entry, { kind: 'message', bytes, path, now }, out);
    return out;
  }

  /**
   * Runs what is due at `now` (call when `nextTimeout()` passes; early is harmless). At most
   * `limit` SAs per call, so a timer that fires after a long pause does not block the process:
   * `nextTimeout()` is then still at or before `now`, and the driver calls again soon.
   */
  timeout(
    now: number,
    espActivityAt?: (sa: SaEntry<T>) => number | undefined,
    limit = 1024,
  ): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    // Bounded: each due SA is stepped once per call; one whose new deadline is still due waits.
    const due: Entry<T>[] = [];
    for (
      let top = this.#heap.peek();
      top && top.deadline <= now && due.length < limit;
      top = this.#heap.peek()
    ) {
      this.#heap.remove(top);
      due.push(top);
    }
    for (const e of due) {
      const activity = espActivityAt?.(e);
      this.#step(
        e,
        activity === undefined ? { kind: 'timeout', now } : { kind: 'timeout', now, espActivityAt: activity },
        out,
      );
    }
    this.#trim(limit);
    return out;
  }

  /**
   * A command from the service (API, data plane) to one SA.
   * @throws LocalUsageError when the command does not fit the SA's state (e.g. not established)
   */
  command(sa: SaEntry<T>, command: IkeSaCommand, now: number): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    const e = sa as Entry<T>;
    if (!this.#entries.has(e)) throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'SA is gone');
    this.#step(e, { kind: 'command', command, now }, out);
    return out;
  }

  /** The stream `pathId` closed: SAs on it wait for their peer (RFC 9329 §6). */
  connectionLost(pathId: string, now: number): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    for (const e of this.#onPath(pathId)) this.#step(e, { kind: 'connection-lost', pathId, now }, out);
    return out;
  }

  /** connectionLost for every path whose id `match` accepts (one scan of the paths in use). */
  connectionsLost(match: (pathId: string) => boolean, now: number): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    for (const pathId of [...this.#byPath.keys()]) {
      if (!match(pathId)) continue;
      for (const e of this.#onPath(pathId)) this.#step(e, { kind: 'connection-lost', pathId, now }, out);
    }
    return out;
  }

  /**
   * The data plane saw an authenticated ESP packet of `sa` on another path than the SA's: the SA
   * follows it (RFC 9329 §6: the connection of the last valid message; RFC 7296 §2.23).
   */
  espPath(sa: SaEntry<T>, path: IkePath, now: number): EndpointOutput<T>[] {
    const out: EndpointOutput<T>[] = [];
    const e = sa as Entry<T>;
    if (this.#entries.has(e)) this.#step(e, { kind: 'esp-path', path, now }, out);
    return out;
  }

  /** Starts an initiator SA on `path` (RFC 7296 §1.2) with its own context. */
  initiate(
    ctx: IkeSaContext,
    path: IkePath,
    shard: number,
    now: number,
    data?: T,
  ): { sa: SaEntry<T>; out: EndpointOutput<T>[] } {
    const e = this.#newEntry(shard, createIkeSa(now), ctx, data);
    const out: EndpointOutput<T>[] = [];
    this.#step(e, { kind: 'command', command: { kind: 'initiate', path }, now }, out);
    return { sa: e, out };
  }

  /**
   * Holds an SA another endpoint held (a takeover): indexed by its SPIs, its deadlines armed.
   * Returns undefined when one of its SPIs is taken here already.
   */
  adopt(state: IkeSaState, ctx: IkeSaContext, shard: number, data?: T): SaEntry<T> | undefined {
    const spis = ourSpis(state);
    if (spis.some((s) => this.#bySpi.has(s))) return undefined;
    // Read back from a store, every value is an object of its own: held in the live layout.
    let compact: IkeSaState;
    try {
      compact = settledState(compactState(state, ctx.policy));
    } catch (err) {
      // A store's bytes that decoded but are not an SA state (a missing core field): refused here,
      // with what was wrong, before anything is indexed.
      throw new LocalUsageError(
        'IKEGATE_ERR_IKEV2_BAD_STATE',
        `not an IKE SA state: ${(err as Error).message}`,
      );
    }
    const e = this.#newEntry(shard, compact, ctx, data);
    this.#reconcile(e);
    return e;
  }

  /** Forgets an SA without telling anyone (its shard moved to another worker). */
  forget(sa: SaEntry<T>): void {
    this.#remove(sa as Entry<T>);
  }

  // --- IKE_SA_INIT ---------------------------------------------------------------------------------

  #halfOpenKey(spiI: Uint8Array, path: IkePath): string {
    return `${hex(spiI)}/${hex(path.remote.address)}`;
  }

  #cookieMode(): boolean {
    return this.#halfOpen.size >= this.#limits.cookieThreshold;
  }

  #newInit(bytes: Uint8Array, path: IkePath, shard: number, now: number, out: EndpointOutput<T>[]): void {
    let msg: IkeMessage;
    try {
      msg = decodeMessage(bytes);
    } catch (e) {
      if (!(e instanceof RemoteProtocolError)) throw e;
      out.push({ kind: 'dropped', reason: 'malformed-init', path });
      return;
    }
    const spiI = msg.header.initiatorSpi;
    const address = hex(path.remote.address);
    if (this.#cookieMode()) {
      // RFC 7296 §2.6: before any work, the peer proves it receives at its address.
      const nonce = findPayload(msg.payloads, PayloadType.NONCE);
      if (!nonce) {
        out.push({ kind: 'dropped', reason: 'init-missing-payload', path });
        return;
      }
      const got = findNotify(msg.payloads, NotifyStatus.COOKIE);
      if (!got || !this.#cookies.check(got.data, nonce.data, path.remote.address, spiI, now)) {
        const cookie = this.#cookies.make(nonce.data, path.remote.address, spiI, now);
        out.push({
          kind: 'transmit',
          path,
          bytes: notifyInitResponse(spiI, NotifyStatus.COOKIE, cookie),
          // RFC 9329: after a COOKIE request over TCP the responder closes the connection.
          ...(path.transport === 'tcp' ? { closeAfter: 'cookie' } : {}),
        });
        out.push({
          kind: 'rejected',
          exchange: 'IKE_SA_INIT',
          reason: got ? 'invalid_cookie' : 'cookie_required',
          by: 'us',
          path,
        });
        return;
      }
    }
    const screen = screenInitRequest(this.#screenContext, msg);
    if (screen.kind === 'drop') {
      out.push({ kind: 'dropped', reason: screen.reason, path });
      return;
    }
    if (screen.kind === 'reply') {
      out.push({ kind: 'transmit', path, bytes: screen.bytes });
      out.push({
        kind: 'rejected',
        exchange: 'IKE_SA_INIT',
        reason: screen.reason,
        by: 'us',
        detail: screen.detail,
        path,
      });
      return;
    }
    const l = this.#limits;
    const reason =
      this.#entries.size >= l.maxSas
        ? 'sa-limit'
        : this.#halfOpen.size >= l.maxHalfOpen
          ? 'half-open-limit'
          : (this.#halfOpenPerAddress.get(address) ?? 0) >= l.maxHalfOpenPerAddress
            ? 'half-open-per-address-limit'
            : undefined;
    if (reason) {
      out.push({ kind: 'dropped', reason, path });
      return;
    }
    if (screen.accepted.lenient)
      out.push({ kind: 'lenient', what: screen.accepted.lenient, exchange: 'IKE_SA_INIT' });
    const e = this.#newEntry(shard, createIkeSa(now), undefined as unknown as IkeSaContext, undefined);
    e.ctx = this.#cfg.responderContext(e as SaEntry<unknown>);
    let r: StepResult;
    try {
      r = respondInit(this.#ctx(e), bytes, msg, screen.accepted, path, now, l.halfOpenMs);
    } catch (err) {
      this.#remove(e);
      this.#reserved.clear();
      if (!(err instanceof RemoteProtocolError)) throw err;
      out.push({ kind: 'dropped', reason: 'init-bad-ke', path });
      return;
    }
    e.halfOpenKey = this.#halfOpenKey(spiI, path);
    e.halfOpenAddress = address;
    this.#halfOpen.set(e.halfOpenKey, e);
    this.#halfOpenPerAddress.set(address, (this.#halfOpenPerAddress.get(address) ?? 0) + 1);
    this.#apply(e, r, out);
  }

  #screening: IkeSaContext | undefined;

  /** What screening an IKE_SA_INIT may use: the base policy and crypto, nothing that allocates. */
  get #screenContext(): IkeSaContext {
    return (this.#screening ??= {
      provider: this.#cfg.provider,
      random: this.#cfg.random,
      allocateIkeSpi: () => {
        throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'screening allocates nothing');
      },
      allocateChildSpi: () => {
        throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'screening allocates nothing');
      },
      policy: this.#cfg.policy,
      psk: () => undefined,
    });
  }

  /** RFC 7296 §2.21.4: a request for an SA we do not know may get INVALID_IKE_SPI, unprotected. */
  #unknownSpi(bytes: Uint8Array, path: IkePath, now: number, out: EndpointOutput<T>[]): void {
    out.push({ kind: 'dropped', reason: 'unknown-spi', path });
    const flags = bytes[19]!;
    if ((flags & HeaderFlag.RESPONSE) !== 0) return; // a response MUST NOT be answered
    if (bytes.length < INVALID_SPI_RESPONSE_LENGTH) return; // never answer with more than came in
    if (u32(bytes, 24) !== bytes.length) return; // not even a well-formed header: no answer
    if (!this.#takeInvalidSpiToken(now)) return;
    const reply = encodeMessage(
      {
        initiatorSpi: bytes.subarray(0, 8),
        responderSpi: bytes.subarray(8, 16),
        exchangeType: bytes[18]!,
        flags: HeaderFlag.RESPONSE | ((flags & HeaderFlag.INITIATOR) === 0 ? HeaderFlag.INITIATOR : 0),
        messageId: u32(bytes, 20),
      },
      [notify(NotifyError.INVALID_IKE_SPI)],
    );
    out.push({ kind: 'transmit', path, bytes: reply });
  }

  #takeInvalidSpiToken(now: number): boolean {
    const rate = this.#limits.invalidSpiPerSecond;
    if (rate <= 0) return false;
    if (now >= this.#invalidSpiRefillAt) {
      const elapsed = Math.min(1000, now - this.#invalidSpiRefillAt + 1000);
      this.#invalidSpiTokens = Math.min(rate, this.#invalidSpiTokens + (rate * elapsed) / 1000);
      this.#invalidSpiRefillAt = now + 1000;
    }
    if (this.#invalidSpiTokens < 1) return false;
    this.#invalidSpiTokens--;
    return true;
  }

  // --- stepping ------------------------------------------------------------------------------------

  #newEntry(shard: number, state: IkeSaState, ctx: IkeSaContext, data: T | undefined): Entry<T> {
    const e = new Entry<T>(this.#nextId++, shard, state, ctx, data, this.#keeper);
    this.#entries.add(e);
    if (state.status === 'established') this.#established++;
    return e;
  }

  /**
   * The SA's context with the endpoint's SPI allocator (SPIs unique across the endpoint), made for
   * one step and not kept: a held SA keeps only its own context (issue #14, memory per SA).
   */
  #ctx(e: Entry<T>): IkeSaContext {
    return new EndpointContext(e.ctx, () => this.#allocateSpi(e.shard));
  }

  #allocateSpi(shard: number): Uint8Array {
    for (let i = 0; i < MAX_SPI_TRIES; i++) {
      const spi = this.#cfg.ikeSpi(shard);
      const h = hex(spi);
      if (spi.length !== 8 || isZero(spi) || this.#bySpi.has(h) || this.#reserved.has(h)) continue;
      this.#reserved.add(h);
      return spi;
    }
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `no free IKE SPI in shard ${shard}`);
  }

  /** @throws what `step` throws (LocalUsageError for a misused command; anything else is a bug) */
  #step(e: Entry<T>, event: IkeSaEvent, out: EndpointOutput<T>[]): void {
    let state: IkeSaState;
    try {
      state = e.state;
    } catch (err) {
      this.#unreadable(e, event.now, err, out);
      return;
    }
    let r: StepResult;
    try {
      r = step(state, event, this.#ctx(e));
    } catch (err) {
      this.#reserved.clear();
      this.#reconcile(e);
      throw err;
    }
    this.#apply(e, r, out);
  }

  /**
   * A cold SA whose bytes do not rebuild (a bug in cold.ts): given up at once, as deleted, so the
   * service frees what it holds for it; its bytes are zeroed and reads give a deleted state.
   */
  #unreadable(e: Entry<T>, now: number, err: unknown, out: EndpointOutput<T>[]): void {
    this.#remove(e);
    e.bury({ ...createIkeSa(now), status: 'deleted' });
    out.push({
      kind: 'sa-action',
      sa: e,
      action: {
        kind: 'rejected',
        exchange: 'cold-state',
        reason: 'unreadable',
        by: 'us',
        detail: String(err),
      },
    });
    out.push({ kind: 'sa-action', sa: e, action: { kind: 'deleted', reason: 'deleted' } });
  }

  #apply(e: Entry<T>, r: StepResult, out: EndpointOutput<T>[]): void {
    e.state = r.state;
    for (const a of r.actions) {
      if (a.kind === 'send') {
        out.push({
          kind: 'transmit',
          path: a.path,
          bytes: a.bytes,
          ...(a.closeAfter ? { closeAfter: a.closeAfter } : {}),
          sa: e,
        });
        continue;
      }
      if (a.kind === 'established' && e.ctx.forPeer) e.ctx = e.ctx.forPeer(a.peerId);
      out.push({ kind: 'sa-action', sa: e, action: a });
    }
    this.#reserved.clear();
    this.#reconcile(e);
  }

  /** Re-indexes `e` after a step: its SPIs, path, half-open slot, status count and deadline. */
  #reconcile(e: Entry<T>): void {
    const s = e.state;
    if (s.status === 'deleted') {
      this.#remove(e);
      return;
    }
    const spis = ourSpis(s);
    for (const h of e.spis) if (!spis.includes(h) && this.#bySpi.get(h) === e) this.#bySpi.delete(h);
    for (const h of spis) if (!this.#bySpi.has(h)) this.#bySpi.set(h, e);
    // Kept when unchanged (most steps): the held strings stay the ones the index was keyed with.
    // Else a copy of its own length: `spis` grew by push and has room for 17 (152 B per SA).
    if (!sameStrings(e.spis, spis)) e.spis = spis.slice();
    const pathId = s.path?.id;
    if (pathId !== e.pathId) {
      if (e.pathId !== undefined) this.#unindexPath(e);
      e.pathId = pathId;
      if (pathId !== undefined) {
        const on = this.#byPath.get(pathId);
        if (on === undefined) this.#byPath.set(pathId, e);
        else if (on instanceof Set) on.add(e);
        else this.#byPath.set(pathId, new Set([on, e]));
      }
    }
    if (s.status !== 'init-answered') this.#leaveHalfOpen(e);
    if (s.status !== e.status) {
      if (s.status === 'established') this.#established++;
      if (e.status === 'established') this.#established--;
      e.status = s.status;
    }
    this.#heap.set(e, nextTimeout(s) ?? Number.POSITIVE_INFINITY);
    // The most recently used; the least recently used beyond the limit go cold, not this one:
    // the service reads it once more for the step's output.
    this.#hot.touch(e);
    this.#trim(TRIM_PER_STEP, e);
  }

  /**
   * Makes the least recently used hot SAs beyond `maxHotSas` cold, trying `budget` at most: one
   * that is busy (not a cold candidate) becomes the most recently used and is tried again later.
   */
  #trim(budget: number, keep?: Entry<T>): void {
    const hot = this.#hot;
    const max = this.#limits.maxHotSas;
    for (let tried = 0; hot.size > max && tried < budget; tried++) {
      const oldest = hot.oldest()!;
      if (oldest === keep) break; // the only one left over the limit
      if (oldest.freeze()) {
        hot.remove(oldest);
        this.#cold++;
      } else hot.touch(oldest);
    }
  }

  #unindexPath(e: Entry<T>): void {
    const pathId = e.pathId!;
    const on = this.#byPath.get(pathId);
    if (on === e) this.#byPath.delete(pathId);
    else if (on instanceof Set) {
      on.delete(e);
      if (on.size === 1) this.#byPath.set(pathId, on.values().next().value!);
      else if (on.size === 0) this.#byPath.delete(pathId);
    }
  }

  /** The SAs on `pathId`, as a list of its own (stepping one may move it off the path). */
  #onPath(pathId: string): Entry<T>[] {
    const on = this.#byPath.get(pathId);
    return on === undefined ? [] : on instanceof Set ? [...on] : [on];
  }

  #leaveHalfOpen(e: Entry<T>): void {
    if (e.halfOpenKey === undefined) return;
    if (this.#halfOpen.get(e.halfOpenKey) === e) this.#halfOpen.delete(e.halfOpenKey);
    const a = e.halfOpenAddress!;
    const n = (this.#halfOpenPerAddress.get(a) ?? 1) - 1;
    if (n <= 0) this.#halfOpenPerAddress.delete(a);
    else this.#halfOpenPerAddress.set(a, n);
    e.halfOpenKey = undefined;
    e.halfOpenAddress = undefined;
  }

  #remove(e: Entry<T>): void {
    if (!this.#entries.delete(e)) return;
    this.#hot.remove(e);
    // A cold SA keeps its bytes: rebuilt only if someone reads it (a shard of 100k SAs moving
    // would otherwise block for a second and a half).
    if (e.cold) this.#cold--;
    for (const h of e.spis) if (this.#bySpi.get(h) === e) this.#bySpi.delete(h);
    if (e.pathId !== undefined) this.#unindexPath(e);
    this.#leaveHalfOpen(e);
    if (e.status === 'established') this.#established--;
    e.status = 'deleted';
    this.#heap.remove(e);
  }
}

const NO_SPIS: readonly string[] = Object.freeze([]);
/** Hot SAs a step may make cold; `timeout` makes up for SAs rebuilt by a read, up to its limit. */
const TRIM_PER_STEP = 4;

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Our SPIs (hex) in `s`: each core's own side, or the IKE_SA_INIT SPI before keys exist. */
export function ourSpis(s: IkeSaState): string[] {
  const out: string[] = [];
  for (const core of [s.current, s.previous, s.collision]) {
    if (!core) continue;
    out.push(hex(core.role === 'initiator' ? core.spiI : core.spiR));
  }
  if (!s.current && s.init) out.push(hex(s.init.spiI));
  return out;
}
