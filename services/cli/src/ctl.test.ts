/**
 * `ikegate ctl` against a real control API: services/control's test gateway (the real Worker, its
 * PeerDirectory following the managed store, the real fastify API) listening on a loopback port,
 * with IKE clients joined to it in memory. Most cases call `ctlMain` in this process with stdout
 * and stderr captured; the ones about what a user sees (exit codes, token handling, not-clustered)
 * spawn the real `bin/ikegate.mjs`. The TLS case runs a small HTTPS server needing a client
 * certificate, with a CA made by openssl.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { requirement } from '@ikegate/testkit';
import { testGateway, type TestGateway } from '../../control/src/testing/gateway.js';
import { ctlMain } from './ctl.js';

const IKEGATE_BIN = fileURLToPath(new URL('../bin/ikegate.mjs', import.meta.url));
/** The seeded peer of GATEWAY_CONFIG: `rw`, identity `*@example.org`, pool rw (10.77.0.0/24). */
const RW_PSK = 'file-peer-psk-0123456789';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** An environment without the developer's own IKEGATE_* settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('IKEGATE_')) env[k] = v;
  return { ...env, ...extra };
}

/** `ikegate ctl <args>` in this process. */
async function ctl(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await ctlMain(args, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { ...env },
  });
  return { code, stdout, stderr };
}

/** `ikegate ctl <args>` as a user runs it: the real binary in a child process. */
function ctlBinary(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [IKEGATE_BIN, 'ctl', ...args],
      { timeout: 60_000, env: cleanEnv(env) },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Served {
  readonly gw: TestGateway;
  readonly url: string;
  /** A token file per role (mode 0600). */
  readonly tokenFile: Record<'viewer' | 'operator' | 'admin', string>;
  /** `--url <url> --token-file <role's file>`. */
  as(role: 'viewer' | 'operator' | 'admin'): string[];
}

/** A fresh gateway whose control API listens on a loopback port, for the length of `f`. */
async function withGateway(f: (s: Served) => Promise<void>): Promise<void> {
  const gw = await testGateway();
  try {
    await gw.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = gw.app.server.address() as AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    const tokenFile = { viewer: '', operator: '', admin: '' };
    for (const role of ['viewer', 'operator', 'admin'] as const) {
      tokenFile[role] = join(gw.dir, `${role}.token`);
      writeFileSync(tokenFile[role], `${gw.tokens[role]}\n`, { mode: 0o600 });
    }
    await f({ gw, url, tokenFile, as: (role) => ['--url', url, '--token-file', tokenFile[role]] });
  } finally {
    await gw.close();
  }
}

function tempFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'ikegate-ctl-')), name);
  writeFileSync(file, text);
  return file;
}

/** The gateway's SPI of the SA authenticated as `identity` (the client's `spi` is the initiator's). */
async function gatewaySpi(s: Served, identity: string): Promise<string> {
  const r = await ctl(['sas', '--identity', identity, '--json', ...s.as('viewer')]);
  assert.equal(r.code, 0, r.stderr);
  const items = (JSON.parse(r.stdout) as { items: { spi: string }[] }).items;
  assert.equal(items.length, 1, r.stdout);
  return items[0]!.spi;
}

describe('ctl token new', () => {
  test('prints a token once on stdout and the access-file line on stderr; that line admits it (real binary)', async () => {
    await withGateway(async (s) => {
      const made = await ctlBinary(['token', 'new', '--name', 'ci-bot', '--role', 'viewer']);
      assert.equal(made.code, 0, made.stderr);
      const token = made.stdout.trim();
      assert.match(token, /^ikg_[A-Za-z0-9_-]{43}$/);
      assert.equal(made.stdout, `${token}\n`, 'stdout is the token alone');
      assert.ok(!made.stderr.includes(token), 'the token is not on stderr');
      const line = made.stderr.split('\n').find((l) => l.trim().startsWith('- {'));
      assert.match(line ?? '', /^ {2}- \{ name: "ci-bot", role: viewer, sha256: "[0-9a-f]{64}" \}$/);

      // Before the line is in the access file the token is refused; after, it is a viewer.
      const before = await ctl(['peers', '--url', s.url], { IKEGATE_TOKEN: token });
      assert.equal(before.code, 1);
      assert.match(before.stderr, /^error 401 unauthenticated/);
      appendFileSync(join(s.gw.dir, 'access.yaml'), `${line}\n`);
      const listed = await until('the access file to be reloaded', async () => {
        const r = await ctl(['peers', '--url', s.url], { IKEGATE_TOKEN: token });
        return r.code === 0 ? r : undefined;
      });
      assert.match(listed.stdout, /^rw +\*@example\.org +psk +rw +dynamic$/m);

      // A viewer may not change anything: 403, naming where the token came from, not the token.
      const refused = await ctlBinary(['pool', 'delete', 'rw', '--url', s.url], { IKEGATE_TOKEN: token });
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /^error 403 forbidden: this needs the admin role; ci-bot is viewer$/m);
      assert.match(refused.stderr, /token from \$IKEGATE_TOKEN/);
      assert.ok(!refused.stderr.includes(token) && !refused.stdout.includes(token));
    });
  });

  test('refuses a bad name or role (exit 2) and takes no connection options', async () => {
    for (const args of [
      ['--name', 'x y', '--role', 'viewer'],
      ['--name', 'x', '--role', 'root'],
      ['--name', 'x'],
      ['--name', 'x', '--role', 'viewer', '--url', 'http://127.0.0.1:1'],
    ]) {
      const r = await ctl(['token', 'new', ...args]);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(r.stdout, '', 'no token printed');
      assert.match(r.stderr, /^usage: ikegate ctl token new/m);
    }
  });
});

describe('ctl peers', () => {
  test('peer add from a YAML file (with a PSK): listed, shown, the PSK never printed', async () => {
    await withGateway(async (s) => {
      const psk = 'branch-office-psk-4f9a2c';
      const file = tempFile(
        'branch.yaml',
        `name: branch\nid: branch@corp.example\nauth: { psk: ${psk} }\npool: rw\nremoteTs: [10.9.0.0/16]\n`,
      );
      const added = await ctl(['peer', 'add', file, ...s.as('admin')]);
      assert.equal(added.code, 0, added.stderr);
      assert.match(added.stdout, /^peer branch: added \(config version \d+\)$/m);

      const listed = await ctl(['peers', ...s.as('viewer')]);
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^NAME +ID +AUTH +POOL +REMOTE TS$/m);
      assert.match(listed.stdout, /^branch +branch@corp\.example +psk +rw +10\.9\.0\.0\/16$/m);
      assert.match(listed.stdout, /^rw +\*@example\.org +psk +rw +dynamic$/m);

      const shown = await ctl(['peer', 'branch', ...s.as('viewer')]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /^ {2}auth +psk$/m);
      assert.match(shown.stdout, /^ {2}remote TS +10\.9\.0\.0\/16$/m);

      // Added again: 409, and with --replace a PUT (a list file this time; JSON is YAML too).
      const again = await ctl(['peer', 'add', file, ...s.as('admin')]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^peer branch: error 409 already-exists: /m);
      const list = tempFile(
        'peers.json',
        JSON.stringify([
          { name: 'branch', id: 'branch@corp.example', auth: { psk }, pool: 'rw' },
          { name: 'lab', id: 'lab@corp.example', auth: { psk: `${psk}-lab` }, remoteTs: ['10.10.0.0/16'] },
        ]),
      );
      const replaced = await ctl(['peer', 'add', list, '--replace', ...s.as('admin')]);
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.match(replaced.stdout, /^peer branch: replaced/m);
      assert.match(replaced.stdout, /^peer lab: added/m);

      const deleted = await ctl(['peer', 'delete', 'lab', '--keep-sas', ...s.as('admin')]);
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.match(deleted.stdout, /^peer lab: deleted; its SAs stay up/m);
      const gone = await ctl(['peer', 'lab', ...s.as('viewer')]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /^error 404 not-found: no peer named "lab"$/m);

      for (const r of [added, listed, shown, again, replaced, deleted])
        assert.ok(!r.stdout.includes(psk) && !r.stderr.includes(psk), 'the PSK is never printed');
    });
  });

  test('peer add of an invalid file: exit 1, every field error printed; a good peer beside it is added', async () => {
    await withGateway(async (s) => {
      const psk = 'long-enough-psk-0000-abcd';
      const bad = tempFile(
        'bad.yaml',
        `name: bad\nid: bad@corp.example\nauth: { psk: ${psk} }\npool: nope\nremoteTs: [10.0.0.1/99]\n`,
      );
      const r = await ctlBinary(['peer', 'add', bad, '--url', s.url, '--token-file', s.tokenFile.admin]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^peer bad: error 400 validation: the body is not valid$/m);
      assert.match(r.stderr, /^ {2}body\.pool: no pool named "nope"/m);
      assert.match(r.stderr, /^ {2}body\.remoteTs\[0\]: /m);
      assert.ok(!r.stderr.includes(psk) && !r.stdout.includes(psk));

      // Several documents: each is reported; the good one is applied, the exit status says one failed.
      const mixed = tempFile(
        'mixed.yaml',
        `---\nname: good\nid: good@corp.example\nauth: { psk: ${psk} }\npool: rw\n---\nname: short\nid: short@corp.example\nauth: { psk: tooshort }\n`,
      );
      const m = await ctl(['peer', 'add', mixed, ...s.as('admin')]);
      assert.equal(m.code, 1);
      assert.match(m.stdout, /^peer good: added/m);
      assert.match(m.stderr, /^peer short \(.*mixed\.yaml\[1\]\): error 400 validation/m);
      assert.match(m.stderr, /^ {2}body\.auth\.psk: must NOT have fewer than 16 characters$/m);
      assert.match(m.stderr, /^1 of 2 peers refused/m);
      assert.ok(!m.stderr.includes('tooshort'), 'even a rejected PSK is not echoed');

      // Not YAML at all: an input error (exit 2) naming the place, not quoting the text.
      const broken = tempFile('broken.yaml', `name: x\nauth: { psk: "${psk}\n`);
      const b = await ctl(['peer', 'add', broken, ...s.as('admin')]);
      assert.equal(b.code, 2);
      assert.match(b.stderr, /broken\.yaml:\d+:\d+: not valid YAML or JSON/);
      assert.ok(!b.stderr.includes(psk));
    });
  });
});

describe('ctl sas and sa', () => {
  test('sas lists an established SA as a table with counts by state; --json parses; sa shows it', async () => {
    await withGateway(async (s) => {
      const c = await s.gw.connect('x@example.org', RW_PSK);
      assert.equal(c.established, true);
      const r = await ctlBinary(['sas', ...s.as('viewer')]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trimEnd().split('\n');
      assert.match(
        lines[0]!,
        /^SPI +PEER +IDENTITY +STATE +TRANSPORT +REMOTE +VIP +WORKER +CHILDREN +IN +OUT +ESTABLISHED$/,
      );
      assert.match(
        lines[1]!,
        /^[0-9a-f]{16} +rw +x@example\.org +established +udp +192\.0\.2\.10:\d+ +10\.77\.0\.\d+ +- +1 +0 B +0 B +\d+s ago$/,
      );
      assert.equal(lines.at(-1), 'matching SAs by state: established 1 (1 in all)');

      const json = await ctl(['sas', '--json', ...s.as('viewer')]);
      assert.equal(json.code, 0, json.stderr);
      const page = JSON.parse(json.stdout) as {
        items: { spi: string; peerId: string; virtualIp: string }[];
        next: null;
        counts: Record<string, number>;
      };
      assert.equal(page.items.length, 1);
      assert.equal(page.items[0]!.peerId, 'x@example.org');
      assert.equal(page.items[0]!.virtualIp, c.vip);
      assert.deepEqual(page.counts, { established: 1 });
      assert.equal(page.next, null);

      const one = await ctl(['sa', page.items[0]!.spi, ...s.as('viewer')]);
      assert.equal(one.code, 0, one.stderr);
      assert.match(one.stdout, new RegExp(`^IKE SA ${page.items[0]!.spi}$`, 'm'));
      assert.match(one.stdout, /^ {2}identity +x@example\.org$/m);
      assert.match(one.stdout, /^ {2}CHILD SAs:$/m);

      const none = await ctl(['sas', '--identity', 'nobody@example.org', ...s.as('viewer')]);
      assert.equal(none.code, 0, none.stderr);
      assert.match(none.stdout, /^no IKE SAs match$/m);
    });
  });

  test('sas follows the pages until the last, or stops at --limit', async () => {
    await withGateway(async (s) => {
      for (const id of ['a@example.org', 'b@example.org', 'c@example.org'])
        assert.equal((await s.gw.connect(id, RW_PSK)).established, true);
      const all = await ctl(['sas', '--json', ...s.as('viewer')]);
      const items = (JSON.parse(all.stdout) as { items: { spi: string }[] }).items;
      assert.equal(items.length, 3);
      assert.deepEqual(
        items.map((i) => i.spi),
        items.map((i) => i.spi).sort(),
        'SPI order',
      );
      const two = await ctl(['sas', '--limit', '2', ...s.as('viewer')]);
      assert.equal(two.code, 0, two.stderr);
      assert.equal(two.stdout.split('\n').filter((l) => /^[0-9a-f]{16} /.test(l)).length, 2);
      assert.match(two.stdout, /^showing the first 2 \(--limit\); more match$/m);
      assert.match(two.stdout, /^matching SAs by state: established 3 \(3 in all\)$/m);
      const twoJson = JSON.parse(
        (await ctl(['sas', '--limit', '2', '--json', ...s.as('viewer')])).stdout,
      ) as {
        items: unknown[];
        next: string | null;
      };
      assert.equal(twoJson.items.length, 2);
      assert.notEqual(twoJson.next, null, 'next says where --limit stopped');
    });
  });

  test('sa rekey, liveness and delete: accepted; after delete the SA is gone', async () => {
    await withGateway(async (s) => {
      assert.equal((await s.gw.connect('x@example.org', RW_PSK)).established, true);
      const spi = await gatewaySpi(s, 'x@example.org');
      const liveness = await ctl(['sa', 'liveness', spi, ...s.as('operator')]);
      assert.equal(liveness.code, 0, liveness.stderr);
      assert.match(liveness.stdout, new RegExp(`^IKE SA ${spi}: checking the peer is alive`, 'm'));
      // The rekey is answered when the liveness exchange is done (one request at a time).
      const rekeyed = await until('a rekey to be accepted', async () => {
        const r = await ctl(['sa', 'rekey', spi, ...s.as('operator')]);
        return r.code === 0 ? r : undefined;
      });
      assert.match(rekeyed.stdout, new RegExp(`^IKE SA ${spi}: rekeying its CHILD SAs$`, 'm'));

      const viewer = await ctl(['sa', 'delete', spi, ...s.as('viewer')]);
      assert.equal(viewer.code, 1);
      assert.match(viewer.stderr, /^error 403 forbidden/m);
      assert.match(viewer.stderr, /token from --token-file .*viewer\.token/);

      const deleted = await until('the delete to be accepted', async () => {
        const r = await ctl(['sa', 'delete', spi.toUpperCase(), ...s.as('operator')]);
        return r.code === 0 ? r : undefined;
      });
      assert.match(deleted.stdout, new RegExp(`^IKE SA ${spi}: deleting`, 'm'));
      await until('the SA to be gone', async () => {
        const r = await ctl(['sa', spi, ...s.as('viewer')]);
        return r.code === 1 && /error 404 not-found/.test(r.stderr);
      });
      const empty = await ctl(['sas', ...s.as('viewer')]);
      assert.match(empty.stdout, /^no IKE SAs match$/m);
    });
  });

  test('usage errors exit 2 with the group usage: a bad SPI, an option of another command, arguments', async () => {
    for (const args of [
      ['sa', 'not-an-spi'],
      ['sa', 'delete'],
      ['sas', '--replace'],
      ['sa', 'delete', '0123456789abcdef', '--ike'],
      ['peers', 'extra'],
      ['sas', '--limit', '0'],
    ]) {
      const r = await ctl([...args, '--url', 'http://127.0.0.1:1']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^usage: ikegate ctl ${args[0]}\\b`, 'm'), args.join(' '));
    }
    const unknown = await ctl(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command frobnicate/);
    assert.match(unknown.stderr, /^usage: ikegate ctl <command>/m);
  });
});

describe('ctl pools', () => {
  test('a pool change that would cut off addresses in use is refused: exit 1, the holders printed', async () => {
    await withGateway(async (s) => {
      const a = await s.gw.connect('x@example.org', RW_PSK);
      const b = await s.gw.connect('y@example.org', RW_PSK);
      assert.ok(a.established && b.established);
      const held = [a.vip, b.vip].sort();
      assert.deepEqual(held, ['10.77.0.2', '10.77.0.3']);

      // /30 keeps only 10.77.0.2 to hand out: y's 10.77.0.3 would be cut off.
      const shrink = await ctlBinary(['pool', 'set', 'rw', '10.77.0.0/30', ...s.as('admin')]);
      assert.equal(shrink.code, 1, shrink.stderr);
      assert.match(
        shrink.stderr,
        /^error 409 in-use: 1 address\(es\) of pool "rw" are held outside 10\.77\.0\.0\/30/m,
      );
      assert.match(shrink.stderr, /^ {2}ADDRESS +SPI +PEER +IDENTITY +WORKER$/m);
      assert.match(shrink.stderr, /^ {2}10\.77\.0\.3 +[0-9a-f]{16} +rw +y@example\.org +local$/m);

      const del = await ctl(['pool', 'delete', 'rw', ...s.as('admin')]);
      assert.equal(del.code, 1);
      assert.match(del.stderr, /^error 409 in-use: /m);
      assert.match(del.stderr, /^ {2}named by peers: rw$/m);

      const pools = await ctl(['pools', ...s.as('viewer')]);
      assert.equal(pools.code, 0, pools.stderr);
      assert.match(pools.stdout, /^rw +10\.77\.0\.0\/24 +10\.77\.0\.1 +253 +2 +- +rw$/m, 'unchanged');

      // Growing it is fine, and keeps the DNS servers set before.
      const dns = await ctl([
        'pool',
        'set',
        'rw',
        '10.77.0.0/24',
        '--dns',
        '10.77.0.1,192.0.2.53',
        ...s.as('admin'),
      ]);
      assert.equal(dns.code, 0, dns.stderr);
      const grow = await ctl(['pool', 'set', 'rw', '10.77.0.0/23', ...s.as('admin')]);
      assert.equal(grow.code, 0, grow.stderr);
      assert.match(
        grow.stdout,
        /^pool rw: 10\.77\.0\.0\/23, 2 of 509 addresses in use \(config version \d+\)$/m,
      );
      const shown = await ctl(['pool', 'rw', ...s.as('viewer')]);
      assert.match(shown.stdout, /^ {2}DNS +10\.77\.0\.1, 192\.0\.2\.53$/m);

      const added = await ctl(['pool', 'add', 'lab', '10.88.0.0/24', ...s.as('admin')]);
      assert.equal(added.code, 0, added.stderr);
      assert.match(added.stdout, /^pool lab: 10\.88\.0\.0\/24, 0 of 253 addresses in use \(created\)/m);
      const removed = await ctl(['pool', 'delete', 'lab', ...s.as('admin')]);
      assert.equal(removed.code, 0, removed.stderr);
      assert.match(removed.stdout, /^pool lab: deleted/m);
    });
  });
});

describe('ctl failover, cluster and --json', () => {
  test('failover set, override, clear', async () => {
    await withGateway(async (s) => {
      const set = await ctl(['failover', 'set', '45', ...s.as('admin')]);
      assert.equal(set.code, 0, set.stderr);
      assert.match(set.stdout, /^policy wait-for-reconnect: hold an SA 45 s for its peer to reconnect$/m);
      const o = await ctl(['failover', 'override', 'rw', '120', ...s.as('admin')]);
      assert.equal(o.code, 0, o.stderr);
      assert.match(o.stdout, /^ {2}rw +120 s$/m);
      const cleared = await ctl(['failover', 'clear', 'rw', ...s.as('admin')]);
      assert.equal(cleared.code, 0, cleared.stderr);
      assert.match(cleared.stdout, /^no per-peer overrides$/m);
      const again = await ctl(['failover', 'clear', 'rw', ...s.as('admin')]);
      assert.equal(again.code, 0, 'clearing twice is no error (DELETE is idempotent)');
      const nobody = await ctl(['failover', 'clear', 'nobody', ...s.as('admin')]);
      assert.equal(nobody.code, 1);
      assert.match(nobody.stderr, /^error 404 not-found: no peer named "nobody"$/m);
      const range = await ctl(['failover', 'set', '99999', ...s.as('admin')]);
      assert.equal(range.code, 1, 'the API checks the range');
      assert.match(range.stderr, /^ {2}body\.waitSeconds: /m);
      const words = await ctl(['failover', 'set', 'soon', ...s.as('admin')]);
      assert.equal(words.code, 2);
    });
  });

  test('--json prints JSON that parses, for every listing', async () => {
    await withGateway(async (s) => {
      for (const command of [
        ['sas'],
        ['peers'],
        ['peer', 'rw'],
        ['pools'],
        ['pool', 'rw'],
        ['failover'],
        ['workers'],
        ['edges'],
        ['shards'],
        ['config'],
      ]) {
        const r = await ctl([...command, '--json', ...s.as('viewer')]);
        assert.equal(r.code, 0, `${command.join(' ')}: ${r.stderr}`);
        assert.doesNotThrow(() => JSON.parse(r.stdout), command.join(' '));
      }
      const config = JSON.parse((await ctl(['config', '--json', ...s.as('viewer')])).stdout) as {
        members: { id: string }[];
      };
      assert.deepEqual(
        config.members.map((m) => m.id),
        ['local'],
      );
      const workers = await ctl(['workers', ...s.as('viewer')]);
      assert.match(workers.stdout, /^local +yes +no +0 +0 +\d+ +- +- +-$/m);
      const cfg = await ctl(['config', ...s.as('viewer')]);
      assert.match(cfg.stdout, /^local +worker +\d+ +current$/m);
    });
  });

  test('drain on `ikegate up` (not clustered): exit 1 with the not-clustered problem (real binary)', async () => {
    await withGateway(async (s) => {
      const r = await ctlBinary(['drain', 'worker', 'local', ...s.as('operator')]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error 409 not-clustered: /m);
      const e = await ctl(['drain', 'edge', 'local', '--grace', '5', ...s.as('operator')]);
      assert.equal(e.code, 1);
      assert.match(e.stderr, /^error 409 not-clustered: /m);
    });
  });
});

describe('ctl credentials and connection failures', () => {
  test('a wrong token: exit 1 with 401, naming the token file, never the token (real binary)', async () => {
    await withGateway(async (s) => {
      const wrong = 'ikg_' + 'A'.repeat(43);
      const file = tempFile('wrong.token', `${wrong}\n`);
      const r = await ctlBinary(['peers', '--url', s.url, '--token-file', file]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^error 401 unauthenticated: credentials unknown token$/m);
      assert.ok(r.stderr.includes(`(token from --token-file ${file})`), r.stderr);
      assert.ok(!r.stderr.includes(wrong) && !r.stdout.includes(wrong));

      // $IKEGATE_TOKEN_FILE is the last source; none at all says how to give one.
      const viaEnv = await ctl(['peers', '--url', s.url], { IKEGATE_TOKEN_FILE: s.tokenFile.viewer });
      assert.equal(viaEnv.code, 0, viaEnv.stderr);
      const none = await ctl(['peers', '--url', s.url]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /error 401 .*\n {2}\(no credentials: give --token-file, \$IKEGATE_TOKEN/);
      const viaUrlEnv = await ctl(['peers'], { IKEGATE_URL: s.url, IKEGATE_TOKEN: s.gw.tokens.viewer });
      assert.equal(viaUrlEnv.code, 0, viaUrlEnv.stderr);
      const notToken = await ctl(['peers', '--url', s.url, '--token-file', join(s.gw.dir, 'access.yaml')]);
      assert.equal(notToken.code, 2, 'a file that is not a token is an input error');
      assert.doesNotMatch(notToken.stderr, /sha256/);
    });
  });

  test('an unreachable URL exits 3 (real binary); a server that never answers exits 3 after --timeout', async () => {
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));
    const r = await ctlBinary(['sas', '--url', `http://127.0.0.1:${port}`]);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /cannot reach http:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);

    const silent = createTcpServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    try {
      const started = Date.now();
      const t = await ctl([
        'workers',
        '--timeout',
        '0.3',
        '--url',
        `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      ]);
      assert.equal(t.code, 3, t.stderr);
      assert.match(t.stderr, /no answer to GET \/v1\/workers within 0\.3 s/);
      assert.ok(Date.now() - started < 5000);
    } finally {
      silent.close();
    }
  });

  test('https: --ca trusts the server, --cert/--key authenticate the client (mTLS)', async (t) => {
    let haveOpenssl = true;
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      haveOpenssl = false;
    }
    const missing = requirement(!haveOpenssl && 'openssl (makes the test CA and certificates)', t);
    if (missing) {
      t.skip(missing);
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'ikegate-ctl-tls-'));
    const f = (n: string) => join(dir, n);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore', cwd: dir });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.pem'),
      '-days',
      '1',
      '-subj',
      '/CN=ctl test CA',
    );
    for (const [name, ext] of [
      ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
      ['client', 'extendedKeyUsage=clientAuth'],
    ] as const) {
      writeFileSync(f(`${name}.ext`), `${ext}\n`);
      ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
      ssl(
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f('ca.pem'),
        '-CAkey',
        f('ca.key'),
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        f(`${name}.ext`),
        '-out',
        f(`${name}.pem`),
      );
    }
    const server = createHttpsServer(
      {
        key: readFileSync(f('server.key')),
        cert: readFileSync(f('server.pem')),
        ca: readFileSync(f('ca.pem')),
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => {
        const cn = (req.socket as import('node:tls').TLSSocket).getPeerCertificate()?.subject?.CN;
        const ok = (req.socket as import('node:tls').TLSSocket).authorized && cn === 'client';
        res.writeHead(ok ? 200 : 401, {
          'content-type': ok ? 'application/json' : 'application/problem+json',
        });
        res.end(
          JSON.stringify(
            ok
              ? { items: [{ id: `w-${cn}`, healthy: true, draining: false, shards: 3 }] }
              : {
                  type: 'urn:ikegate:problem:unauthenticated',
                  title: 'x',
                  status: 401,
                  detail: 'credentials missing',
                },
          ),
        );
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const untrusted = await ctl(['workers', '--url', url]);
      assert.equal(untrusted.code, 3, untrusted.stderr);
      assert.match(untrusted.stderr, /give the CA with --ca/);

      const noCert = await ctl(['workers', '--url', url, '--ca', f('ca.pem')]);
      assert.equal(noCert.code, 1, noCert.stderr);
      assert.match(noCert.stderr, /^error 401 unauthenticated: credentials missing\n {2}\(no credentials/m);

      const mtls = await ctlBinary([
        'workers',
        '--url',
        url,
        '--ca',
        f('ca.pem'),
        '--cert',
        f('client.pem'),
        '--key',
        f('client.key'),
      ]);
      assert.equal(mtls.code, 0, mtls.stderr);
      assert.match(mtls.stdout, /^w-client +yes +no +3 +/m);

      const plain = await ctl(['workers', '--url', url.replace('https', 'http'), '--ca', f('ca.pem')]);
      assert.equal(plain.code, 2, '--ca needs https');
    } finally {
      server.close();
    }
  });

  test("`ikegate ctl <group> --help` prints that group's usage and options, exit 0 (real binary)", async () => {
    const r = await ctlBinary(['sas', '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: ikegate ctl sas /);
    for (const o of ['--peer', '--identity', '--worker', '--state', '--transport', '--limit', '--json'])
      assert.ok(r.stdout.includes(o), o);
    const peer = await ctlBinary(['peer', 'add', '-h']);
    assert.equal(peer.code, 0, peer.stderr);
    assert.match(peer.stdout, /^usage: ikegate ctl peer NAME/);
    assert.match(peer.stdout, /--replace/);
  });
});
