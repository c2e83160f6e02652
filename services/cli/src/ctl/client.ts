/**
 * The HTTP side of `ikegate ctl`: where the API is, which credential to send, and one request at
 * a time with a deadline. node:http/https only (undici is not a dependency of ours): one keep-alive
 * Agent per run carries the CA and the client certificate, so a listing that follows `next` over
 * many pages reuses one TLS connection. `close()` ends it.
 *
 * Every call either resolves with a 2xx answer, or rejects with CtlApiError (the API answered
 * 4xx/5xx: its problem document) or CtlConnectError (no usable answer within the deadline).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { CtlApiError, CtlConnectError, CtlInputError, CtlUsageError, type Problem } from './errors.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_TIMEOUT_SECONDS = 10;
/** A CLI reads whole answers; anything bigger than this is not one the API sends. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** RFC 6750 b64token, as services/control/src/access.ts accepts it. */
const TOKEN_SYNTAX = /^[A-Za-z0-9._~+/=-]{1,512}$/;

/** A bearer token and where it came from (named in 401/403 messages; the token never is). */
export interface TokenSource {
  readonly token: string;
  /** `--token-file FILE`, `$IKEGATE_TOKEN`, `$IKEGATE_TOKEN_FILE (FILE)`. */
  readonly source: string;
}

export interface ConnectionFlags {
  readonly url?: string | undefined;
  readonly 'token-file'?: string | undefined;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly timeout?: string | undefined;
}

export interface Connection {
  readonly url: URL;
  readonly token: TokenSource | null;
  /** How the client authenticates, for 401/403 messages: the token source, or the certificate file. */
  readonly credentials: string;
  readonly timeoutMs: number;
  readonly tls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

function readInput(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new CtlInputError(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function tokenFromFile(file: string, source: string): TokenSource {
  const text = readInput(file, 'the token file').toString('utf8').trim();
  if (!TOKEN_SYNTAX.test(text))
    throw new CtlInputError(
      `${source} does not hold a token (one line: the token \`ikegate ctl token new\` printed)`,
    );
  return { token: text, source };
}

/** --token-file, else $IKEGATE_TOKEN, else the file $IKEGATE_TOKEN_FILE names; null: none. */
export function tokenSource(flags: ConnectionFlags, env: NodeJS.ProcessEnv): TokenSource | null {
  const file = flags['token-file'];
  if (file !== undefined) return tokenFromFile(file, `--token-file ${file}`);
  const inline = env.IKEGATE_TOKEN?.trim();
  if (inline) {
    if (!TOKEN_SYNTAX.test(inline))
      throw new CtlInputError('$IKEGATE_TOKEN does not hold a token (what `ikegate ctl token new` printed)');
    return { token: inline, source: '$IKEGATE_TOKEN' };
  }
  const envFile = env.IKEGATE_TOKEN_FILE;
  if (envFile) return tokenFromFile(envFile, `$IKEGATE_TOKEN_FILE (${envFile})`);
  return null;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The connection the flags and environment describe. Throws CtlUsageError for a bad URL or
 * flag combination, CtlInputError for an unreadable file. `warn` gets a line when a token would
 * cross the network unencrypted.
 */
export function connection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  warn: (line: string) => void,
): Connection {
  const text = flags.url ?? env.IKEGATE_URL ?? DEFAULT_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CtlUsageError(`--url must be an http:// or https:// URL, got ${text}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CtlUsageError(`--url must be an http:// or https:// URL, got ${url.protocol}`);
  if (url.username || url.password)
    throw new CtlUsageError('--url must not carry credentials; use --token-file or $IKEGATE_TOKEN');
  if (url.search || url.hash) throw new CtlUsageError('--url must not have a query or fragment');
  const https = url.protocol === 'https:';
  for (const f of ['ca', 'cert', 'key'] as const)
    if (flags[f] !== undefined && !https) throw new CtlUsageError(`--${f} needs an https:// --url`);
  if ((flags.cert === undefined) !== (flags.key === undefined))
    throw new CtlUsageError('--cert and --key go together');

  let timeoutMs = DEFAULT_TIMEOUT_SECONDS * 1000;
  if (flags.timeout !== undefined) {
    const s = Number(flags.timeout);
    if (!Number.isFinite(s) || s <= 0 || s > 3600)
      throw new CtlUsageError(
        `--timeout must be seconds, more than 0 and at most 3600, got ${flags.timeout}`,
      );
    timeoutMs = Math.ceil(s * 1000);
  }

  const token = tokenSource(flags, env);
  if (token && !https && !isLoopback(url.hostname))
    warn(`warning: the token crosses the network unencrypted to ${url.host}; use an https:// --url`);
  const tls = {
    ...(flags.ca !== undefined ? { ca: readInput(flags.ca, '--ca') } : {}),
    ...(flags.cert !== undefined ? { cert: readInput(flags.cert, '--cert') } : {}),
    ...(flags.key !== undefined ? { key: readInput(flags.key, '--key') } : {}),
  };
  const credentials = token
    ? `token from ${token.source}`
    : flags.cert !== undefined
      ? `client certificate ${flags.cert}`
      : 'no credentials: give --token-file, $IKEGATE_TOKEN or $IKEGATE_TOKEN_FILE';
  return { url, token, credentials, timeoutMs, tls };
}

export interface ApiAnswer {
  readonly status: number;
  /** The parsed JSON body; undefined for an empty one (204). */
  readonly body: unknown;
  readonly headers: http.IncomingHttpHeaders;
}

export type Query = Record<string, string | number | boolean | undefined>;

const TLS_HINT: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'give the CA (or the certificate) with --ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'give the CA with --ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'give the CA with --ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'give the CA with --ca',
  ERR_TLS_CERT_ALTNAME_INVALID: "the URL's host is not a name in the server's certificate",
  CERT_HAS_EXPIRED: "the server's certificate has expired",
};

/** A JSON client for the control API. Not re-entrant per call; many calls may run at once. */
export class ApiClient {
  readonly #c: Connection;
  readonly #agent: http.Agent;

  constructor(c: Connection) {
    this.#c = c;
    this.#agent =
      c.url.protocol === 'https:'
        ? new https.Agent({ keepAlive: true, maxSockets: 4, ...c.tls })
        : new http.Agent({ keepAlive: true, maxSockets: 4 });
  }

  get connection(): Connection {
    return this.#c;
  }

  /** `path` (starting with /v1/...) under the URL's own path, so an API behind a prefix works. */
  #resolve(path: string, query: Query | undefined): URL {
    const u = new URL(this.#c.url.href);
    u.pathname = u.pathname.replace(/\/+$/, '') + path;
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /**
   * One request. Resolves with a 2xx answer (JSON parsed); rejects with CtlApiError for 4xx/5xx
   * or an unusable body, CtlConnectError when there is no answer within the timeout.
   */
  call(method: string, path: string, o: { query?: Query; body?: unknown } = {}): Promise<ApiAnswer> {
    const url = this.#resolve(path, o.query);
    const payload = o.body === undefined ? undefined : Buffer.from(JSON.stringify(o.body), 'utf8');
    const headers: http.OutgoingHttpHeaders = {
      accept: 'application/json, application/problem+json',
      'user-agent': 'ikegate-ctl/0.1.0',
      ...(this.#c.token ? { authorization: `Bearer ${this.#c.token.token}` } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
    };
    const where = `${this.#c.url.origin}`;
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<ApiAnswer>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        f();
      };
      const fail = (e: unknown) => settle(() => reject(this.#classify(e, where)));
      const req = mod.request(url, { method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES)
            req.destroy(new CtlApiError({ status: res.statusCode ?? 0, title: 'the answer is too large' }));
          else chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          try {
            const answer = this.#answer(res, Buffer.concat(chunks));
            settle(() => resolve(answer));
          } catch (e) {
            fail(e);
          }
        });
      });
      const timer = setTimeout(
        () =>
          req.destroy(
            new CtlConnectError(
              `${where}: no answer to ${method} ${url.pathname} within ${this.#c.timeoutMs / 1000} s`,
              'TIMEOUT',
            ),
          ),
        this.#c.timeoutMs,
      );
      req.on('error', fail);
      req.end(payload);
    });
  }

  #answer(res: http.IncomingMessage, raw: Buffer): ApiAnswer {
    const status = res.statusCode ?? 0;
    const type = String(res.headers['content-type'] ?? '');
    let body: unknown;
    let parsed = false;
    if (raw.length > 0 && /\bjson\b/i.test(type)) {
      try {
        body = JSON.parse(raw.toString('utf8'));
        parsed = true;
      } catch {
        parsed = false;
      }
    }
    if (status >= 200 && status < 300) {
      if (raw.length > 0 && !parsed)
        throw new CtlApiError({
          status,
          title: `the answer is not JSON (content-type ${type || 'none'}); is --url the control API?`,
        });
      return { status, body, headers: res.headers };
    }
    if (parsed && isProblem(body, status)) throw new CtlApiError(body);
    // Not ours (a proxy's error page, a wrong port): the status line and the first line of text.
    const first = raw.toString('utf8').split('\n', 1)[0]!.trim().slice(0, 200);
    throw new CtlApiError({
      status,
      title: res.statusMessage ?? 'error',
      ...(first ? { detail: `not a problem document: ${first}` } : {}),
    });
  }

  #classify(e: unknown, where: string): Error {
    if (e instanceof CtlApiError || e instanceof CtlConnectError) return e;
    const err = e as NodeJS.ErrnoException;
    const code = err.code ?? 'ERROR';
    const hint = TLS_HINT[code];
    const message = err.message.includes(code) ? err.message : `${code} ${err.message}`;
    return new CtlConnectError(`cannot reach ${where}: ${message}${hint ? ` (${hint})` : ''}`, code);
  }

  /** Ends the keep-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}

function isProblem(v: unknown, status: number): v is Problem {
  return (
    typeof v === 'object' &&
    v !== null &&
    (v as Problem).status === status &&
    (typeof (v as Problem).type === 'string' || typeof (v as Problem).title === 'string')
  );
}
