/**
 * `ikegate tcp-shim`: command-line front of TcpShim. Parses arguments, reads the CA file, starts
 * the shim and logs one JSON line per event to stdout. The `ikegate` command dispatches here.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';

import { LocalUsageError } from './errors.js';
import { TcpShim, type TcpShimOptions } from './shim.js';

export const TCP_SHIM_USAGE = `usage: ikegate tcp-shim --listen <ip> --upstream <host[:port]> [options]

Relays a UDP-only IKE daemon (e.g. strongSwan) to an RFC 9329 (IKE over TCP) responder.
Point the daemon's remote address at --listen; the shim opens one TCP/TLS stream per daemon.

  --listen <ip>            address the shim binds its UDP sockets on (required)
  --ike-port <n>           UDP port for IKE (default 500)
  --natt-port <n>          UDP port for NAT-T IKE and ESP (default 4500)
  --upstream <host[:port]> RFC 9329 responder; [v6addr]:port for IPv6 (port default 4500) (required)
  --tls                    wrap the stream in TLS
  --insecure               with --tls: do not verify the responder's certificate
  --ca <file>              with --tls: PEM file of trusted CAs
  --servername <name>      with --tls: SNI and certificate name
  --keylog <file>          with --tls: append TLS key-log lines (SSLKEYLOGFILE format)
  --connect-timeout <ms>   TCP connect + TLS handshake timeout (default 10000)
  --max-queued-bytes <n>   per-daemon buffer while connecting (default 262144)
  -h, --help               show this text`;

function usage(message: string): LocalUsageError {
  return new LocalUsageError('IKEGATE_ERR_TCP_SHIM_USAGE', `${message}\n\n${TCP_SHIM_USAGE}`);
}

function parseIntArg(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw usage(`--${name} must be a number, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (n < min || n > max) throw usage(`--${name} must be ${min}..${max}, got ${n}`);
  return n;
}

/** host, host:port, [v6]:port, or a bare IPv6 address. */
function parseUpstream(value: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed !== null) {
    const host = bracketed[1]!;
    if (!net.isIPv6(host)) throw usage(`--upstream: ${JSON.stringify(host)} is not an IPv6 address`);
    return { host, port: parseIntArg('upstream port', bracketed[2], 1, 65535) ?? 4500 };
  }
  if (net.isIPv6(value)) return { host: value, port: 4500 };
  const m = /^([^:\s]+)(?::(\d*))?$/.exec(value);
  if (m === null) throw usage(`--upstream must be host[:port], got ${JSON.stringify(value)}`);
  if (m[2] === '') throw usage(`--upstream has an empty port: ${JSON.stringify(value)}`);
  return { host: m[1]!, port: parseIntArg('upstream port', m[2], 1, 65535) ?? 4500 };
}

/**
 * Turns argv (after `tcp-shim`) into TcpShim options, or 'help'. Reads the --ca file.
 * @throws LocalUsageError (code IKEGATE_ERR_TCP_SHIM_USAGE) with the usage text appended.
 */
export function parseTcpShimArgs(argv: readonly string[]): Omit<TcpShimOptions, 'logger'> | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: 'string' },
        'ike-port': { type: 'string' },
        'natt-port': { type: 'string' },
        upstream: { type: 'string' },
        tls: { type: 'boolean' },
        insecure: { type: 'boolean' },
        ca: { type: 'string' },
        servername: { type: 'string' },
        keylog: { type: 'string' },
        'connect-timeout': { type: 'string' },
        'max-queued-bytes': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw usage(err instanceof Error ? err.message : String(err));
  }
  if (values.help === true) return 'help';
  if (values.listen === undefined) throw usage('--listen is required');
  if (!net.isIP(values.listen))
    throw usage(`--listen must be an IP address, got ${JSON.stringify(values.listen)}`);
  if (values.upstream === undefined) throw usage('--upstream is required');
  const upstream = parseUpstream(values.upstream);
  const useTls = values.tls === true;
  for (const opt of ['insecure', 'ca', 'servername', 'keylog'] as const) {
    if (values[opt] !== undefined && !useTls) throw usage(`--${opt} needs --tls`);
  }
  if (values.insecure === true && values.ca !== undefined)
    throw usage('--insecure and --ca exclude each other');
  let ca: Buffer | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca);
    } catch (err) {
      throw usage(`--ca ${values.ca}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  const ikePort = parseIntArg('ike-port', values['ike-port'], 0, 65535);
  const natTPort = parseIntArg('natt-port', values['natt-port'], 0, 65535);
  const connectTimeoutMs = parseIntArg('connect-timeout', values['connect-timeout'], 1, 3_600_000);
  const maxQueuedBytes = parseIntArg('max-queued-bytes', values['max-queued-bytes'], 1, 1 << 30);
  return {
    listen: {
      address: values.listen,
      ...(ikePort !== undefined ? { ikePort } : {}),
      ...(natTPort !== undefined ? { natTPort } : {}),
    },
    upstream: {
      ...upstream,
      ...(useTls
        ? {
            tls: {
              ...(values.insecure === true ? { rejectUnauthorized: false } : {}),
              ...(ca !== undefined ? { ca } : {}),
              ...(values.servername !== undefined ? { servername: values.servername } : {}),
              ...(values.keylog !== undefined ? { keylogFile: values.keylog } : {}),
            },
          }
        : {}),
    },
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(maxQueuedBytes !== undefined ? { maxQueuedBytes } : {}),
  };
}

export interface RunTcpShimOptions {
  /** Where JSON log lines go. Default process.stdout. */
  readonly stdout?: { write(line: string): unknown };
  /** Aborting it closes the shim (the caller wires SIGINT/SIGTERM to it). */
  readonly signal?: AbortSignal;
}

/**
 * Runs `ikegate tcp-shim <argv>`: returns the started shim (it runs until close() or `signal`),
 * or undefined after printing help.
 * @throws LocalUsageError for bad arguments (message includes the usage text); bind errors as is.
 */
export async function runTcpShim(argv: string[], io: RunTcpShimOptions = {}): Promise<TcpShim | undefined> {
  const out = io.stdout ?? process.stdout;
  const parsed = parseTcpShimArgs(argv);
  if (parsed === 'help') {
    out.write(`${TCP_SHIM_USAGE}\n`);
    return undefined;
  }
  const shim = new TcpShim({
    ...parsed,
    logger: (event, fields) => {
      out.write(`${JSON.stringify({ time: new Date().toISOString(), event, ...fields })}\n`);
    },
  });
  await shim.start();
  if (io.signal !== undefined) {
    if (io.signal.aborted) await shim.close();
    else io.signal.addEventListener('abort', () => void shim.close(), { once: true });
  }
  return shim;
}
