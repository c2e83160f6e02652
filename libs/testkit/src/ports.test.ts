import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';
import {
  candidateWindow,
  ephemeralRange,
  freePort,
  releasePort,
  reservationFile,
  reservePort,
} from './ports.js';

const PORTS_MODULE = new URL('./ports.ts', import.meta.url).href;

/**
 * Runs `body` in a child node process with `freePort` imported. `line` resolves with its first line
 * of output; the child's stdin stays open until `done()` is called, which resolves at its exit.
 */
function child(body: string): { line: Promise<string>; done: () => Promise<void> } {
  const p = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `import { freePort } from '${PORTS_MODULE}';\n${body}`],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  const exited = new Promise<void>((resolve, reject) => {
    p.once('error', reject);
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`child exit ${code}: ${out}`))));
  });
  const line = new Promise<string>((resolve, reject) => {
    p.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
    exited.then(() => reject(new Error(`child printed no line: ${out}`)), reject);
  });
  return {
    line,
    done: () => {
      p.stdin.end();
      return exited;
    },
  };
}

test('candidateWindow: ports below the ephemeral range, above it when below is too small, none when neither fits', () => {
  assert.deepEqual(candidateWindow([32_768, 60_999]), [20_000, 32_767]);
  assert.deepEqual(
    candidateWindow([32_768, 60_999], 10_000),
    [20_000, 22_767],
    'port + 10000 stays below too',
  );
  assert.deepEqual(candidateWindow([1_024, 40_000]), [40_001, 65_535]);
  assert.deepEqual(candidateWindow([1_024, 40_000], 10_000), [40_001, 55_535]);
  assert.equal(candidateWindow([1_024, 65_000]), undefined);
});

test('freePort: every port is outside the kernel ephemeral range, distinct, reserved by this pid, and free for TCP and UDP', async (t) => {
  const [lo, hi] = ephemeralRange();
  if (!candidateWindow([lo, hi])) return t.skip('no port window outside the ephemeral range on this machine');
  const ports: number[] = [];
  for (let i = 0; i < 30; i++) ports.push(await freePort());
  assert.equal(new Set(ports).size, ports.length);
  for (const port of ports) {
    assert.ok(port < lo || port > hi, `${port} in ${lo}-${hi}`);
    assert.equal(readFileSync(reservationFile(port), 'utf8'), String(process.pid));
    await new Promise<void>((resolve, reject) => {
      const srv = createServer().once('error', reject);
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
    });
    await new Promise<void>((resolve, reject) => {
      const u = createSocket('udp4').once('error', reject);
      u.bind(port, '127.0.0.1', () => u.close(() => resolve()));
    });
  }
  const bus = await freePort({ alsoOffset: 10_000 });
  assert.equal(
    readFileSync(reservationFile(bus + 10_000), 'utf8'),
    String(process.pid),
    'the bus port is reserved too',
  );
});

test('freePort: a port bound by another socket is never handed out', async (t) => {
  const window = candidateWindow(ephemeralRange());
  if (!window) return t.skip('no port window outside the ephemeral range on this machine');
  const [from, to] = window;
  // Bind a block of the window's ports, each reserved first (so no port another test file has
  // just reserved is taken from it) and then given up while bound: only the bind now keeps
  // freePort off them. None of 100 picks may be one of them.
  const held: ReturnType<typeof createServer>[] = [];
  const bound = new Set<number>();
  for (let p = from; p < from + 1_000 && p <= to; p++) {
    if (!reservePort(p)) continue;
    const srv = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      srv.once('error', () => resolve(false));
      srv.listen(p, '127.0.0.1', () => resolve(true));
    });
    releasePort(p);
    if (ok) {
      held.push(srv);
      bound.add(p);
    }
  }
  assert.ok(bound.size > 500, `${bound.size} ports bound`);
  try {
    for (let i = 0; i < 100; i++) assert.ok(!bound.has(await freePort()));
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
});

test('freePort: two processes picking 300 ports each at once never get the same one (reservation across processes)', async () => {
  // Each child picks, prints, and keeps its reservations until we close its stdin; 600 random
  // picks from ~12,000 ports collide with near certainty without the reservation.
  const body = `const ports = []; for (let i = 0; i < 300; i++) ports.push(await freePort());
    console.log(JSON.stringify(ports)); process.stdin.resume(); await new Promise((r) => process.stdin.once('end', r));`;
  const kids = [child(body), child(body)];
  const [a, b] = (await Promise.all(kids.map((k) => k.line))).map((l) => JSON.parse(l) as number[]);
  await Promise.all(kids.map((k) => k.done()));
  assert.equal(a!.length, 300);
  assert.equal(b!.length, 300);
  const both = a!.filter((p) => b!.includes(p));
  assert.deepEqual(both, []);
});

test('reservePort: a reservation left by an exited process is taken over; a live one is not; a process removes its own on exit', async () => {
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout.trim());
  const port = await freePort();
  // Pretend an exited process left the reservation behind.
  writeFileSync(reservationFile(port), String(deadPid));
  assert.equal(reservePort(port), true);
  assert.equal(readFileSync(reservationFile(port), 'utf8'), String(process.pid));
  // A live process (the test runner's parent, or init) holds it: not ours.
  writeFileSync(reservationFile(port), String(process.ppid));
  assert.equal(reservePort(port), false);
  rmSync(reservationFile(port), { force: true });

  // The child holds its reservation until we close its stdin (it would exit at once otherwise).
  const kid = child(
    `console.log(await freePort()); process.stdin.resume(); await new Promise((r) => process.stdin.once('end', r));`,
  );
  const theirs = Number(await kid.line);
  assert.equal(existsSync(reservationFile(theirs)), true, 'reserved while the child lives');
  await kid.done();
  assert.ok(theirs > 0);
  assert.equal(
    existsSync(reservationFile(theirs)),
    false,
    'the child removed its reservation when it exited',
  );
});

test('reservePort: two processes taking over the same 1,000 reservations left by an exited process never both get one', async () => {
  const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout.trim());
  const [from] = candidateWindow(ephemeralRange()) ?? [40_000];
  const block: number[] = [];
  for (let p = from + 1_500; block.length < 1_000; p++) {
    if (!reservePort(p)) continue;
    block.push(p);
    writeFileSync(reservationFile(p), String(deadPid));
  }
  const body = `const { reservePort } = await import('${PORTS_MODULE}');
    const got = ${JSON.stringify(block)}.filter((p) => reservePort(p));
    console.log(JSON.stringify(got)); process.stdin.resume(); await new Promise((r) => process.stdin.once('end', r));`;
  const kids = [child(body), child(body)];
  const [a, b] = (await Promise.all(kids.map((k) => k.line))).map((l) => JSON.parse(l) as number[]);
  await Promise.all(kids.map((k) => k.done()));
  for (const p of block) rmSync(reservationFile(p), { force: true });
  assert.equal(a!.length + b!.length, block.length, 'every stale reservation was taken over once');
  assert.deepEqual(
    a!.filter((p) => b!.includes(p)),
    [],
  );
});
