/**
 * Test fixture for the TUN writer ring (issue #14): run as root inside a network namespace (`ip
 * netns exec <ns> node --import tsx tun-ring.ts <mode>`). Re-executes itself holding TUN device
 * ikgr0, configures 10.125.0.1/24 on it (MTU 9000) and binds a UDP socket on 10.125.0.1:5556.
 * Datagrams come from 10.125.0.7; datagram i carries i (4 octets), then a pattern derived from i.
 * Modes (each prints one JSON line {"event":"result",...} and exits 0; {"event":"error"} and exit 1):
 * - wrap: TOTAL datagrams of seeded-random sizes (32..65535 octets, mostly under 9000) through a
 *   ring of the smallest size, in bursts of at most BURST_OCTETS, each burst waiting (bounded) for
 *   the last to arrive, a write refused by the ring retried after 1 ms (bounded): the ring position
 *   wraps many times. Reports what arrived (count, intact,
 *   order) and the counters.
 * - full: FLOOD datagrams of 9000 octets in one synchronous loop (one reused buffer) into the
 *   smallest ring: more than the writer thread can take meanwhile, so the ring fills and write()
 *   drops. Waits (bounded) until the kernel's UDP counters (InDatagrams + RcvbufErrors, per network
 *   namespace) have grown by txPackets; reports rss before and after, what arrived and the counters.
 * - errors: writes 3 packets whose IP version nibble is 0 (the kernel answers EINVAL on the writer
 *   thread), then one valid datagram; waits (bounded) for it and for txErrors to reach 3.
 * - close: writes 3 datagrams, waits for them to arrive and for the writer to sleep, closes the
 *   device and awaits `stopped` (both threads ended, fds closed), bounded by 10 s; then returns
 *   from main without process.exit, so the process exits only if nothing is left running.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { TunDevice } from '../device.js';
import { configure } from '../netlink.js';
import { reexecWithTun, TunUnavailableError } from '../open.js';
import { internetChecksum } from './icmp.js';

const NAME = 'ikgr0';
const PORT = 5556;
/** The smallest ring TunDevice.start accepts (two of the largest records). */
const RING = 2 * (4 + 65536) + 8;
const TOTAL = 3000;
const BURST_OCTETS = 96 * 1024;
const FLOOD = 20_000;
const FLOOD_SIZE = 9000;
const WAIT_MS = 10_000;

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

/** Payload octet k of datagram i. */
const fill = (i: number, k: number): number => (i * 31 + k * 7) & 0xff;

/** Writes IPv4/UDP datagram i of `total` octets (10.125.0.7:4000 -> 10.125.0.1:PORT) into `p`. */
function datagram(i: number, total: number, p = new Uint8Array(total)): Uint8Array {
  const v = new DataView(p.buffer, p.byteOffset, total);
  p.fill(0, 0, 28);
  p[0] = 0x45;
  v.setUint16(2, total);
  v.setUint16(4, i & 0xffff);
  p[8] = 64;
  p[9] = 17;
  p.set([10, 125, 0, 7, 10, 125, 0, 1], 12);
  v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  v.setUint16(20, 4000);
  v.setUint16(22, PORT);
  v.setUint16(24, total - 20);
  for (let k = 28; k < total; k++) p[k] = fill(i, k - 28);
  if (total >= 32) v.setUint32(28, i);
  return p.subarray(0, total);
}

/** Seeded sizes (32 octets at least: the UDP payload carries i): 70% 32..1500, 25% 1501..9000, 5% 9001..65535 (xorshift32, fixed seed). */
function sizes(n: number): number[] {
  let x = 0x1234567;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = next();
    const [lo, hi] = u < 0.7 ? [32, 1500] : u < 0.95 ? [1501, 9000] : [9001, 65535];
    out.push(lo + Math.floor(next() * (hi - lo + 1)));
  }
  // The extremes at least once each.
  out[1] = 32;
  out[2] = 65535;
  return out;
}

/** The UDP line of /proc/net/snmp (this network namespace) as name -> value. */
function udpCounters(): Record<string, number> {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, k) => [n, values[k]!]));
}

async function until(cond: () => boolean, ms = WAIT_MS): Promise<boolean> {
  for (let waited = 0; !cond(); waited += 5) {
    if (waited >= ms) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

interface Receiver {
  sock: Socket;
  seen: number[];
  intact: () => number;
}

/** Binds the receiving socket; datagram i must be sizeOf(i) octets and carry the pattern of `pattern(i)`. */
async function receiver(
  sizeOf: (i: number) => number,
  pattern = (i: number): number => i,
): Promise<Receiver> {
  const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => sock.bind(PORT, '10.125.0.1', resolve));
  const seen: number[] = [];
  let intact = 0;
  sock.on('message', (m) => {
    if (m.length < 4) return;
    const i = m.readUInt32BE(0);
    seen.push(i);
    const j = pattern(i);
    let ok = m.length === sizeOf(i) - 28;
    for (let k = 4; ok && k < m.length; k++) ok = m[k] === fill(j, k);
    if (ok) intact++;
  });
  return { sock, seen, intact: () => intact };
}

const increasing = (seen: number[]): boolean => seen.every((v, k) => k === 0 || v > seen[k - 1]!);

async function main(): Promise<void> {
  const mode = process.argv[2];
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return;
  const dev = TunDevice.fromFd(NAME, r.fds.get(NAME)!, { wakeFd: r.wakeFds.get(NAME) });
  dev.start(
    () => undefined,
    (err) => emit({ event: 'error', reason: 'read', message: err.message }),
    { writeRingBytes: RING },
  );
  await configure(NAME, { address: '10.125.0.1/24', mtu: 9000 });
  // The writer thread is running (and then asleep) once a first datagram, to a port of its own, arrived.
  const warm = createSocket('udp4');
  await new Promise<void>((resolve) => warm.bind(PORT + 1, '10.125.0.1', resolve));
  let warmed = false;
  warm.once('message', () => (warmed = true));
  const first = datagram(0, 64);
  new DataView(first.buffer).setUint16(22, PORT + 1);
  dev.write(first);
  if (!(await until(() => warmed))) throw new Error('the writer thread wrote nothing in 10 s');
  warm.close();
  const warmup: Record<string, number> = { ...dev.counters };
  /** The counters since the warm-up datagram. */
  const counters = (): Record<string, number> =>
    Object.fromEntries(Object.entries(dev.counters).map(([k, v]) => [k, v - warmup[k]!]));

  if (mode === 'wrap') {
    const sz = sizes(TOTAL);
    const rx = await receiver((i) => sz[i]!);
    let sent = 0;
    let octets = 0;
    while (sent < TOTAL) {
      for (let burst = 0; sent < TOTAL && burst + sz[sent]! <= BURST_OCTETS; sent++) {
        burst += sz[sent]!;
        octets += sz[sent]!;
        const p = datagram(sent, sz[sent]!);
        // The ring may still hold the last burst's final record (the writer releases it after the
        // write that delivered it): a refused write is retried after a pause, bounded.
        for (let tries = 0; !dev.write(p); tries++) {
          if (tries === 1000) throw new Error(`datagram ${sent} refused 1000 times`);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      }
      const want = sent;
      if (!(await until(() => rx.seen.length >= want, 2_000))) break;
    }
    await until(() => rx.seen.length >= TOTAL);
    emit({
      event: 'result',
      expected: TOTAL,
      octets,
      received: rx.seen.length,
      intact: rx.intact(),
      inOrder: rx.seen.every((v, k) => v === k),
      ...counters(),
    });
    rx.sock.close();
    process.exit(0);
  }

  if (mode === 'full') {
    const rx = await receiver(
      () => FLOOD_SIZE,
      () => 0,
    );
    const before = udpCounters();
    const delivered = (): number => {
      const now = udpCounters();
      return now.InDatagrams! + now.RcvbufErrors! - before.InDatagrams! - before.RcvbufErrors!;
    };
    const pkt = new Uint8Array(FLOOD_SIZE);
    datagram(0, FLOOD_SIZE, pkt);
    const rssBefore = process.memoryUsage.rss();
    let accepted = 0;
    for (let i = 0; i < FLOOD; i++) {
      new DataView(pkt.buffer).setUint32(28, i); // the same buffer each time: write() copies it
      if (dev.write(pkt)) accepted++;
    }
    const rssAfter = process.memoryUsage.rss();
    const txPackets = dev.counters.txPackets - warmup.txPackets!;
    const drained = await until(() => delivered() >= txPackets);
    await until(
      () => rx.seen.length >= txPackets - (udpCounters().RcvbufErrors! - before.RcvbufErrors!),
      2_000,
    );
    emit({
      event: 'result',
      offered: FLOOD,
      offeredOctets: FLOOD * FLOOD_SIZE,
      accepted,
      drained,
      kernelDelivered: delivered(),
      received: rx.seen.length,
      intact: rx.intact(),
      increasing: increasing(rx.seen),
      rssBefore,
      rssAfter,
      ...counters(),
    });
    rx.sock.close();
    process.exit(0);
  }

  if (mode === 'errors') {
    const rx = await receiver(() => 100);
    const bad = new Uint8Array(40); // version nibble 0: neither IPv4 nor IPv6
    const accepted = [dev.write(bad), dev.write(bad), dev.write(bad), dev.write(datagram(0, 100))];
    const arrived = await until(() => rx.seen.length === 1 && dev.counters.txErrors - warmup.txErrors! === 3);
    await until(() => dev.lastTxError !== undefined, 2_000);
    emit({
      event: 'result',
      accepted,
      arrived,
      received: rx.seen.length,
      lastTxErrorCode: dev.lastTxError?.code ?? null,
      ...counters(),
    });
    rx.sock.close();
    process.exit(0);
  }

  if (mode === 'close') {
    const rx = await receiver(() => 200);
    for (let i = 0; i < 3; i++) dev.write(datagram(i, 200));
    const arrived = await until(() => rx.seen.length === 3);
    rx.sock.close();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the writer is asleep by now
    dev.close();
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      dev.stopped.then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), WAIT_MS))),
    ]);
    clearTimeout(timer);
    emit({ event: 'result', arrived, stopped, ...counters() });
    return; // no process.exit: the process must end on its own
  }
  throw new Error(`unknown mode ${mode}`);
}

main().catch((err: unknown) => {
  const reason = err instanceof TunUnavailableError ? err.reason : 'error';
  emit({ event: 'error', reason, message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
