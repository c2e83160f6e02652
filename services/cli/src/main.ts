/**
 * The `ikegate` command.
 *
 *   ikegate up [--config FILE] [--no-tun] [--tls-keylog FILE]   all roles in one process
 *   ikegate tcp-shim --listen ADDR --upstream HOST[:PORT] ...    RFC 9329 TCP in front of a UDP-only IKE daemon
 *   ikegate version
 */
import { ConfigError } from '@ikegate/config';
import { runTcpShim } from '@ikegate/tcp-shim';
import { TunUnavailableError } from '@ikegate/tun';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { loadgenMain } from '@ikegate/loadgen';
import { connect, type ConnectTransport } from './connect.js';
import { RoleUsageError, runControl, runEdge, runWorker } from './roles.js';
import { up } from './up.js';

const USAGE = `usage: ikegate <command> [options]

commands:
  up          run edge, worker and control in one process
              --config FILE      configuration (default: ikegate.yaml, see docs/ikegate.example.yaml)
              --no-tun           control plane only: no TUN device, no root needed
              --tls-keylog FILE  write TLS secrets (NSS key log) for decrypting captures
  connect     the initiator client: an IKE SA + CHILD SA to a server, virtual IP on a TUN
              --server HOST  --id ID  --remote-id ID  (--psk SECRET | --psk-file FILE)
              [--transport auto|udp|tcp|tls] [--ts CIDR ...] [--ike PROPOSAL ...] [--esp PROPOSAL ...]
              [--tun NAME | --no-tun] [--no-vip] [--ca FILE | --insecure] [--keylog FILE] [--dpd SECONDS]
              [--alternate HOST:PORT ...] [--udp-fallback SECONDS] [--port-ike N] [--port-natt N] [--port-tcp N] [--port-tls N]
              [--log-level LEVEL]
  loadgen     many IKE SA setups from one process, for load tests (ikegate loadgen --help)
  worker      a cluster worker: --config FILE --id ID --relay HOST:PORT --admin HOST:PORT [--tun NAME]
  edge        a cluster edge: --config FILE --id ID --admin HOST:PORT [--address A] [--udp-ike P]
              [--udp-natt P] [--tcp P] [--tls P]
  control     the cluster control API: --config FILE (listens on the config's control address)
  tcp-shim    carry a UDP-only IKE daemon's traffic over RFC 9329 TCP (ikegate tcp-shim --help)
  version     print the version
`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return v;
}

class UsageError extends Error {}

/**
 * SIGINT/SIGTERM stop gracefully (DELETE to peers, TUN and nftables cleaned up). A terminal's
 * Ctrl-C reaches both the TUN launcher and this process, so repeats while stopping are ignored.
 */
function stopOnSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = () => {
    if (stopping) return;
    stopping = true;
    void stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up': {
      const known = new Set(['--config', '--no-tun', '--tls-keylog']);
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i]!;
        if (!known.has(a)) throw new UsageError(`unknown option ${a}`);
        if (a !== '--no-tun') i++;
      }
      const tlsKeylog = flag(rest, '--tls-keylog');
      const running = await up({
        configPath: flag(rest, '--config') ?? 'ikegate.yaml',
        noTun: rest.includes('--no-tun'),
        ...(tlsKeylog ? { tlsKeylog } : {}),
      });
      if (!running) return -1; // the launcher of a re-executed child: its exit code follows
      stopOnSignals(() => running.stop());
      return -1;
    }
    case 'connect': {
      const handle = await connect(connectOptions(rest));
      if (!handle) return -1;
      stopOnSignals(() => handle.stop());
      return -1;
    }
    case 'loadgen':
      return await loadgenMain(rest);
    case 'worker':
    case 'edge':
    case 'control': {
      const handle = await runRole(command, rest);
      if (handle) stopOnSignals(() => handle.stop());
      return -1;
    }
    case 'tcp-shim': {
      const ac = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
      const shim = await runTcpShim(rest, { signal: ac.signal });
      return shim ? -1 : 0;
    }
    case 'version':
    case '--version':
      process.stdout.write('ikegate 0.1.0\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

async function runRole(role: 'worker' | 'edge' | 'control', argv: string[]) {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      strict: true,
      options: {
        config: { type: 'string', default: 'ikegate.yaml' },
        id: { type: 'string' },
        relay: { type: 'string' },
        admin: { type: 'string' },
        tun: { type: 'string' },
        address: { type: 'string' },
        'udp-ike': { type: 'string' },
        'udp-natt': { type: 'string' },
        tcp: { type: 'string' },
        tls: { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (role === 'control') return runControl({ config: v.config! });
  if (!v.id || !/^[A-Za-z0-9_.-]{1,64}$/.test(v.id))
    throw new UsageError(`${role}: --id is required (letters, digits, _ . -)`);
  if (!v.admin) throw new UsageError(`${role}: --admin HOST:PORT is required`);
  if (role === 'worker') {
    if (!v.relay) throw new UsageError('worker: --relay HOST:PORT is required');
    return runWorker({
      config: v.config!,
      id: v.id,
      relay: v.relay,
      admin: v.admin,
      ...(v.tun ? { tun: v.tun } : {}),
    });
  }
  const opt = (x: string | undefined, name: string) => (x === undefined ? undefined : port(x, name, 0));
  const ports = {
    ...(v['udp-ike'] ? { ike: opt(v['udp-ike'], '--udp-ike')! } : {}),
    ...(v['udp-natt'] ? { natT: opt(v['udp-natt'], '--udp-natt')! } : {}),
    ...(v.tcp ? { tcp: opt(v.tcp, '--tcp')! } : {}),
    ...(v.tls ? { tls: opt(v.tls, '--tls')! } : {}),
  };
  return runEdge({
    config: v.config!,
    id: v.id,
    admin: v.admin,
    ...(v.address ? { address: v.address } : {}),
    ports,
  });
}

function port(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UsageError(`${name} must be a port 1-65535, got ${v}`);
  return n;
}

function seconds(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0)
    throw new UsageError(`${name} must be a number of seconds >= 0, got ${v}`);
  return n;
}

function connectOptions(argv: string[]): Parameters<typeof connect>[0] {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: argv,
      strict: true,
      options: {
        server: { type: 'string' },
        transport: { type: 'string', default: 'auto' },
        id: { type: 'string' },
        'remote-id': { type: 'string' },
        psk: { type: 'string' },
        'psk-file': { type: 'string' },
        ts: { type: 'string', multiple: true },
        alternate: { type: 'string', multiple: true },
        ike: { type: 'string', multiple: true },
        esp: { type: 'string', multiple: true },
        tun: { type: 'string', default: 'ikgc0' },
        'no-tun': { type: 'boolean', default: false },
        'no-vip': { type: 'boolean', default: false },
        insecure: { type: 'boolean', default: false },
        ca: { type: 'string' },
        keylog: { type: 'string' },
        dpd: { type: 'string' },
        'udp-fallback': { type: 'string' },
        'port-ike': { type: 'string' },
        'port-natt': { type: 'string' },
        'port-tcp': { type: 'string' },
        'port-tls': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  for (const required of ['server', 'id', 'remote-id'] as const)
    if (!v[required]) throw new UsageError(`connect: --${required} is required`);
  if (!v.psk === !v['psk-file']) throw new UsageError('connect: give exactly one of --psk and --psk-file');
  const transport = v.transport as ConnectTransport;
  if (!['auto', 'udp', 'tcp', 'tls'].includes(transport))
    throw new UsageError(`connect: --transport must be auto, udp, tcp or tls, got ${v.transport}`);
  const psk = v.psk ?? readFileSync(v['psk-file']!, 'utf8').replace(/[\r\n]+$/, '');
  if (psk.length < 16) throw new UsageError('connect: the PSK must be at least 16 characters');
  return {
    server: v.server!,
    alternates: (v.alternate ?? []).map((a) => {
      const i = a.lastIndexOf(':');
      if (i <= 0) throw new UsageError(`connect: --alternate must be HOST:PORT, got ${a}`);
      return { host: a.slice(0, i), port: port(a.slice(i + 1), '--alternate', 0) };
    }),
    transport,
    ports: {
      ike: port(v['port-ike'], '--port-ike', 500),
      natT: port(v['port-natt'], '--port-natt', 4500),
      tcp: port(v['port-tcp'], '--port-tcp', 4500),
      tls: port(v['port-tls'], '--port-tls', 443),
    },
    id: v.id!,
    remoteId: v['remote-id']!,
    psk: new TextEncoder().encode(psk),
    remoteTs: v.ts ?? ['0.0.0.0/0'],
    ike: v.ike ?? ['aes256gcm16-prfsha256-x25519'],
    esp: v.esp ?? ['aes256gcm16'],
    ...(v['no-tun'] ? {} : { tun: v.tun! }),
    requestVirtualIp: !v['no-vip'],
    insecure: v.insecure!,
    ...(v.ca ? { ca: v.ca } : {}),
    ...(v.keylog ? { keylog: v.keylog } : {}),
    dpdSeconds: seconds(v.dpd, '--dpd', 30),
    udpFallbackSeconds: seconds(v['udp-fallback'], '--udp-fallback', 5),
    logLevel: v['log-level']!,
  };
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof RoleUsageError) {
      process.stderr.write(`ikegate: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (e instanceof ConfigError || e instanceof TunUnavailableError) {
      process.stderr.write(`ikegate: ${e.message}\n`);
      process.exit(e instanceof ConfigError ? 3 : 4);
    }
    process.stderr.write(`ikegate: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
