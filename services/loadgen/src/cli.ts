/** `ikegate loadgen` arguments, progress display and output. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type LoadgenOptions, type LoadgenProgress, runLoadgen, type LoadgenTransport } from './loadgen.js';
import { runLoadgenProcesses } from './processes.js';
import { formatSummary } from './stats.js';

export const LOADGEN_USAGE = `usage: ikegate loadgen --server HOST --remote-id ID (--psk SECRET | --psk-file FILE) [options]

Many IKE SA + CHILD SA setups from one process, or several (control plane only, no TUN).
  --count N             SAs to set up in total (default 100)
  --concurrency N       setups in flight at once, in total (default 16)
  --processes N         split count, concurrency and rate over N child processes, each with
                        its own sockets and SA numbers; one summary (default 1: no children)
  --rate N              start at most N setups per second (default: no limit)
  --transport T         udp | tcp | tls (default udp)
  --id PATTERN          our identity, {n} = SA number 1..N (default load-{n}@example.org)
  --ts CIDR ...         networks to ask for (default 0.0.0.0/0)
  --ike PROPOSAL ...    (default aes256gcm16-prfsha256-x25519)
  --esp PROPOSAL ...    (default aes256gcm16)
  --ca FILE | --insecure   TLS server verification
  --timeout SECONDS     per setup (default 30)
  --udp-sockets N       UDP sockets the SAs of a process share (default 1)
  --hold                keep the SAs up after the run until SIGINT/SIGTERM
  --delete-at-end       delete every SA before exiting (default: just close, SAs stay on the server)
  --json                print the summary as JSON on stdout
  --no-vip              no CFG_REQUEST: site-to-site style SAs without a virtual IP
  --quiet               no progress on stderr
  --port-ike N --port-natt N --port-tcp N --port-tls N   server ports (500 4500 4500 443)
  --log-level LEVEL     worker log level on stderr (default error)
Exit status: 0 if every setup succeeded, 1 if any failed, 2 on a usage error.
`;

export class LoadgenUsageError extends Error {}

function int(v: string | undefined, name: string, dflt: number, min = 1, max = 1e9): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new LoadgenUsageError(`${name} must be an integer ${min}-${max}, got ${v}`);
  return n;
}

export interface LoadgenCliOptions {
  readonly run: LoadgenOptions;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly hold: boolean;
  readonly deleteAtEnd: boolean;
  /** Child processes the run is split over; 1 runs in this process. */
  readonly processes: number;
}

export function parseLoadgenArgs(argv: readonly string[]): LoadgenCliOptions {
  let v;
  try {
    ({ values: v } = parseArgs({
      args: [...argv],
      strict: true,
      options: {
        server: { type: 'string' },
        transport: { type: 'string', default: 'udp' },
        count: { type: 'string' },
        concurrency: { type: 'string' },
        processes: { type: 'string' },
        rate: { type: 'string' },
        id: { type: 'string', default: 'load-{n}@example.org' },
        'remote-id': { type: 'string' },
        psk: { type: 'string' },
        'psk-file': { type: 'string' },
        ts: { type: 'string', multiple: true },
        ike: { type: 'string', multiple: true },
        esp: { type: 'string', multiple: true },
        insecure: { type: 'boolean', default: false },
        ca: { type: 'string' },
        timeout: { type: 'string' },
        'udp-sockets': { type: 'string' },
        hold: { type: 'boolean', default: false },
        'delete-at-end': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        'no-vip': { type: 'boolean', default: false },
        'port-ike': { type: 'string' },
        'port-natt': { type: 'string' },
        'port-tcp': { type: 'string' },
        'port-tls': { type: 'string' },
        'log-level': { type: 'string', default: 'error' },
      },
    }));
  } catch (e) {
    throw new LoadgenUsageError((e as Error).message);
  }
  for (const required of ['server', 'remote-id'] as const)
    if (!v[required]) throw new LoadgenUsageError(`--${required} is required`);
  if (!v.psk === !v['psk-file']) throw new LoadgenUsageError('give exactly one of --psk and --psk-file');
  const transport = v.transport as LoadgenTransport;
  if (!['udp', 'tcp', 'tls'].includes(transport))
    throw new LoadgenUsageError(`--transport must be udp, tcp or tls, got ${v.transport}`);
  const psk = v.psk ?? readFileSync(v['psk-file']!, 'utf8').replace(/[\r\n]+$/, '');
  const timeout = Number(v.timeout ?? 30);
  if (!Number.isFinite(timeout) || timeout <= 0)
    throw new LoadgenUsageError(`--timeout must be a number of seconds > 0, got ${v.timeout}`);
  const rate = v.rate === undefined ? undefined : Number(v.rate);
  if (rate !== undefined && !(Number.isFinite(rate) && rate > 0))
    throw new LoadgenUsageError(`--rate must be a number > 0, got ${v.rate}`);
  const count = int(v.count, '--count', 100);
  const concurrency = int(v.concurrency, '--concurrency', 16, 1, 100_000);
  const processes = int(v.processes, '--processes', 1, 1, 256);
  if (processes > count || processes > concurrency)
    throw new LoadgenUsageError(
      `--processes ${processes} must not exceed --count (${count}) or --concurrency (${concurrency})`,
    );
  return {
    run: {
      server: v.server!,
      transport,
      ports: {
        ike: int(v['port-ike'], '--port-ike', 500, 1, 65535),
        natT: int(v['port-natt'], '--port-natt', 4500, 1, 65535),
        tcp: int(v['port-tcp'], '--port-tcp', 4500, 1, 65535),
        tls: int(v['port-tls'], '--port-tls', 443, 1, 65535),
      },
      count,
      concurrency,
      ...(rate !== undefined ? { rate } : {}),
      idPattern: v.id!,
      remoteId: v['remote-id']!,
      psk: new TextEncoder().encode(psk),
      remoteTs: v.ts ?? ['0.0.0.0/0'],
      ike: v.ike ?? ['aes256gcm16-prfsha256-x25519'],
      esp: v.esp ?? ['aes256gcm16'],
      insecure: v.insecure!,
      ...(v.ca ? { ca: readFileSync(v.ca, 'utf8') } : {}),
      timeoutMs: timeout * 1000,
      udpSockets: int(v['udp-sockets'], '--udp-sockets', 1, 1, 1024),
      logLevel: v['log-level']!,
      requestVirtualIp: !v['no-vip'],
    },
    json: v.json!,
    quiet: v.quiet!,
    hold: v.hold!,
    deleteAtEnd: v['delete-at-end']!,
    processes,
  };
}

function progressLine(p: LoadgenProgress, width: number): string {
  const done = p.established + p.failed;
  const filled = Math.round((done / p.count) * width);
  const rate = p.elapsedMs > 0 ? (p.established / p.elapsedMs) * 1000 : 0;
  return (
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${p.count}` +
    `  ok ${p.established}  failed ${p.failed}  in flight ${p.inFlight}  ${rate.toFixed(0)} setups/s`
  );
}

/** Runs `ikegate loadgen`; returns the exit status. */
export async function loadgenMain(argv: readonly string[], stderr = process.stderr): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(LOADGEN_USAGE);
    return 0;
  }
  let cli: LoadgenCliOptions;
  try {
    cli = parseLoadgenArgs(argv);
  } catch (e) {
    if (!(e instanceof LoadgenUsageError)) throw e;
    stderr.write(`ikegate loadgen: ${e.message}\n\n${LOADGEN_USAGE}`);
    return 2;
  }
  const tty = stderr.isTTY === true;
  const onProgress = cli.quiet
    ? undefined
    : tty
      ? (p: LoadgenProgress) => stderr.write(`\r${progressLine(p, 30)}\x1b[K`)
      : (p: LoadgenProgress) => stderr.write(`loadgen: ${progressLine(p, 20)}\n`);
  const progress = onProgress ? { onProgress, progressIntervalMs: tty ? 200 : 2000 } : {};
  const run =
    cli.processes > 1
      ? await runLoadgenProcesses({
          ...cli.run,
          ...progress,
          processes: cli.processes,
          deleteOnOrphan: cli.deleteAtEnd,
        })
      : await runLoadgen({ ...cli.run, ...progress });
  if (onProgress && tty) stderr.write('\n');
  const s = run.summary;
  process.stdout.write(cli.json ? JSON.stringify(s) + '\n' : formatSummary(s));
  if (cli.hold) {
    if (!cli.quiet) stderr.write(`loadgen: holding ${run.held()} SAs; SIGINT or SIGTERM ends the run\n`);
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((resolve) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
    });
    clearInterval(keepAlive);
  }
  const deleted = await run.stop({ deleteSas: cli.deleteAtEnd });
  if (cli.deleteAtEnd && !cli.quiet) stderr.write(`loadgen: ${deleted} SAs deleted\n`);
  return s.failed === 0 ? 0 : 1;
}
