/**
 * `ikegate worker`, `ikegate edge`, `ikegate control`: the roles of `ikegate up` as separate
 * processes sharing Redis (config `cluster:`), the shape ARCHITECTURE.md describes. Same config
 * file for every role; flags name the process and where it listens.
 *
 *   worker   leases shards, runs IKE/ESP for them, writes SAs through to Redis (sealed, fenced),
 *            serves the gRPC relay edges connect to, and an admin HTTP (/metrics, /v1/sas).
 *   edge     the peer-facing listeners; routes frames by SPI to shard owners over the relay.
 *   control  the cluster view: members, shard leases, SAs gathered from the workers, /metrics.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DEFAULT_SHARD_BITS, shardCount } from '@ikegate/cluster';
import { type ClusterConfig, type Config, loadConfig } from '@ikegate/config';
import {
  AccessControl,
  apiNotice,
  buildControlApi,
  buildEdgeAdmin,
  buildWorkerAdmin,
  ClusterBackend,
  internalToken,
} from '@ikegate/control';
import { Edge, ShardRouter } from '@ikegate/edge';
import { relayCertificateName, RelayServer, type RelayTls, workerNameAdmits } from '@ikegate/relay';
import { RedisManagedStore, RedisStore, Sealer } from '@ikegate/store';
import { createLogger, type Logger, Metrics } from '@ikegate/telemetry';
import { EDGE_MEMBER_PREFIX, type MembershipOptions, RedisMembership, ShardOwner } from '@ikegate/worker';
import { enableForwarding, reexecWithTun, TunDevice } from '@ikegate/tun';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { followTunCounters, HostRoutes } from './host-network.js';
import { startManaged } from '@ikegate/control';
import { apiTls, buildDirectory, buildWorker, tlsMaterialFor } from './up.js';
import { allocatorEnv, loadedAllocator } from './allocator.js';

const run = promisify(execFile);

export interface RoleHandle {
  stop(): Promise<void>;
}

const LAYOUT = { shardBits: DEFAULT_SHARD_BITS };
const SHARDS = shardCount(LAYOUT);

export class RoleUsageError extends Error {}

function clusterOf(config: Config): NonNullable<Config['cluster']> {
  if (!config.cluster)
    throw new RoleUsageError(
      `${config.source}: cluster: is required for separate edge/worker/control processes`,
    );
  return config.cluster;
}

function hostPort(v: string, flag: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  const port = Number(v.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535)
    throw new RoleUsageError(`${flag} must be host:port, got ${v}`);
  return { host: v.slice(0, i), port };
}

/** The KEK file: 64 hex digits (32 octets). Errors name the file, never the content. */
function readKek(file: string, id: number) {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-fA-F]{64}$/.test(text))
    throw new RoleUsageError(`${file}: the KEK must be 64 hex digits (32 random octets)`);
  return { current: { id, key: new Uint8Array(Buffer.from(text, 'hex')) } };
}

/**
 * Every Redis command of a role gives up after this long (ioredis `commandTimeout`). A Redis that
 * stops answering over a live connection (a paused or partitioned host: TCP retries for minutes)
 * must not hang the control API's requests, an edge's membership heartbeat or anything else that
 * has no deadline of its own; the worker's calls have a shorter one (STORE_CALL_TIMEOUT_MS).
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5000;

/** The role's Redis store (config `cluster.redis`), with the options every role uses. */
export function openStore(config: Config, log: Logger): RedisStore {
  const c = clusterOf(config);
  const { tls, ...connection } = c.redis;
  const read = (f: string | null) => {
    if (f === null) return undefined;
    try {
      return readFileSync(f);
    } catch (e) {
      throw new RoleUsageError(`${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const store = new RedisStore({
    connection,
    kek: readKek(c.kek.file, c.kek.id),
    shardCount: SHARDS,
    redisOptions: {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      retryStrategy: (n: number) => Math.min(n * 200, 2000),
      ...(tls
        ? {
            tls: {
              ...(tls.ca ? { ca: read(tls.ca) } : {}),
              ...(tls.certificate ? { cert: read(tls.certificate) } : {}),
              ...(tls.key ? { key: read(tls.key) } : {}),
              ...(tls.servername ? { servername: tls.servername } : {}),
            },
          }
        : {}),
    },
  });
  const client = store.backend.client;
  client.on('error', (e: Error) => log.warn({ err: e.message }, 'redis-error'));
  client.on('ready', () => log.info({}, 'redis-ready'));
  return store;
}

export interface RelayCertFiles {
  readonly certificate: string;
  readonly key: string;
}

/**
 * The relay's TLS material for this process: the CA from the config, the certificate from the
 * command line or the config. Its CN must admit this process (`edge:<id>`/`edge`,
 * `worker:<id>`/`worker`), checked here so a wrong mount fails at start, not at the first stream.
 * Without relayTls (insecureRelay: true) the relay is plaintext, and the start says so.
 */
function relayTlsOf(
  c: ClusterConfig,
  files: RelayCertFiles | undefined,
  kind: 'edge' | 'worker',
  id: string,
  log: Logger,
  metrics?: Metrics,
): { tls?: RelayTls } {
  if (!c.relayTls) {
    log.warn(
      { insecureRelay: true },
      'relay-plaintext: anyone who reaches a relay port can join the cluster',
    );
    return {};
  }
  const certificate = files?.certificate ?? c.relayTls.certificate;
  const key = files?.key ?? c.relayTls.key;
  if (!certificate || !key)
    throw new RoleUsageError(
      `${kind} ${id}: a relay certificate is required (--relay-cert/--relay-key or cluster.relayTls)`,
    );
  const read = (f: string) => {
    try {
      return readFileSync(f);
    } catch (e) {
      throw new RoleUsageError(`${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const tls: RelayTls = { ca: read(c.relayTls.ca), certificate: read(certificate), key: read(key) };
  metrics?.watchCertificate('relay', tls.certificate);
  let cn: string | undefined;
  try {
    cn = relayCertificateName(tls.certificate);
  } catch (e) {
    throw new RoleUsageError(`${certificate}: not a PEM certificate (${(e as Error).message})`);
  }
  const ok = kind === 'worker' ? workerNameAdmits(cn, id) : cn === 'edge' || cn === `edge:${id}`;
  if (!ok)
    throw new RoleUsageError(
      `${certificate}: its CN (${cn}) does not name ${kind} ${id} (CN ${kind}:${id} or ${kind})`,
    );
  return { tls };
}

/**
 * Member records are authenticated with the cluster secret; a forged or foreign record under the
 * members' prefix is ignored, logged (at most once a minute per key) and counted.
 */
function membershipOptions(config: Config, log: Logger, metrics: Metrics): MembershipOptions {
  const logged = new Map<string, number>();
  return {
    secret: clusterSecrets(config).kek,
    onRejected: (key, why) => {
      metrics.drops.inc({ layer: 'cluster', reason: `member_record_${why}` });
      const now = Date.now();
      if ((logged.get(key) ?? 0) > now - 60_000) return;
      if (logged.size > 1000) logged.clear();
      logged.set(key, now);
      log.warn({ key, why }, 'member-record-ignored');
    },
  };
}

/** The IKE_SA_INIT shard hash key must be the same on every edge: derived from the KEK. */
function initialHashKey(config: Config): Uint8Array {
  const c = clusterOf(config);
  const kek = readKek(c.kek.file, c.kek.id).current.key;
  return new Uint8Array(
    createHash('sha256').update('ikegate initial-request shard key').update(kek).digest(),
  );
}

/** The cluster's shared secrets from the KEK: the internal API credential and the managed store's sealer. */
function clusterSecrets(config: Config) {
  const c = clusterOf(config);
  const keyring = readKek(c.kek.file, c.kek.id);
  return { kek: keyring.current.key, sealer: new Sealer(keyring) };
}

/** The API access list (control.accessFile) plus the cluster's internal credential. */
function accessFor(config: Config, log: Logger, metrics: Metrics): AccessControl {
  const access = new AccessControl({
    file: config.control.accessFile,
    internalSecret: clusterSecrets(config).kek,
    log,
    metrics,
  });
  access.start();
  return access;
}

export async function runWorker(o: {
  config: string;
  id: string;
  relay: string;
  admin: string;
  /** A TUN device for this worker's data plane (needs root); none: control plane only. */
  tun?: string;
  relayCert?: RelayCertFiles;
}): Promise<RoleHandle | undefined> {
  const config = loadConfig(o.config);
  let device: TunDevice | undefined;
  if (o.tun) {
    const r = await reexecWithTun([o.tun], { childEnv: allocatorEnv() });
    if (r.role === 'parent') return undefined;
    device = TunDevice.fromReexec(o.tun, r);
  }
  const c = clusterOf(config);
  const log = createLogger({ level: config.log.level, name: 'ikegate-worker' }).child({ worker: o.id });
  const metrics = new Metrics({ role: 'worker' });
  const access = accessFor(config, log, metrics);
  const store = openStore(config, log);
  const members = new RedisMembership(
    store.backend.client,
    undefined,
    membershipOptions(config, log, metrics),
  );
  const relay = new RelayServer({
    workerId: o.id,
    log,
    metrics,
    ...relayTlsOf(c, o.relayCert, 'worker', o.id, log, metrics),
  });
  const routes = new HostRoutes(o.tun ?? '', log);
  const ownerRef: { owner?: ShardOwner } = {};
  const { directory, events } = buildDirectory(config, log, metrics, SHARDS);
  const managed = await startManaged({
    store: new RedisManagedStore(store.backend.client, clusterSecrets(config).sealer),
    config,
    log,
    metrics,
    directory,
    applied: (kind) => {
      if (kind === 'failover' || kind === 'reload') events.worker?.failoverChanged();
    },
  });
  const worker = buildWorker(config, relay.edgeLink, log, metrics, directory, {
    persistence: {
      dirty: (spi, shard) => ownerRef.owner?.dirty(spi, shard),
      gone: (spi, shard) => ownerRef.owner?.gone(spi, shard),
      durable: (spi) => ownerRef.owner?.durable(spi),
    },
    ownsShard: (shard) => ownerRef.owner?.owned.has(shard) ?? false,
    workerId: o.id,
    shardEpoch: (shard) => ownerRef.owner?.owned.get(shard),
    // Return traffic for a virtual IP must reach the worker holding its SA: a host route via our TUN.
    ...(o.tun ? { onVirtualIp: (vip: string, present: boolean) => routes.set(vip, present) } : {}),
  });
  events.worker = worker;
  relay.attach(worker);
  if (device && o.tun) {
    const d = device;
    await run('ip', ['link', 'set', 'dev', o.tun, 'mtu', String(config.dataplane.tun.mtu), 'up']);
    await enableForwarding();
    followTunCounters(metrics, d);
    worker.attachDevice({ write: (p) => d.write(p) });
    d.start(
      (p) => worker.fromDevice(p),
      (e) => log.error({ err: e.message }, 'tun-read-failed'),
    );
    log.info({ device: o.tun, mergedWrites: d.vnetHdr }, 'tun-up');
  }
  const r = hostPort(o.relay, '--relay');
  const relayPort = await relay.start(r.host, r.port);
  const a = hostPort(o.admin, '--admin');
  const owner = new ShardOwner({
    workerId: o.id,
    relay: `${r.host}:${relayPort}`,
    admin: o.admin,
    store,
    members,
    worker,
    shardCount: SHARDS,
    leaseTtlMs: c.leaseTtlMs,
    log,
    metrics,
    configVersion: () => managed.state.version,
  });
  ownerRef.owner = owner;
  const admin = buildWorkerAdmin({
    log,
    metrics,
    access,
    worker,
    ready: () => owner.owned.size > 0 || owner.draining,
    status: () => ({
      id: o.id,
      shards: [...owner.owned].map(([shard, epoch]) => ({ shard, epoch })),
      draining: owner.draining,
      configVersion: managed.state.version,
      pendingWrites: owner.pendingWrites,
      invalid: directory.invalid(),
    }),
  });
  await admin.listen({ host: a.host, port: a.port });
  owner.start();
  log.info({ relay: `${r.host}:${relayPort}`, admin: o.admin, allocator: loadedAllocator() }, 'worker-up');
  return {
    async stop() {
      managed.stop();
      access.stop();
      await owner.stop();
      await relay.close();
      device?.close();
      await admin.close();
      await store.close();
      log.info({}, 'worker-stopped');
    },
  };
}

export interface EdgeRoleOptions {
  readonly config: string;
  readonly id: string;
  readonly admin: string;
  /** Overrides of the config's listen addresses/ports (several edges on one host). */
  readonly address?: string;
  readonly ports?: { ike?: number; natT?: number; tcp?: number; tls?: number };
  readonly relayCert?: RelayCertFiles;
}

export async function runEdge(o: EdgeRoleOptions): Promise<RoleHandle> {
  const config = loadConfig(o.config);
  const c = clusterOf(config);
  const log = createLogger({ level: config.log.level, name: 'ikegate-edge' }).child({ edge: o.id });
  const metrics = new Metrics({ role: 'edge' });
  const access = accessFor(config, log, metrics);
  const store = openStore(config, log);
  const members = new RedisMembership(
    store.backend.client,
    undefined,
    membershipOptions(config, log, metrics),
  );
  const edgeMembers = new RedisMembership(
    store.backend.client,
    EDGE_MEMBER_PREFIX,
    membershipOptions(config, log, metrics),
  );
  const edgeRef: { edge?: Edge } = {};
  const relayTls = relayTlsOf(c, o.relayCert, 'edge', o.id, log, metrics).tls;
  const router = new ShardRouter({
    edgeId: o.id,
    ...(relayTls ? { relayTls } : {}),
    store,
    members,
    shardCount: SHARDS,
    log,
    metrics,
    onFrame: (f) => edgeRef.edge?.send(f),
  });
  await router.refresh().catch((e: Error) => log.warn({ err: e.message }, 'route-refresh-failed'));
  router.start();
  const l = config.listen;
  const addr = (a: string) => o.address ?? a;
  const tls = tlsMaterialFor(config, log);
  const edge = new Edge(
    {
      listen: {
        ...(l.udp.enabled
          ? {
              udp: {
                address: addr(l.udp.address),
                ikePort: o.ports?.ike ?? l.udp.ikePort,
                natTPort: o.ports?.natT ?? l.udp.natTPort,
                receiveBufferBytes: l.udp.receiveBufferBytes,
              },
            }
          : {}),
        ...(l.tcp.enabled ? { tcp: { address: addr(l.tcp.address), port: o.ports?.tcp ?? l.tcp.port } } : {}),
        ...(tls ? { tls: { address: addr(l.tls.address), port: o.ports?.tls ?? l.tls.port, ...tls } } : {}),
      },
      layout: LAYOUT,
      initialHashKey: initialHashKey(config),
      route: (shard) => router.route(shard),
      workers: () => router.workers(),
      unrouted: (frame) => router.deliverLater(frame),
      countIkeMessages: true,
      maxConnections: l.limits.maxConnections,
      maxConnectionsPerAddress: l.limits.maxConnectionsPerAddress,
      prefixTimeoutMs: l.limits.prefixTimeoutSeconds * 1000,
      idleTimeoutMs: l.limits.idleTimeoutSeconds * 1000,
      maxIkeBuffer: l.limits.maxIkeOutputKiB * 1024,
    },
    log,
    metrics,
  );
  edgeRef.edge = edge;
  const ports = await edge.start();
  const a = hostPort(o.admin, '--admin');
  const status = () => {
    const owners = new Map<string, number>();
    for (const w of router.table) if (w) owners.set(w, (owners.get(w) ?? 0) + 1);
    return {
      id: o.id,
      connections: edge.connectionCount,
      draining: edge.draining,
      unowned: router.table.filter((w) => !w).length,
      shardsByWorker: Object.fromEntries(owners),
    };
  };
  const admin = buildEdgeAdmin({
    log,
    metrics,
    access,
    ready: () => !edge.draining,
    status,
    drain: async (graceMs) => {
      await edge.drain(graceMs);
      await heartbeat();
    },
  });
  await admin.listen({ host: a.host, port: a.port });
  // Edges are members too (for the control API's /v1/edges and drains), with the workers' TTL.
  const heartbeat = () =>
    edgeMembers
      .heartbeat(
        { id: o.id, relay: '', admin: o.admin, ...(edge.draining ? { draining: true } : {}) },
        c.leaseTtlMs * 2,
      )
      .catch((e: Error) => log.warn({ err: e.message }, 'edge-heartbeat-failed'));
  await heartbeat();
  const beat = setInterval(() => void heartbeat(), Math.max(100, Math.floor(c.leaseTtlMs / 3)));
  beat.unref();
  log.info({ ...ports, admin: o.admin, allocator: loadedAllocator() }, 'edge-up');
  return {
    async stop() {
      clearInterval(beat);
      access.stop();
      await edgeMembers.leave(o.id).catch(() => undefined);
      await edge.close();
      router.stop();
      await admin.close();
      await store.close();
      log.info({}, 'edge-stopped');
    },
  };
}

export async function runControl(o: { config: string }): Promise<RoleHandle> {
  const config = loadConfig(o.config);
  const log = createLogger({ level: config.log.level, name: 'ikegate-control' });
  const metrics = new Metrics({ role: 'control' });
  const access = accessFor(config, log, metrics);
  const store = openStore(config, log);
  const client = store.backend.client;
  const managed = await startManaged({
    store: new RedisManagedStore(client, clusterSecrets(config).sealer),
    config,
    log,
    metrics,
  });
  // The shards no live lease covers, for IkegateShardWithoutOwner: seen here even when no worker runs.
  metrics.clusterShards = async () => {
    const owners = await store.owners();
    // Lease expiries are in Redis server time (the lease clock), not ours.
    const [sec, usec] = await client.time();
    const now = Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
    let owned = 0;
    for (const l of owners.values()) if (l.expiresAt > now) owned++;
    return { count: SHARDS, unowned: SHARDS - owned };
  };
  const backend = new ClusterBackend({
    workers: new RedisMembership(client, undefined, membershipOptions(config, log, metrics)),
    edges: new RedisMembership(client, EDGE_MEMBER_PREFIX, membershipOptions(config, log, metrics)),
    leases: store,
    shardCount: SHARDS,
    authorization: `Bearer ${internalToken(clusterSecrets(config).kek)}`,
    controlVersion: () => managed.state.version,
  });
  const app = buildControlApi({
    log,
    metrics,
    access,
    backend,
    managed,
    globals: { lifetimes: config.lifetimes },
    baseDir: dirname(resolve(config.source)),
    ready: () => client.status === 'ready',
    ...(config.control.tls ? { tls: apiTls(config)! } : {}),
  });
  await app.listen({ host: config.control.address, port: config.control.port });
  apiNotice(log, access, `${config.control.address}:${config.control.port}`);
  log.info({ control: `${config.control.address}:${config.control.port}` }, 'control-up');
  return {
    async stop() {
      managed.stop();
      access.stop();
      await app.close();
      await store.close();
    },
  };
}
