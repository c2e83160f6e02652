/**
 * The configuration file's schema, its validation and its normalized form.
 *
 * How this works: the YAML (or JSON) text becomes plain JS values; `validate` walks them section
 * by section with small readers that fill defaults and record an issue (path + message) instead of
 * throwing, so one run reports every problem. Only when the issue list is empty is the result a
 * `Config`; otherwise one ConfigError carries all issues. Unknown keys are issues too, with a
 * "did you mean" when a known key is close. `null` anywhere means "not set" (YAML's `key:`).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { EspProposalPolicy, IkeProposalPolicy, TrafficSelector } from '@ikegate/ikev2';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from './errors.js';
import { type Cidr, type IpAddress, lastAddress, parseCidr, parseIp } from './net.js';
import { tryParseEspProposal, tryParseIkeProposal } from './proposals.js';
import { suggest } from './suggest.js';

// --- the normalized configuration ----------------------------------------------------------------

/** RFC 7296 §3.5 ID Types used for our identity. */
export const ConfigIdType = { ID_IPV4_ADDR: 1, ID_FQDN: 2, ID_RFC822_ADDR: 3, ID_IPV6_ADDR: 5 } as const;
export type ConfigIdType = (typeof ConfigIdType)[keyof typeof ConfigIdType];

export interface Identity {
  readonly id: string;
  readonly idType: ConfigIdType;
  /** Paths to a PEM chain (leaf first) and key; null means we authenticate with PSK. */
  readonly certificate: { readonly chain: string; readonly key: string } | null;
}

export interface Listen {
  readonly udp: {
    readonly address: string;
    readonly ikePort: number;
    readonly natTPort: number;
    readonly enabled: boolean;
    /**
     * SO_RCVBUF asked for on both UDP ports, in octets (0: the kernel's default). Linux caps it at
     * net.core.rmem_max; the edge logs what it got.
     */
    readonly receiveBufferBytes: number;
  };
  /** RFC 9329 TCP encapsulation. */
  readonly tcp: { readonly address: string; readonly port: number; readonly enabled: boolean };
  /**
   * Stream bounds (RFC 9329 §3 abuse handling): each open stream may buffer one frame (<= 64 KiB),
   * so maxConnections bounds that memory; a prefix (or TLS handshake) must arrive within
   * prefixTimeoutSeconds; a stream without a whole IKE or ESP frame closes after idleTimeoutSeconds.
   */
  readonly limits: {
    readonly maxConnections: number;
    readonly maxConnectionsPerAddress: number;
    readonly prefixTimeoutSeconds: number;
    readonly idleTimeoutSeconds: number;
    /** IKE output queued on one stream past which it is closed (a peer that does not read). */
    readonly maxIkeOutputKiB: number;
  };
  /** RFC 9329 over TLS; with no certificate a self-signed one is generated at start. */
  readonly tls: {
    readonly address: string;
    readonly port: number;
    readonly enabled: boolean;
    readonly certificate: string | null;
    readonly key: string | null;
  };
}

export interface Pool {
  readonly name: string;
  /** IPv4 network. */
  readonly cidr: Cidr;
  /** The first host address, reserved for the gateway (never handed out). */
  readonly gateway: IpAddress;
  readonly dns: readonly IpAddress[];
}

/** How a peer's `id` matches the identity a remote presents. */
export type PeerIdPattern =
  | { readonly kind: 'exact'; readonly id: string }
  /** `*@example.org`: any id ending in `suffix` (compared case-insensitively). */
  | { readonly kind: 'suffix'; readonly suffix: string }
  | { readonly kind: 'any' };

export type PeerAuth =
  | { readonly kind: 'psk'; readonly psk: string }
  /** PSK read from a file at startup (not at load time). */
  | { readonly kind: 'psk-file'; readonly file: string }
  /** Certificate authentication: the peer's chain must verify to this CA (checked at startup). */
  | { readonly kind: 'cert'; readonly ca: string };

/** Marker in `remoteTs`: the virtual IP assigned to the peer from its pool. */
export const DYNAMIC = 'dynamic' as const;
export type RemoteTs = TrafficSelector | typeof DYNAMIC;

export interface Peer {
  readonly name: string;
  readonly id: string;
  readonly match: PeerIdPattern;
  readonly auth: PeerAuth;
  readonly pool: string | null;
  readonly localTs: readonly TrafficSelector[];
  readonly remoteTs: readonly RemoteTs[];
  /** The selectors as written. */
  readonly localTsText: readonly string[];
  readonly remoteTsText: readonly string[];
  /** This peer's ESP proposals (and the strings as written); null: the global `proposals.esp`. */
  readonly espProposals: readonly EspProposalPolicy[] | null;
  readonly espText: readonly string[] | null;
  /** Overrides of the global lifetimes, DPD and wait-for-reconnect; an absent field is global. */
  readonly lifetimes: {
    readonly ikeSeconds?: number;
    readonly childSeconds?: number;
    readonly rekeyMarginSeconds?: number;
  } | null;
  readonly dpd: { readonly intervalSeconds: number } | null;
  readonly failover: { readonly waitSeconds: number } | null;
}

/** API access (issue #10): who may call the control and admin APIs, and over what. */
export interface ControlConfig {
  readonly address: string;
  readonly port: number;
  /**
   * The access file (tokens stored hashed, client certificate subjects, roles); null: the API
   * serves only /healthz, /readyz and /metrics. Every role reads it (workers' and edges' admin
   * endpoints take the same tokens).
   */
  readonly accessFile: string | null;
  /** HTTPS for the API; with `clientCa`, clients may authenticate with certificates (mTLS). */
  readonly tls: {
    readonly certificate: string;
    readonly key: string;
    readonly clientCa: string | null;
  } | null;
  /** `ikegate up`: where API changes to peers, pools and policies persist (default beside the config). */
  readonly stateFile: string | null;
}

/** How to reach Redis safely: an ACL user and password, and TLS (files, PEM). */
export interface RedisSecurity {
  readonly username?: string;
  readonly password?: string;
  /**
   * TLS to Redis (and to Sentinels): `ca` verifies the server; `certificate`/`key` are a client
   * certificate for servers with `tls-auth-clients yes`; `servername` the name the server's
   * certificate must carry (default: the host).
   */
  readonly tls?: {
    readonly ca: string | null;
    readonly certificate: string | null;
    readonly key: string | null;
    readonly servername: string | null;
  };
}

/**
 * Write-through durability across a Redis failover (libs/store RedisStore, docs/ha.md "Redis
 * failover"): every fenced write and lease grant waits (WAIT) until `replicaAcks` replicas have it,
 * at most `replicaAckTimeoutMs` per wait. Default 1 with `sentinels`, 0 otherwise.
 */
export interface RedisReplicaAcks {
  readonly replicaAcks: number;
  readonly replicaAckTimeoutMs: number;
}

export interface ClusterConfig {
  readonly redis: RedisSecurity &
    RedisReplicaAcks &
    (
      | { readonly host: string; readonly port: number }
      | { readonly sentinels: readonly { host: string; port: number }[]; readonly name: string }
      | { readonly nodes: readonly { host: string; port: number }[] }
    );
  /** Key-encryption key for SA records at rest (libs/store SealedStore). */
  readonly kek: { readonly file: string; readonly id: number };
  /** Shard lease time to live; a worker renews at a third of it. */
  readonly leaseTtlMs: number;
  /**
   * Mutual TLS for the edge <-> worker relay (PEM files): the relay CA and this process's
   * certificate (CN `edge:<id>` or `edge` for edges, `worker:<id>` or `worker` for workers).
   * `ikegate edge|worker --relay-cert/--relay-key` override the certificate per process.
   */
  readonly relayTls: {
    readonly ca: string;
    readonly certificate: string | null;
    readonly key: string | null;
  } | null;
  /** Run the relay without TLS (an explicit choice: anyone who reaches a relay port joins). */
  readonly insecureRelay: boolean;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  /** The file path, or `<string>`. */
  readonly source: string;
  readonly identity: Identity;
  readonly listen: Listen;
  readonly control: ControlConfig;
  readonly proposals: {
    readonly ike: readonly IkeProposalPolicy[];
    readonly esp: readonly EspProposalPolicy[];
    /** The strings as written, index-aligned with `ike` / `esp`. */
    readonly ikeText: readonly string[];
    readonly espText: readonly string[];
  };
  readonly pools: readonly Pool[];
  readonly peers: readonly Peer[];
  readonly lifetimes: {
    readonly ikeSeconds: number;
    readonly childSeconds: number;
    readonly rekeyMarginSeconds: number;
  };
  /** 0 disables dead peer detection. */
  readonly dpd: { readonly intervalSeconds: number };
  /**
   * Bounds on IKE state an unauthenticated peer can cause (RFC 7296 §2.6), and retransmission
   * (RFC 7296 §2.4: the first after `initialMs`, doubling, the peer dead after `maxRetransmits`).
   */
  readonly ike: {
    readonly halfOpenTimeoutSeconds: number;
    readonly cookieThreshold: number;
    readonly maxHalfOpen: number;
    readonly maxHalfOpenPerAddress: number;
    readonly maxHotSas: number;
    readonly maxSas: number;
    readonly retransmit: { readonly initialMs: number; readonly maxRetransmits: number };
  };
  readonly dataplane: {
    readonly tun: { readonly name: string; readonly mtu: number };
    /** Idle child SAs let their ESP objects go after this long (to twice it); 0 never. */
    readonly coldChildAfterSeconds: number;
    readonly masquerade: { readonly enabled: boolean; readonly outInterface: string | null };
  };
  readonly failover: { readonly policy: 'wait-for-reconnect'; readonly waitSeconds: number };
  readonly log: { readonly level: LogLevel };
  /** Separate edge/worker/control processes sharing Redis; null for `ikegate up`. */
  readonly cluster: ClusterConfig | null;
}

export const DEFAULT_IKE_PROPOSALS = [
  'aes256gcm16-prfsha256-x25519',
  'aes256gcm16-prfsha384-ecp384',
] as const;
export const DEFAULT_ESP_PROPOSALS = ['aes256gcm16', 'aes128gcm16'] as const;
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

// --- entry points --------------------------------------------------------------------------------

export interface ParseOptions {
  /** Relative file paths in the configuration are resolved against this directory when given. */
  readonly baseDir?: string;
}

/**
 * Parses and validates configuration text (YAML 1.2; JSON is valid YAML). Returns a fully
 * defaulted Config or throws ConfigError listing every issue; never throws anything else.
 */
export function parseConfig(text: string, source = '<string>', options: ParseOptions = {}): Config {
  let data: unknown;
  try {
    const doc = parseDocument(String(text), { prettyErrors: true, uniqueKeys: true });
    const problems = [...doc.errors, ...doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED')];
    if (problems.length > 0) {
      throw new ConfigError(
        source,
        problems.map((e) => ({ path: '(yaml)', message: e.message.split('\n')[0] ?? e.message })),
      );
    }
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(source, [{ path: '(yaml)', message: e instanceof Error ? e.message : String(e) }]);
  }
  const v = new Validator(options.baseDir);
  const config = v.config(data, source);
  if (v.issues.length > 0) throw new ConfigError(source, v.issues);
  return config;
}

/**
 * Reads and validates a configuration file. Relative paths inside it (certificates, keys, PSK
 * files, CAs) are resolved against the file's directory. Throws ConfigError naming the file.
 */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new ConfigError(path, [{ path: '(file)', message: `cannot read: ${message}` }]);
  }
  return parseConfig(text, path, { baseDir: dirname(resolve(path)) });
}

// --- validation ----------------------------------------------------------------------------------

type Obj = Record<string, unknown>;

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `"${v.length > 40 ? v.slice(0, 40) + '…' : v}"`;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : typeof v;
}

const FQDN_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
function isFqdn(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => FQDN_LABEL.test(l));
}

/** Linux IFNAMSIZ is 16 including the NUL. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** What a peer's overrides are checked against: the global lifetimes. */
export interface PeerGlobals {
  readonly lifetimes: Config['lifetimes'];
}

/** [A-Za-z0-9_.-], 1-64, not starting with a dot or dash: safe in URLs, labels and file names. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Walks a document and collects issues; used for the file and, one document at a time, the API. */
export class Validator {
  readonly issues: ConfigIssue[] = [];
  constructor(private readonly baseDir: string | undefined) {}

  private add(path: string, message: string): void {
    this.issues.push({ path: path === '' ? '(root)' : path, message });
  }

  private has(o: Obj, key: string): boolean {
    return Object.hasOwn(o, key) && o[key] !== null && o[key] !== undefined;
  }

  private get(o: Obj, key: string): unknown {
    return Object.hasOwn(o, key) ? o[key] : undefined;
  }

  /** A mapping with only `keys`; absent or null is an empty mapping. */
  private section(v: unknown, path: string, keys: readonly string[]): Obj {
    if (v === undefined || v === null) return {};
    if (!isPlainObject(v)) {
      this.add(path, `must be a mapping, got ${describe(v)}`);
      return {};
    }
    for (const k of Object.keys(v)) {
      if (keys.includes(k)) continue;
      const hint = suggest(k, keys);
      this.add(
        join(path, k),
        `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}; allowed: ${keys.join(', ')}`,
      );
    }
    return v;
  }

  private str(o: Obj, key: string, path: string, def: string): string;
  private str(o: Obj, key: string, path: string, def: null): string | null;
  private str(o: Obj, key: string, path: string, def: string | null): string | null {
    if (!this.has(o, key)) return def;
    const v = this.get(o, key);
    if (typeof v !== 'string' || v === '') {
      this.add(join(path, key), `must be a non-empty string, got ${describe(v)}`);
      return def;
    }
    return v;
  }

  private file(o: Obj, key: string, path: string): string | null {
    const s = this.str(o, key, path, null);
    if (s === null || this.baseDir === undefined || isAbsolute(s)) return s;
    return resolve(this.baseDir, s);
  }

  private int(o: Obj, key: string, path: string, def: number, min: number, max: number): number {
    if (!this.has(o, key)) return def;
    const v = this.get(o, key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(join(path, key), `must be an integer ${min}-${max}, got ${describe(v)}`);
      return def;
    }
    return v;
  }

  private port(o: Obj, key: string, path: string, def: number): number {
    return this.int(o, key, path, def, 1, 65535);
  }

  private bool(o: Obj, key: string, path: string, def: boolean): boolean {
    if (!this.has(o, key)) return def;
    const v = this.get(o, key);
    if (typeof v !== 'boolean') {
      this.add(join(path, key), `must be true or false, got ${describe(v)}`);
      return def;
    }
    return v;
  }

  private address(o: Obj, key: string, path: string, def: string): string {
    const s = this.str(o, key, path, def);
    if (s !== def && parseIp(s) === undefined) {
      this.add(join(path, key), `must be an IPv4 or IPv6 address, got ${describe(s)}`);
      return def;
    }
    return s;
  }

  /** A list of strings; absent or null gives `def`. */
  private strings(
    o: Obj,
    key: string,
    path: string,
    def: readonly string[],
  ): { text: string; path: string }[] {
    const p = join(path, key);
    if (!this.has(o, key)) return def.map((text) => ({ text, path: p }));
    const v = this.get(o, key);
    if (!Array.isArray(v)) {
      this.add(p, `must be a list of strings, got ${describe(v)}`);
      return [];
    }
    const out: { text: string; path: string }[] = [];
    v.forEach((item: unknown, i) => {
      if (typeof item !== 'string' || item === '') this.add(`${p}[${i}]`, `must be a non-empty string`);
      else out.push({ text: item, path: `${p}[${i}]` });
    });
    return out;
  }

  private list(o: Obj, key: string, path: string): { value: unknown; path: string }[] {
    const p = join(path, key);
    if (!this.has(o, key)) return [];
    const v = this.get(o, key);
    if (!Array.isArray(v)) {
      this.add(p, `must be a list, got ${describe(v)}`);
      return [];
    }
    return v.map((value: unknown, i) => ({ value, path: `${p}[${i}]` }));
  }

  config(data: unknown, source: string): Config {
    if (!isPlainObject(data)) this.add('', `the document must be a mapping, got ${describe(data)}`);
    const root = this.section(isPlainObject(data) ? data : {}, '', [
      'identity',
      'listen',
      'control',
      'proposals',
      'pools',
      'peers',
      'lifetimes',
      'dpd',
      'ike',
      'dataplane',
      'failover',
      'log',
      'cluster',
    ]);
    const identity = this.identity(root);
    const listen = this.listen(root);
    const control = this.control(root);
    const proposals = this.proposals(root);

    const l = this.section(this.get(root, 'lifetimes'), 'lifetimes', [
      'ikeSeconds',
      'childSeconds',
      'rekeyMarginSeconds',
    ]);
    const lifetimes = {
      ikeSeconds: this.int(l, 'ikeSeconds', 'lifetimes', 14400, 60, 86400 * 7),
      childSeconds: this.int(l, 'childSeconds', 'lifetimes', 3600, 60, 86400 * 7),
      rekeyMarginSeconds: this.int(l, 'rekeyMarginSeconds', 'lifetimes', 300, 0, 86400),
    };
    const shortest = Math.min(lifetimes.ikeSeconds, lifetimes.childSeconds);
    if (lifetimes.rekeyMarginSeconds >= shortest) {
      this.add(
        'lifetimes.rekeyMarginSeconds',
        `must be less than both lifetimes (ikeSeconds ${lifetimes.ikeSeconds}, childSeconds ${lifetimes.childSeconds})`,
      );
    }
    const pools = this.pools(root);
    const peers = this.peers(root, pools, { lifetimes });

    const d = this.section(this.get(root, 'dpd'), 'dpd', ['intervalSeconds']);
    const dpd = { intervalSeconds: this.int(d, 'intervalSeconds', 'dpd', 30, 0, 3600) };

    const ik = this.section(this.get(root, 'ike'), 'ike', [
      'halfOpenTimeoutSeconds',
      'cookieThreshold',
      'maxHalfOpen',
      'maxHalfOpenPerAddress',
      'maxHotSas',
      'maxSas',
      'retransmit',
    ]);
    const rt = this.section(this.get(ik, 'retransmit'), 'ike.retransmit', ['initialMs', 'maxRetransmits']);
    const ike = {
      halfOpenTimeoutSeconds: this.int(ik, 'halfOpenTimeoutSeconds', 'ike', 30, 1, 600),
      cookieThreshold: this.int(ik, 'cookieThreshold', 'ike', 1000, 0, 10_000_000),
      maxHalfOpen: this.int(ik, 'maxHalfOpen', 'ike', 20_000, 1, 10_000_000),
      maxHalfOpenPerAddress: this.int(ik, 'maxHalfOpenPerAddress', 'ike', 5000, 1, 10_000_000),
      maxHotSas: this.int(ik, 'maxHotSas', 'ike', 4096, 0, 100_000_000),
      maxSas: this.int(ik, 'maxSas', 'ike', 1_000_000, 1, 100_000_000),
      retransmit: {
        initialMs: this.int(rt, 'initialMs', 'ike.retransmit', 1000, 100, 60_000),
        maxRetransmits: this.int(rt, 'maxRetransmits', 'ike.retransmit', 5, 0, 20),
      },
    };
    if (ike.maxHalfOpenPerAddress > ike.maxHalfOpen)
      this.add('ike.maxHalfOpenPerAddress', `must not exceed ike.maxHalfOpen (${ike.maxHalfOpen})`);

    const dp = this.section(this.get(root, 'dataplane'), 'dataplane', [
      'tun',
      'masquerade',
      'coldChildAfterSeconds',
    ]);
    const tun = this.section(this.get(dp, 'tun'), 'dataplane.tun', ['name', 'mtu']);
    const tunName = this.str(tun, 'name', 'dataplane.tun', 'ikg0');
    if (!IFNAME.test(tunName)) {
      this.add('dataplane.tun.name', 'must be an interface name of at most 15 characters [A-Za-z0-9_.-]');
    }
    const masq = this.section(this.get(dp, 'masquerade'), 'dataplane.masquerade', [
      'enabled',
      'outInterface',
    ]);
    const outInterface = this.str(masq, 'outInterface', 'dataplane.masquerade', null);
    if (outInterface !== null && !IFNAME.test(outInterface)) {
      this.add(
        'dataplane.masquerade.outInterface',
        'must be an interface name of at most 15 characters [A-Za-z0-9_.-]',
      );
    }
    const dataplane = {
      tun: { name: tunName, mtu: this.int(tun, 'mtu', 'dataplane.tun', 1400, 576, 9000) },
      coldChildAfterSeconds: this.int(dp, 'coldChildAfterSeconds', 'dataplane', 60, 0, 86_400),
      masquerade: { enabled: this.bool(masq, 'enabled', 'dataplane.masquerade', true), outInterface },
    };

    const failover = this.failoverPolicy(this.get(root, 'failover'), 'failover');

    const lg = this.section(this.get(root, 'log'), 'log', ['level']);
    const level = this.str(lg, 'level', 'log', 'info');
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      this.add('log.level', `must be one of ${LOG_LEVELS.join(', ')}, got ${describe(level)}`);
    }
    const log = { level: (LOG_LEVELS as readonly string[]).includes(level) ? (level as LogLevel) : 'info' };

    const cluster = this.cluster(root);

    return {
      source,
      identity,
      listen,
      control,
      proposals,
      pools,
      peers,
      lifetimes,
      dpd,
      ike,
      dataplane,
      failover,
      log,
      cluster,
    };
  }

  private control(root: Obj): ControlConfig {
    const p = 'control';
    const c = this.section(this.get(root, p), p, ['address', 'port', 'accessFile', 'tls', 'stateFile']);
    let tls: ControlConfig['tls'] = null;
    if (this.has(c, 'tls')) {
      const t = this.section(this.get(c, 'tls'), 'control.tls', ['certificate', 'key', 'clientCa']);
      const certificate = this.file(t, 'certificate', 'control.tls');
      const key = this.file(t, 'key', 'control.tls');
      if (certificate === null) this.add('control.tls.certificate', 'is required with control.tls');
      if (key === null) this.add('control.tls.key', 'is required with control.tls');
      const clientCa = this.file(t, 'clientCa', 'control.tls');
      if (certificate !== null && key !== null) tls = { certificate, key, clientCa };
    }
    return {
      address: this.address(c, 'address', p, '127.0.0.1'),
      port: this.port(c, 'port', p, 8080),
      accessFile: this.file(c, 'accessFile', p),
      tls,
      stateFile: this.file(c, 'stateFile', p),
    };
  }

  private redisNode(v: unknown, path: string): { host: string; port: number } {
    const o = this.section(v, path, ['host', 'port']);
    return { host: this.str(o, 'host', path, '127.0.0.1'), port: this.port(o, 'port', path, 6379) };
  }

  /** `cluster:` — only the separate edge/worker/control processes read it (issue #5). */
  private cluster(root: Obj): ClusterConfig | null {
    if (!this.has(root, 'cluster') || this.get(root, 'cluster') === null) return null;
    const p = 'cluster';
    const o = this.section(this.get(root, p), p, ['redis', 'kek', 'leaseTtlMs', 'relayTls', 'insecureRelay']);
    const r = this.section(this.get(o, 'redis'), 'cluster.redis', [
      'host',
      'port',
      'sentinels',
      'name',
      'nodes',
      'password',
      'username',
      'tls',
      'replicaAcks',
      'replicaAckTimeoutMs',
    ]);
    let redis: ClusterConfig['redis'];
    const password = this.str(r, 'password', 'cluster.redis', null);
    const username = this.str(r, 'username', 'cluster.redis', null);
    if (username !== null && password === null)
      this.add(
        'cluster.redis.username',
        'needs cluster.redis.password (an ACL user authenticates with both)',
      );
    let tls: RedisSecurity['tls'];
    if (this.has(r, 'tls')) {
      const t = this.section(this.get(r, 'tls'), 'cluster.redis.tls', [
        'ca',
        'certificate',
        'key',
        'servername',
      ]);
      tls = {
        ca: this.file(t, 'ca', 'cluster.redis.tls'),
        certificate: this.file(t, 'certificate', 'cluster.redis.tls'),
        key: this.file(t, 'key', 'cluster.redis.tls'),
        servername: this.str(t, 'servername', 'cluster.redis.tls', null),
      };
      if ((tls.certificate === null) !== (tls.key === null))
        this.add('cluster.redis.tls', 'certificate and key go together');
    }
    const replicaAcks = this.int(r, 'replicaAcks', 'cluster.redis', this.has(r, 'sentinels') ? 1 : 0, 0, 16);
    if (replicaAcks > 0 && this.has(r, 'nodes'))
      this.add(
        'cluster.redis.replicaAcks',
        'is not supported with nodes (Redis Cluster) yet: leave it out or set 0',
      );
    const pw = {
      ...(password !== null ? { password } : {}),
      ...(username !== null ? { username } : {}),
      ...(tls ? { tls } : {}),
      replicaAcks,
      replicaAckTimeoutMs: this.int(r, 'replicaAckTimeoutMs', 'cluster.redis', 500, 1, 60_000),
    };
    if (this.has(r, 'sentinels')) {
      redis = {
        sentinels: this.list(r, 'sentinels', 'cluster.redis').map((e) => this.redisNode(e.value, e.path)),
        name: this.str(r, 'name', 'cluster.redis', 'mymaster'),
        ...pw,
      };
    } else if (this.has(r, 'nodes')) {
      redis = {
        nodes: this.list(r, 'nodes', 'cluster.redis').map((e) => this.redisNode(e.value, e.path)),
        ...pw,
      };
    } else {
      redis = {
        host: this.str(r, 'host', 'cluster.redis', '127.0.0.1'),
        port: this.port(r, 'port', 'cluster.redis', 6379),
        ...pw,
      };
    }
    const k = this.section(this.get(o, 'kek'), 'cluster.kek', ['file', 'id']);
    const kekFile = this.file(k, 'file', 'cluster.kek');
    if (kekFile === null)
      this.add(
        'cluster.kek.file',
        'is required: a file with 32 random octets as 64 hex digits (SA keys are sealed with it at rest)',
      );
    const insecureRelay = this.bool(o, 'insecureRelay', 'cluster', false);
    let relayTls: ClusterConfig['relayTls'] = null;
    if (this.has(o, 'relayTls')) {
      const t = this.section(this.get(o, 'relayTls'), 'cluster.relayTls', ['ca', 'certificate', 'key']);
      const ca = this.file(t, 'ca', 'cluster.relayTls');
      if (ca === null) this.add('cluster.relayTls.ca', 'is required: the relay CA certificate (PEM)');
      const certificate = this.file(t, 'certificate', 'cluster.relayTls');
      const key = this.file(t, 'key', 'cluster.relayTls');
      if ((certificate === null) !== (key === null))
        this.add(
          'cluster.relayTls',
          'certificate and key go together (or both come from --relay-cert/--relay-key)',
        );
      relayTls = { ca: ca ?? '', certificate, key };
      if (insecureRelay) this.add('cluster.insecureRelay', 'contradicts cluster.relayTls: choose one');
    } else if (!insecureRelay) {
      this.add(
        'cluster.relayTls',
        'is required: the edge <-> worker relay runs over mutual TLS ({ ca, certificate, key }); set insecureRelay: true to run it in plaintext on a network only the cluster reaches',
      );
    }
    return {
      redis,
      kek: { file: kekFile ?? '', id: this.int(k, 'id', 'cluster.kek', 1, 1, 255) },
      leaseTtlMs: this.int(o, 'leaseTtlMs', 'cluster', 10_000, 500, 60_000),
      relayTls,
      insecureRelay,
    };
  }

  private identity(root: Obj): Identity {
    const p = 'identity';
    if (!this.has(root, p)) this.add(p, 'is required (our IKE identity, e.g. id: gw.example.org)');
    const o = this.section(this.get(root, p), p, ['id', 'certificate']);
    let id = '';
    let idType: ConfigIdType = ConfigIdType.ID_FQDN;
    if (this.has(root, p) && !this.has(o, 'id')) this.add('identity.id', 'is required');
    else if (this.has(o, 'id')) {
      id = this.str(o, 'id', p, '');
      if (id !== '') {
        const t = identityType(id);
        if (t === undefined) {
          this.add('identity.id', 'must be an FQDN, user@fqdn, or an IPv4/IPv6 address');
        } else idType = t;
      }
    }
    let certificate: Identity['certificate'] = null;
    if (this.has(o, 'certificate')) {
      const cp = 'identity.certificate';
      const c = this.section(this.get(o, 'certificate'), cp, ['chain', 'key']);
      if (!this.has(c, 'chain')) this.add(`${cp}.chain`, 'is required (path to the PEM certificate chain)');
      if (!this.has(c, 'key')) this.add(`${cp}.key`, 'is required (path to the PEM private key)');
      const chain = this.file(c, 'chain', cp);
      const key = this.file(c, 'key', cp);
      if (chain !== null && key !== null) certificate = { chain, key };
    }
    return { id, idType, certificate };
  }

  private listen(root: Obj): Listen {
    const o = this.section(this.get(root, 'listen'), 'listen', ['udp', 'tcp', 'tls', 'limits']);
    const u = this.section(this.get(o, 'udp'), 'listen.udp', [
      'address',
      'ikePort',
      'natTPort',
      'enabled',
      'receiveBufferBytes',
    ]);
    const udp = {
      address: this.address(u, 'address', 'listen.udp', '0.0.0.0'),
      ikePort: this.port(u, 'ikePort', 'listen.udp', 500),
      natTPort: this.port(u, 'natTPort', 'listen.udp', 4500),
      enabled: this.bool(u, 'enabled', 'listen.udp', true),
      // 4 MiB: @ikegate/transport DEFAULT_UDP_RECEIVE_BUFFER (issue #14).
      receiveBufferBytes: this.int(u, 'receiveBufferBytes', 'listen.udp', 4 << 20, 0, 2 ** 31 - 1),
    };
    if (udp.ikePort === udp.natTPort) this.add('listen.udp.natTPort', 'must differ from listen.udp.ikePort');
    const t = this.section(this.get(o, 'tcp'), 'listen.tcp', ['address', 'port', 'enabled']);
    const tcp = {
      address: this.address(t, 'address', 'listen.tcp', '0.0.0.0'),
      port: this.port(t, 'port', 'listen.tcp', 4500),
      enabled: this.bool(t, 'enabled', 'listen.tcp', true),
    };
    const s = this.section(this.get(o, 'tls'), 'listen.tls', [
      'address',
      'port',
      'enabled',
      'certificate',
      'key',
    ]);
    const tls = {
      address: this.address(s, 'address', 'listen.tls', '0.0.0.0'),
      port: this.port(s, 'port', 'listen.tls', 443),
      enabled: this.bool(s, 'enabled', 'listen.tls', true),
      certificate: this.file(s, 'certificate', 'listen.tls'),
      key: this.file(s, 'key', 'listen.tls'),
    };
    if ((tls.certificate === null) !== (tls.key === null)) {
      this.add(
        tls.certificate === null ? 'listen.tls.certificate' : 'listen.tls.key',
        'certificate and key must be given together (or neither, for a generated self-signed one)',
      );
    }
    if (tcp.enabled && tls.enabled && tcp.port === tls.port && tcp.address === tls.address) {
      this.add('listen.tls.port', `conflicts with listen.tcp.port (${tcp.port} on ${tcp.address})`);
    }
    const l = this.section(this.get(o, 'limits'), 'listen.limits', [
      'maxConnections',
      'maxConnectionsPerAddress',
      'prefixTimeoutSeconds',
      'idleTimeoutSeconds',
      'maxIkeOutputKiB',
    ]);
    const limits = {
      maxConnections: this.int(l, 'maxConnections', 'listen.limits', 10_000, 1, 1_000_000),
      maxConnectionsPerAddress: this.int(l, 'maxConnectionsPerAddress', 'listen.limits', 256, 1, 1_000_000),
      prefixTimeoutSeconds: this.int(l, 'prefixTimeoutSeconds', 'listen.limits', 10, 1, 300),
      idleTimeoutSeconds: this.int(l, 'idleTimeoutSeconds', 'listen.limits', 300, 5, 86_400),
      maxIkeOutputKiB: this.int(l, 'maxIkeOutputKiB', 'listen.limits', 256, 16, 65_536),
    };
    return { udp, tcp, tls, limits };
  }

  private proposals(root: Obj): Config['proposals'] {
    const o = this.section(this.get(root, 'proposals'), 'proposals', ['ike', 'esp']);
    const ike: IkeProposalPolicy[] = [];
    const esp: EspProposalPolicy[] = [];
    const ikeText: string[] = [];
    const espText: string[] = [];
    const ikeIn = this.strings(o, 'ike', 'proposals', DEFAULT_IKE_PROPOSALS);
    const espIn = this.strings(o, 'esp', 'proposals', DEFAULT_ESP_PROPOSALS);
    if (this.has(o, 'ike') && ikeIn.length === 0)
      this.add('proposals.ike', 'must list at least one proposal');
    if (this.has(o, 'esp') && espIn.length === 0)
      this.add('proposals.esp', 'must list at least one proposal');
    for (const { text, path } of ikeIn) {
      const r = tryParseIkeProposal(text);
      if (r.ok) {
        ike.push(r.value);
        ikeText.push(text);
      } else this.add(path, r.message);
    }
    for (const { text, path } of espIn) {
      const r = tryParseEspProposal(text);
      if (r.ok) {
        esp.push(r.value);
        espText.push(text);
      } else this.add(path, r.message);
    }
    return { ike, esp, ikeText, espText };
  }

  private pools(root: Obj): Pool[] {
    const out: Pool[] = [];
    const names = new Map<string, string>();
    for (const { value, path } of this.list(root, 'pools', '')) {
      const pool = this.pool(value, path, out);
      if (!pool) continue;
      const first = names.get(pool.name);
      if (first !== undefined) {
        this.add(join(path, 'name'), `duplicate pool name "${pool.name}" (first at ${first})`);
        continue;
      }
      names.set(pool.name, path);
      out.push(pool);
    }
    return out;
  }

  /** One pool document; `others` are the pools it must not overlap (a pool named alike is skipped). */
  pool(value: unknown, path: string, others: readonly Pool[]): Pool | undefined {
    const o = this.section(value, path, ['name', 'cidr', 'dns']);
    if (!isPlainObject(value)) {
      if (value === undefined || value === null) this.add(path === '' ? '' : path, 'must be a mapping');
      return undefined;
    }
    if (!this.has(o, 'name')) this.add(join(path, 'name'), 'is required');
    if (!this.has(o, 'cidr')) this.add(join(path, 'cidr'), 'is required');
    const name = this.name(o, path);
    const cidrText = this.str(o, 'cidr', path, '');
    let cidr: Cidr | undefined;
    if (cidrText !== '') {
      const c = parseCidr(cidrText);
      if (typeof c === 'string') this.add(join(path, 'cidr'), c);
      else if (c.address.length !== 4) this.add(join(path, 'cidr'), 'must be an IPv4 network');
      else if (c.prefix > 30) this.add(join(path, 'cidr'), 'prefix must be at most /30 (gateway + one host)');
      else if (c.prefix < 8) this.add(join(path, 'cidr'), 'prefix must be at least /8');
      else {
        for (const other of others) {
          if (other.name !== name && overlaps(other.cidr, c)) {
            this.add(join(path, 'cidr'), `overlaps pool "${other.name}" (${other.cidr.text})`);
          }
        }
        cidr = c;
      }
    }
    const dns: IpAddress[] = [];
    for (const { text, path: p } of this.strings(o, 'dns', path, [])) {
      const address = parseIp(text);
      if (address === undefined) this.add(p, `must be an IPv4 or IPv6 address, got ${describe(text)}`);
      else dns.push({ address, text });
    }
    if (name === '' || cidr === undefined) return undefined;
    const gw = Uint8Array.from(cidr.address);
    gw[3] = gw[3]! + 1;
    return { name, cidr, gateway: { address: gw, text: Array.from(gw).join('.') }, dns };
  }

  /** A document's `name`: 1-64 characters [A-Za-z0-9_.-] (it appears in URLs and metric labels). */
  private name(o: Obj, path: string): string {
    const name = this.str(o, 'name', path, '');
    if (name !== '' && !NAME.test(name)) {
      this.add(
        join(path, 'name'),
        'must be 1-64 characters of [A-Za-z0-9_.-], starting with a letter or digit',
      );
      return '';
    }
    return name;
  }

  private peers(root: Obj, pools: readonly Pool[], globals: PeerGlobals): Peer[] {
    const out: Peer[] = [];
    const names = new Map<string, string>();
    const ids = new Map<string, string>();
    const poolNames = new Set(pools.map((p) => p.name));
    for (const { value, path } of this.list(root, 'peers', '')) {
      const peer = this.peer(value, path, poolNames, globals);
      if (!peer) continue;
      const first = names.get(peer.name);
      if (first !== undefined) {
        this.add(join(path, 'name'), `duplicate peer name "${peer.name}" (first at ${first})`);
        continue;
      }
      const firstId = ids.get(peer.id.toLowerCase());
      if (firstId !== undefined) {
        this.add(
          join(path, 'id'),
          `duplicate peer id "${peer.id}" (first at ${firstId}); it could never match`,
        );
        continue;
      }
      names.set(peer.name, path);
      ids.set(peer.id.toLowerCase(), path);
      out.push(peer);
    }
    return out;
  }

  /** One peer document: `poolNames` it may refer to, `globals` its overrides are checked against. */
  peer(value: unknown, path: string, poolNames: ReadonlySet<string>, globals: PeerGlobals): Peer | undefined {
    const o = this.section(value, path, [
      'name',
      'id',
      'auth',
      'pool',
      'localTs',
      'remoteTs',
      'proposals',
      'lifetimes',
      'dpd',
      'failover',
    ]);
    if (!isPlainObject(value)) {
      if (value === undefined || value === null) this.add(path, 'must be a mapping');
      return undefined;
    }
    let ok = true;
    for (const k of ['name', 'id', 'auth']) {
      if (!this.has(o, k)) {
        this.add(join(path, k), 'is required');
        ok = false;
      }
    }
    const name = this.name(o, path);
    const id = this.str(o, 'id', path, '');
    let match: PeerIdPattern | undefined;
    if (id !== '') {
      if (id.length > 255) this.add(join(path, 'id'), 'must be at most 255 characters');
      else if (id === '*') match = { kind: 'any' };
      else if (id.startsWith('*') && !id.slice(1).includes('*'))
        match = { kind: 'suffix', suffix: id.slice(1) };
      else if (!id.includes('*')) match = { kind: 'exact', id };
      else this.add(join(path, 'id'), 'a "*" wildcard is only allowed as the first character');
    }
    const auth = this.auth(o, path);
    let pool: string | null = null;
    if (this.has(o, 'pool')) {
      const p = this.str(o, 'pool', path, '');
      if (p !== '' && !poolNames.has(p)) {
        const hint = suggest(p, [...poolNames]);
        this.add(
          join(path, 'pool'),
          `no pool named "${p}"${hint ? ` (did you mean "${hint}"?)` : ''}` +
            (poolNames.size ? `; pools: ${[...poolNames].join(', ')}` : '; no pools are defined'),
        );
      } else if (p !== '') pool = p;
    }
    const localTs: TrafficSelector[] = [];
    const localTsText: string[] = [];
    for (const { text, path: p } of this.strings(o, 'localTs', path, ['0.0.0.0/0'])) {
      const c = parseCidr(text, true);
      if (typeof c === 'string') {
        this.add(p, text === DYNAMIC ? '"dynamic" is only allowed in remoteTs' : c);
      } else {
        localTs.push(selector(c));
        localTsText.push(text);
      }
    }
    if (
      this.has(o, 'localTs') &&
      localTsText.length === 0 &&
      !this.issues.some((i) => i.path.startsWith(join(path, 'localTs')))
    ) {
      this.add(join(path, 'localTs'), 'must list at least one selector');
    }
    const remoteTs: RemoteTs[] = [];
    const remoteTsText: string[] = [];
    for (const { text, path: p } of this.strings(o, 'remoteTs', path, [DYNAMIC])) {
      if (text === DYNAMIC) {
        if (pool !== null) {
          remoteTs.push(DYNAMIC);
          remoteTsText.push(text);
        } else if (!this.has(o, 'pool')) {
          // (a pool that was given but invalid has its own issue already)
          const written = this.has(o, 'remoteTs');
          this.add(
            written ? p : join(path, 'remoteTs'),
            `"dynamic"${written ? '' : ' (the default)'} needs a pool: set ${join(path, 'pool')}, or list the remote subnets`,
          );
        }
        continue;
      }
      const c = parseCidr(text, true);
      if (typeof c === 'string') this.add(p, c);
      else {
        remoteTs.push(selector(c));
        remoteTsText.push(text);
      }
    }
    if (
      this.has(o, 'remoteTs') &&
      remoteTsText.length === 0 &&
      !this.issues.some((i) => i.path.startsWith(join(path, 'remoteTs')))
    ) {
      this.add(join(path, 'remoteTs'), 'must list at least one selector');
    }
    const overrides = this.peerOverrides(o, path, globals);
    if (!ok || name === '' || match === undefined || auth === undefined) return undefined;
    return { name, id, match, auth, pool, localTs, remoteTs, localTsText, remoteTsText, ...overrides };
  }

  /** A peer's `proposals.esp`, `lifetimes`, `dpd` and `failover` overrides. */
  private peerOverrides(
    o: Obj,
    path: string,
    globals: PeerGlobals,
  ): Pick<Peer, 'espProposals' | 'espText' | 'lifetimes' | 'dpd' | 'failover'> {
    let espProposals: EspProposalPolicy[] | null = null;
    let espText: string[] | null = null;
    if (this.has(o, 'proposals')) {
      const pp = join(path, 'proposals');
      const pr = this.section(this.get(o, 'proposals'), pp, ['esp']);
      if (this.has(pr, 'esp')) {
        const items = this.strings(pr, 'esp', pp, []);
        if (items.length === 0 && !this.issues.some((i) => i.path.startsWith(join(pp, 'esp'))))
          this.add(join(pp, 'esp'), 'must list at least one proposal');
        espProposals = [];
        espText = [];
        for (const { text, path: p } of items) {
          const r = tryParseEspProposal(text);
          if (r.ok) {
            espProposals.push(r.value);
            espText.push(text);
          } else this.add(p, r.message);
        }
      }
    }
    let lifetimes: Peer['lifetimes'] = null;
    if (this.has(o, 'lifetimes')) {
      const lp = join(path, 'lifetimes');
      const l = this.section(this.get(o, 'lifetimes'), lp, [
        'ikeSeconds',
        'childSeconds',
        'rekeyMarginSeconds',
      ]);
      const pick = (k: string, min: number, max: number) =>
        this.has(l, k) ? { [k]: this.int(l, k, lp, 0, min, max) } : {};
      lifetimes = {
        ...pick('ikeSeconds', 60, 86400 * 7),
        ...pick('childSeconds', 60, 86400 * 7),
        ...pick('rekeyMarginSeconds', 0, 86400),
      };
      const ike = lifetimes.ikeSeconds || globals.lifetimes.ikeSeconds;
      const child = lifetimes.childSeconds || globals.lifetimes.childSeconds;
      const margin = lifetimes.rekeyMarginSeconds ?? globals.lifetimes.rekeyMarginSeconds;
      if (margin >= Math.min(ike, child))
        this.add(
          join(lp, 'rekeyMarginSeconds' in lifetimes ? 'rekeyMarginSeconds' : 'ikeSeconds'),
          `the rekey margin (${margin} s) must be less than both lifetimes (ikeSeconds ${ike}, childSeconds ${child}; unset fields are the global lifetimes)`,
        );
    }
    let dpd: Peer['dpd'] = null;
    if (this.has(o, 'dpd')) {
      const dp = join(path, 'dpd');
      const d = this.section(this.get(o, 'dpd'), dp, ['intervalSeconds']);
      if (this.has(d, 'intervalSeconds'))
        dpd = { intervalSeconds: this.int(d, 'intervalSeconds', dp, 30, 0, 3600) };
    }
    let failover: Peer['failover'] = null;
    if (this.has(o, 'failover')) {
      const fp = join(path, 'failover');
      const f = this.section(this.get(o, 'failover'), fp, ['waitSeconds']);
      if (this.has(f, 'waitSeconds')) failover = { waitSeconds: this.int(f, 'waitSeconds', fp, 30, 0, 3600) };
    }
    return { espProposals, espText, lifetimes, dpd, failover };
  }

  /** The `failover:` document (cluster-wide wait-for-reconnect policy). */
  failoverPolicy(value: unknown, path: string): Config['failover'] {
    const f = this.section(value, path, ['policy', 'waitSeconds']);
    const policy = this.str(f, 'policy', path, 'wait-for-reconnect');
    if (policy !== 'wait-for-reconnect') {
      this.add(
        join(path, 'policy'),
        `must be "wait-for-reconnect" (the only policy supported), got ${describe(policy)}`,
      );
    }
    return { policy: 'wait-for-reconnect', waitSeconds: this.int(f, 'waitSeconds', path, 30, 0, 3600) };
  }

  private auth(o: Obj, path: string): PeerAuth | undefined {
    if (!this.has(o, 'auth')) return undefined;
    const p = join(path, 'auth');
    const a = this.section(this.get(o, 'auth'), p, ['psk', 'ca']);
    const hasPsk = this.has(a, 'psk');
    const hasCa = this.has(a, 'ca');
    if (hasPsk === hasCa) {
      this.add(
        p,
        'must have exactly one of psk (a string or { file: path }) or ca (path to a CA certificate)',
      );
      return undefined;
    }
    if (hasCa) {
      const ca = this.file(a, 'ca', p);
      return ca === null ? undefined : { kind: 'cert', ca };
    }
    const psk = this.get(a, 'psk');
    if (isPlainObject(psk)) {
      const f = this.section(psk, join(p, 'psk'), ['file']);
      if (!this.has(f, 'file')) {
        this.add(join(p, 'psk.file'), 'is required');
        return undefined;
      }
      const file = this.file(f, 'file', join(p, 'psk'));
      return file === null ? undefined : { kind: 'psk-file', file };
    }
    if (typeof psk !== 'string' || [...psk].length < 16) {
      this.add(join(p, 'psk'), 'must be a string of at least 16 characters (or { file: path })');
      return undefined;
    }
    return { kind: 'psk', psk };
  }
}

/** The RFC 7296 §3.5 ID Type for our identity, or undefined when it is none of the four forms. */
export function identityType(id: string): ConfigIdType | undefined {
  const ip = parseIp(id);
  if (ip !== undefined) return ip.length === 4 ? ConfigIdType.ID_IPV4_ADDR : ConfigIdType.ID_IPV6_ADDR;
  const at = id.indexOf('@');
  if (at >= 0) {
    const local = id.slice(0, at);
    const domain = id.slice(at + 1);
    return local !== '' && !/[\s@]/.test(local) && isFqdn(domain) ? ConfigIdType.ID_RFC822_ADDR : undefined;
  }
  return isFqdn(id) ? ConfigIdType.ID_FQDN : undefined;
}

function selector(c: Cidr): TrafficSelector {
  return {
    tsType: c.address.length === 4 ? 7 : 8, // TS_IPV4_ADDR_RANGE / TS_IPV6_ADDR_RANGE
    ipProtocol: 0,
    startPort: 0,
    endPort: 65535,
    startAddress: c.address,
    endAddress: lastAddress(c.address, c.prefix),
  };
}

function overlaps(a: Cidr, b: Cidr): boolean {
  if (a.address.length !== b.address.length) return false;
  const p = Math.min(a.prefix, b.prefix);
  for (let bit = 0; bit < p; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((a.address[byte]! & mask) !== (b.address[byte]! & mask)) return false;
  }
  return true;
}
