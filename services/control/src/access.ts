/**
 * Who may call the control API, and as what role. Pure apart from reading the access file: no
 * fastify here; the routes ask `authenticate` for a Principal and `roleAllows` for a decision.
 *
 * How this works: the access file (YAML or JSON) lists bearer tokens by the SHA-256 of their text
 * and, for mTLS, client certificates by subject CN or SHA-256 fingerprint, each with a name (the
 * audit actor) and a role. `parseAccessFile` validates it the way libs/config does: every issue is
 * collected with its path, and one AccessFileError carries them all. No message echoes a hash,
 * a token, or any value that could be one. `AccessControl` holds the current list: it loads it at
 * `start()` (a bad or unreadable file is fatal then) and polls the file's stat afterwards, because
 * a Kubernetes Secret volume updates by swapping a symlink, which fs.watch misses. A changed file
 * that is valid replaces the list in one assignment; one that is invalid or gone leaves the
 * previous list in force (an operator's typo must not lock everyone out or let everyone in).
 *
 * Authentication order: an Authorization header, when present, decides alone (a bad token is
 * refused even when a good certificate came with it); otherwise an authorized client certificate.
 * The token is hashed before any comparison, so the Map lookup and the constant-time compare with
 * the internal credential never depend on how much of the token matched.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync, type Stats } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { parseDocument } from 'yaml';

// --- roles ---------------------------------------------------------------------------------------

export type Role = 'viewer' | 'operator' | 'admin';

/** Ascending: each role may do everything the ones before it may. */
export const ROLES: readonly Role[] = Object.freeze(['viewer', 'operator', 'admin'] as const);

/**
 * Whether a principal holding `have` may do what needs `need`. 'internal' (the cluster's own
 * credential) allows everything. Fails closed: an unknown role string (from untyped JS) allows
 * nothing.
 */
export function roleAllows(have: Role | 'internal', need: Role): boolean {
  const n = ROLES.indexOf(need);
  if (n < 0) return false;
  if (have === 'internal') return true;
  return ROLES.indexOf(have) >= n;
}

// --- principals and results ----------------------------------------------------------------------

export interface Principal {
  /** For audit lines: the entry's name, or INTERNAL_ACTOR. */
  readonly actor: string;
  readonly role: Role | 'internal';
  readonly via: 'token' | 'certificate' | 'internal';
}

export type AuthResult =
  | { readonly ok: true; readonly principal: Principal }
  | {
      readonly ok: false;
      readonly reason: 'missing' | 'malformed' | 'unknown-token' | 'unknown-certificate';
    };

/** The actor of the internal credential; parentheses cannot occur in a configured name. */
export const INTERNAL_ACTOR = '(internal)';

/** A validated access file. Values are shared, frozen Principals (no allocation per request). */
export interface AccessList {
  /** By the lowercase hex SHA-256 of the token text. */
  readonly tokens: ReadonlyMap<string, Principal>;
  /** By the certificate subject's CN, compared exactly. */
  readonly subjects: ReadonlyMap<string, Principal>;
  /** By SHA-256 fingerprint, in Node's `fingerprint256` form (uppercase hex pairs joined by ':'). */
  readonly fingerprints: ReadonlyMap<string, Principal>;
}

// --- errors --------------------------------------------------------------------------------------

export interface AccessFileIssue {
  /** Field path with indices, e.g. `tokens[2].role`; `(root)` for the document, `(yaml)`, `(file)`. */
  readonly path: string;
  /** Never contains a hash, a token, or a value that could be one. */
  readonly message: string;
}

/** The access file is not valid; `issues` lists every problem found, not just the first. */
export class AccessFileError extends Error {
  readonly code = 'IKEGATE_ERR_API_ACCESS_FILE';
  /** The file path, or whatever `source` the text was parsed under. */
  readonly file: string;
  readonly issues: readonly AccessFileIssue[];

  constructor(file: string, issues: readonly AccessFileIssue[]) {
    const n = issues.length;
    super(
      `${file}: invalid API access file (${n} ${n === 1 ? 'error' : 'errors'})\n` +
        issues.map((i) => `  ${i.path}: ${i.message}`).join('\n'),
    );
    this.name = 'AccessFileError';
    this.file = file;
    this.issues = issues;
  }
}

// --- credentials ---------------------------------------------------------------------------------

const TOKEN_PREFIX = 'ikg_';
const INTERNAL_PREFIX = 'ikgi_';
const TOKEN_BYTES = 32;
const INTERNAL_LABEL = 'ikegate internal api v1';
/** An HMAC key shorter than this would make the internal credential guessable. */
const MIN_INTERNAL_SECRET_BYTES = 16;

/** A new API token: 'ikg_' + base64url of 32 random bytes. Show it once; store only tokenHash(). */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
}

/** Lowercase hex SHA-256 of the token's UTF-8 bytes: what the access file's `sha256` holds. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The cluster-internal bearer token derived from `secret` (the cluster KEK), so every process
 * holding the KEK can compute it and nothing else needs distributing. Throws RangeError for a
 * secret under 16 bytes.
 */
export function internalToken(secret: Uint8Array): string {
  if (secret.length < MIN_INTERNAL_SECRET_BYTES) {
    throw new RangeError(`internal API secret must be at least ${MIN_INTERNAL_SECRET_BYTES} bytes`);
  }
  return INTERNAL_PREFIX + createHmac('sha256', secret).update(INTERNAL_LABEL).digest('base64url');
}

/** `Authorization: Bearer <token>` (RFC 6750 §2.1, with the scheme case-insensitive). */
const BEARER = /^([A-Za-z]+) ([A-Za-z0-9._~+/=-]{1,512})$/;
const BEARER_MAX_LENGTH = 'Bearer '.length + 512;

/** The token of a well-formed bearer header, or null. */
function bearerToken(header: string): string | null {
  if (header.length > BEARER_MAX_LENGTH) return null;
  const m = BEARER.exec(header);
  if (m === null || m[1]!.toLowerCase() !== 'bearer') return null;
  return m[2]!;
}

/** `AA:BB:...` (Node's fingerprint256) from 64 hex digits with or without colons; null otherwise. */
function normalizeFingerprint(s: string): string | null {
  const hex = /^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}$/.test(s) ? s.replaceAll(':', '') : s;
  if (!/^[0-9A-Fa-f]{64}$/.test(hex)) return null;
  return hex.toUpperCase().match(/../g)!.join(':');
}

// --- the access file -----------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9_.@:-]{1,64}$/;
const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;
/** What newToken() and internalToken() produce: a name or hash field must never hold one. */
const LOOKS_LIKE_TOKEN = /^ikgi?_[A-Za-z0-9_-]{20,}$/;
const MAX_FILE_BYTES = 1024 * 1024;

type Obj = Record<string, unknown>;

function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A value for an issue message. Strings are echoed only when short and plainly not a credential
 * (a role typo like "root"); anything else is described by its length, so a token or hash pasted
 * into the wrong field never reaches a log.
 */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') {
    return /^[A-Za-z][A-Za-z -]{0,15}$/.test(v) ? `"${v}"` : `a string of ${v.length} characters`;
  }
  if (typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

/** A key for a path: echoed only when it looks like a field name (see describe). */
function keyForPath(k: string): string {
  return /^[A-Za-z][A-Za-z0-9_]{0,31}$/.test(k) && !LOOKS_LIKE_TOKEN.test(k)
    ? k
    : `<key of ${k.length} characters>`;
}

/** YAML messages are the library's; cut anything long and token-like that it quoted from the text. */
function scrubYamlMessage(message: string): string {
  const first = (message.split('\n')[0] ?? message).replace(/:$/, '');
  return first.replace(/[A-Za-z0-9+/=_~.-]{16,}/g, '…');
}

const TOKEN_KEYS = ['name', 'role', 'sha256'] as const;
const CLIENT_KEYS = ['name', 'subject', 'fingerprint256', 'role'] as const;

class AccessFileValidator {
  readonly issues: AccessFileIssue[] = [];
  readonly tokens = new Map<string, Principal>();
  readonly subjects = new Map<string, Principal>();
  readonly fingerprints = new Map<string, Principal>();
  /** Every entry name, tokens and clients alike: one actor name means one entry in audit lines. */
  readonly #names = new Map<string, string>();
  readonly #hashPaths = new Map<string, string>();
  readonly #subjectPaths = new Map<string, string>();
  readonly #fingerprintPaths = new Map<string, string>();

  add(path: string, message: string): void {
    this.issues.push({ path: path === '' ? '(root)' : path, message });
  }

  /** Reports keys outside `allowed`; returns the object when it is a mapping, else null. */
  mapping(v: unknown, path: string, allowed: readonly string[], what: string): Obj | null {
    if (!isPlainObject(v)) {
      this.add(path, `must be a mapping ${what}, got ${describe(v)}`);
      return null;
    }
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) {
        this.add(
          `${path === '' ? '' : path + '.'}${keyForPath(k)}`,
          `unknown key; allowed: ${allowed.join(', ')}`,
        );
      }
    }
    return v;
  }

  list(root: Obj, key: string): { value: unknown; path: string }[] {
    const v = Object.hasOwn(root, key) ? root[key] : undefined;
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      this.add(key, `must be a list, got ${describe(v)}`);
      return [];
    }
    return v.map((value: unknown, i) => ({ value, path: `${key}[${i}]` }));
  }

  /** A present, non-null field, or undefined after recording "required". */
  required(o: Obj, key: string, path: string): unknown {
    const v = Object.hasOwn(o, key) ? o[key] : undefined;
    if (v === undefined || v === null) {
      this.add(`${path}.${key}`, 'required');
      return undefined;
    }
    return v;
  }

  name(o: Obj, path: string): string | undefined {
    const v = this.required(o, 'name', path);
    if (v === undefined) return undefined;
    const p = `${path}.name`;
    if (typeof v !== 'string' || !NAME.test(v)) {
      this.add(p, `must be 1-64 of A-Z a-z 0-9 _ . @ : -, got ${describe(v)}`);
      return undefined;
    }
    if (LOOKS_LIKE_TOKEN.test(v)) {
      this.add(p, 'looks like an API token; a name is printed in audit logs (put the SHA-256 in sha256)');
      return undefined;
    }
    const first = this.#names.get(v);
    if (first !== undefined) {
      this.add(p, `duplicate name (also ${first}); names identify actors in audit logs`);
      return undefined;
    }
    this.#names.set(v, p);
    return v;
  }

  role(o: Obj, path: string): Role | undefined {
    const v = this.required(o, 'role', path);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !(ROLES as readonly string[]).includes(v)) {
      this.add(`${path}.role`, `must be one of ${ROLES.join(', ')}, got ${describe(v)}`);
      return undefined;
    }
    return v as Role;
  }

  token(value: unknown, path: string): void {
    const o = this.mapping(value, path, TOKEN_KEYS, `with ${TOKEN_KEYS.join(', ')}`);
    if (o === null) return;
    const name = this.name(o, path);
    const role = this.role(o, path);
    const hash = this.required(o, 'sha256', path);
    let key: string | undefined;
    if (hash !== undefined) {
      const p = `${path}.sha256`;
      if (typeof hash === 'string' && LOOKS_LIKE_TOKEN.test(hash)) {
        this.add(p, 'looks like the token itself; store its SHA-256 (hex) instead, and replace the token');
      } else if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
        const got = typeof hash === 'string' ? `a string of ${hash.length} characters` : describe(hash);
        this.add(p, `must be 64 hex digits (the SHA-256 of the token; quote it in YAML), got ${got}`);
      } else {
        key = hash.toLowerCase();
        const first = this.#hashPaths.get(key);
        if (first !== undefined) this.add(p, `same hash as ${first}.sha256 (one token, two entries)`);
        else this.#hashPaths.set(key, path);
      }
    }
    if (name !== undefined && role !== undefined && key !== undefined && !this.tokens.has(key)) {
      this.tokens.set(key, Object.freeze({ actor: name, role, via: 'token' }));
    }
  }

  client(value: unknown, path: string): void {
    const o = this.mapping(value, path, CLIENT_KEYS, `with ${CLIENT_KEYS.join(', ')}`);
    if (o === null) return;
    const name = this.name(o, path);
    const role = this.role(o, path);
    const hasSubject = o.subject !== undefined && o.subject !== null;
    const hasFingerprint = o.fingerprint256 !== undefined && o.fingerprint256 !== null;
    if (hasSubject === hasFingerprint) {
      this.add(path, 'set exactly one of subject, fingerprint256');
      return;
    }
    let match: { map: Map<string, Principal>; key: string } | undefined;
    if (hasSubject) {
      const p = `${path}.subject`;
      const s = o.subject;
      const cn = typeof s === 'string' && s.startsWith('CN=') ? s.slice(3) : '';
      if (cn === '' || /[,+=\\]/.test(cn) || cn.trim() !== cn) {
        this.add(p, `must be "CN=<common name>" (only the CN is matched, exactly), got ${describe(s)}`);
      } else if (this.#subjectPaths.has(cn)) {
        this.add(p, `same subject as ${this.#subjectPaths.get(cn)!}.subject`);
      } else {
        this.#subjectPaths.set(cn, path);
        match = { map: this.subjects, key: cn };
      }
    } else {
      const p = `${path}.fingerprint256`;
      const f = o.fingerprint256;
      const fp = typeof f === 'string' ? normalizeFingerprint(f) : null;
      if (fp === null) {
        this.add(p, `must be a SHA-256 fingerprint (64 hex digits, colons optional), got ${describe(f)}`);
      } else if (this.#fingerprintPaths.has(fp)) {
        this.add(p, `same fingerprint as ${this.#fingerprintPaths.get(fp)!}.fingerprint256`);
      } else {
        this.#fingerprintPaths.set(fp, path);
        match = { map: this.fingerprints, key: fp };
      }
    }
    if (name !== undefined && role !== undefined && match !== undefined) {
      match.map.set(match.key, Object.freeze({ actor: name, role, via: 'certificate' }));
    }
  }
}

/**
 * Parses and validates access file text (YAML 1.2; JSON is valid YAML). An empty document or `{}`
 * is a valid list that admits no one. Throws AccessFileError listing every issue; never anything
 * else.
 */
export function parseAccessFile(text: string, source: string): AccessList {
  let data: unknown;
  try {
    const doc = parseDocument(String(text), { prettyErrors: true, uniqueKeys: true });
    const problems = [...doc.errors, ...doc.warnings.filter((w) => w.code === 'TAG_RESOLVE_FAILED')];
    if (problems.length > 0) {
      throw new AccessFileError(
        source,
        problems.map((e) => ({ path: '(yaml)', message: scrubYamlMessage(e.message) })),
      );
    }
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof AccessFileError) throw e;
    const message = e instanceof Error ? scrubYamlMessage(e.message) : 'unreadable document';
    throw new AccessFileError(source, [{ path: '(yaml)', message }]);
  }
  const v = new AccessFileValidator();
  if (data !== undefined && data !== null) {
    const root = v.mapping(data, '', ['tokens', 'clients'], 'with tokens, clients');
    if (root !== null) {
      for (const t of v.list(root, 'tokens')) v.token(t.value, t.path);
      for (const c of v.list(root, 'clients')) v.client(c.value, c.path);
    }
  }
  if (v.issues.length > 0) throw new AccessFileError(source, v.issues);
  return { tokens: v.tokens, subjects: v.subjects, fingerprints: v.fingerprints };
}

// --- the live access list ------------------------------------------------------------------------

const EMPTY: AccessList = { tokens: new Map(), subjects: new Map(), fingerprints: new Map() };
const MISSING: AuthResult = Object.freeze({ ok: false, reason: 'missing' });
const MALFORMED: AuthResult = Object.freeze({ ok: false, reason: 'malformed' });
const UNKNOWN_TOKEN: AuthResult = Object.freeze({ ok: false, reason: 'unknown-token' });
const UNKNOWN_CERTIFICATE: AuthResult = Object.freeze({ ok: false, reason: 'unknown-certificate' });
const INTERNAL: AuthResult = Object.freeze({
  ok: true,
  principal: Object.freeze({ actor: INTERNAL_ACTOR, role: 'internal', via: 'internal' }),
});

/** Identity of the file's current content as far as stat can tell (follows symlinks). */
function signature(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : e instanceof Error ? e.message : String(e);
}

export interface AccessControlOptions {
  /** The access file; null when none is configured (the API then serves only health and metrics). */
  readonly file: string | null;
  /** The cluster KEK: control -> worker/edge admin calls carry internalToken(secret). Not retained. */
  readonly internalSecret?: Uint8Array;
  readonly log: Logger;
  /** Counts reloads in apiAccessReloads{result=ok|invalid|missing}; the load at start() is not one. */
  readonly metrics?: Metrics;
  /** How often the file's stat is polled; default 1000. */
  readonly reloadIntervalMs?: number;
}

/**
 * The current access list and the credential checks against it. `start()` loads the file and
 * begins polling it; `stop()` ends polling and keeps the last list, so `authenticate` works before
 * start (admitting only the internal credential), while running, and after stop.
 */
export class AccessControl {
  readonly #file: string | null;
  readonly #log: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #intervalMs: number;
  /** SHA-256 of the internal token; the secret itself is not kept. */
  readonly #internalDigest: Buffer | null;
  #list: AccessList = EMPTY;
  #timer: NodeJS.Timeout | null = null;
  /** The stat signature last read (valid or not); null when the file was last seen missing. */
  #signature: string | null = null;
  #missing = false;
  #polling = false;

  constructor(options: AccessControlOptions) {
    this.#file = options.file;
    this.#log = options.log;
    this.#metrics = options.metrics;
    this.#intervalMs = options.reloadIntervalMs ?? 1000;
    if (!Number.isFinite(this.#intervalMs) || this.#intervalMs <= 0) {
      throw new RangeError(`reloadIntervalMs must be a positive number, got ${this.#intervalMs}`);
    }
    this.#internalDigest =
      options.internalSecret === undefined
        ? null
        : createHash('sha256').update(internalToken(options.internalSecret), 'utf8').digest();
  }

  /** Whether an access file is configured. */
  get enabled(): boolean {
    return this.#file !== null;
  }

  /** Sizes of the list in force; clients counts subject and fingerprint entries together. */
  get entries(): { tokens: number; clients: number } {
    const l = this.#list;
    return { tokens: l.tokens.size, clients: l.subjects.size + l.fingerprints.size };
  }

  /**
   * Loads the file synchronously and starts polling it. Throws AccessFileError when the file is
   * invalid, and an Error naming the file (with the fs error as `cause`) when it cannot be read.
   * Throws when already started. Without a file it only records that it started.
   */
  start(): void {
    if (this.#timer !== null) throw new Error('AccessControl already started');
    const file = this.#file;
    if (file === null) return;
    let sig: string;
    let buf: Buffer;
    try {
      sig = signature(statSync(file));
      buf = readFileSync(file);
    } catch (e) {
      throw new AccessFileError(file, [{ path: '(file)', message: `cannot read: ${errorCode(e)}` }]);
    }
    this.#list = this.#parse(buf, file);
    this.#signature = sig;
    this.#missing = false;
    this.#log.info({ file, ...this.entries }, 'api-access-loaded');
    this.#timer = setInterval(() => void this.#poll(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stops polling; the list in force stays. Idempotent. */
  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * Who is calling. `authorization` is the raw header value (undefined when absent); a header that
   * is present decides alone, so a wrong token is refused even with a good certificate.
   * `certificate` counts only when the TLS layer verified it (`authorized === true`); one with
   * neither a CN nor a fingerprint is treated as no certificate (Node reports `{}` then). A
   * fingerprint match is tried before a CN match. Never throws.
   */
  authenticate(
    authorization: string | undefined,
    certificate?: { subjectCN?: string; fingerprint256?: string; authorized: boolean },
  ): AuthResult {
    if (authorization !== undefined) {
      if (typeof authorization !== 'string') return MALFORMED;
      const token = bearerToken(authorization);
      if (token === null) return MALFORMED;
      const digest = createHash('sha256').update(token, 'utf8').digest();
      if (this.#internalDigest !== null && timingSafeEqual(digest, this.#internalDigest)) return INTERNAL;
      const principal = this.#list.tokens.get(digest.toString('hex'));
      return principal === undefined ? UNKNOWN_TOKEN : { ok: true, principal };
    }
    const cn = typeof certificate?.subjectCN === 'string' ? certificate.subjectCN : '';
    const fp = typeof certificate?.fingerprint256 === 'string' ? certificate.fingerprint256 : '';
    if (cn === '' && fp === '') return MISSING;
    if (certificate?.authorized !== true) return UNKNOWN_CERTIFICATE;
    const byFingerprint = fp === '' ? null : normalizeFingerprint(fp);
    const principal =
      (byFingerprint === null ? undefined : this.#list.fingerprints.get(byFingerprint)) ??
      (cn === '' ? undefined : this.#list.subjects.get(cn));
    return principal === undefined ? UNKNOWN_CERTIFICATE : { ok: true, principal };
  }

  #parse(buf: Buffer, file: string): AccessList {
    if (buf.length > MAX_FILE_BYTES) {
      throw new AccessFileError(file, [{ path: '(file)', message: `larger than ${MAX_FILE_BYTES} bytes` }]);
    }
    return parseAccessFile(buf.toString('utf8'), file);
  }

  /** One poll; never rejects (a timer callback must not crash the process). */
  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      await this.#check(this.#file!);
    } catch (e) {
      this.#log.error({ file: this.#file, err: errorCode(e) }, 'api-access-reload-failed');
    } finally {
      this.#polling = false;
    }
  }

  async #check(file: string): Promise<void> {
    let sig: string;
    let buf: Buffer;
    try {
      sig = signature(await stat(file));
      if (sig === this.#signature) return;
      buf = await readFile(file);
    } catch (e) {
      if (this.#timer === null || this.#missing) return;
      this.#missing = true;
      this.#signature = null;
      this.#log.warn({ file, err: errorCode(e), ...this.entries }, 'api-access-file-missing');
      this.#metrics?.apiAccessReloads.inc({ result: 'missing' });
      return;
    }
    if (this.#timer === null) return; // stopped while reading
    this.#signature = sig;
    this.#missing = false;
    let list: AccessList;
    try {
      list = this.#parse(buf, file);
    } catch (e) {
      if (!(e instanceof AccessFileError)) throw e;
      this.#log.error({ file, issues: e.issues, ...this.entries }, 'api-access-file-invalid');
      this.#metrics?.apiAccessReloads.inc({ result: 'invalid' });
      return;
    }
    this.#list = list;
    this.#log.info({ file, ...this.entries }, 'api-access-reloaded');
    this.#metrics?.apiAccessReloads.inc({ result: 'ok' });
  }
}
