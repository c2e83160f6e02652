/**
 * The native UDP addon (../native/udp_batch.c) and NodeUdpBind's two receive paths on loopback
 * (issue #14): the batched path must deliver exactly what dgram delivers, datagram for datagram,
 * including datagrams the kernel coalesced (UDP GRO), and stay bounded per event-loop turn. The
 * coalesced datagrams come from a real UDP_SEGMENT send (the addon's `send` with a segment size):
 * on loopback the kernel hands such a send to a UDP_GRO socket as one read, and cuts it up for one
 * without (dgram).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { requirement } from '@ikegate/testkit';
import { LocalUsageError } from './errors.js';
import {
  loadNativeUdp,
  NATIVE_UDP_ADDON,
  type NativeUdpAddon,
  type NativeUdpHandle,
  nativeUdpFor,
} from './native-udp.js';
import { NodeUdpBind } from './node-binds.js';

const HOST = '127.0.0.1';

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited >= ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const native = loadNativeUdp();
const addon: NativeUdpAddon | undefined = 'addon' in native ? native.addon : undefined;

test('the native UDP addon is built and loads (CI builds it: scripts/build-native.mjs)', (t) => {
  if (addon) return;
  const why = 'why' in native ? native.why : '';
  if (process.env['CI'] === 'true') assert.fail(`native UDP addon missing under CI=true: ${why}`);
  t.skip(why);
});

/** A sender socket of the addon, for UDP_SEGMENT (GSO) sends; closed by the caller. */
function gsoSender(a: NativeUdpAddon): NativeUdpHandle {
  return a.open(HOST, 0, 0, () => undefined);
}

function datagrams(count: number, size: number, last: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) =>
    Uint8Array.from({ length: i === count - 1 ? last : size }, (_, j) => (i * 31 + j) & 0xff),
  );
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe(
  'NodeUdpBind receive paths: batched (native, UDP GRO) and dgram deliver the same datagrams',
  { skip: !addon && process.env['CI'] !== 'true' },
  () => {
    for (const path of ['batched', 'dgram'] as const) {
      test(`${path}: a UDP_SEGMENT send of N datagrams arrives as N datagrams, bytes, order and sender intact (RFC 768; Linux UDP GRO)`, async () => {
        assert.ok(addon, 'the addon sends the segmented datagrams');
        const bind = new NodeUdpBind(HOST, 0, undefined, path);
        assert.equal(bind.receivePath, path);
        const got: { bytes: Uint8Array; address: string; port: number }[] = [];
        const local = await bind.open((d, address, port) =>
          got.push({ bytes: Uint8Array.from(d), address, port }),
        );
        const sender = gsoSender(addon);
        const senderPort = addon.localPort(sender);
        try {
          await fc.assert(
            fc.asyncProperty(
              fc.integer({ min: 1, max: 1400 }),
              fc.integer({ min: 2, max: 40 }),
              fc.integer({ min: 1, max: 1400 }),
              async (size, count, lastWanted) => {
                const n = Math.min(count, Math.floor(60_000 / size));
                if (n < 2) return;
                const last = Math.min(lastWanted, size);
                const sent = datagrams(n, size, last);
                got.length = 0;
                assert.equal(addon.send(sender, concat(sent), HOST, local.port, size), 0);
                await until(() => got.length >= n, `${n} datagrams`);
                await new Promise((resolve) => setImmediate(resolve));
                assert.equal(got.length, n);
                got.forEach((g, i) => {
                  assert.deepEqual(g.bytes, sent[i]);
                  assert.equal(g.address, HOST);
                  assert.equal(g.port, senderPort);
                });
              },
            ),
            { numRuns: 40 },
          );
          const stats = bind.stats()!;
          assert.equal(stats.receivePath, path);
          if (path === 'batched') assert.equal(stats.sendErrors, 0);
        } finally {
          addon.close(sender);
          await bind.close();
        }
      });

      test(`${path}: bound to the wildcard (as \`connect\` is), its kernel drops at a full buffer are found and only grow (proc_net(5))`, async () => {
        const bind = new NodeUdpBind('0.0.0.0', 0, 4096, path);
        const local = await bind.open(() => undefined);
        const sender = createSocket('udp4');
        await new Promise<void>((resolve) => sender.connect(local.port, HOST, () => resolve()));
        const flood = () => {
          for (let i = 0; i < 500; i++) sender.send(new Uint8Array(1200));
        };
        try {
          assert.equal(bind.stats()!.drops, 0);
          flood();
          const first = bind.stats()!.drops!;
          assert.ok(first > 0, `drops at a full 4 KiB buffer: ${first}`);
          flood();
          assert.ok(bind.stats()!.drops! > first);
        } finally {
          sender.close();
          await bind.close();
        }
        assert.equal(bind.stats(), undefined, 'a closed bind has no count');
      });

      test(`${path}: an address in use is refused with EADDRINUSE, naming the address and port; once closed, the port can be bound again at once`, async () => {
        const first = new NodeUdpBind(HOST, 0, undefined, path);
        const { port } = await first.open(() => undefined);
        try {
          await assert.rejects(
            new NodeUdpBind(HOST, port, undefined, path).open(() => undefined),
            {
              code: 'EADDRINUSE',
              message: new RegExp(`^bind EADDRINUSE 127\\.0\\.0\\.1:${port}`),
            },
          );
        } finally {
          await first.close();
        }
        const again = new NodeUdpBind(HOST, port, undefined, path);
        assert.equal((await again.open(() => undefined)).port, port);
        await again.close();
      });

      test(`${path}: IPv6 loopback both ways`, async () => {
        const bind = new NodeUdpBind('::1', 0, undefined, path);
        const got: string[] = [];
        const local = await bind.open((d, address) =>
          got.push(`${address} ${Buffer.from(d).toString('hex')}`),
        );
        const peer = createSocket('udp6');
        const back: Buffer[] = [];
        peer.on('message', (m) => back.push(m));
        await new Promise<void>((resolve) => peer.bind(0, '::1', () => resolve()));
        try {
          peer.send(Uint8Array.of(7, 8), local.port, '::1');
          await until(() => got.length === 1, 'datagram in');
          assert.deepEqual(got, ['::1 0708']);
          bind.send(Uint8Array.of(6), '::1', peer.address().port);
          await until(() => back.length === 1, 'datagram out');
          assert.deepEqual([...back[0]!], [6]);
        } finally {
          peer.close();
          await bind.close();
        }
      });
    }
  },
);

test(
  'at a UDP_GRO socket the kernel hands a UDP_SEGMENT send over as one read with its segment size (Linux UDP GRO)',
  { skip: !addon && process.env['CI'] !== 'true' },
  async () => {
    assert.ok(addon);
    const reads: { length: number; segment: number }[] = [];
    const receiver = addon.open(HOST, 0, 0, (data, segment) => reads.push({ length: data.length, segment }));
    const sender = gsoSender(addon);
    try {
      assert.equal(
        addon.send(sender, new Uint8Array(1000 * 7 + 300), HOST, addon.localPort(receiver), 1000),
        0,
      );
      await until(() => reads.length > 0, 'the read');
      assert.deepEqual(reads, [{ length: 7300, segment: 1000 }]);
      assert.deepEqual(addon.counters(receiver), [0, 0, 1]);
    } finally {
      addon.close(sender);
      addon.close(receiver);
    }
  },
);

describe(
  'the batched path: bounded turns, close, refused sends, bad calls',
  { skip: !addon && process.env['CI'] !== 'true' },
  () => {
    test('1,000 datagrams queued in the socket are read at most 64 per event-loop turn, all of them, in order', async () => {
      assert.ok(addon);
      const bind = new NodeUdpBind(HOST, 0, 4 << 20, 'batched');
      let turn = 0;
      const perTurn = new Map<number, number>();
      const seen: number[] = [];
      const local = await bind.open((d) => {
        seen.push(new DataView(d.buffer, d.byteOffset).getUint32(0));
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
      });
      const peer: Socket = createSocket('udp4');
      await new Promise<void>((resolve) => peer.connect(local.port, HOST, () => resolve()));
      let ticking = true;
      const tick = () => {
        turn += 1;
        if (ticking) setImmediate(tick);
      };
      try {
        // Sent in one synchronous run: all 1,000 wait in the receive buffer.
        for (let i = 0; i < 1000; i++) {
          const m = Buffer.alloc(100);
          m.writeUInt32BE(i);
          peer.send(m);
        }
        setImmediate(tick);
        await until(() => seen.length === 1000, '1,000 datagrams');
        assert.deepEqual(
          seen,
          Array.from({ length: 1000 }, (_, i) => i),
        );
        assert.ok(Math.max(...perTurn.values()) <= 64, `per turn: ${[...perTurn.values()].join(',')}`);
        assert.ok(perTurn.size >= 1000 / 64, 'spread over turns');
      } finally {
        ticking = false;
        peer.close();
        await bind.close();
      }
    });

    test('closed from its own receive callback: no datagram after that, coalesced ones included; sends then are no-ops', async () => {
      assert.ok(addon);
      const bind = new NodeUdpBind(HOST, 0, undefined, 'batched');
      let got = 0;
      const local = await bind.open(() => {
        got += 1;
        void bind.close();
      });
      const sender = gsoSender(addon);
      try {
        // Ten datagrams of 100 in one GSO send (one read at a UDP_GRO socket), then three plain ones.
        assert.equal(addon.send(sender, new Uint8Array(1000), HOST, local.port, 100), 0);
        for (let i = 0; i < 3; i++)
          assert.equal(addon.send(sender, new Uint8Array(10), HOST, local.port, 0), 0);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(got, 1);
        assert.equal(bind.stats(), undefined);
        bind.send(Uint8Array.of(1), HOST, addon.localPort(sender)); // a no-op, not a throw
      } finally {
        addon.close(sender);
      }
    });

    test('a datagram the kernel refuses (EMSGSIZE) is dropped and counted in stats().sendErrors', async () => {
      const bind = new NodeUdpBind(HOST, 0, undefined, 'batched');
      const local = await bind.open(() => undefined);
      try {
        bind.send(new Uint8Array(65_536), HOST, local.port);
        bind.send(Uint8Array.of(1), 'not an address', 9);
        assert.equal(bind.stats()!.sendErrors, 1, 'EMSGSIZE counted');
        await new Promise((resolve) => setTimeout(resolve, 50)); // the name lookup fails: nothing sent
        assert.equal(bind.stats()!.sendErrors, 1);
      } finally {
        await bind.close();
      }
    });

    test('the addon refuses wrong arguments with a TypeError and a closed handle with -EBADF, in the same turn and later, never a crash', async () => {
      assert.ok(addon);
      const h = addon.open(HOST, 0, 0, () => undefined);
      addon.close(h);
      addon.close(h); // idempotent
      assert.equal(addon.send(h, Uint8Array.of(1), HOST, 9, 0), -9); // EBADF
      assert.equal(addon.localPort(h), -1);
      assert.equal(addon.receiveBuffer(h), -1);
      // Later turns: libuv has run its close callback; the handle still answers, and a newer socket
      // (which may get the same memory or descriptor) is not touched by a second close.
      await new Promise((resolve) => setTimeout(resolve, 10));
      const newer = addon.open(HOST, 0, 0, () => undefined);
      try {
        addon.close(h);
        assert.equal(addon.send(h, Uint8Array.of(1), HOST, 9, 0), -9);
        assert.equal(addon.localPort(h), -1);
        assert.ok(addon.localPort(newer) > 0, 'the newer socket is still open');
      } finally {
        addon.close(newer);
      }
      assert.throws(() => addon.localPort({} as NativeUdpHandle), TypeError);
      const bad: unknown[] = [
        undefined,
        null,
        1,
        'x',
        {},
        [],
        () => undefined,
        new Uint8Array(1),
        -1,
        70_000,
      ];
      fc.assert(
        fc.property(fc.constantFrom(...bad), fc.constantFrom(...bad), fc.constantFrom(...bad), (a, b, c) => {
          const call = (f: () => unknown) => {
            try {
              f();
            } catch (e) {
              assert.ok(e instanceof TypeError || (e as NodeJS.ErrnoException).code !== undefined, String(e));
            }
          };
          const anyAddon = addon as unknown as Record<string, (...args: unknown[]) => unknown>;
          call(() => anyAddon['send']!(a, b, c, 9, 0));
          call(() => anyAddon['localPort']!(a));
          call(() => anyAddon['counters']!(b));
          call(() => anyAddon['close']!(c));
          call(() => {
            const opened = anyAddon['open']!(a, b, c, () => undefined) as NativeUdpHandle;
            addon.close(opened);
          });
        }),
        { numRuns: 300 },
      );
    });
  },
);

describe(
  'NodeUdpBind.sendCoalesced: ESP datagrams of one run to one destination as one UDP_SEGMENT send, every datagram intact and in order',
  { skip: !addon && process.env['CI'] !== 'true' },
  () => {
    /** A raw receiver of the addon: every read, with its segment size (one read per coalesced send). */
    async function receiver(host = HOST, port = 0) {
      assert.ok(addon);
      const reads: { bytes: Uint8Array; segment: number }[] = [];
      const handle = addon.open(host, port, 4 << 20, (data, segment) =>
        reads.push({ bytes: Uint8Array.from(data), segment }),
      );
      const datagrams = () =>
        reads.flatMap((r) => {
          if (r.segment === 0) return [r.bytes];
          const out: Uint8Array[] = [];
          for (let at = 0; at < r.bytes.length; at += r.segment)
            out.push(r.bytes.subarray(at, at + r.segment));
          return out;
        });
      return { handle, port: addon.localPort(handle), reads, datagrams, close: () => addon.close(handle) };
    }
    const bytes = (n: number, tag: number) => new Uint8Array(n).fill(tag);

    test('equal datagrams then a shorter one: one read at the receiver, cut back into the same datagrams', async () => {
      const r = await receiver();
      const bind = new NodeUdpBind(HOST, 0, undefined, 'batched');
      await bind.open(() => undefined);
      try {
        const sent = [...Array.from({ length: 10 }, (_, i) => bytes(1400, i)), bytes(300, 99)];
        for (const d of sent) bind.sendCoalesced(d, HOST, r.port);
        await until(() => r.datagrams().length >= sent.length, 'the datagrams');
        assert.deepEqual(r.datagrams(), sent);
        assert.equal(r.reads.length, 1, 'one UDP_SEGMENT send');
        assert.equal(r.reads[0]!.segment, 1400);
      } finally {
        r.close();
        await bind.close();
      }
    });

    test('send() after queued datagrams sends them first; another destination, a larger datagram and the 64-datagram cap each end a send; close sends what is queued', async () => {
      const a = await receiver();
      const b = await receiver();
      const c = await receiver('127.0.0.2', a.port); // same port, another address
      const bind = new NodeUdpBind(HOST, 0, undefined, 'batched');
      await bind.open(() => undefined);
      try {
        bind.sendCoalesced(bytes(100, 1), HOST, a.port);
        bind.sendCoalesced(bytes(100, 2), HOST, a.port);
        bind.send(bytes(50, 3), HOST, a.port); // IKE: after the two queued
        bind.sendCoalesced(bytes(100, 4), HOST, a.port);
        bind.sendCoalesced(bytes(100, 5), HOST, b.port); // another destination
        bind.sendCoalesced(bytes(100, 11), '127.0.0.2', a.port); // and another

        bind.sendCoalesced(bytes(100, 6), HOST, a.port);
        bind.sendCoalesced(bytes(200, 7), HOST, a.port); // larger: ends the send of 6
        for (let i = 0; i < 100; i++) bind.sendCoalesced(bytes(10, 8), HOST, b.port); // 64, then 36
        bind.sendCoalesced(bytes(70_000 - 8 - 20, 9).subarray(0, 62_000), HOST, a.port); // over 60 KiB: on its own
        await until(() => a.datagrams().length >= 7 && b.datagrams().length >= 101, 'the datagrams');
        assert.deepEqual(
          c.datagrams().map((d) => d[0]),
          [11],
        );
        assert.deepEqual(
          a.datagrams().map((d) => [d[0], d.length]),
          [
            [1, 100],
            [2, 100],
            [3, 50],
            [4, 100],
            [6, 100],
            [7, 200],
            [9, 62_000],
          ],
        );
        assert.deepEqual(
          b.datagrams().map((d) => d[0]),
          [5, ...new Array<number>(100).fill(8)],
        );
        assert.equal(b.reads.length, 3, 'the 5, then the 64 cap split the 100 in 64 and 36');
        // Queued at close: sent before the socket goes.
        bind.sendCoalesced(bytes(100, 10), HOST, a.port);
        await bind.close();
        await until(() => a.datagrams().length === 8, 'the datagram queued at close');
        assert.equal(a.datagrams()[7]![0], 10);
      } finally {
        a.close();
        b.close();
        c.close();
        await bind.close();
      }
    });

    test('a coalesced send the kernel refuses as a whole is retried one by one, each refusal counted once (stats().sendErrors)', async () => {
      const bind = new NodeUdpBind(HOST, 0, undefined, 'batched');
      await bind.open(() => undefined);
      try {
        // An IPv6 destination from an IPv4 socket: EAFNOSUPPORT, for the whole send and for each.
        for (let i = 0; i < 5; i++) bind.sendCoalesced(bytes(100, i), '::1', 9);
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal(bind.stats()!.sendErrors, 5);
      } finally {
        await bind.close();
      }
    });
  },
);

test('IKEGATE_UDP_RECEIVE: dgram, batched or auto; anything else is a usage error', () => {
  assert.deepEqual(nativeUdpFor('dgram'), { why: 'IKEGATE_UDP_RECEIVE=dgram' });
  assert.throws(() => nativeUdpFor('fast'), /must be auto, batched or dgram/);
  assert.throws(() => new NodeUdpBind(HOST, 0, undefined, 'fast' as 'dgram'), LocalUsageError);
  assert.equal(new NodeUdpBind(HOST, 0, undefined, 'dgram').receivePath, 'dgram');
  assert.equal(new NodeUdpBind(HOST, 0).receivePath, addon ? 'batched' : 'dgram');
});

test(
  'a worker thread ended with its native socket open, the only thread that loaded the addon: the process lives on and the port is released (Node-API async cleanup)',
  { skip: !addon && process.env['CI'] !== 'true' },
  () => {
    // In a process of its own: there the addon is unloaded with the worker's environment.
    const script = `
      const { Worker } = require('node:worker_threads');
      const dgram = require('node:dgram');
      const w = new Worker(\`
        const { parentPort } = require('node:worker_threads');
        const addon = require(\${JSON.stringify(process.argv[1])});
        const h = addon.open('127.0.0.1', 0, 0, () => {});
        parentPort.postMessage(addon.localPort(h));
        setInterval(() => {}, 1000);\`, { eval: true });
      w.once('message', async (port) => {
        await w.terminate();
        setTimeout(() => {
          const s = dgram.createSocket('udp4');
          s.bind(port, '127.0.0.1', () => { console.log('rebound ' + (s.address().port === port)); s.close(); });
        }, 50);
      });`;
    const r = spawnSync(process.execPath, ['-e', script, NATIVE_UDP_ADDON], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 0, `${r.signal ?? ''} ${r.stderr}`);
    assert.equal(r.stdout.trim(), 'rebound true');
  },
);

test(
  'a link-local IPv6 sender is reported with its interface (fe80::b%va), as dgram reports it, and the reply reaches it: both paths, between two namespaces of a veth pair',
  {
    skip: requirement(
      process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0
        ? false
        : 'needs root and ip netns',
    ),
  },
  async () => {
    const [a, b] = [`ikg-ll-a-${process.pid}`, `ikg-ll-b-${process.pid}`];
    const ip = (...args: string[]) => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
    };
    ip('netns', 'add', a);
    try {
      ip('netns', 'add', b);
      ip('link', 'add', 'va', 'netns', a, 'type', 'veth', 'peer', 'name', 'vb', 'netns', b);
      for (const [ns, dev, address] of [
        [a, 'va', 'fe80::a/64'],
        [b, 'vb', 'fe80::b/64'],
      ] as const) {
        ip('-n', ns, 'link', 'set', dev, 'up');
        ip('-n', ns, 'addr', 'add', address, 'dev', dev, 'nodad');
      }
      for (const path of ['batched', 'dgram'] as const) {
        // The receiver in `a` answers each datagram to the address and port it came from.
        const receiver = `
          import { NodeUdpBind } from ${JSON.stringify(new URL('./node-binds.ts', import.meta.url).pathname)};
          const bind = new NodeUdpBind('::', 7777, undefined, '${path}');
          await bind.open((d, address, port) => {
            console.log(address);
            bind.send(d, address, port);
            setTimeout(() => process.exit(0), 50);
          });
          setTimeout(() => process.exit(3), 10_000);`;
        const sender = `
          const s = require('node:dgram').createSocket('udp6');
          s.on('message', (m, r) => { console.log('reply ' + r.address + ' ' + m); process.exit(0); });
          const go = () => s.send('hi', 7777, 'fe80::a%vb');
          s.bind(0, () => { go(); setInterval(go, 200); });
          setTimeout(() => process.exit(4), 10_000);`;
        const rx = spawn(
          'ip',
          ['netns', 'exec', a, process.execPath, '--import', 'tsx', '--input-type=module', '-e', receiver],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let seen = '';
        rx.stdout.on('data', (d: Buffer) => (seen += d.toString()));
        const tx = spawnSync('ip', ['netns', 'exec', b, process.execPath, '-e', sender], {
          encoding: 'utf8',
          timeout: 15_000,
        });
        // The receiver's output is read once it has exited (spawnSync held this event loop).
        await new Promise((resolve) =>
          rx.exitCode !== null ? resolve(undefined) : rx.once('close', resolve),
        );
        assert.equal(tx.status, 0, `${path}: no reply; the receiver saw ${JSON.stringify(seen)}`);
        assert.equal(tx.stdout.trim(), 'reply fe80::a%vb hi', path);
        assert.equal(seen.trim().split('\n')[0], 'fe80::b%va', path);
      }
    } finally {
      spawnSync('ip', ['netns', 'del', a]);
      spawnSync('ip', ['netns', 'del', b]);
    }
  },
);

test(
  'a coalesced send the kernel refuses as a whole (EINVAL: a segment larger than the MTU allows) is sent one datagram at a time, and every one arrives: a namespace whose loopback MTU is 1500',
  {
    skip: requirement(
      process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0
        ? false
        : 'needs root and ip netns',
    ),
  },
  async () => {
    const ns = `ikg-mtu-${process.pid}`;
    const run = (...args: string[]) => {
      const r = spawnSync('ip', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `ip ${args.join(' ')}: ${r.stderr}`);
    };
    run('netns', 'add', ns);
    try {
      run('-n', ns, 'link', 'set', 'lo', 'mtu', '1500', 'up');
      // 20 datagrams of 1,480 octets: 1,480 + 28 > 1,500, so the UDP_SEGMENT send is refused
      // (EINVAL); sent one by one, each is fragmented by IP and reassembled at the receiver.
      const script = `
        import { NodeUdpBind } from ${JSON.stringify(new URL('./node-binds.ts', import.meta.url).pathname)};
        const rx = new NodeUdpBind('127.0.0.1', 0, undefined, 'batched');
        const got = [];
        const { port } = await rx.open((d) => got.push(d[0] + ':' + d.length));
        const tx = new NodeUdpBind('127.0.0.1', 0, undefined, 'batched');
        await tx.open(() => {});
        for (let i = 0; i < 20; i++) tx.sendCoalesced(new Uint8Array(1480).fill(i), '127.0.0.1', port);
        await new Promise((r) => setTimeout(r, 300));
        console.log(JSON.stringify({ got, sendErrors: tx.stats().sendErrors }));
        process.exit(0);`;
      const r = spawnSync(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--import', 'tsx', '--input-type=module', '-e', script],
        { encoding: 'utf8', timeout: 20_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim()) as { got: string[]; sendErrors: number };
      assert.deepEqual(
        out.got,
        Array.from({ length: 20 }, (_, i) => `${i}:1480`),
      );
      assert.equal(out.sendErrors, 0);
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  },
);
