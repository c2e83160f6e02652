/**
 * Test harness (STYLE.md rule 11): an initiator and a responder IKE SA wired together on a
 * simulated clock. Messages are queued and delivered in order; a filter can drop or duplicate
 * them. When nothing is in flight the clock jumps to the earliest armed timer. Randomness and SPI
 * allocation are seeded and deterministic; `nonces` lets a test force the next 32-octet draws
 * (the nonces) to make rekey collisions reproducible.
 */
import { type CryptoProvider, EncryptionId, KeyExchangeId, nodeProvider, PrfId } from '@ikegate/crypto';
import { type TrafficSelector, TsType } from '../../codec/index.js';
import { createIkeSa, step } from '../ike-sa.js';
import type {
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaPolicy,
  IkeSaState,
  InstallChildAction,
  Transport,
} from '../types.js';

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
    integrity: [],
    keyExchange: [KeyExchangeId.CURVE25519, KeyExchangeId.ECP_256, KeyExchangeId.MODP_2048],
  },
];

export const DEFAULT_ESP_PROPOSALS: IkeSaPolicy['espProposals'] = [
  { encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], integrity: [] },
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

export interface PairSide {
  readonly name: SideName;
  state: IkeSaState;
  ctx: IkeSaContext;
  /** Every action, in order. */
  readonly log: IkeSaAction[];
  readonly timers: Map<string, number>;
  /** Installed child SAs by inbound SPI hex. */
  readonly children: Map<string, InstallChildAction>;
  /** Forced values for the next 32-octet random draws (nonces). */
  readonly nonces: Uint8Array[];
  closed: number;
}

export interface PairOptions {
  readonly transport?: Transport;
  readonly provider?: CryptoProvider;
  readonly initiatorPolicy?: Partial<IkeSaPolicy>;
  readonly responderPolicy?: Partial<IkeSaPolicy>;
  readonly initiatorCtx?: Partial<IkeSaContext>;
  readonly responderCtx?: Partial<IkeSaContext>;
  readonly psks?: Record<string, Uint8Array>;
  /** Pass every state through JSON between steps, as a service persisting to Redis would. */
  readonly roundTrip?: boolean;
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

export class Pair {
  now = 0;
  readonly wire: Flight[] = [];
  sent = 0;
  /** Decides the fate of each message put on the wire. */
  filter: (f: Flight) => Disposition = () => 'deliver';
  readonly initiator: PairSide;
  readonly responder: PairSide;
  readonly transport: Transport;
  private readonly roundTrip: boolean;

  constructor(opts: PairOptions = {}) {
    const provider = opts.provider ?? nodeProvider;
    this.transport = opts.transport ?? 'udp';
    this.roundTrip = opts.roundTrip ?? false;
    const psks = opts.psks ?? {
      'initiator.example': new TextEncoder().encode('initiator secret'),
      'responder.example': new TextEncoder().encode('responder secret'),
    };
    const iAddr = { address: Uint8Array.of(192, 0, 2, 1), port: 500 };
    const rAddr = { address: Uint8Array.of(198, 51, 100, 1), port: 500 };
    const makeSide = (
      name: SideName,
      policy: IkeSaPolicy,
      extra: Partial<IkeSaContext> | undefined,
    ): PairSide => {
      const base = seededRandom(provider, `${name}-random`);
      let spiCounter = 0;
      let childCounter = 0;
      const side: PairSide = {
        name,
        state: createIkeSa(this.transport),
        ctx: undefined as unknown as IkeSaContext,
        log: [],
        timers: new Map(),
        children: new Map(),
        nonces: [],
        closed: 0,
      };
      const tag = name === 'initiator' ? 0x11 : 0x22;
      side.ctx = {
        provider,
        random: (n) => (n === 32 && side.nonces.length > 0 ? side.nonces.shift()! : base(n)),
        allocateIkeSpi: () => Uint8Array.of(tag, 0, 0, 0, 0, 0, 0, ++spiCounter),
        allocateChildSpi: () => Uint8Array.of(tag, 0, 0, ++childCounter),
        policy,
        psk: (id) => psks[id],
        assignAddress: () => ({ address: Uint8Array.of(10, 9, 0, 7), dns: [Uint8Array.of(10, 9, 0, 1)] }),
        local: name === 'initiator' ? iAddr : rAddr,
        remote: name === 'initiator' ? rAddr : iAddr,
        cookieSecret: new TextEncoder().encode('cookie secret'),
        ...extra,
      };
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
    );
  }

  side(name: SideName): PairSide {
    return name === 'initiator' ? this.initiator : this.responder;
  }

  private apply(side: PairSide, actions: readonly IkeSaAction[]): void {
    if (this.roundTrip) side.state = stateFromJson(stateToJson(side.state));
    const peer: SideName = side.name === 'initiator' ? 'responder' : 'initiator';
    for (const a of actions) {
      side.log.push(a);
      switch (a.kind) {
        case 'send': {
          const f: Flight = { to: peer, bytes: a.bytes, index: this.sent++ };
          const d = this.filter(f);
          if (d !== 'drop') this.wire.push(f);
          if (d === 'duplicate') this.wire.push(f);
          break;
        }
        case 'arm-timer':
          side.timers.set(a.id, a.at);
          break;
        case 'install-child':
          side.children.set(hexOf(a.inboundSpi), a);
          break;
        case 'remove-child':
          side.children.delete(hexOf(a.inboundSpi));
          break;
        case 'close-connection':
          side.closed++;
          break;
        default:
          break;
      }
    }
  }

  command(name: SideName, command: IkeSaCommand): void {
    const side = this.side(name);
    const r = step(side.state, { kind: 'command', command, now: this.now }, side.ctx);
    side.state = r.state;
    this.apply(side, r.actions);
  }

  /** Delivers one message directly (bypassing the wire), e.g. a forged or replayed one. */
  deliver(to: SideName, bytes: Uint8Array): readonly IkeSaAction[] {
    const side = this.side(to);
    const r = step(
      side.state,
      { kind: 'message', bytes, transport: this.transport, now: this.now },
      side.ctx,
    );
    side.state = r.state;
    this.apply(side, r.actions);
    return r.actions;
  }

  /** Runs until no message is in flight and no timer is armed; returns the steps taken. */
  run(maxSteps = 10_000): number {
    let steps = 0;
    while (steps++ < maxSteps) {
      const f = this.wire.shift();
      if (f) {
        this.deliver(f.to, f.bytes);
        continue;
      }
      let next: { side: PairSide; id: string; at: number } | undefined;
      for (const side of [this.initiator, this.responder])
        for (const [id, at] of side.timers) if (!next || at < next.at) next = { side, id, at };
      if (!next) return steps;
      next.side.timers.delete(next.id);
      this.now = Math.max(this.now, next.at);
      const r = step(next.side.state, { kind: 'timer', id: next.id, now: this.now }, next.side.ctx);
      next.side.state = r.state;
      this.apply(next.side, r.actions);
    }
    throw new Error(`pair did not become idle in ${maxSteps} steps`);
  }

  /** Runs the whole IKE_SA_INIT + IKE_AUTH. */
  establish(): void {
    this.command('initiator', { kind: 'initiate' });
    this.run();
  }
}
