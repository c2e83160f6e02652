/**
 * An `ikegate up` in one test process, without sockets or TUN: the real gateway Worker with its
 * PeerDirectory following a real managed store (in memory), the real control API in front of it
 * (fastify inject), and clients that are real initiating Workers joined to the gateway by direct
 * frame delivery. Tokens for each role are in an access file in a temp directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  DEFAULT_SHARD_BITS,
  type OutboundFrame,
  type PeerPath,
  routeIkeMessage,
  routeEspPacket,
} from '@ikegate/cluster';
import { type Config, parseConfig } from '@ikegate/config';
import { defaultProvider } from '@ikegate/crypto';
import type { TrafficSelector } from '@ikegate/ikev2';
import { FileManagedStore, type ManagedFollower } from '@ikegate/store';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { PeerDirectory, Worker } from '@ikegate/worker';
import type { FastifyInstance } from 'fastify';
import { AccessControl, newToken, type Role, tokenHash } from '../access.js';
import { buildControlApi } from '../api.js';
import { LocalBackend } from '../backend.js';
import { startManaged } from '../managed.js';

const LAYOUT = { shardBits: DEFAULT_SHARD_BITS };
const HASH_KEY = new Uint8Array(32).fill(9);
const ANY: TrafficSelector = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: new Uint8Array([0, 0, 0, 0]),
  endAddress: new Uint8Array([255, 255, 255, 255]),
};

export const GATEWAY_CONFIG = `
identity: { id: gw.example.org }
proposals: { ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16] }
pools: [{ name: rw, cidr: 10.77.0.0/24 }]
peers:
  - { name: rw, id: '*@example.org', auth: { psk: file-peer-psk-0123456789 }, pool: rw }
dpd: { intervalSeconds: 0 }
`;

export interface TestGateway {
  readonly config: Config;
  readonly app: FastifyInstance;
  readonly worker: Worker;
  readonly directory: PeerDirectory;
  readonly managed: ManagedFollower;
  readonly metrics: Metrics;
  readonly tokens: Record<Role, string>;
  readonly logLines: string[];
  readonly dir: string;
  /** A client Worker that initiates to the gateway as `id` with `psk`; resolves when it settles. */
  connect(
    id: string,
    psk: string,
  ): Promise<{ spi: string; established: boolean; client: Worker; vip?: string }>;
  /** fastify inject with a role's token (or none / a raw Authorization value). */
  call(
    role: Role | 'none' | { authorization: string },
    method: string,
    url: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{
    status: number;
    // A test reads response fields freely; the API's schemas are checked elsewhere.
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    json: () => any;
    body: string;
    headers: Record<string, unknown>;
  }>;
  close(): Promise<void>;
}

let nextPort = 40000;

export async function testGateway(
  configText = GATEWAY_CONFIG,
  o: { accessFile?: boolean } = {},
): Promise<TestGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-control-'));
  const config = parseConfig(configText, join(dir, 'ikegate.yaml'), { baseDir: dir });
  const out = new PassThrough();
  const logLines: string[] = [];
  out.on('data', (d: Buffer) => logLines.push(...d.toString().trim().split('\n')));
  const log = createLogger({ destination: out, level: 'debug' });
  const metrics = new Metrics({ processMetrics: false });
  const tokens = { viewer: newToken(), operator: newToken(), admin: newToken() } as Record<Role, string>;
  const accessFile = join(dir, 'access.yaml');
  writeFileSync(
    accessFile,
    `tokens:\n${(Object.keys(tokens) as Role[])
      .map((r) => `  - { name: test-${r}, role: ${r}, sha256: ${tokenHash(tokens[r])} }`)
      .join('\n')}\n`,
  );
  const access = new AccessControl({ file: o.accessFile === false ? null : accessFile, log, metrics });
  access.start();
  const events: { worker?: Worker } = {};
  const directory = new PeerDirectory({
    globals: {
      ikeLifetimeSeconds: config.lifetimes.ikeSeconds,
      childLifetimeSeconds: config.lifetimes.childSeconds,
      rekeyMarginSeconds: config.lifetimes.rekeyMarginSeconds,
      dpdSeconds: config.dpd.intervalSeconds,
    },
    log,
    metrics,
    events: { peerChanged: (n, c, k) => events.worker?.peerChanged(n, c, k) },
  });
  const managed = await startManaged({
    store: await FileManagedStore.open(null),
    config,
    log,
    metrics,
    directory,
    applied: (k) => {
      if (k === 'failover') events.worker?.failoverChanged();
    },
  });
  const clients = new Map<string, Worker>();
  const gatewayPath = (port: number): PeerPath => ({
    connection: `udp:4500:192.0.2.10:${port}`,
    transport: 'udp',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '192.0.2.10', port },
  });
  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: {
        localId: config.identity.id,
        ikeProposals: config.proposals.ike,
        espProposals: config.proposals.esp,
        localTs: [ANY],
        remoteTs: [ANY],
        messageIdSync: true,
        replayCounterSync: true,
      },
      matchPeer: (id) => directory.match(id),
      currentTrustAnchors: () => directory.trustAnchors(),
      currentReconnectWaitSeconds: () => directory.failover.waitSeconds,
      layout: LAYOUT,
      ikeLifetimeSeconds: config.lifetimes.ikeSeconds,
      childLifetimeSeconds: config.lifetimes.childSeconds,
      rekeyMarginSeconds: config.lifetimes.rekeyMarginSeconds,
      dpdSeconds: config.dpd.intervalSeconds,
    },
    {
      send: (f: OutboundFrame) => {
        const c = clients.get(f.path.connection);
        if (!c) return 'no-connection';
        const bytes = f.bytes.slice();
        const path: PeerPath = { ...f.path, local: f.path.remote, remote: f.path.local };
        setImmediate(() => c.deliver({ kind: f.kind, path, bytes, shard: 0 }));
        return 'sent';
      },
    },
    log.child({ role: 'worker' }),
    metrics,
  );
  events.worker = worker;
  const app = buildControlApi({
    log,
    metrics,
    access,
    backend: new LocalBackend(
      worker,
      () => managed.state.version,
      () => directory.invalid(),
    ),
    managed,
    globals: { lifetimes: config.lifetimes },
    baseDir: dir,
    ready: () => true,
  });

  const connect: TestGateway['connect'] = async (id, psk) => {
    const port = nextPort++;
    const toGateway = gatewayPath(port);
    let settled: (v: boolean) => void = () => undefined;
    const done = new Promise<boolean>((r) => (settled = r));
    let vip: string | undefined;
    const client = new Worker(
      {
        provider: defaultProvider,
        policy: {
          localId: id,
          localIdType: 3,
          ikeProposals: config.proposals.ike,
          espProposals: config.proposals.esp,
          localTs: [ANY],
          remoteTs: [ANY],
          requestVirtualIp: true,
        },
        matchPeer: () => undefined,
        layout: LAYOUT,
        ikeLifetimeSeconds: 3600,
        childLifetimeSeconds: 3600,
        rekeyMarginSeconds: 60,
        dpdSeconds: 0,
        observer: {
          childInstalled: (c) => {
            vip = c.virtualIp;
            settled(true);
          },
          childFailed: () => settled(true),
          ikeSaDeleted: () => settled(false),
        },
      },
      {
        send: (f: OutboundFrame) => {
          const bytes = f.bytes.slice();
          setImmediate(() => {
            const d =
              f.kind === 'ike'
                ? routeIkeMessage(bytes, '192.0.2.10', HASH_KEY, LAYOUT)
                : routeEspPacket(bytes, LAYOUT);
            if (d.kind === 'shard') worker.deliver({ kind: f.kind, path: toGateway, bytes, shard: d.shard });
          });
          return 'sent';
        },
      },
      log.child({ role: 'client', id }),
      new Metrics({ processMetrics: false }),
    );
    const clientPath: PeerPath = { ...toGateway, local: toGateway.remote, remote: toGateway.local };
    clients.set(toGateway.connection, client);
    const spi = client.initiate({
      policy: {
        localId: id,
        localIdType: 3,
        ikeProposals: config.proposals.ike,
        espProposals: config.proposals.esp,
        localTs: [ANY],
        remoteTs: [ANY],
        requestVirtualIp: true,
      },
      psk: new TextEncoder().encode(psk),
      remoteId: config.identity.id,
      path: clientPath,
    });
    const timeout = setTimeout(() => settled(false), 10_000);
    const ok = await done;
    clearTimeout(timeout);
    const established = ok && client.get(spi)?.status === 'established';
    return { spi, established, client, ...(vip ? { vip } : {}) };
  };

  const call: TestGateway['call'] = async (role, method, url, body, contentType) => {
    const authorization =
      role === 'none' ? undefined : typeof role === 'object' ? role.authorization : `Bearer ${tokens[role]}`;
    const r = await app.inject({
      method: method as 'GET',
      url,
      headers: {
        ...(authorization !== undefined ? { authorization } : {}),
        ...(body !== undefined ? { 'content-type': contentType ?? 'application/json' } : {}),
      },
      ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    return { status: r.statusCode, json: () => r.json(), body: r.body, headers: r.headers };
  };

  return {
    config,
    app,
    worker,
    directory,
    managed,
    metrics,
    tokens,
    logLines,
    dir,
    connect,
    call,
    async close() {
      managed.stop();
      access.stop();
      await app.close();
      for (const c of clients.values()) await c.close(0);
      await worker.close(0);
    },
  };
}

/** Random bytes as a PSK-length string. */
export function randomPsk(): string {
  return randomBytes(18).toString('base64url');
}
