/**
 * Microbench for issue #14: the CPU per packet of handing TUN writes to the writer thread, old
 * (one postMessage per event-loop turn: packets copied into one buffer, its ArrayBuffer
 * transferred; the design before the ring, reproduced here from libs/tun at 43e838f) against new
 * (TunDevice.write: the SharedArrayBuffer ring, Atomics.notify only to a sleeping writer), in the
 * same run, both writing to the same real TUN device.
 *
 * Run as root: `node --import tsx scripts/bench/lib/tun-writer.ts` (it creates network namespace
 * ikg-tunbench-<pid>, runs itself there holding TUN device ikgw0, and deletes the namespace).
 * Packets: 1400-octet IPv4/UDP from 10.126.0.7 to 198.51.100.1; the namespace has no route there
 * and does not forward, so the kernel drops each one after routing it (no ICMP back, nothing for
 * the reader thread), the same kernel work in both variants.
 *
 * A turn is one timer callback (1 ms apart: an unsaturated gateway whose writer sleeps between
 * turns) writing K packets, K = 1, 4, 32; TURNS turns per round, the variants alternating, ROUNDS
 * rounds. CPU: the process (process.cpuUsage: main + writer + any other thread) and the main
 * thread alone (/proc/self/task/<pid>/schedstat, ns), less a round of the same turns writing
 * nothing (the timer and event loop), divided by the packets. Prints a table and one JSON line.
 */
import { writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { configure, reexecWithTun, TunDevice } from '@ikegate/tun';
import {
  cpuOf,
  PER_TURN,
  printCpuTable,
  ROUNDS,
  runTunBench,
  SIZE,
  sumRounds,
  TURNS,
  type Cpu,
} from './tun-bench.js';

const NAME = 'ikgw0';

/** The old writer thread (libs/tun/src/device.ts before the ring), verbatim. */
const OLD_WRITER_THREAD = `
const { writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', (batch) => {
  if (batch === null) { process.exit(0); }
  let errors = 0;
  let last;
  for (let at = 0; at + 2 <= batch.length; ) {
    const n = (batch[at] << 8) | batch[at + 1];
    at += 2;
    try {
      if (writeSync(workerData.fd, batch, at, n) !== n) errors++;
    } catch (e) {
      errors++;
      last = e.code;
    }
    at += n;
  }
  if (errors > 0) parentPort.postMessage({ errors, code: last });
});
`;
const MIN_BATCH_BYTES = 4 * 1024;
const MAX_BATCH_BYTES = 96 * 1024;

/** The old TunDevice.write / flushTurn / flushBatch (thread mode), reduced to what a write costs. */
class OldBatchWriter {
  readonly worker: Worker;
  errors = 0;
  private batch: Buffer | undefined;
  private batchUsed = 0;
  private batchHint = MIN_BATCH_BYTES;
  private turnOctets = 0;
  private batchScheduled = false;

  constructor(fd: number) {
    this.worker = new Worker(OLD_WRITER_THREAD, { eval: true, workerData: { fd } });
    this.worker.on('message', (m: { errors: number }) => (this.errors += m.errors));
    this.worker.unref();
  }

  write(pkt: Uint8Array): boolean {
    const n = pkt.byteLength;
    let batch = this.batch;
    let at = this.batchUsed;
    if (batch === undefined || at + 2 + n > batch.length) {
      const size = batch === undefined ? this.batchHint + (this.batchHint >>> 2) : MAX_BATCH_BYTES;
      this.flushBatch();
      batch = Buffer.allocUnsafeSlow(Math.max(Math.min(size, MAX_BATCH_BYTES), MIN_BATCH_BYTES, 2 + n));
      this.batch = batch;
      at = 0;
    }
    batch[at] = n >>> 8;
    batch[at + 1] = n & 0xff;
    batch.set(pkt, at + 2);
    this.batchUsed = at + 2 + n;
    if (!this.batchScheduled) {
      this.batchScheduled = true;
      setImmediate(this.flushTurn);
    }
    return true;
  }

  private readonly flushTurn = (): void => {
    this.batchScheduled = false;
    this.flushBatch();
    this.batchHint = this.turnOctets;
    this.turnOctets = 0;
  };

  private flushBatch(): void {
    const batch = this.batch;
    const used = this.batchUsed;
    this.batch = undefined;
    this.batchUsed = 0;
    if (batch === undefined || used === 0) return;
    this.turnOctets += used;
    this.worker.postMessage(batch.subarray(0, used), [batch.buffer as ArrayBuffer]);
  }
}

function packet(): Uint8Array {
  const p = new Uint8Array(SIZE);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, SIZE);
  p[8] = 64;
  p[9] = 17;
  p.set([10, 126, 0, 7, 198, 51, 100, 1], 12);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, 4000);
  v.setUint16(22, 9);
  v.setUint16(24, SIZE - 20);
  return p;
}

/** TURNS timer turns of `perTurn` writes each; then a pause so the writer finishes its work. */
async function round(write: (p: Uint8Array) => boolean, perTurn: number): Promise<Cpu> {
  const pkt = packet();
  return cpuOf(async () => {
    for (let t = 0; t < TURNS; t++) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      for (let k = 0; k < perTurn; k++) write(pkt);
    }
  });
}

async function inside(): Promise<void> {
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return;
  const dev = TunDevice.fromReexec(NAME, r);
  dev.start(() => undefined);
  await configure(NAME, { address: '10.126.0.1/24', mtu: 1500 });
  const old = new OldBatchWriter(dev.fd);
  const variants: Record<string, (p: Uint8Array) => boolean> = {
    none: () => true,
    old: (p) => old.write(p),
    ring: (p) => dev.write(p),
  };
  // Warm up (JIT, the writer threads started and asleep).
  for (const w of Object.values(variants)) await round(w, 4);
  const sums = await sumRounds(variants, PER_TURN, ROUNDS, round);
  const packets = ROUNDS * TURNS;
  const result: Record<string, unknown> = { turns: TURNS, rounds: ROUNDS, size: SIZE };
  Object.assign(
    result,
    printCpuTable({
      kHeading: 'per turn',
      perTurn: PER_TURN,
      variants: ['old', 'ring'],
      sums,
      packets: (_, k) => packets * k,
    }),
  );
  result.counters = { ...dev.counters, oldWriterErrors: old.errors };
  writeSync(1, JSON.stringify(result) + '\n');
  dev.close();
  process.exit(0);
}

await runTunBench({
  script: import.meta.url,
  netnsPrefix: 'ikg-tunbench',
  needsRoot: 'tun-writer bench: needs root (a TUN device in a netns)',
  timeoutMs: 600_000,
  inside,
});
