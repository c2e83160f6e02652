import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { createLogger, Metrics } from '@ikegate/telemetry';
import {
  AccessControl,
  AccessFileError,
  type AuthResult,
  INTERNAL_ACTOR,
  internalToken,
  newToken,
  parseAccessFile,
  type Role,
  roleAllows,
  ROLES,
  tokenHash,
} from './access.js';

// Fixed tokens so failures are reproducible; newToken() is tested for its shape separately.
const ADMIN = 'ikg_admin-token-0000000000000000000000000000000';
const OPERATOR = 'ikg_operator-token-00000000000000000000000000000';
const VIEWER = 'ikg_viewer-token-0000000000000000000000000000000';
const SECRET = new Uint8Array(32).fill(7);
const FINGERPRINT = Array.from({ length: 32 }, (_, i) =>
  (i * 7).toString(16).padStart(2, '0').toUpperCase(),
).join(':');

const EXAMPLE = `
tokens:
  - name: ci-automation          # the actor in audit log lines
    role: admin
    sha256: ${tokenHash(ADMIN).toUpperCase()}
  - name: oncall
    role: operator
    sha256: ${tokenHash(OPERATOR)}
  - name: grafana
    role: viewer
    sha256: "${tokenHash(VIEWER)}"
clients:
  - name: netops-bot
    subject: CN=netops-bot
    role: operator
  - name: dashboard
    fingerprint256: ${FINGERPRINT.replaceAll(':', '').toLowerCase()}
    role: viewer
`;

function capture() {
  const out = new PassThrough();
  const lines: string[] = [];
  let partial = '';
  out.on('data', (c: Buffer) => {
    const parts = (partial + c.toString()).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  const log = createLogger({ destination: out, name: 'test', level: 'debug' });
  return { log, lines, events: () => lines.map((l) => (JSON.parse(l) as { msg: string }).msg) };
}

function control(file: string | null, extra: { reloadIntervalMs?: number; metrics?: Metrics } = {}) {
  const { log, lines, events } = capture();
  const ac = new AccessControl({ file, internalSecret: SECRET, log, ...extra });
  return { ac, lines, events };
}

function issuesOf(text: string): readonly { path: string; message: string }[] {
  try {
    parseAccessFile(text, 'access.yaml');
  } catch (e) {
    assert.ok(e instanceof AccessFileError, `expected AccessFileError, got ${String(e)}`);
    assert.equal(e.code, 'IKEGATE_ERR_API_ACCESS_FILE');
    assert.equal(e.file, 'access.yaml');
    return e.issues;
  }
  assert.fail('expected AccessFileError');
}

/** Polls `done` every few ms, failing after `limit` tries; never measures elapsed time. */
async function eventually(done: () => boolean | Promise<boolean>, what: string, limit = 500): Promise<void> {
  for (let i = 0; i < limit; i++) {
    if (await done()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function reloads(metrics: Metrics, result: string): Promise<number> {
  const m = await metrics.apiAccessReloads.get();
  return m.values.find((v) => v.labels.result === result)?.value ?? 0;
}

const ok = (r: AuthResult) => (r.ok ? r.principal : assert.fail(`expected ok, got ${JSON.stringify(r)}`));

// --- parse ---------------------------------------------------------------------------------------

test('access file: the documented example parses into tokens by lowercase hash and clients by CN and fingerprint', () => {
  const list = parseAccessFile(EXAMPLE, 'access.yaml');
  assert.equal(list.tokens.size, 3);
  assert.deepEqual(list.tokens.get(tokenHash(ADMIN)), {
    actor: 'ci-automation',
    role: 'admin',
    via: 'token',
  });
  assert.deepEqual(list.subjects.get('netops-bot'), {
    actor: 'netops-bot',
    role: 'operator',
    via: 'certificate',
  });
  assert.deepEqual(list.fingerprints.get(FINGERPRINT), {
    actor: 'dashboard',
    role: 'viewer',
    via: 'certificate',
  });
});

test('access file: JSON is accepted; an empty document, {} and empty lists are valid and admit no one', () => {
  const json = JSON.stringify({ tokens: [{ name: 'a', role: 'viewer', sha256: tokenHash(VIEWER) }] });
  assert.equal(parseAccessFile(json, 'access.json').tokens.size, 1);
  for (const text of [
    '',
    '   \n# only a comment\n',
    '{}',
    'tokens:\nclients:\n',
    'tokens: []\nclients: []',
  ]) {
    const list = parseAccessFile(text, 'access.yaml');
    assert.equal(list.tokens.size + list.subjects.size + list.fingerprints.size, 0, JSON.stringify(text));
  }
});

test('access file: every kind of issue is reported together, each with its path, and none quotes a hash or token', () => {
  const hash = tokenHash(ADMIN);
  const text = `
tokens:
  - name: ci-automation
    role: admin
    sha256: ${hash}
  - name: ci-automation
    role: operator
    sha256: ${tokenHash(OPERATOR)}
  - name: ops
    role: root
    sha256: ${hash.toUpperCase()}
  - name: bad name!
    role: viewer
    sha256: ${hash.slice(0, 40)}
  - name: pasted
    role: viewer
    sha256: ${VIEWER}
  - name: ${OPERATOR}
    role: 5
    sha256: ${tokenHash('x')}
    token: ${ADMIN}
  - name: no-role
  - just-a-string
clients:
  - name: both
    subject: CN=a
    fingerprint256: ${FINGERPRINT}
    role: viewer
  - name: neither
    role: viewer
  - name: full-dn
    subject: CN=a,O=example
    role: viewer
  - name: short-fp
    fingerprint256: AA:BB
    role: viewer
  - name: cn-1
    subject: CN=same
    role: viewer
  - name: cn-2
    subject: CN=same
    role: viewer
extra: true
`;
  const issues = issuesOf(text);
  const byPath = new Map<string, string[]>();
  for (const i of issues) byPath.set(i.path, [...(byPath.get(i.path) ?? []), i.message]);
  const has = (path: string, re: RegExp) =>
    assert.ok(
      (byPath.get(path) ?? []).some((m) => re.test(m)),
      `${path} ${re}: ${JSON.stringify([...byPath])}`,
    );
  has('tokens[1].name', /duplicate name \(also tokens\[0\]\.name\)/);
  has('tokens[2].role', /^must be one of viewer, operator, admin, got "root"$/);
  has('tokens[2].sha256', /same hash as tokens\[0\]\.sha256/);
  has('tokens[3].name', /must be 1-64 of/);
  has('tokens[3].sha256', /must be 64 hex digits .*got a string of 40 characters/);
  has('tokens[4].sha256', /looks like the token itself/);
  has('tokens[5].name', /looks like an API token/);
  has('tokens[5].role', /got a number/);
  has('tokens[5].token', /unknown key; allowed: name, role, sha256/);
  has('tokens[6].role', /^required$/);
  has('tokens[6].sha256', /^required$/);
  has('tokens[7]', /must be a mapping with name, role, sha256, got "just-a-string"/);
  has('clients[0]', /exactly one of subject, fingerprint256/);
  has('clients[1]', /exactly one of subject, fingerprint256/);
  has('clients[2].subject', /must be "CN=<common name>"/);
  has('clients[3].fingerprint256', /must be a SHA-256 fingerprint/);
  has('clients[5].subject', /same subject as clients\[4\]\.subject/);
  has('extra', /unknown key; allowed: tokens, clients/);
  assert.equal(issues.length, 18, JSON.stringify(issues));

  let message = '';
  try {
    parseAccessFile(text, 'access.yaml');
  } catch (e) {
    message = (e as Error).message;
  }
  for (const secret of [
    hash,
    hash.toUpperCase(),
    hash.slice(0, 40),
    ADMIN,
    OPERATOR,
    VIEWER,
    tokenHash('x'),
  ]) {
    assert.ok(!message.includes(secret), 'error text quotes a hash or a token');
    assert.ok(!JSON.stringify(issues).includes(secret));
  }
});

test('access file: structural and YAML errors are issues too, without quoting the text', () => {
  assert.match(issuesOf('- a\n- b\n')[0]!.message, /must be a mapping with tokens, clients, got a list/);
  assert.deepEqual(
    issuesOf('tokens: {}\nclients: nope\n').map((i) => i.path),
    ['tokens', 'clients'],
  );
  const dup = issuesOf(
    `tokens:\n  - name: a\n    name: b\n    role: admin\n    sha256: ${tokenHash(ADMIN)}\n`,
  );
  assert.equal(dup[0]!.path, '(yaml)');
  assert.match(dup[0]!.message, /unique/);
  const unterminated = issuesOf(`tokens:\n  - name: "a\n    sha256: ${tokenHash(ADMIN)}\n`);
  assert.ok(unterminated.every((i) => i.path === '(yaml)'));
  assert.ok(!JSON.stringify(unterminated).includes(tokenHash(ADMIN)));
  // A key that could be a credential is not echoed in the path.
  assert.deepEqual(
    issuesOf(`${ADMIN}: admin\n`).map((i) => i.path),
    [`<key of ${ADMIN.length} characters>`],
  );
});

// --- credentials ---------------------------------------------------------------------------------

test('credentials: newToken is ikg_ + 43 base64url characters, distinct each call; tokenHash is lowercase hex SHA-256', () => {
  const a = newToken();
  assert.match(a, /^ikg_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, newToken());
  // FIPS 180-4 / NIST CSRC example: SHA-256("abc").
  assert.equal(tokenHash('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('credentials: internalToken is ikgi_ + base64url HMAC-SHA256 of the label, stable per secret, and refuses short secrets', () => {
  const t = internalToken(SECRET);
  assert.match(t, /^ikgi_[A-Za-z0-9_-]{43}$/);
  assert.equal(t, internalToken(new Uint8Array(32).fill(7)));
  assert.notEqual(t, internalToken(new Uint8Array(32).fill(8)));
  assert.throws(() => internalToken(new Uint8Array(8)), RangeError);
});

// --- roles ---------------------------------------------------------------------------------------

test('roles: viewer < operator < admin, internal allows everything (full matrix)', () => {
  assert.deepEqual(ROLES, ['viewer', 'operator', 'admin']);
  const expected: Record<Role | 'internal', Record<Role, boolean>> = {
    viewer: { viewer: true, operator: false, admin: false },
    operator: { viewer: true, operator: true, admin: false },
    admin: { viewer: true, operator: true, admin: true },
    internal: { viewer: true, operator: true, admin: true },
  };
  for (const have of [...ROLES, 'internal'] as const) {
    for (const need of ROLES)
      assert.equal(roleAllows(have, need), expected[have][need], `${have} -> ${need}`);
  }
  assert.equal(roleAllows('root' as Role, 'viewer'), false, 'an unknown role allows nothing');
  assert.equal(roleAllows('internal', 'root' as Role), false, 'an unknown need is never met');
});

// --- authenticate --------------------------------------------------------------------------------

function started(text = EXAMPLE) {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-access-'));
  const file = join(dir, 'access.yaml');
  writeFileSync(file, text);
  const c = control(file);
  c.ac.start();
  c.ac.stop();
  rmSync(dir, { recursive: true });
  return c.ac;
}

test('authenticate: no header and no certificate is missing; unparsable headers are malformed', () => {
  const ac = started();
  assert.deepEqual(ac.authenticate(undefined), { ok: false, reason: 'missing' });
  assert.deepEqual(ac.authenticate(undefined, { authorized: false }), { ok: false, reason: 'missing' });
  for (const h of [
    '',
    'Bearer',
    'Bearer ',
    `Basic ${Buffer.from('admin:pw').toString('base64')}`,
    `Bearer ${ADMIN} ${VIEWER}`,
    `Bearer  ${ADMIN}`,
    `Bearer ${ADMIN} `,
    `Bearer ${'a'.repeat(600)}`,
    `Bearer ${ADMIN.slice(0, 10)}"x`,
    ADMIN,
    `Token ${ADMIN}`,
  ]) {
    assert.deepEqual(ac.authenticate(h), { ok: false, reason: 'malformed' }, JSON.stringify(h.slice(0, 40)));
  }
  assert.equal(ac.authenticate(`Bearer ${'a'.repeat(512)}`).ok, false);
  assert.deepEqual(ac.authenticate(`Bearer ${'a'.repeat(512)}`), { ok: false, reason: 'unknown-token' });
});

test('authenticate: each configured token gets its role and name; the scheme is case-insensitive; others are unknown-token', () => {
  const ac = started();
  assert.deepEqual(ok(ac.authenticate(`Bearer ${ADMIN}`)), {
    actor: 'ci-automation',
    role: 'admin',
    via: 'token',
  });
  assert.equal(ok(ac.authenticate(`bearer ${OPERATOR}`)).role, 'operator');
  assert.equal(ok(ac.authenticate(`BEARER ${VIEWER}`)).role, 'viewer');
  assert.deepEqual(ac.authenticate(`Bearer ${newToken()}`), { ok: false, reason: 'unknown-token' });
  assert.deepEqual(ac.authenticate(`Bearer ${ADMIN.slice(0, -1)}`), { ok: false, reason: 'unknown-token' });
  assert.deepEqual(ac.authenticate(`Bearer ${tokenHash(ADMIN)}`), { ok: false, reason: 'unknown-token' });
});

test('authenticate: the internal token is accepted as role internal; a wrong internal token is refused', () => {
  const ac = started();
  assert.deepEqual(ok(ac.authenticate(`Bearer ${internalToken(SECRET)}`)), {
    actor: INTERNAL_ACTOR,
    role: 'internal',
    via: 'internal',
  });
  const wrong = internalToken(new Uint8Array(32).fill(9));
  assert.deepEqual(ac.authenticate(`Bearer ${wrong}`), { ok: false, reason: 'unknown-token' });
  // Without an internal secret there is no internal credential at all.
  const { log } = capture();
  const none = new AccessControl({ file: null, log });
  none.start();
  assert.equal(none.enabled, false);
  assert.deepEqual(none.authenticate(`Bearer ${internalToken(SECRET)}`), {
    ok: false,
    reason: 'unknown-token',
  });
});

test('authenticate: an authorized certificate matches by CN or by fingerprint (any case, colons optional)', () => {
  const ac = started();
  assert.deepEqual(ok(ac.authenticate(undefined, { subjectCN: 'netops-bot', authorized: true })), {
    actor: 'netops-bot',
    role: 'operator',
    via: 'certificate',
  });
  assert.equal(
    ok(ac.authenticate(undefined, { fingerprint256: FINGERPRINT, authorized: true })).actor,
    'dashboard',
  );
  const lower = FINGERPRINT.toLowerCase().replaceAll(':', '');
  assert.equal(
    ok(ac.authenticate(undefined, { fingerprint256: lower, authorized: true })).actor,
    'dashboard',
  );
  // The fingerprint is the more specific match and wins over the CN.
  const both = { subjectCN: 'netops-bot', fingerprint256: FINGERPRINT, authorized: true };
  assert.equal(ok(ac.authenticate(undefined, both)).actor, 'dashboard');
  const unknown = { subjectCN: 'Netops-Bot', fingerprint256: 'AA:BB', authorized: true };
  assert.deepEqual(ac.authenticate(undefined, unknown), { ok: false, reason: 'unknown-certificate' });
});

test('authenticate: a certificate the TLS layer did not verify is refused even when it would match', () => {
  const ac = started();
  for (const c of [
    { subjectCN: 'netops-bot', authorized: false },
    { fingerprint256: FINGERPRINT, authorized: false },
    { subjectCN: 'netops-bot', authorized: 'true' as unknown as boolean },
  ]) {
    assert.deepEqual(ac.authenticate(undefined, c), { ok: false, reason: 'unknown-certificate' });
  }
});

test('authenticate: a bearer header decides over a certificate, whether the token is good or bad', () => {
  const ac = started();
  const cert = { subjectCN: 'netops-bot', authorized: true };
  assert.deepEqual(ok(ac.authenticate(`Bearer ${VIEWER}`, cert)), {
    actor: 'grafana',
    role: 'viewer',
    via: 'token',
  });
  assert.deepEqual(ac.authenticate(`Bearer ${newToken()}`, cert), { ok: false, reason: 'unknown-token' });
  assert.deepEqual(ac.authenticate('Basic x', cert), { ok: false, reason: 'malformed' });
});

test('authenticate (property): never throws for any header and is ok only for a configured token', () => {
  const ac = started();
  const configured = new Map<string, Role | 'internal'>([
    [ADMIN, 'admin'],
    [OPERATOR, 'operator'],
    [VIEWER, 'viewer'],
    [internalToken(SECRET), 'internal'],
  ]);
  const tokenish = fc.oneof(
    fc.constantFrom(...configured.keys()),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019._~+/=-'), maxLength: 520 }),
  );
  const header = fc.oneof(
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc
      .tuple(fc.constantFrom('Bearer', 'bearer', 'BeArEr', 'Basic', 'Bearer '), tokenish)
      .map(([s, t]) => `${s} ${t}`),
    fc.tuple(tokenish, fc.string({ maxLength: 3 })).map(([t, tail]) => `Bearer ${t}${tail}`),
  );
  const cert = fc.option(
    fc.record(
      { subjectCN: fc.string(), fingerprint256: fc.string(), authorized: fc.boolean() },
      { requiredKeys: ['authorized'] },
    ),
    { nil: undefined },
  );
  fc.assert(
    fc.property(fc.option(header, { nil: undefined }), cert, (h, c) => {
      const r = ac.authenticate(h, c);
      if (!r.ok) return;
      if (h === undefined) {
        assert.equal(r.principal.via, 'certificate');
        assert.equal(c?.authorized, true);
        return;
      }
      const m = /^bearer (\S+)$/i.exec(h);
      assert.ok(m, `ok for a header that is not a bearer header: ${JSON.stringify(h)}`);
      assert.equal(configured.get(m[1]!), r.principal.role);
    }),
    { numRuns: 2000 },
  );
});

// --- start and hot reload ------------------------------------------------------------------------

test('start: an invalid or unreadable file throws AccessFileError naming it; no file means disabled', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-access-'));
  try {
    const file = join(dir, 'access.yaml');
    writeFileSync(file, 'tokens:\n  - name: x\n    role: root\n');
    assert.throws(() => control(file).ac.start(), AccessFileError);
    assert.throws(
      () => control(join(dir, 'absent.yaml')).ac.start(),
      (e: Error) =>
        e instanceof AccessFileError && /absent\.yaml: .*\n {2}\(file\): cannot read: ENOENT/.test(e.message),
    );
    const none = control(null).ac;
    none.start();
    none.stop();
    assert.equal(none.enabled, false);
    assert.deepEqual(none.entries, { tokens: 0, clients: 0 });
  } finally {
    rmSync(dir, { recursive: true });
  }
});

test('hot reload: a replaced file (tmp + rename) takes effect; an invalid rewrite keeps the old list (invalid); deleting keeps it (missing)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-access-'));
  const file = join(dir, 'access.yaml');
  const replace = (text: string) => {
    writeFileSync(`${file}.tmp`, text);
    renameSync(`${file}.tmp`, file);
  };
  const metrics = new Metrics({ processMetrics: false });
  const { ac, lines, events } = control(file, { reloadIntervalMs: 20, metrics });
  try {
    replace(`tokens:\n  - { name: old, role: admin, sha256: ${tokenHash(ADMIN)} }\n`);
    ac.start();
    assert.equal(ac.enabled, true);
    assert.deepEqual(ac.entries, { tokens: 1, clients: 0 });
    assert.equal(ok(ac.authenticate(`Bearer ${ADMIN}`)).actor, 'old');

    replace(EXAMPLE.replace(tokenHash(ADMIN).toUpperCase(), tokenHash(newToken())));
    await eventually(() => ac.authenticate(`Bearer ${VIEWER}`).ok, 'the new viewer token');
    assert.deepEqual(ac.authenticate(`Bearer ${ADMIN}`), { ok: false, reason: 'unknown-token' });
    assert.deepEqual(ac.entries, { tokens: 3, clients: 2 });
    assert.equal(await reloads(metrics, 'ok'), 1);
    assert.ok(events().includes('api-access-reloaded'));

    replace('tokens:\n  - name: broken\n    role: root\n');
    await eventually(async () => (await reloads(metrics, 'invalid')) === 1, 'an invalid reload');
    assert.equal(ok(ac.authenticate(`Bearer ${VIEWER}`)).actor, 'grafana', 'the previous list stays');
    assert.ok(events().includes('api-access-file-invalid'));

    unlinkSync(file);
    await eventually(async () => (await reloads(metrics, 'missing')) === 1, 'a missing reload');
    assert.equal(ok(ac.authenticate(`Bearer ${VIEWER}`)).actor, 'grafana', 'the previous list stays');
    assert.ok(events().includes('api-access-file-missing'));

    replace(`tokens:\n  - { name: back, role: viewer, sha256: ${tokenHash(ADMIN)} }\n`);
    await eventually(() => ac.authenticate(`Bearer ${ADMIN}`).ok, 'the file coming back');
    assert.equal(await reloads(metrics, 'ok'), 2);
    assert.equal(await reloads(metrics, 'missing'), 1, 'a vanished file is counted once, not per poll');
    assert.equal(await reloads(metrics, 'invalid'), 1, 'an invalid file is counted once, not per poll');

    const all = lines.join('\n');
    for (const secret of [
      ADMIN,
      OPERATOR,
      VIEWER,
      tokenHash(ADMIN),
      tokenHash(VIEWER),
      internalToken(SECRET),
    ]) {
      assert.ok(!all.includes(secret), 'a token, hash or internal credential reached the log');
    }
  } finally {
    ac.stop();
    rmSync(dir, { recursive: true });
  }
});

test('hot reload: a Kubernetes Secret update (the ..data symlink swapped to a new directory) is followed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-access-'));
  const version = (name: string, text: string) => {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'access.yaml'), text);
  };
  version('..v1', `tokens:\n  - { name: v1, role: admin, sha256: ${tokenHash(ADMIN)} }\n`);
  symlinkSync('..v1', join(dir, '..data'));
  symlinkSync('..data/access.yaml', join(dir, 'access.yaml'));
  const { ac } = control(join(dir, 'access.yaml'), { reloadIntervalMs: 20 });
  try {
    ac.start();
    assert.equal(ok(ac.authenticate(`Bearer ${ADMIN}`)).actor, 'v1');
    version('..v2', `tokens:\n  - { name: v2, role: viewer, sha256: ${tokenHash(VIEWER)} }\n`);
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..v1'), { recursive: true });
    await eventually(() => ac.authenticate(`Bearer ${VIEWER}`).ok, 'the token from the new Secret version');
    assert.deepEqual(ac.authenticate(`Bearer ${ADMIN}`), { ok: false, reason: 'unknown-token' });
  } finally {
    ac.stop();
    rmSync(dir, { recursive: true });
  }
});
