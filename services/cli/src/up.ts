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
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_SHARD_BITS, type EdgeLink } from '@ikegate/cluster';
import { type Config, loadConfig } from '@ikegate/config';
import { AccessControl, apiNotice, buildControlApi, LocalBackend } from '@ikegate/control';
import { defaultProvider } from '@ikegate/crypto';
import { Edge } from '@ikegate/edge';
import type { TrafficSelector } from '@ikegate/ikev2';
import { FileManagedStore } from '@ikegate/store';
import { createLogger, type Logger, Metrics } from '@ikegate/telemetry';
import { enableForwarding, reexecWithTun, TunDevice } from '@ikegate/tun';
import { type ManagedPool, PeerDirectory, Worker, type WorkerSettings } from '@ikegate/worker';
import { followTunCounters, UpNetwork } from './host-network.js';
import { startManaged } from '@ikegate/control';
import { allocatorEnv, loadedAllocator } from './allocator.js';

const run = promisify(execFile);

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

/** The directory of peers and pools a worker authenticates and addresses with (managed config). */
export function buildDirectory(
  config: Config,
  log: Logger,
  metrics: Metrics,
  shardCount?: number,
): {
  directory: PeerDirectory;
  events: { worker?: Worker; pool?: (p: ManagedPool, c: 'put' | 'deleted') => void };
} {
  const events: { worker?: Worker; pool?: (p: ManagedPool, c: 'put' | 'deleted') => void } = {};
  const directory = new PeerDirectory({
    globals: {
      ikeLifetimeSeconds: config.lifetimes.ikeSeconds,
      childLifetimeSeconds: config.lifetimes.childSeconds,
      rekeyMarginSeconds: config.lifetimes.rekeyMarginSeconds,
      dpdSeconds: config.dpd.intervalSeconds,
    },
    ...(shardCount !== undefined ? { shardCount } : {}),
    log,
    metrics,
    events: {
      peerChanged: (name, change, keepSas) => events.worker?.peerChanged(name, change, keepSas),
      poolChanged: (pool, change) => events.pool?.(pool, change),
    },
  });
  return { directory, events };
}

/** The Worker a config describes (identity, proposals, lifetimes); peers and pools from `directory`. */
export function buildWorker(
  config: Config,
  edge: EdgeLink,
  log: Logger,
  metrics: Metrics,
  directory: PeerDirectory,
  extra: Partial<WorkerSettings> = {},
): Worker {
  const certificate = config.identity.certificate
    ? {
        chainPem: readFileSync(config.identity.certificate.chain, 'utf8'),
        privateKey: createPrivateKey(readFileSync(config.identity.certificate.key, 'utf8')),
      }
    : undefined;
  return new Worker(
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
        replayCounterSync: true,
      },
      matchPeer: (id) => directory.match(id),
      currentTrustAnchors: () => directory.trustAnchors(),
      currentReconnectWaitSeconds: () => directory.failover.waitSeconds,
      ...(certificate ? { certificate } : {}),
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
      maxHotSas: config.ike.maxHotSas,
      coldChildAfterMs: config.dataplane.coldChildAfterSeconds * 1000,
      maxIkeSas: config.ike.maxSas,
      ...extra,
    },
    edge,
    log,
    metrics,
  );
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

/** Where `ikegate up` keeps API changes: control.stateFile, or `<config>.state.json` beside it. */
export function stateFileOf(config: Config): string {
  if (config.control.stateFile) return config.control.stateFile;
  const file = resolve(config.source);
  return join(dirname(file), `${basename(file).replace(/\.(ya?ml|json)$/i, '')}.state.json`);
}

/** Reads the control API's TLS material (control.tls). */
export function apiTls(config: Config) {
  const t = config.control.tls;
  if (!t) return undefined;
  return {
    certificate: readFileSync(t.certificate, 'utf8'),
    key: readFileSync(t.key, 'utf8'),
    ...(t.clientCa ? { clientCa: readFileSync(t.clientCa, 'utf8') } : {}),
  };
}

export async function up(options: UpOptions): Promise<Running | undefined> {
  const config = loadConfig(options.configPath);
  const log = createLogger({ level: config.log.level, name: 'ikegate' });

  // TUN first: without it the process re-executes itself holding the device (libs/tun).
  let device: TunDevice | undefined;
  const tunName = config.dataplane.tun.name;
  if (!options.noTun) {
    const r = await reexecWithTun([tunName], { childEnv: allocatorEnv() });
    if (r.role === 'parent') return undefined;
    device = TunDevice.fromReexec(tunName, r);
  }

  const metrics = new Metrics({ role: 'up' });
  const access = new AccessControl({
    file: config.control.accessFile,
    log: log.child({ role: 'api' }),
    metrics,
  });
  access.start();
  const layout = { shardBits: DEFAULT_SHARD_BITS };
  const edgeRef: { edge?: Edge } = {};
  const workerLog = log.child({ role: 'worker' });
  const { directory, events } = buildDirectory(config, workerLog, metrics);
  const network = device
    ? new UpNetwork({ dev: tunName, log, masquerade: config.dataplane.masquerade })
    : undefined;
  const syncNetwork = () =>
    network?.sync(
      directory.pools().map((p) => ({ name: p.name, cidr: p.cidr })),
      directory.remoteSubnets(),
    );
  const stateFile = stateFileOf(config);
  const managed = await startManaged({
    store: await FileManagedStore.open(stateFile),
    config,
    log,
    metrics,
    directory,
    applied: (kind) => {
      if (kind === 'failover' || kind === 'reload') events.worker?.failoverChanged();
      if (kind !== 'failover') void syncNetwork();
    },
  });
  const worker = buildWorker(
    config,
    {
      send: (f) => (edgeRef.edge ? edgeRef.edge.send(f) : 'no-connection'),
      // Asked per ESP packet: skip sealing for a full stream; reuse the ESP buffer when the edge's
      // send is done with it on return (streams; UDP on the batched path).
      espCongested: (p, n) => edgeRef.edge?.espCongested(p, n) ?? false,
      espCopied: (p) => edgeRef.edge?.espCopied(p) ?? false,
    },
    workerLog,
    metrics,
    directory,
    // The API names the one worker of `ikegate up` `local` (GET /v1/workers).
    { workerId: 'local' },
  );
  events.worker = worker;

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

  if (device) {
    const mtu = config.dataplane.tun.mtu;
    await run('ip', ['link', 'set', 'dev', tunName, 'mtu', String(mtu), 'up']);
    await syncNetwork();
    await enableForwarding();
    const d = device;
    followTunCounters(metrics, d);
    worker.attachDevice({ write: (p) => d.write(p) });
    d.start(
      (packet) => worker.fromDevice(packet),
      (err) => log.error({ err: err.message }, 'tun-read-failed'),
    );
    // mergedWrites: IFF_VNET_HDR, TCP segments merged into GSO writes (libs/tun gro.ts).
    log.info(
      { device: tunName, mtu, pools: directory.pools().map((p) => p.cidr), mergedWrites: d.vnetHdr },
      'tun-up',
    );
  }

  const ports = await edge.start();
  const control = buildControlApi({
    log: log.child({ role: 'api' }),
    metrics,
    access,
    backend: new LocalBackend(
      worker,
      () => managed.state.version,
      () => directory.invalid(),
    ),
    managed,
    globals: { lifetimes: config.lifetimes },
    baseDir: dirname(resolve(config.source)),
    ready: () => true,
    ...(config.control.tls ? { tls: apiTls(config)! } : {}),
  });
  await control.listen({ host: config.control.address, port: config.control.port });
  apiNotice(log, access, `${config.control.address}:${config.control.port}`);
  log.info(
    {
      ...ports,
      control: `${config.control.address}:${config.control.port}`,
      config: config.source,
      state: stateFile,
      id: config.identity.id,
      allocator: loadedAllocator(),
    },
    'ikegate-up',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info({}, 'ikegate-stopping');
      managed.stop();
      access.stop();
      await worker.close();
      await edge.close();
      await control.close();
      device?.close();
      await network?.clear();
      log.info({}, 'ikegate-stopped');
      log.flush();
    })());
  return { config, worker, edge, log, stop };
}
