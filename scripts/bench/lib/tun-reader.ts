/**
 * Microbench for issue #14: the main thread's CPU per packet READ from a TUN device, old (the
 * reader thread posts every packet to the main thread, its buffer transferred; the design before
 * the reader ring, reproduced here from libs/tun at b8075c2) against new (TunDevice: the reader
 * thread reads into a SharedArrayBuffer ring that the main thread drains in batches, woken by
 * Atomics.waitAsync only when it found the ring empty), in the same run, at a few packet rates.
 * The new device runs twice: `ring` hands onPacket the view into the ring (the contract), and
 * `ring+copy` copies each packet in onPacket (`pkt.slice()`, what the old contract cost).
 *
 * Run as root: `node --import tsx scripts/bench/lib/tun-reader.ts` (it creates network namespace
 * ikg-tunrbench-<pid>, runs itself there holding TUN devices ikgra0 (new) and ikgrb0 (old), and
 * deletes the namespace). One python3 process sends 1400-octet IPv4/UDP datagrams: `K` per tick,
 * ticks 1 ms apart (an absolute schedule), TICKS ticks per round, to 10.127.0.9 (routed out of
 * ikgra0), 10.128.0.9 (ikgrb0) or, for the baseline, 10.129.0.9 (routed out of neither: the
 * kernel drops them and this process sees nothing). The main thread's onPacket counts the
 * packet and reads one octet of it.
 *
 * CPU: the main thread alone (/proc/self/task/<pid>/schedstat, ns) and the process
 * (process.cpuUsage: main, reader and writer threads; the sender is another process), less the
 * baseline round at the same K, divided by the packets read. K = 1, 4, 32; the variants
 * alternate within each of ROUNDS rounds. Prints a table (sent: what the sender's sendto took;
 * read: what reached onPacket; the rest was dropped by the TUN's queue or, new design, counted in
 * rxRingFull, given in the JSON line's counters) and one JSON line.
 */
import { spawn } from 'node:child_process';
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { configure, reexecWithTun, TUN_READ_BUFFER_SIZE, TunDevice } from '@ikegate/tun';
import {
  cpuOf,
  PER_TURN as PER_TICK,
  printCpuTable,
  ROUNDS,
  runTunBench,
  SIZE,
  sumRounds,
  TURNS as TICKS,
  type Cpu,
} from './tun-bench.js';

const NEW = 'ikgra0';
const OLD = 'ikgrb0';

/** The old reader thread (libs/tun/src/device.ts before the reader ring), verbatim. */
const OLD_READER_THREAD = `
const { readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const buf = Buffer.allocUnsafe(workerData.size);
const stop = new Int32Array(workerData.stop);
while (Atomics.load(stop, 0) === 0) {
  let n;
  try {
    n = readSync(workerData.fd, buf, 0, buf.length, null);
  } catch (e) {
    if (e.code === 'EAGAIN' || e.code === 'EINTR' || e.code === 'EWOULDBLOCK') continue;
    if (e.code !== 'EBADF') parentPort.postMessage({ error: e.message, code: e.code });
    break;
  }
  if (n <= 0 || Atomics.load(stop, 0) !== 0) continue;
  const p = new Uint8Array(n);
  p.set(buf.subarray(0, n));
  parentPort.postMessage(p, [p.buffer]);
}
`;

/**
 * The sender: reads "host k ticks" lines, sends k datagrams per tick for `ticks` ticks 1 ms apart,
 * prints "done <sent>".
 */
const SENDER_PY = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = bytes(${SIZE - 28})
for line in sys.stdin:
    host, k, ticks = line.split()
    k, ticks = int(k), int(ticks)
    sent = 0
    t0 = time.monotonic()
    for t in range(ticks):
        for _ in range(k):
            try:
                s.sendto(buf, (host, 9))
                sent += 1
            except OSError:
                pass
        d = t0 + (t + 1) / 1000 - time.monotonic()
        if d > 0:
            time.sleep(d)
    print('done', sent, flush=True)
`;

interface RoundCpu extends Cpu {
  /** Packets handed to onPacket, and sent by the sender. */
  packets: number;
  sent: number;
}

async function inside(): Promise<void> {
  const r = await reexecWithTun([NEW, OLD]);
  if (r.role === 'parent') return;
  let received = 0;
  let copy = false;
  let sink = 0;
  const onPacket = (p: Uint8Array): void => {
    received++;
    sink ^= (copy ? p.slice() : p)[9]!;
  };
  const dev = TunDevice.fromReexec(NEW, r);
  dev.start(onPacket);
  const oldFd = r.fds.get(OLD)!;
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const old = new Worker(OLD_READER_THREAD, {
    eval: true,
    workerData: { fd: oldFd, size: TUN_READ_BUFFER_SIZE, stop: stop.buffer },
  });
  old.on('message', (m: Uint8Array) => {
    if (m instanceof Uint8Array) onPacket(m);
  });
  await configure(NEW, { address: '10.127.0.1/24', mtu: 1500 });
  await configure(OLD, { address: '10.128.0.1/24', mtu: 1500 });

  const py = spawn('python3', ['-c', SENDER_PY], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: py.stdout })[Symbol.asyncIterator]();
  const round = async (host: string, k: number): Promise<RoundCpu> => {
    received = 0;
    let done = '';
    const cpu = await cpuOf(async () => {
      py.stdin.write(`${host} ${k} ${TICKS}\n`);
      const line = await lines.next();
      if (line.done || !String(line.value).startsWith('done')) throw new Error(`sender: ${line.value}`);
      done = String(line.value);
    });
    return { ...cpu, packets: received, sent: Number(done.split(' ')[1]) };
  };
  const hosts: Record<string, [string, boolean]> = {
    none: ['10.129.0.9', false],
    old: ['10.128.0.9', false],
    ring: ['10.127.0.9', false],
    'ring+copy': ['10.127.0.9', true],
  };
  // Warm up (JIT, threads started).
  for (const name of Object.keys(hosts)) await round(hosts[name]![0], 4);
  const sums = await sumRounds(hosts, PER_TICK, ROUNDS, ([host, c], k) => {
    copy = c;
    return round(host, k);
  });
  py.stdin.end();
  const result: Record<string, unknown> = { ticks: TICKS, rounds: ROUNDS, size: SIZE };
  Object.assign(
    result,
    printCpuTable({
      kHeading: 'per tick',
      perTurn: PER_TICK,
      variants: ['old', 'ring', 'ring+copy'],
      sums,
      packets: (s) => s.packets,
      columns: { sent: (s) => s.sent, read: (s) => s.packets },
    }),
  );
  result.counters = { ...dev.counters };
  result.sink = sink;
  writeSync(1, JSON.stringify(result) + '\n');
  // The old reader thread is blocked in readSync: stop it and wake it through its device's waker.
  Atomics.store(stop, 0, 1);
  const oldWake = r.wakeFds.get(OLD);
  if (oldWake !== undefined) writeSync(oldWake, new Uint8Array(1));
  await new Promise((resolve) => old.once('exit', resolve));
  dev.close();
  process.exit(0);
}

await runTunBench({
  script: import.meta.url,
  netnsPrefix: 'ikg-tunrbench',
  needsRoot: 'tun-reader bench: needs root (TUN devices in a netns)',
  timeoutMs: 900_000,
  inside,
});
