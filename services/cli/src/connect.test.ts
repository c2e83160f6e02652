/**
 * `ikegate connect` stops on SIGTERM/SIGINT in every phase, gracefully (exit 0, "disconnected"
 * logged), even when the server never answered or the TUN never came up (issue #9). The process is
 * spawned as a user would run it; the "servers" are loopback ports that refuse, stay silent, or
 * accept TCP and never speak TLS. The TUN case needs root and /dev/net/tun and is skipped without.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirement } from '@ikegate/testkit';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';

const BIN = new URL('../bin/ikegate.mjs', import.meta.url).pathname;
const HOST = '127.0.0.1';

interface Running {
  readonly proc: ChildProcess;
  output(): string;
  /** Resolves with how the process ended; rejects if it has not within `ms` (bounded wait). */
  exited(ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the output matches `re`; rejects after `ms` or if the process ends first. */
  logged(re: RegExp, ms: number): Promise<void>;
}

const spawned: ChildProcess[] = [];
after(() => {
  // A failed case must not leave processes behind: with a TUN, the launcher's child too.
  for (const p of spawned) {
    if (p.exitCode !== null || p.signalCode !== null || p.pid === undefined) continue;
    for (const child of childrenOf(p.pid)) process.kill(child, 'SIGKILL');
    p.kill('SIGKILL');
  }
});

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function connect(args: string[]): Running {
  const proc = spawn(
    process.execPath,
    [
      BIN,
      'connect',
      '--server',
      HOST,
      '--id',
      'client@example.org',
      '--remote-id',
      'gw.example.org',
      '--psk',
      'connect-test-pre-shared-key-0123456789',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  spawned.push(proc);
  let text = '';
  const waiters = new Set<() => void>();
  const onText = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters) w();
  };
  proc.stdout!.on('data', onText);
  proc.stderr!.on('data', onText);
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    output: () => text,
    exited: (ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${text}`)), ms);
        void ended.then((r) => {
          clearTimeout(timer);
          resolve(r);
        });
      }),
    logged: (re, ms) =>
      new Promise((resolve, reject) => {
        const done = (error?: Error) => {
          clearTimeout(timer);
          waiters.delete(check);
          if (error) reject(error);
          else resolve();
        };
        const check = () => {
          if (re.test(text)) done();
        };
        const timer = setTimeout(() => done(new Error(`no ${re} within ${ms} ms:\n${text}`)), ms);
        void ended.then(() => {
          if (!re.test(text)) done(new Error(`exited before ${re}:\n${text}`));
        });
        waiters.add(check);
        check();
      }),
  };
}

async function closedTcpPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, HOST, () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function closedUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, HOST, () => resolve()));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A stop handled by ikegate itself: exit 0 after "disconnected", not death by the signal. */
async function assertStopsOn(c: Running, signal: NodeJS.Signals): Promise<void> {
  c.proc.kill(signal);
  const r = await c.exited(15_000);
  assert.deepEqual(r, { code: 0, signal: null }, c.output());
  assert.match(c.output(), /"msg":"disconnected"/);
}

describe(
  'ikegate connect stops on a signal whatever the server does (issue #9)',
  { timeout: 120_000 },
  () => {
    test('TCP to a port that refuses: the connect loop retries, SIGTERM ends it (RFC 9329 §6: the initiator redials)', async () => {
      const c = connect(['--no-tun', '--transport', 'tcp', '--port-tcp', String(await closedTcpPort())]);
      await c.logged(/"msg":"connect-failed"/, 15_000);
      await assertStopsOn(c, 'SIGTERM');
    });

    test('TLS to a server that accepts TCP and never answers the handshake: SIGTERM during the dial (RFC 9329 §8)', async () => {
      const held: Socket[] = [];
      const silent = createServer((s) => held.push(s));
      await new Promise<void>((resolve) => silent.listen(0, HOST, () => resolve()));
      try {
        const port = (silent.address() as AddressInfo).port;
        const c = connect(['--no-tun', '--transport', 'tls', '--port-tls', String(port), '--insecure']);
        for (let i = 0; i < 1_500 && held.length === 0; i++)
          await new Promise((resolve) => setTimeout(resolve, 10));
        assert.equal(held.length, 1, `the client dialled:\n${c.output()}`);
        await assertStopsOn(c, 'SIGTERM');
      } finally {
        for (const s of held) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    test("--metrics: the client serves its counters (IKE_SA_INIT retransmissions, its UDP socket's drop series, a datagram from another address, or from the server's address but another port than its IKE and NAT-T ports, dropped as foreign_source; the send_failed series); SIGTERM closes the listener", async (t) => {
      // A server that reads the IKE_SA_INIT (so the test learns the client's port) and never answers.
      const server = createSocket('udp4');
      const clientPorts: number[] = [];
      server.on('message', (_m, r) => clientPorts.push(r.port));
      await new Promise<void>((resolve) => server.bind(0, HOST, () => resolve()));
      const stranger = createSocket('udp4');
      await new Promise<void>((resolve) => stranger.bind(0, '127.0.0.2', () => resolve()));
      const otherPort = createSocket('udp4');
      await new Promise<void>((resolve) => otherPort.bind(0, HOST, () => resolve()));
      t.after(() => {
        server.close();
        stranger.close();
        otherPort.close();
      });
      const c = connect([
        '--no-tun',
        '--transport',
        'udp',
        '--port-ike',
        String(server.address().port),
        '--metrics',
        `${HOST}:0`,
      ]);
      await c.logged(/"msg":"metrics-listening"/, 15_000);
      const port = Number(/"port":(\d+)[^\n]*"msg":"metrics-listening"/.exec(c.output())![1]);
      const scrape = async () => {
        const r = await fetch(`http://${HOST}:${port}/metrics`);
        assert.equal(r.status, 200);
        return r.text();
      };
      const sent = (text: string) =>
        Number(
          /^ikegate_ike_messages_total\{direction="out",exchange="IKE_SA_INIT"\} (\d+)$/m.exec(text)?.[1] ??
            0,
        );
      // The first request and at least one retransmission (RFC 7296 §2.1), counted as they go out.
      let text = await scrape();
      for (let i = 0; i < 100 && sent(text) < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        text = await scrape();
      }
      assert.ok(sent(text) >= 2, text);
      assert.match(text, /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 0$/m);
      assert.match(text, /^ikegate_drops_total\{layer="udp",reason="foreign_source"\} 0$/m);
      assert.match(text, /^ikegate_drops_total\{layer="udp",reason="send_failed"\} 0$/m);
      assert.ok(clientPorts.length >= 2);
      stranger.send(new Uint8Array(40), clientPorts[0]!, HOST);
      otherPort.send(new Uint8Array(40), clientPorts[0]!, HOST);
      const foreign = /^ikegate_drops_total\{layer="udp",reason="foreign_source"\} 2$/m;
      for (let i = 0; i < 100 && !foreign.test(text); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        text = await scrape();
      }
      assert.match(text, foreign);
      await assertStopsOn(c, 'SIGTERM');
      await assert.rejects(fetch(`http://${HOST}:${port}/metrics`));
    });

    test('--metrics on an address in use: exit 1 naming the address and EADDRINUSE, before any IKE traffic', async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, HOST, () => resolve()));
      try {
        const port = (taken.address() as AddressInfo).port;
        const c = connect(['--no-tun', '--transport', 'udp', '--metrics', `${HOST}:${port}`]);
        const r = await c.exited(15_000);
        assert.deepEqual(r, { code: 1, signal: null }, c.output());
        assert.match(
          c.output(),
          new RegExp(`^ikegate: cannot serve metrics on ${HOST}:${port}: EADDRINUSE`, 'm'),
        );
        assert.doesNotMatch(c.output(), /"msg":"initiating"/);
      } finally {
        await new Promise<void>((resolve) => taken.close(() => resolve()));
      }
    });

    test('UDP to a server that never answers IKE_SA_INIT: SIGINT while it retransmits (RFC 7296 §2.1)', async () => {
      const c = connect(['--no-tun', '--transport', 'udp', '--port-ike', String(await closedUdpPort())]);
      await c.logged(/"msg":"initiating"/, 15_000);
      await assertStopsOn(c, 'SIGINT');
    });

    const root = process.getuid?.() === 0 && existsSync('/dev/net/tun');
    test(
      'with a TUN that never came up (no CHILD SA, link down): SIGTERM to the launcher ends it and its child, and the TUN is gone',
      { skip: requirement(root ? false : 'needs root and /dev/net/tun') },
      async () => {
        const tun = `ikgct${process.pid % 10_000}`;
        const c = connect(['--tun', tun, '--transport', 'tcp', '--port-tcp', String(await closedTcpPort())]);
        // Two attempts (the retry comes 1 s after the first): by then the TUN reader is blocked in read(2).
        await c.logged(/"msg":"connect-failed"[\s\S]*"msg":"connect-failed"/, 15_000);
        await assertStopsOn(c, 'SIGTERM');
        assert.throws(
          () => execFileSync('ip', ['link', 'show', 'dev', tun], { stdio: 'ignore' }),
          'the TUN device is gone',
        );
      },
    );
  },
);

describe(
  'ikegate connect gives up at once when the gateway refuses its child SA (issue #9 defect 5)',
  { timeout: 120_000 },
  () => {
    const base = 30_000 + (process.pid % 500) * 5;
    const ports = { ike: base, natT: base + 1, tcp: base + 2, control: base + 3 };
    const dir = mkdtempSync(join(tmpdir(), 'ikegate-connect-pool-'));
    const config = join(dir, 'ikegate.yaml');
    // A /30 pool: one address for peers (not the network, the gateway's .1 or the broadcast).
    writeFileSync(
      config,
      `identity: { id: gw.example.org }
listen:
  udp: { address: ${HOST}, ikePort: ${ports.ike}, natTPort: ${ports.natT} }
  tcp: { address: ${HOST}, port: ${ports.tcp} }
  tls: { enabled: false }
control: { address: ${HOST}, port: ${ports.control} }
proposals: { ike: [aes256gcm16-prfsha256-x25519], esp: [aes256gcm16] }
pools: [{ name: rw, cidr: 10.66.0.0/30 }]
peers:
  - { name: rw, id: '*@example.org', auth: { psk: 'connect-test-pre-shared-key-0123456789' }, pool: rw, remoteTs: [dynamic] }
dataplane: { masquerade: { enabled: false } }
log: { level: info }
`,
    );
    const gateway = spawn(process.execPath, [BIN, 'up', '--config', config, '--no-tun'], { stdio: 'ignore' });
    spawned.push(gateway);
    after(() => gateway.kill('SIGTERM'));
    const args = (id: string) => [
      '--no-tun',
      '--transport',
      'tcp',
      '--port-tcp',
      String(ports.tcp),
      '--id',
      id,
    ];

    test('the second client finds the pool empty: INTERNAL_ADDRESS_FAILURE (RFC 7296 §3.15.4), an error naming it, exit code 3', async () => {
      for (let i = 0; i < 100; i++) {
        try {
          if ((await fetch(`http://${HOST}:${ports.control}/healthz`)).ok) break;
        } catch {
          // not up yet
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const first = connect(args('alice@example.org'));
      await first.logged(/"msg":"tun-configured"|"msg":"ike-sa-established"/, 20_000);
      const second = connect(args('bob@example.org'));
      const r = await second.exited(20_000);
      assert.deepEqual(r, { code: 3, signal: null }, second.output());
      assert.match(second.output(), /no virtual IP left in its pool \(INTERNAL_ADDRESS_FAILURE/);
      await assertStopsOn(first, 'SIGTERM');
    });
  },
);

test(
  'connect() as a library: a bad --ike or --ts rejects before the metrics port is bound (nothing left listening)',
  { timeout: 30_000 },
  async () => {
    const { connect: connectLibrary } = await import('./connect.js');
    const freePort = async () => {
      const s = createServer();
      await new Promise<void>((resolve) => s.listen(0, HOST, () => resolve()));
      const port = (s.address() as AddressInfo).port;
      await new Promise<void>((resolve) => s.close(() => resolve()));
      return port;
    };
    const base = {
      server: HOST,
      transport: 'udp' as const,
      ports: { ike: 9, natT: 9, tcp: 9, tls: 9 },
      id: 'client@example.test',
      remoteId: 'gateway.example.test',
      psk: new TextEncoder().encode('a-pre-shared-key-of-enough-length'),
      remoteTs: ['10.0.0.0/8'],
      ike: ['aes256gcm16-prfsha256-x25519'],
      esp: ['aes256gcm16'],
      dpdSeconds: 30,
      udpFallbackSeconds: 5,
      logLevel: 'silent',
    };
    for (const bad of [{ ike: ['aes256gcm16-nosuchprf-x25519'] }, { remoteTs: ['10.0.0.0/33'] }]) {
      const port = await freePort();
      await assert.rejects(connectLibrary({ ...base, ...bad, metricsListen: { host: HOST, port } }));
      const again = createServer();
      await new Promise<void>((resolve, reject) => {
        again.once('error', reject);
        again.listen(port, HOST, () => resolve());
      });
      await new Promise<void>((resolve) => again.close(() => resolve()));
    }
  },
);
