/**
 * The managed configuration's documents: peers, pools and the failover policy in their written
 * (JSON) form, as the config file holds them under `peers:`, `pools:` and `failover:`, as the
 * control API takes and returns them, and as the managed store keeps them (docs/api.md).
 *
 * How this works: a document is validated by the same `Validator` the config file uses (so the
 * file and the API accept exactly the same peers, with the same messages), compiled into the
 * normalized `Peer` / `Pool`, and turned back into a document with `peerDoc` / `poolDoc`. The
 * config file seeds the managed state once; after that the managed state is the truth (see
 * docs/configuration.md "Precedence").
 */
import { type Config, type Peer, type PeerGlobals, type Pool, Validator } from './config.js';
import type { ConfigIssue } from './errors.js';

/** `auth:` of a peer: a PSK (write-only through the API), a PSK file, or a CA file. */
export type PeerAuthDoc =
  { readonly psk: string } | { readonly psk: { readonly file: string } } | { readonly ca: string };

export interface PeerDoc {
  readonly name: string;
  /** The identity pattern: exact, `*suffix`, or `*`. */
  readonly id: string;
  readonly auth: PeerAuthDoc;
  readonly pool?: string | null;
  readonly localTs?: readonly string[];
  /** CIDRs, or `dynamic` (the virtual IP from `pool`). */
  readonly remoteTs?: readonly string[];
  /** ESP proposals for this peer's child SAs (IKE proposals are chosen before the peer is known). */
  readonly proposals?: { readonly esp?: readonly string[] } | null;
  readonly lifetimes?: {
    readonly ikeSeconds?: number;
    readonly childSeconds?: number;
    readonly rekeyMarginSeconds?: number;
  } | null;
  readonly dpd?: { readonly intervalSeconds?: number } | null;
  /** This peer's override of the cluster's wait-for-reconnect policy. */
  readonly failover?: { readonly waitSeconds?: number } | null;
}

export interface PoolDoc {
  readonly name: string;
  /** IPv4 network, /8 to /30. */
  readonly cidr: string;
  readonly dns?: readonly string[];
}

export interface FailoverDoc {
  readonly policy: 'wait-for-reconnect';
  readonly waitSeconds: number;
}

/** Every managed document at one version. */
export interface ManagedDocuments {
  readonly peers: readonly PeerDoc[];
  readonly pools: readonly PoolDoc[];
  readonly failover: FailoverDoc;
}

/** A validation result: the value, or every issue found (paths relative to the document). */
export type Checked<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: ConfigIssue[] };

/** What a peer document is checked against: the pools it may name and the global lifetimes. */
export interface PeerContext extends PeerGlobals {
  readonly pools: ReadonlySet<string>;
  /** Relative file paths (PSK files, CAs) resolve against this directory; none: left as written. */
  readonly baseDir?: string;
}

function checked<T>(v: Validator, value: T | undefined): Checked<T> {
  if (v.issues.length > 0 || value === undefined)
    return { ok: false, issues: v.issues.length > 0 ? v.issues : [{ path: '(root)', message: 'invalid' }] };
  return { ok: true, value };
}

/** Validates one peer document exactly as the config file's `peers:` entries are validated. */
export function checkPeerDoc(doc: unknown, ctx: PeerContext): Checked<Peer> {
  const v = new Validator(ctx.baseDir);
  return checked(v, v.peer(doc, '', ctx.pools, ctx));
}

/** Validates one pool document; it must not overlap `others` (a pool of the same name is ignored). */
export function checkPoolDoc(doc: unknown, others: readonly Pool[]): Checked<Pool> {
  const v = new Validator(undefined);
  return checked(v, v.pool(doc, '', others));
}

export function checkFailoverDoc(doc: unknown): Checked<FailoverDoc> {
  const v = new Validator(undefined);
  return checked(v, v.failoverPolicy(doc, ''));
}

/** A normalized peer back in its written form (the PSK included: callers strip it for output). */
export function peerDoc(p: Peer): PeerDoc {
  const auth: PeerAuthDoc =
    p.auth.kind === 'psk'
      ? { psk: p.auth.psk }
      : p.auth.kind === 'psk-file'
        ? { psk: { file: p.auth.file } }
        : { ca: p.auth.ca };
  return {
    name: p.name,
    id: p.id,
    auth,
    pool: p.pool,
    localTs: [...p.localTsText],
    remoteTs: [...p.remoteTsText],
    ...(p.espText ? { proposals: { esp: [...p.espText] } } : {}),
    ...(p.lifetimes ? { lifetimes: { ...p.lifetimes } } : {}),
    ...(p.dpd ? { dpd: { ...p.dpd } } : {}),
    ...(p.failover ? { failover: { ...p.failover } } : {}),
  };
}

export function poolDoc(p: Pool): PoolDoc {
  return { name: p.name, cidr: p.cidr.text, dns: p.dns.map((d) => d.text) };
}

/** The managed documents a config file seeds the managed state with (docs/configuration.md). */
export function seedDocuments(config: Pick<Config, 'peers' | 'pools' | 'failover'>): ManagedDocuments {
  return {
    peers: config.peers.map(peerDoc),
    pools: config.pools.map(poolDoc),
    failover: { policy: config.failover.policy, waitSeconds: config.failover.waitSeconds },
  };
}

/**
 * Compiles a whole set of documents (pools first, then the peers that name them). Documents that
 * no longer validate (e.g. a PSK file that a newer rule refuses) are reported, not thrown: one bad
 * document must not take every peer down with it.
 */
export function compileDocuments(
  docs: { peers: Iterable<PeerDoc>; pools: Iterable<PoolDoc> },
  globals: PeerGlobals,
): {
  peers: Peer[];
  pools: Pool[];
  issues: { kind: 'peer' | 'pool'; name: string; issues: ConfigIssue[] }[];
} {
  const pools: Pool[] = [];
  const issues: { kind: 'peer' | 'pool'; name: string; issues: ConfigIssue[] }[] = [];
  for (const d of docs.pools) {
    const r = checkPoolDoc(d, pools);
    if (r.ok) pools.push(r.value);
    else issues.push({ kind: 'pool', name: d.name, issues: r.issues });
  }
  const poolNames = new Set(pools.map((p) => p.name));
  const peers: Peer[] = [];
  for (const d of docs.peers) {
    const r = checkPeerDoc(d, { pools: poolNames, lifetimes: globals.lifetimes });
    if (r.ok) peers.push(r.value);
    else issues.push({ kind: 'peer', name: d.name, issues: r.issues });
  }
  return { peers, pools, issues };
}
