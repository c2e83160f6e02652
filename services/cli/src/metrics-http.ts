/**
 * A Prometheus scrape endpoint for a process without the control API (`ikegate connect`): GET or
 * HEAD /metrics answers the registry in the text exposition format; any other path is 404, any
 * other method 405. It reads nothing from a request but its line and headers, holds at most
 * MAX_CONNECTIONS sockets, and gives each request HEADERS_TIMEOUT_MS to arrive: a client that
 * never finishes its request, or many of them, costs a bounded few sockets for a bounded time.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger, Metrics } from '@ikegate/telemetry';

const MAX_CONNECTIONS = 16;
const HEADERS_TIMEOUT_MS = 10_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** The address could not be bound (in use, not ours, no permission): what and why, no stack. */
export class MetricsListenError extends Error {
  constructor(
    at: { host: string; port: number },
    readonly code: string | undefined,
    reason: string,
  ) {
    super(
      `cannot serve metrics on ${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}: ${reason}`,
    );
    this.name = 'MetricsListenError';
  }
}

export interface MetricsListener {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Parses `HOST:PORT`; an IPv6 address goes in brackets (`[::1]:9102`), so `::1` alone is refused
 * rather than read as host `:` port 1. Throws a message naming `flag`.
 */
export function parseListen(v: string, flag: string): { host: string; port: number } {
  const i = v.lastIndexOf(':');
  const digits = v.slice(i + 1);
  const port = Number(digits);
  let host = v.slice(0, i);
  const bracketed = host.startsWith('[') && host.endsWith(']');
  if (bracketed) host = host.slice(1, -1);
  const ok =
    i > 0 &&
    host !== '' &&
    !/[[\]]/.test(host) &&
    (bracketed ? host.includes(':') : !host.includes(':')) &&
    /^\d{1,5}$/.test(digits) &&
    port <= 65535;
  if (!ok) throw new Error(`${flag} must be HOST:PORT (IPv6 as [ADDRESS]:PORT, port 0-65535), got ${v}`);
  return { host, port };
}

export function serveMetrics(
  metrics: Metrics,
  at: { host: string; port: number },
  log: Logger,
  /** For tests: the time a request has to arrive (default HEADERS_TIMEOUT_MS). */
  requestTimeoutMs = HEADERS_TIMEOUT_MS,
): Promise<MetricsListener> {
  // Node checks the request timeouts every connectionsCheckingInterval (30 s by default): at a
  // tenth of the timeout, a socket that never finishes its request goes within ~1.1x of it.
  const checkEveryMs = Math.max(10, Math.floor(requestTimeoutMs / 10));
  const server: Server = createServer({ connectionsCheckingInterval: checkEveryMs }, (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: only /metrics is served here\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(text); // node sends no body for HEAD
      },
      (e: unknown) => {
        log.warn({ err: (e as Error).message }, 'metrics-render-failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.maxConnections = MAX_CONNECTIONS;
  server.headersTimeout = requestTimeoutMs;
  server.requestTimeout = requestTimeoutMs;
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.maxHeadersCount = 64;
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new MetricsListenError(at, e.code, e.code ? `${e.code} (${e.message})` : e.message)),
    );
    server.listen(at.port, at.host, () => {
      server.removeAllListeners('error');
      server.on('error', (e) => log.warn({ err: e.message }, 'metrics-listener-error'));
      const address = server.address() as AddressInfo;
      log.info({ address: address.address, port: address.port }, 'metrics-listening');
      let closed: Promise<void> | undefined;
      resolve({
        address,
        // Idempotent; connections still open (a scrape mid-request) are closed, not waited for.
        close: () =>
          (closed ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          })),
      });
    });
  });
}
