/**
 * The `ikegate` command: `ikegate <command> [options]`; `ikegate --help` lists the commands and
 * `ikegate <command> --help` (or `-h`, or `ikegate help <command>`) prints that command's usage
 * and exits 0. Each command's usage text lives in COMMANDS below, next to the others, except
 * loadgen's and tcp-shim's, which their packages own, and drill's (drill/args.ts); those parse their
 * own arguments.
 */
import { ConfigError } from '@ikegate/config';
import { IKEGATE_VERSION, startTracing } from '@ikegate/telemetry';
import { AccessFileError } from '@ikegate/control';
import { LocalUsageError as TcpShimUsageError, runTcpShim, TCP_SHIM_USAGE } from '@ikegate/tcp-shim';
import { TunUnavailableError } from '@ikegate/tun';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { LOADGEN_USAGE, loadgenMain } from '@ikegate/loadgen';
import { connect, type ConnectTransport } from './connect.js';
import { MetricsListenError, parseListen } from './metrics-http.js';
import { CTL_USAGE, ctlMain } from './ctl.js';
import { DRILL_USAGE, drillMain } from './drill/main.js';
import { RoleUsageError, runControl, runEdge, runWorker } from './roles.js';
import { nativeUdpFor } from '@ikegate/transport';
import { up } from './up.js';

interface CommandHelp {
  /** One line for the command list. */
  readonly summary: string;
  /** What `ikegate <command> --help` prints: the usage line, what the command does, its options. */
  readonly usage: string;
}

const HELP_OPTION = '  -h, --help              show this text';

const COMMANDS = {
  up: {
    summary: 'the gateway: edge, worker and control in one process',
    usage: `usage: ikegate up [--config FILE] [--no-tun] [--tls-keylog FILE]

Runs edge, worker and control in one process. The TUN device, routes and nftables need root.
  --config FILE           configuration (default ikegate.yaml, see docs/ikegate.example.yaml)
  --no-tun                control plane only: no TUN device, no root needed
  --tls-keylog FILE       append TLS secrets (NSS key log format) for decrypting captures
${HELP_OPTION}`,
  },
  connect: {
    summary: 'the initiator client: an IKE SA + CHILD SA to a server, virtual IP on a TUN',
    usage: `usage: ikegate connect --server HOST --id ID --remote-id ID (--psk SECRET | --psk-file FILE) [options]

The initiator client: an IKE SA and a CHILD SA to a server, the virtual IP it assigns on a TUN
device (needs root), the server's networks routed through it.
  --server HOST           the server (required)
  --id ID                 our identity (required)
  --remote-id ID          the server's identity (required)
  --psk SECRET            pre-shared key, at least 16 characters
  --psk-file FILE         read the pre-shared key from FILE (trailing newlines dropped)
  --transport T           auto | udp | tcp | tls (default auto: UDP, TCP when UDP gets no answer)
  --ts CIDR               a server-side network to reach, repeatable (default 0.0.0.0/0)
  --ike PROPOSAL          IKE proposal, repeatable (default aes256gcm16-prfsha256-x25519)
  --esp PROPOSAL          ESP proposal, repeatable (default aes256gcm16)
  --tun NAME              TUN device (default ikgc0)
  --no-tun                no TUN device: control plane only, no root needed
  --no-vip                do not ask for a virtual IP (no CFG_REQUEST)
  --ca FILE               TLS: PEM file of the CAs the server's certificate must chain to
  --insecure              TLS: do not verify the server's certificate
  --keylog FILE           TLS: append key-log lines (SSLKEYLOGFILE format)
  --dpd SECONDS           liveness check after SECONDS without traffic; 0: none (default 30)
  --alternate HOST:PORT   another stream endpoint to try when the server is unreachable, repeatable
  --udp-fallback SECONDS  with --transport auto: UDP retransmissions before falling back to TCP (default 5)
  --port-ike N --port-natt N --port-tcp N --port-tls N   server ports (default 500 4500 4500 443)
  --metrics HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics (default: none)
  --log-level LEVEL       log level on stderr (default info)
${HELP_OPTION}`,
  },
  edge: {
    summary: 'a cluster edge: the peer-facing listeners, frames routed by SPI to workers',
    usage: `usage: ikegate edge --id ID --admin HOST:PORT [--config FILE] [--address A] [--udp-ike P] [--udp-natt P] [--tcp P] [--tls P]

A cluster edge (config cluster:): the peer-facing UDP, TCP and TLS listeners; routes each frame
by its SPI to the worker that owns the SA's shard.
  --config FILE           configuration with a cluster: section (default ikegate.yaml)
  --id ID                 this edge's name: letters, digits, _ . - (required)
  --admin HOST:PORT       admin HTTP: /metrics, /v1/routes (required)
  --address A             listen on A instead of the configured addresses
  --udp-ike P --udp-natt P --tcp P --tls P   listen ports instead of the configured ones
  --relay-cert FILE --relay-key FILE   this edge's relay certificate (CN edge:<id>) instead of cluster.relayTls's
${HELP_OPTION}`,
  },
  worker: {
    summary: 'a cluster worker: leases shards, runs IKE and ESP for their SAs',
    usage: `usage: ikegate worker --id ID --relay HOST:PORT --admin HOST:PORT [--config FILE] [--tun NAME]

A cluster worker (config cluster:): leases shards, runs IKE and ESP for their SAs, writes SA
state through to Redis, and serves the frame relay the edges connect to.
  --config FILE           configuration with a cluster: section (default ikegate.yaml)
  --id ID                 this worker's name: letters, digits, _ . - (required)
  --relay HOST:PORT       where the edges reach this worker's frame relay (required)
  --admin HOST:PORT       admin HTTP: /metrics, /v1/sas, /v1/shards (required)
  --tun NAME              a TUN device for the data plane (needs root); without: control plane only
  --relay-cert FILE --relay-key FILE   this worker's relay certificate (CN worker:<id>) instead of cluster.relayTls's
${HELP_OPTION}`,
  },
  control: {
    summary: "the cluster control API, on the config's control address",
    usage: `usage: ikegate control [--config FILE]

The cluster control API (config cluster:): members, shard leases, SAs gathered from the workers,
/metrics; listens on the configuration's control: address.
  --config FILE           configuration with a cluster: section (default ikegate.yaml)
${HELP_OPTION}`,
  },
  ctl: {
    summary: 'the control API from the command line: SAs, peers, pools, cluster (like swanctl)',
    usage: CTL_USAGE,
  },
  loadgen: {
    summary: 'many IKE SA setups from one process, for load tests',
    usage: LOADGEN_USAGE,
  },
  drill: {
    summary: 'inject a fault (kill/stop a worker, kill an edge) under live traffic; outage per SA',
    usage: DRILL_USAGE,
  },
  'tcp-shim': {
    summary: "carry a UDP-only IKE daemon's traffic over RFC 9329 TCP",
    usage: TCP_SHIM_USAGE,
  },
  version: {
    summary: 'print the version',
    usage: `usage: ikegate version

Prints the version.
${HELP_OPTION}`,
  },
  help: {
    summary: "list the commands, or print one command's usage",
    usage: `usage: ikegate help [COMMAND]

Lists the commands, or prints COMMAND's usage (the same as ikegate COMMAND --help).
${HELP_OPTION}`,
  },
} as const satisfies Record<string, CommandHelp>;

type Command = keyof typeof COMMANDS;

function isCommand(name: string | undefined): name is Command {
  return name !== undefined && Object.hasOwn(COMMANDS, name);
}

const USAGE = `usage: ikegate <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)}  ${c.summary}`)
  .join('\n')}

\`ikegate <command> --help\` prints a command's usage and options.
`;

/** The usage text for `command`, ending in one newline; the command list for anything else. */
function usageOf(command: string | undefined): string {
  return isCommand(command) ? `${COMMANDS[command].usage.trimEnd()}\n` : USAGE;
}

/** `--help` or `-h` anywhere in a command's arguments asks for its usage, as loadgen's own parser does. */
function asksForHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

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
/**
 * Runs a long-lived role with the OpenTelemetry SDK started first when the environment asks for
 * traces (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; docs/observability.md
 * "Tracing"); otherwise the SDK is never loaded. Spans still buffered are exported at stop. A
 * launcher that only re-executed itself (TUN) shuts the SDK down at once: its child traces.
 */
async function traced(
  role: string,
  run: () => Promise<{ stop(): Promise<void> } | undefined>,
): Promise<{ stop(): Promise<void> } | undefined> {
  const tracing = await startTracing({ role });
  if (!tracing) return run();
  let handle: { stop(): Promise<void> } | undefined;
  try {
    handle = await run();
  } finally {
    if (!handle) await tracing.shutdown();
  }
  if (!handle) return undefined;
  const h = handle;
  return { stop: () => h.stop().finally(() => tracing.shutdown()) };
}

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
  // ctl prints its own usage per subcommand (`ikegate ctl sas --help`).
  if (isCommand(command) && command !== 'help' && command !== 'ctl' && asksForHelp(rest)) {
    process.stdout.write(usageOf(command));
    return 0;
  }
  switch (command) {
    case 'up': {
      const known = new Set(['--config', '--no-tun', '--tls-keylog']);
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i]!;
        if (!known.has(a)) throw new UsageError(`unknown option ${a}`);
        if (a !== '--no-tun') i++;
      }
      const tlsKeylog = flag(rest, '--tls-keylog');
      const running = await traced('up', () =>
        up({
          configPath: flag(rest, '--config') ?? 'ikegate.yaml',
          noTun: rest.includes('--no-tun'),
          ...(tlsKeylog ? { tlsKeylog } : {}),
        }),
      );
      if (!running) return -1; // the launcher of a re-executed child: its exit code follows
      stopOnSignals(() => running.stop());
      return -1;
    }
    case 'connect': {
      const handle = await connect(connectOptions(rest));
      if (!handle) return -1;
      // Before the first attempt completes: a server that never answers must not delay a stop.
      stopOnSignals(() => handle.stop());
      await handle.started;
      return -1;
    }
    case 'ctl':
      return await ctlMain(rest);
    case 'loadgen':
      return await loadgenMain(rest);
    case 'drill':
      return await drillMain(rest);
    case 'worker':
    case 'edge':
    case 'control': {
      const handle = await traced(command, () => runRole(command, rest));
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
      process.stdout.write(`ikegate ${IKEGATE_VERSION}\n`);
      return 0;
    case 'help': {
      const [topic] = rest;
      if (topic === undefined || topic === '--help' || topic === '-h') {
        process.stdout.write(topic === undefined ? USAGE : usageOf('help'));
        return 0;
      }
      if (!isCommand(topic)) throw new UsageError(`unknown command ${topic}`);
      process.stdout.write(usageOf(topic));
      return 0;
    }
    case undefined:
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
        'relay-cert': { type: 'string' },
        'relay-key': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (role === 'control') return runControl({ config: v.config! });
  if (!v.id || !/^[A-Za-z0-9_.-]{1,64}$/.test(v.id))
    throw new UsageError(`${role}: --id is required (letters, digits, _ . -)`);
  if (!v.admin) throw new UsageError(`${role}: --admin HOST:PORT is required`);
  if ((v['relay-cert'] === undefined) !== (v['relay-key'] === undefined))
    throw new UsageError(`${role}: --relay-cert and --relay-key go together`);
  const relayCert = v['relay-cert']
    ? { relayCert: { certificate: v['relay-cert'], key: v['relay-key']! } }
    : {};
  if (role === 'worker') {
    if (!v.relay) throw new UsageError('worker: --relay HOST:PORT is required');
    return runWorker({
      config: v.config!,
      id: v.id,
      relay: v.relay,
      admin: v.admin,
      ...(v.tun ? { tun: v.tun } : {}),
      ...relayCert,
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
    ...relayCert,
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
        metrics: { type: 'string' },
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
  if (transport === 'auto' || transport === 'udp') {
    // Checked here: inside connect() a bad value would fail every (re)connect, retried forever.
    try {
      nativeUdpFor();
    } catch (e) {
      throw new UsageError(`connect: ${(e as Error).message}`);
    }
  }
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
    ...(v.metrics === undefined ? {} : { metricsListen: listenOption(v.metrics, '--metrics') }),
  };
}

function listenOption(v: string, flag: string): { host: string; port: number } {
  try {
    return parseListen(v, flag);
  } catch (e) {
    throw new UsageError(`connect: ${(e as Error).message}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof RoleUsageError) {
      const [command] = process.argv.slice(2);
      process.stderr.write(`ikegate: ${e.message}\n\n${usageOf(command === 'help' ? undefined : command)}`);
      process.exit(2);
    }
    if (e instanceof TcpShimUsageError && e.code === 'IKEGATE_ERR_TCP_SHIM_USAGE') {
      // Its message already ends with the tcp-shim usage.
      process.stderr.write(`ikegate tcp-shim: ${e.message}\n`);
      process.exit(2);
    }
    if (e instanceof ConfigError || e instanceof AccessFileError || e instanceof TunUnavailableError) {
      process.stderr.write(`ikegate: ${e.message}\n`);
      process.exit(e instanceof TunUnavailableError ? 4 : 3);
    }
    if (e instanceof MetricsListenError) {
      process.stderr.write(`ikegate: ${e.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`ikegate: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
