/**
 * Test harness (STYLE.md rule 11): two IKE endpoints, an initiator and a responder, wired
 * together on a simulated clock. Messages are queued and delivered in order; a filter can drop or
 * duplicate them. When nothing is in flight the clock jumps to the earliest deadline of either
 * endpoint (optionally skewed early or late, as real timers fire) and `timeout` runs there.
 * Randomness and SPI allocation are seeded and deterministic; `nonces` lets a test force the next
 * 32-octet draws (the nonces) to make rekey collisions reproducible. With `roundTrip` every SA
 * state is passed through JSON after every call, as a service persisting it to Redis would.
 */
import { type CryptoProvider, EncryptionId, KeyExchangeId, nodeProvider, PrfId } from '@ikegate/crypto';
import { type TrafficSelector, TsType } from '../codec/index.js';
import { type EndpointLimits, type EndpointOutput, IkeEndpoint, type SaEntry } from '../endpoint/index.js';
import { compactState } from '../sa/compact.js';
import type {
  IkePath,
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaPolicy,
  IkeSaState,
  InstallChildAction,
  Transport,
} from '../sa/types.js';

export type SideName = 'initiator' | 'responder';

export function v4Range(start: string, end: string): TrafficSelector {
  const ip = (s: string) => Uint8Array.from(s.split('.').map(Number));
  return {
    tsType: TsType.TS_IPV4_ADDR_RANGE,
    ipProtocol: 0,
    startPort: 0,
    endPort: 65535,
    startAddress: ip(start),
    endAddress: ip(end),
  };
}

export const ANY_V4 = v4Range('0.0.0.0', '255.255.255.255');

export const DEFAULT_IKE_PROPOSALS: IkeSaPolicy['ikeProposals'] = [
  {
    encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
    prf: [PrfId.HMAC_SHA2_256],
    keyExchange: [KeyExchangeId.CURVE25519, KeyExchangeId.ECP_256, KeyExchangeId.MODP_2048],
  },
];

export const DEFAULT_ESP_PROPOSALS: IkeSaPolicy['espProposals'] = [
  { encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], esn: [false] },
];

/** Deterministic RandomBytes: SHA-256 counter mode over a label. */
export function seededRandom(provider: CryptoProvider, label: string): (n: number) => Uint8Array {
  let counter = 0;
  const seed = new TextEncoder().encode(label);
  return (n) => {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += 32) {
      const c = counter++;
      const block = provider.hash(
        'sha256',
        seed,
        Uint8Array.of(c >>> 24, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff),
      );
      out.set(block.subarray(0, Math.min(32, n - off)), off);
    }
    return out;
  };
}

/** What a side saw, in order: its transmissions as `send`, and every SA or endpoint event. */
export type LoggedAction = IkeSaAction | { readonly kind: 'lenient' };

export interface PairSide {
  readonly name: SideName;
  readonly endpoint: IkeEndpoint<undefined>;
  /** The SA of this side (the responder's once IKE_SA_INIT created it). */
  sa: SaEntry<undefined> | undefined;
  /** The context a new SA of this side gets (the responder's factory reads it too). */
  base: IkeSaContext;
  /** This side's view of the path to the other (ids and addresses). */
  path: IkePath;
  readonly log: LoggedAction[];
  /** Installed child SAs by inbound SPI hex. */
  readonly children: Map<string, InstallChildAction>;
  /** Forced values for the next 32-octet random draws (nonces). */
  readonly nonces: Uint8Array[];
  /** Transmissions that asked to close the stream afterwards. */
  closed: number;
  /** The SA's state (setting it replaces the SA's state, e.g. to simulate a takeover). */
  state: IkeSaState;
  ctx: IkeSaContext;
}

export interface PairOptions {
  readonly transport?: Transport;
  readonly provider?: CryptoProvider;
  readonly initiatorPolicy?: Partial<IkeSaPolicy>;
  readonly responderPolicy?: Partial<IkeSaPolicy>;
  readonly initiatorCtx?: Partial<IkeSaContext>;
  readonly responderCtx?: Partial<IkeSaContext>;
  readonly responderLimits?: Partial<EndpointLimits>;
  readonly psks?: Record<string, Uint8Array>;
  /** Pass every state through JSON after every call, as a service persisting to Redis would. */
  readonly roundTrip?: boolean;
  /** Hold every idle SA encoded on both sides (maxHotSas 0: endpoint/cold.ts), rebuilt per event. */
  readonly cold?: boolean;
  /** How a timer really fires for a deadline (default: exactly on it). Must return >= now. */
  readonly fire?: (deadline: number, now: number) => number;
}

/** JSON with Uint8Array as {"$u8": hex}: proves the state is plain data. */
export function stateToJson(state: IkeSaState): string {
  return JSON.stringify(state, (_k, v: unknown) =>
    v instanceof Uint8Array ? { $u8: Buffer.from(v).toString('hex') } : v,
  );
}

export function stateFromJson(json: string): IkeSaState {
  return JSON.parse(json, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && '$u8' in v && typeof v.$u8 === 'string'
      ? Uint8Array.from(Buffer.from(v.$u8, 'hex'))
      : v,
  ) as IkeSaState;
}

export type Disposition = 'deliver' | 'drop' | 'duplicate';

export interface Flight {
  readonly to: SideName;
  readonly bytes: Uint8Array;
  /** 0-based count of messages handed to the wire so far. */
  readonly index: number;
}

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

export const INITIATOR_ADDRESS = Uint8Array.of(192, 0, 2, 1);
export const RESPONDER_ADDRESS = Uint8Array.of(198, 51, 100, 1);

export function pathFor(
  transport: Transport,
  id: string,
  local: Uint8Array,
  localPort: number,
  remote: Uint8Array,
  remotePort: number,
): IkePath {
  return {
    id,
    transport,
    local: { address: local, port: localPort },
    remote: { address: remote, port: remotePort },
  };
}

export class Pair {
  now = 0;
  readonly wire: Flight[] = [];
  sent = 0;
  /** Decides the fate of each message put on the wire. */
  filter: (f: Flight) => Disposition = () => 'deliver';
  readonly initiator: PairSide;
  readonly responder: PairSide;
  readonly transport: Transport;
  readonly #roundTrip: boolean;
  readonly #fire: (deadline: number, now: number) => number;

  constructor(opts: PairOptions = {}) {
    const provider = opts.provider ?? nodeProvider;
    this.transport = opts.transport ?? 'udp';
    this.#roundTrip = opts.roundTrip ?? false;
    this.#fire = opts.fire ?? ((d) => d);
    const psks = opts.psks ?? {
      'initiator.example': new TextEncoder().encode('initiator secret'),
      'responder.example': new TextEncoder().encode('responder secret'),
    };
    const t = this.transport;
    const port = t === 'udp' ? 500 : 4500;
    const makeSide = (
      name: SideName,
      policy: IkeSaPolicy,
      extra: Partial<IkeSaContext> | undefined,
      limits: Partial<EndpointLimits> | undefined,
    ): PairSide => {
      const draw = seededRandom(provider, `${name}-random`);
      const tag = name === 'initiator' ? 0x11 : 0x22;
      let spiCounter = 0;
      let childCounter = 0;
      const nonces: Uint8Array[] = [];
      const random = (n: number) => (n === 32 && nonces.length > 0 ? nonces.shift()! : draw(n));
      const base: IkeSaContext = {
        provider,
        random,
        allocateIkeSpi: () => Uint8Array.of(tag, 0, 0, 0, 0, 0, 0, ++spiCounter),
        allocateChildSpi: () => Uint8Array.of(tag, 0, (childCounter >> 8) & 0xff, ++childCounter & 0xff),
        policy,
        psk: (id) => psks[id],
        assignAddress: () => ({ address: Uint8Array.of(10, 9, 0, 7), dns: [Uint8Array.of(10, 9, 0, 1)] }),
        ...extra,
      };
      const side: PairSide = {
        name,
        endpoint: undefined as unknown as IkeEndpoint<undefined>,
        sa: undefined,
        base,
        path:
          name === 'initiator'
            ? pathFor(t, `${t}:i1`, INITIATOR_ADDRESS, port, RESPONDER_ADDRESS, port)
            : pathFor(t, `${t}:r1`, RESPONDER_ADDRESS, port, INITIATOR_ADDRESS, port),
        log: [],
        children: new Map(),
        nonces,
        closed: 0,
        get state(): IkeSaState {
          if (!this.sa) throw new Error(`${name} has no SA`);
          return this.sa.state;
        },
        set state(s: IkeSaState) {
          if (!this.sa) throw new Error(`${name} has no SA`);
          this.sa.state = s;
        },
        get ctx(): IkeSaContext {
          return this.sa ? this.sa.ctx : this.base;
        },
        set ctx(c: IkeSaContext) {
          if (this.sa) this.sa.ctx = c;
          else this.base = c;
        },
      };
      (side as { endpoint: IkeEndpoint<undefined> }).endpoint = new IkeEndpoint<undefined>({
        provider,
        random,
        policy,
        ikeSpi: () => Uint8Array.of(tag, 0, 0, 0, 0, 0, 0, ++spiCounter),
        responderContext: () => side.base,
        ...(limits ? { limits } : {}),
      });
      return side;
    };
    this.initiator = makeSide(
      'initiator',
      {
        localId: 'initiator.example',
        ikeProposals: DEFAULT_IKE_PROPOSALS,
        espProposals: DEFAULT_ESP_PROPOSALS,
        localTs: [ANY_V4],
        remoteTs: [ANY_V4],
        ...opts.initiatorPolicy,
      },
      opts.initiatorCtx,
      opts.cold ? { maxHotSas: 0 } : undefined,
    );
    this.responder = makeSide(
      'responder',
      {
        localId: 'responder.example',
        ikeProposals: DEFAULT_IKE_PROPOSALS,
        espProposals: DEFAULT_ESP_PROPOSALS,
        localTs: [v4Range('10.0.0.0', '10.255.255.255')],
        remoteTs: [ANY_V4],
        ...opts.responderPolicy,
      },
      opts.responderCtx,
      opts.cold ? { maxHotSas: 0, ...opts.responderLimits } : opts.responderLimits,
    );
  }

  side(name: SideName): PairSide {
    return name === 'initiator' ? this.initiator : this.responder;
  }

  #apply(side: PairSide, out: readonly EndpointOutput<undefined>[]): LoggedAction[] {
    const peer: SideName = side.name === 'initiator' ? 'responder' : 'initiator';
    const logged: LoggedAction[] = [];
    for (const o of out) {
      let a: LoggedAction;
      switch (o.kind) {
        case 'transmit': {
          a = {
            kind: 'send',
            bytes: o.bytes,
            path: o.path,
            ...(o.closeAfter ? { closeAfter: o.closeAfter } : {}),
          };
          if (o.closeAfter) side.closed++;
          const f: Flight = { to: peer, bytes: o.bytes, index: this.sent++ };
          const d = this.filter(f);
          if (d !== 'drop') this.wire.push(f);
          if (d === 'duplicate') this.wire.push(f);
          break;
        }
        case 'sa-action':
          side.sa ??= o.sa;
          a = o.action;
          if (a.kind === 'install-child') side.children.set(hexOf(a.inboundSpi), a);
          if (a.kind === 'remove-child') side.children.delete(hexOf(a.inboundSpi));
          break;
        case 'dropped':
          a = { kind: 'dropped', reason: o.reason };
          break;
        case 'rejected':
          a = { kind: 'rejected', exchange: o.exchange, reason: o.reason, by: o.by };
          break;
        case 'lenient':
          a = { kind: 'lenient' };
          break;
      }
      side.log.push(a);
      logged.push(a);
    }
    // Read back as an adopting endpoint holds it (IkeEndpoint.adopt: compactState).
    if (this.#roundTrip)
      for (const sa of side.endpoint.entries())
        sa.state = compactState(stateFromJson(stateToJson(sa.state)), sa.ctx.policy);
    return logged;
  }

  /** Starts the initiator's SA (IKE_SA_INIT goes on the wire). */
  initiate(): void {
    const side = this.initiator;
    const r = side.endpoint.initiate(side.base, side.path, 0, this.now);
    side.sa = r.sa;
    this.#apply(side, r.out);
  }

  command(name: SideName, command: IkeSaCommand): LoggedAction[] {
    const side = this.side(name);
    if (!side.sa) throw new Error(`${name} has no SA`);
    return this.#apply(side, side.endpoint.command(side.sa, command, this.now));
  }

  /** Takes the first message in flight to `to` off the wire (to deliver when a test says). */
  take(to: SideName): Uint8Array {
    const i = this.wire.findIndex((f) => f.to === to);
    if (i < 0) throw new Error(`no message to the ${to} is in flight`);
    return this.wire.splice(i, 1)[0]!.bytes;
  }

  /** Delivers one message directly (bypassing the wire), e.g. a forged or replayed one. */
  deliver(to: SideName, bytes: Uint8Array, path?: IkePath): LoggedAction[] {
    const side = this.side(to);
    return this.#apply(side, side.endpoint.receive(bytes, path ?? side.path, 0, this.now));
  }

  /** The stream `side` receives on closed (TCP): its SAs wait for the peer. */
  connectionLost(name: SideName): LoggedAction[] {
    const side = this.side(name);
    return this.#apply(side, side.endpoint.connectionLost(side.path.id, this.now));
  }

  /** The earliest deadline of either side, if any. */
  nextDeadline(): { side: PairSide; at: number } | undefined {
    let next: { side: PairSide; at: number } | undefined;
    for (const side of [this.initiator, this.responder]) {
      const at = side.endpoint.nextTimeout();
      if (at !== undefined && (!next || at < next.at)) next = { side, at };
    }
    return next;
  }

  /** Advances the clock to the next deadline (as the timer fires it) and runs it. */
  tick(): boolean {
    const next = this.nextDeadline();
    if (!next) return false;
    this.now = Math.max(this.now, this.#fire(next.at, this.now));
    this.#apply(next.side, next.side.endpoint.timeout(this.now));
    return true;
  }

  /** Runs until no message is in flight and no deadline is set (or `until` says stop). */
  run(maxSteps = 10_000, until?: () => boolean): number {
    let steps = 0;
    while (steps++ < maxSteps) {
      if (until?.()) return steps;
      const f = this.wire.shift();
      if (f) {
        this.deliver(f.to, f.bytes);
        continue;
      }
      if (!this.tick()) return steps;
    }
    throw new Error(`pair did not become idle in ${maxSteps} steps`);
  }

  /** Delivers everything in flight without advancing the clock. */
  flush(maxSteps = 1000): void {
    for (let i = 0; i < maxSteps && this.wire.length > 0; i++) {
      const f = this.wire.shift()!;
      this.deliver(f.to, f.bytes);
    }
  }

  /**
   * Runs IKE_SA_INIT + IKE_AUTH, retransmissions included, until the initiator's SA is
   * established or gone and nothing is in flight (or nothing more is due).
   */
  establish(maxSteps?: number): void {
    this.initiate();
    const settled = () => {
      const s = this.initiator.sa?.state.status;
      return this.wire.length === 0 && (s === 'established' || s === 'deleted');
    };
    this.run(maxSteps, settled);
  }
}
