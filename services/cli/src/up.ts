/**
 * `ikegate up`: edge, worker and control in one process on the embedded in-memory state (the
 * worker's own maps). The edge hands frames to the worker through the same `WorkerLink` /
 * `EdgeLink` interfaces the gRPC transport of issue #5 carries, and the worker owns every shard.
 *
 * Data plane: one TUN device (config `dataplane.tun`), the pools' gateway addresses on it, a route
 * per site-to-site remote selector, IPv4 forwarding, and an nftables masquerade for pool traffic
 * when `dataplane.masquerade.enabled`. TUN needs root (CAP_NET_ADMIN) and /dev/net/tun; without
 * them `up` stops with an error naming what is missing, unless `--no-tun` runs the control plane
 * alone.
 */
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SHARD_BITS } from '@ikegate/cluster';
import {
  AddressPool,
  type Config,
  DYNAMIC,
  formatIp,
  loadConfig,
  matchPeer,
  type Peer,
} from '@ikegate/config';
import { buildControl } from '@ikegate/control';
import { defaultProvider } from '@ikegate/crypto';
import { Edge } from '@ikegate/edge';
import type { TrafficSelector } from '@ikegate/ikev2';
import { createLogger, type Logger, Metrics } from '@ikegate/telemetry';
import {
  addRoute,
  configure,
  enableForwarding,
  ensureMasquerade,
  reexecWithTun,
  removeMasquerade,
  TunDevice,
} from '@ikegate/tun';
import {
  type AddressPoolLike,
  type PeerSettings,
  ShardedPool,
  Worker,
  type WorkerSettings,
} from '@ikegate/worker';
import type { EdgeLink } from '@ikegate/cluster';

export interface UpOptions {
  readonly configPath: string;
  /** Run without a TUN device (control plane only: IKE SAs come up, ESP is counted and dropped). */
  readonly noTun?: boolean;
  /** Write TLS secrets in NSS key log format here (for decrypting captures). */
  readonly tlsKeylog?: string;
}

export interface Running {
  readonly config: Config;
  readonly worker: Worker;
  readonly edge: Edge;
  readonly log: Logger;
  stop(): Promise<void>;
}

const ANY_V4: TrafficSelector = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: new Uint8Array([0, 0, 0, 0]),
  endAddress: new Uint8Array([255, 255, 255, 255]),
};

function selectorCidr(ts: TrafficSelector): string | undefined {
  if (ts.tsType !== 7) return undefined;
  const start = Buffer.from(ts.startAddress).readUInt32BE(0);
  const end = Buffer.from(ts.endAddress).readUInt32BE(0);
  const size = end - start + 1;
  const bits = 32 - Math.log2(size);
  if (!Number.isInteger(bits) || (start & (size - 1)) !== 0) return undefined;
  return `${formatIp(ts.startAddress)}/${bits}`;
}

/** A self-signed certificate for TLS 443 when the config names none (openssl; never hand-rolled). */
function selfSignedCertificate(log: Logger, commonName: string): { certificate: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        `/CN=${commonName}`,
        '-days',
        '365',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    const certificate = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const key = readFileSync(join(dir, 'key.pem'), 'utf8');
    log.warn(
      { fingerprint256: new X509Certificate(certificate).fingerprint256, commonName },
      'tls-self-signed-certificate: listen.tls.certificate is not set; generated a self-signed certificate for this run',
    );
    return { certificate, key };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The config's pools. `shardCount` (cluster workers): each pool splits its addresses by shard
 * (ShardedPool), so workers owning different shards never hand out the same address.
 */
function poolAdapter(
  config: Config,
  shardCount?: number,
): Map<string, AddressPoolLike & { size: number; cidr: string }> {
  const pools = new Map<string, AddressPoolLike & { size: number; cidr: string }>();
  for (const p of config.pools) {
    const dns = p.dns.map((d) => d.address);
    if (shardCount !== undefined) {
      const sharded = new ShardedPool(p.name, p.cidr.address, p.cidr.prefix, shardCount, dns);
      pools.set(p.name, Object.assign(sharded, { cidr: p.cidr.text }));
      continue;
    }
    const pool = new AddressPool(p.cidr);
    pools.set(p.name, {
      name: p.name,
      cidr: p.cidr.text,
      dns,
      allocate: (key) => pool.allocate(key),
      release: (key) => pool.release(key),
      get inUse() {
        return pool.inUse;
      },
      get size() {
        return pool.size;
      },
    });
  }
  return pools;
}

function peerSettings(peer: Peer, pools: Map<string, AddressPoolLike>): PeerSettings {
  const psk =
    peer.auth.kind === 'psk'
      ? new TextEncoder().encode(peer.auth.psk)
      : peer.auth.kind === 'psk-file'
        ? pskFromFile(peer.auth.file)
        : undefined;
  const pool = peer.pool !== null ? pools.get(peer.pool) : undefined;
  return {
    name: peer.name,
    ...(psk ? { psk } : {}),
    localTs: peer.localTs,
    // 'dynamic': any address, narrowed by the state machine to the virtual IP it assigned.
    remoteTs: peer.remoteTs.map((t) => (t === DYNAMIC ? ANY_V4 : t)),
    ...(pool ? { pool } : {}),
  };
}

/** A PSK file's contents without a trailing newline. */
function pskFromFile(file: string): Uint8Array {
  const a = new Uint8Array(readFileSync(file));
  let n = a.length;
  while (n > 0 && (a[n - 1] === 0x0a || a[n - 1] === 0x0d)) n--;
  return a.subarray(0, n);
}

/** The Worker a config describes (peers, pools, proposals, lifetimes); shared by `up` and `worker`. */
export function buildWorker(
  config: Config,
  edge: EdgeLink,
  log: Logger,
  metrics: Metrics,
  extra: Partial<WorkerSettings> = {},
  shardCount?: number,
): { worker: Worker; pools: Map<string, AddressPoolLike & { size: number; cidr: string }> } {
  const pools = poolAdapter(config, shardCount);
  const peers = new Map(config.peers.map((p) => [p.name, peerSettings(p, pools)]));
  const trustAnchors = config.peers.flatMap((p) =>
    p.auth.kind === 'cert' ? [new X509Certificate(readFileSync(p.auth.ca))] : [],
  );
  const certificate = config.identity.certificate
    ? {
        chainPem: readFileSync(config.identity.certificate.chain, 'utf8'),
        privateKey: createPrivateKey(readFileSync(config.identity.certificate.key, 'utf8')),
      }
    : undefined;
  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: {
        localId: config.identity.id,
        localIdType: config.identity.idType,
        ikeProposals: config.proposals.ike,
        espProposals: config.proposals.esp,
        localTs: [ANY_V4],
        remoteTs: [ANY_V4],
        messageIdSync: true,
      },
      matchPeer: (id) => {
        const p = matchPeer(config, id);
        return p ? peers.get(p.name) : undefined;
      },
      ...(certificate ? { certificate } : {}),
      ...(trustAnchors.length > 0 ? { trustAnchors } : {}),
      layout: { shardBits: DEFAULT_SHARD_BITS },
      ikeLifetimeSeconds: config.lifetimes.ikeSeconds,
      childLifetimeSeconds: config.lifetimes.childSeconds,
      rekeyMarginSeconds: config.lifetimes.rekeyMarginSeconds,
      dpdSeconds: config.dpd.intervalSeconds,
      reconnectWaitSeconds: config.failover.waitSeconds,
      retransmit: config.ike.retransmit,
      halfOpenTimeoutMs: config.ike.halfOpenTimeoutSeconds * 1000,
      cookieThreshold: config.ike.cookieThreshold,
      maxHalfOpen: config.ike.maxHalfOpen,
      maxHalfOpenPerAddress: config.ike.maxHalfOpenPerAddress,
      maxIkeSas: config.ike.maxSas,
      ...extra,
    },
    edge,
    log,
    metrics,
  );
  return { worker, pools };
}

/** TLS certificate and key from the config, or a generated self-signed pair (logged). */
export function tlsMaterialFor(
  config: Config,
  log: Logger,
): { certificate: string; key: string } | undefined {
  const tls = config.listen.tls;
  if (!tls.enabled) return undefined;
  return tls.certificate && tls.key
    ? { certificate: readFileSync(tls.certificate, 'utf8'), key: readFileSync(tls.key, 'utf8') }
    : selfSignedCertificate(log, config.identity.id);
}

export async function up(options: UpOptions): Promise<Running | undefined> {
  const config = loadConfig(options.configPath);
  const log = createLogger({ level: config.log.level, name: 'ikegate' });

  // TUN first: without it the process re-executes itself holding the device (libs/tun).
  let device: TunDevice | undefined;
  const tunName = config.dataplane.tun.name;
  if (!options.noTun) {
    const r = await reexecWithTun([tunName]);
    if (r.role === 'parent') return undefined;
    device = TunDevice.fromFd(tunName, r.fds.get(tunName)!, { wakeFd: r.wakeFds.get(tunName) });
  }

  const metrics = new Metrics();
  const layout = { shardBits: DEFAULT_SHARD_BITS };
  const edgeRef: { edge?: Edge } = {};
  const { worker, pools } = buildWorker(
    config,
    { send: (f) => (edgeRef.edge ? edgeRef.edge.send(f) : 'no-connection') },
    log.child({ role: 'worker' }),
    metrics,
  );

  const tls = config.listen.tls;
  const tlsMaterial = tlsMaterialFor(config, log);
  const edge = new Edge(
    {
      listen: {
        ...(config.listen.udp.enabled ? { udp: config.listen.udp } : {}),
        ...(config.listen.tcp.enabled ? { tcp: config.listen.tcp } : {}),
        ...(tlsMaterial
          ? {
              tls: {
                address: tls.address,
                port: tls.port,
                ...tlsMaterial,
                ...(options.tlsKeylog ? { keylogFile: options.tlsKeylog } : {}),
              },
            }
          : {}),
      },
      layout,
      initialHashKey: new Uint8Array(randomBytes(32)),
      route: () => worker,
      workers: () => [worker],
      maxConnections: config.listen.limits.maxConnections,
      maxConnectionsPerAddress: config.listen.limits.maxConnectionsPerAddress,
      prefixTimeoutMs: config.listen.limits.prefixTimeoutSeconds * 1000,
      idleTimeoutMs: config.listen.limits.idleTimeoutSeconds * 1000,
      maxIkeBuffer: config.listen.limits.maxIkeOutputKiB * 1024,
    },
    log.child({ role: 'edge' }),
    metrics,
  );
  edgeRef.edge = edge;

  let masqueraded = false;
  if (device) {
    const mtu = config.dataplane.tun.mtu;
    const first = config.pools[0];
    await configure(tunName, {
      address: first ? `${formatIp(first.gateway.address)}/${first.cidr.prefix}` : '',
      mtu,
    });
    for (const p of config.pools.slice(1)) await addRoute(p.cidr.text, tunName);
    for (const peer of config.peers)
      for (const ts of peer.remoteTs) {
        const cidr = ts === DYNAMIC ? undefined : selectorCidr(ts);
        if (cidr && cidr !== '0.0.0.0/0') await addRoute(cidr, tunName);
      }
    await enableForwarding();
    if (config.dataplane.masquerade.enabled && config.pools.length > 0) {
      for (const p of config.pools)
        await ensureMasquerade({
          table: `ikegate_${p.name.replace(/[^A-Za-z0-9_]/g, '_')}`,
          sourceCidr: p.cidr.text,
          ...(config.dataplane.masquerade.outInterface
            ? { outInterface: config.dataplane.masquerade.outInterface }
            : {}),
        });
      masqueraded = true;
    }
    const d = device;
    worker.attachDevice({ write: (p) => d.write(p) });
    d.start(
      (packet) => {
        metrics.hot(metrics.tunPackets, 'rx').inc();
        worker.fromDevice(packet);
      },
      (err) => log.error({ err: err.message }, 'tun-read-failed'),
    );
    log.info({ device: tunName, mtu, pools: config.pools.map((p) => p.cidr.text) }, 'tun-up');
  }

  const ports = await edge.start();
  const control = buildControl({
    metrics,
    workers: () => [worker],
    peers: () =>
      config.peers.map((p) => ({
        name: p.name,
        id: p.id,
        auth: p.auth.kind,
        ...(p.pool !== null ? { pool: p.pool } : {}),
      })),
    pools: () =>
      [...pools.values()].map((p) => ({ name: p.name, cidr: p.cidr, inUse: p.inUse, size: p.size })),
    ready: () => true,
  });
  await control.listen({ host: config.control.address, port: config.control.port });
  log.info(
    {
      ...ports,
      control: `${config.control.address}:${config.control.port}`,
      config: config.source,
      id: config.identity.id,
    },
    'ikegate-up',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info({}, 'ikegate-stopping');
      await worker.close();
      await edge.close();
      await control.close();
      device?.close();
      if (masqueraded)
        for (const p of config.pools)
          await removeMasquerade(`ikegate_${p.name.replace(/[^A-Za-z0-9_]/g, '_')}`).catch(() => undefined);
      log.info({}, 'ikegate-stopped');
      log.flush();
    })());
  return { config, worker, edge, log, stop };
}
