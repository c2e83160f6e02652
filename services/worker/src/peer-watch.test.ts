import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createLogger } from '@ikegate/telemetry';
import { PeerWatch } from './peer-watch.js';

const log = createLogger({ level: 'silent' });

/** A loopback listener that keeps its connections (or closes each at once) until stopped. */
async function listener(
  closeEach = false,
): Promise<{ relay: string; stop: () => Promise<void>; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    if (closeEach) s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    relay: `127.0.0.1:${port}`,
    server,
    stop: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(10);
}

test('a watched member whose process ends (its connections close, its port refuses) is declared dead once (issue #11 fast detection)', async () => {
  const l = await listener();
  const dead: string[] = [];
  const w = new PeerWatch({ self: 'w1', log, onDead: (id) => dead.push(id) });
  try {
    w.update([
      { id: 'w1', relay: '127.0.0.1:1' },
      { id: 'w2', relay: l.relay },
    ]);
    await until(() => w.connected === 1);
    assert.equal(w.connected, 1, 'itself is never watched');
    await l.stop();
    await until(() => dead.length > 0);
    assert.deepEqual(dead, ['w2']);
    await sleep(300);
    assert.deepEqual(dead, ['w2'], 'one verdict, no dial loop');
  } finally {
    w.stop();
  }
});

test('a member whose server closes idle connections but still listens is never declared dead', async () => {
  const l = await listener(true);
  const dead: string[] = [];
  const w = new PeerWatch({ self: 'w1', log, onDead: (id) => dead.push(id) });
  try {
    w.update([{ id: 'w2', relay: l.relay }]);
    await sleep(1200);
    assert.deepEqual(dead, []);
  } finally {
    w.stop();
    await l.stop();
  }
});

test('members that leave the list are let go; one that refuses from the first dial is never declared dead (no eviction by misconfiguration)', async () => {
  const l = await listener();
  const dead: string[] = [];
  const w = new PeerWatch({ self: 'w1', log, onDead: (id) => dead.push(id), retryMs: 100 });
  try {
    w.update([{ id: 'w2', relay: l.relay }]);
    await until(() => w.connected === 1);
    w.update([]);
    assert.equal(w.connected, 0);
    await l.stop();
    await sleep(200);
    assert.deepEqual(dead, [], 'a member no longer listed gets no verdict');

    // Listed but refusing from the first dial (a wrong address, a rejecting network policy): never
    // reached, so no verdict however long it stays listed.
    w.update([{ id: 'w3', relay: l.relay }]);
    await sleep(400);
    w.update([{ id: 'w3', relay: l.relay }]);
    await sleep(200);
    assert.deepEqual(dead, [], 'a member never reached is not declared dead');
  } finally {
    w.stop();
  }
});

test('a member declared dead but still listed a while later (its eviction failed, or it came back) is asked again', async () => {
  let l = await listener();
  const relay = l.relay;
  const port = Number(relay.split(':')[1]);
  const dead: string[] = [];
  const w = new PeerWatch({ self: 'w1', log, onDead: (id) => dead.push(id), retryMs: 100 });
  try {
    w.update([{ id: 'w2', relay }]);
    await until(() => w.connected === 1);
    await l.stop();
    await until(() => dead.length === 1);
    // It comes back on the same address: asked again after retryMs, reached, no new verdict.
    l = await new Promise((resolve) => {
      const sockets = new Set<Socket>();
      const server = createServer((s) => sockets.add(s));
      server.listen(port, '127.0.0.1', () =>
        resolve({
          relay,
          server,
          stop: () =>
            new Promise<void>((r) => {
              server.close(() => r());
              for (const s of sockets) s.destroy();
            }),
        }),
      );
    });
    await sleep(150);
    w.update([{ id: 'w2', relay }]);
    await until(() => w.connected === 1);
    assert.equal(w.connected, 1);
    assert.deepEqual(dead, ['w2']);
  } finally {
    w.stop();
    await l.stop();
  }
});
