/**
 * Test fixture for the TUN writer ring (issue #14): run as root inside a network namespace (`ip
 * netns exec <ns> node --import tsx tun-ring.ts <mode>`). Re-executes itself holding TUN device
 * ikgr0, configures 10.125.0.1/24 on it (MTU 9000) and binds a UDP socket on 10.125.0.1:5556.
 * Datagrams come from 10.125.0.7; datagram i carries i (4 octets), then a pattern derived from i.
 * Modes (each prints one JSON line {"event":"result",...} and exits 0; {"event":"error"} and exit 1):
 * - wrap: TOTAL datagrams of seeded-random sizes (32..TUN_MAX_PACKET octets, mostly under 9000) through a
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
 * Reading (the reader ring): datagrams sent from 10.125.0.1 to 10.125.0.9:RX_PORT leave through
 * the device and are read; datagram i carries i (4 octets), then the pattern of i.
 * - gro: a TCP peer made by hand (handshake, then up to 40 segments of 1000 octets in one turn)
 *   against a real listening socket: the segments go as one GSO write (gro.ts). Reports what the
 *   socket received and how many ACKs the kernel sent for them. gro-off: the same with
 *   IKEGATE_TUN_VNET_HDR=0 (a plain device, one write per segment).
 * - rx-wrap: RX_TOTAL datagrams (IP sizes 32..9000, seeded) sent in bursts of at most
 *   BURST_OCTETS, each burst waiting (bounded) until the device has read it, through the smallest
 *   reader ring: its position wraps many times. Reports what onPacket saw (count, intact, order).
 * - rx-flood: python3 sends RX_FLOOD datagrams of 1300 octets as fast as it can while this thread
 *   is kept busy in a synchronous loop (until python3 is done, at most 20 s) with the default
 *   reader ring: the ring fills and the reader thread drops. Then waits (bounded) until rxPackets +
 *   rxRingFull reach the device's kernel tx_packets (the TUN driver counts a packet there when a
 *   read takes it; one the TUN's queue had no room for is tx_dropped): every packet the reader
 *   thread read was handed over or counted. Reports rss before and after, what arrived and the
 *   counters.
 * - rx-close: reads 3 datagrams, waits 200 ms (this thread waiting in Atomics.waitAsync on an empty
 *   ring), closes the device and awaits `stopped`, bounded by 10 s; returns without process.exit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TUN_MAX_PACKET, TunDevice } from '../device.js';
import { fold, onesSum } from '../gro.js';
import { configure } from '../netlink.js';
import { reexecWithTun } from '../open.js';
import {
  bindUdp,
  emit,
  fixtureMain,
  numberedDatagram,
  patternIntact,
  until,
  WAIT_MS,
  within,
} from './fixture.js';

const NAME = 'ikgr0';
const PORT = 5556;
/** The smallest ring TunDevice.start accepts (two of the largest records). */
const RING = 2 * (4 + 65536) + 8;
const TOTAL = 3000;
const BURST_OCTETS = 96 * 1024;
const FLOOD = 20_000;
const FLOOD_SIZE = 9000;
const RX_PORT = 5557;
const RX_TO = '10.125.0.9';
const RX_TOTAL = 4000;
const RX_FLOOD = 100_000;
const RX_FLOOD_SIZE = 1300;
const BUSY_MAX_MS = 20_000;
const ROUTE = { src: [10, 125, 0, 7], dst: [10, 125, 0, 1], port: PORT } as const;

/** The UDP sender for rx-flood: argv count, size, host, port, done-file; prints how many sendto calls succeeded. */
const FLOOD_PY = `
import socket, struct, sys
n, size, host, port, done = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
buf = bytearray(size)
sent = 0
for i in range(n):
    struct.pack_into('!I', buf, 0, i)
    try:
        s.sendto(buf, (host, port))
        sent += 1
    except OSError:
        pass
print(sent, flush=True)
open(done, 'w').close()
`;

/** Writes IPv4/UDP datagram i of `total` octets (10.125.0.7:4000 -> 10.125.0.1:PORT) into `p`. */
const datagram = (i: number, total: number, p?: Uint8Array): Uint8Array =>
  numberedDatagram(ROUTE, i, total, p);

/** Seeded sizes (32 octets at least: the UDP payload carries i): 70% 32..1500, 25% 1501..9000, 5% 9001..TUN_MAX_PACKET (xorshift32, fixed seed). */
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
    const [lo, hi] = u < 0.7 ? [32, 1500] : u < 0.95 ? [1501, 9000] : [9001, TUN_MAX_PACKET];
    out.push(lo + Math.floor(next() * (hi - lo + 1)));
  }
  // The extremes at least once each.
  out[1] = 32;
  out[2] = TUN_MAX_PACKET;
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

/** Closes `dev` and waits (bounded by WAIT_MS) for `stopped`: true once both threads ended and the fds are closed. */
/**
 * Sends datagrams 0..sz.length-1 (`send(i)`) in bursts of at most BURST_OCTETS, each burst waiting
 * (up to 2 s) until `arrived()` counts every datagram sent so far; stops early when one does not.
 * Returns the octets sent.
 */
async function sendInBursts(
  sz: number[],
  send: (i: number) => Promise<void> | void,
  arrived: () => number,
): Promise<number> {
  let sent = 0;
  let octets = 0;
  while (sent < sz.length) {
    for (let burst = 0; sent < sz.length && burst + sz[sent]! <= BURST_OCTETS; sent++) {
      burst += sz[sent]!;
      octets += sz[sent]!;
      const pending = send(sent);
      if (pending instanceof Promise) await pending;
    }
    const want = sent;
    if (!(await until(() => arrived() >= want, 2_000))) break;
  }
  return octets;
}

function closeAndStop(dev: TunDevice): Promise<boolean> {
  dev.close();
  return within(
    dev.stopped.then(() => true),
    WAIT_MS,
    false,
  );
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
  const sock = await bindUdp('10.125.0.1', PORT, 4 << 20);
  const seen: number[] = [];
  let intact = 0;
  sock.on('message', (m) => {
    if (m.length < 4) return;
    const i = m.readUInt32BE(0);
    seen.push(i);
    const j = pattern(i);
    if (m.length === sizeOf(i) - 28 && patternIntact(m, j)) intact++;
  });
  return { sock, seen, intact: () => intact };
}

const increasing = (seen: number[]): boolean => seen.every((v, k) => k === 0 || v > seen[k - 1]!);

/** A counter of the device's kernel statistics (/sys/class/net/NAME/statistics). */
const linkStat = (name: string): number =>
  Number(readFileSync(`/sys/class/net/${NAME}/statistics/${name}`, 'utf8'));

/** What onPacket saw of the datagrams to RX_TO:RX_PORT: their numbers, and how many carried the right octets. */
interface ReadLog {
  seen: number[];
  intact: number;
  other: number;
}

/**
 * Checks a packet read from the device: IPv4/UDP to RX_TO:RX_PORT of sizeOf(i) octets, payload i
 * then (unless `sizeOnly`) the pattern of i.
 */
function logRead(log: ReadLog, p: Uint8Array, sizeOf: (i: number) => number, sizeOnly = false): void {
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (p.length < 32 || p[0] !== 0x45 || p[9] !== 17 || v.getUint16(22) !== RX_PORT) {
    log.other++;
    return;
  }
  const i = v.getUint32(28);
  log.seen.push(i);
  const ok = p.length === sizeOf(i) && v.getUint16(2) === p.length;
  if (ok && (sizeOnly || patternIntact(p.subarray(28), i))) log.intact++;
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  // The operator's switch: a device without IFF_VNET_HDR (no header, no merged writes).
  if (mode === 'gro-off') process.env.IKEGATE_TUN_VNET_HDR = '0';
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return;
  const dev = TunDevice.fromReexec(NAME, r);
  let onRead: (p: Uint8Array) => void = () => undefined;
  dev.start(
    (p) => onRead(p),
    (err) => emit({ event: 'error', reason: 'read', message: err.message }),
    { writeRingBytes: RING, ...(mode === 'rx-flood' ? {} : { readRingBytes: RING }) },
  );
  await configure(NAME, { address: '10.125.0.1/24', mtu: 9000 });
  // The writer thread is running (and then asleep) once a first datagram, to a port of its own, arrived.
  const warm = await bindUdp('10.125.0.1', PORT + 1);
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
    const octets = await sendInBursts(
      sz,
      async (i) => {
        const p = datagram(i, sz[i]!);
        // The ring may still hold the last burst's final record (the writer releases it after the
        // write that delivered it): a refused write is retried after a pause, bounded.
        for (let tries = 0; !dev.write(p); tries++) {
          if (tries === 1000) throw new Error(`datagram ${i} refused 1000 times`);
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      },
      () => rx.seen.length,
    );
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
    const stopped = await closeAndStop(dev);
    emit({ event: 'result', arrived, stopped, ...counters() });
    return; // no process.exit: the process must end on its own
  }
  if (mode === 'rx-wrap') {
    // IP sizes 32..9000 (the MTU: no fragments).
    const sz = sizes(RX_TOTAL).map((n) => Math.min(n, 9000));
    const log: ReadLog = { seen: [], intact: 0, other: 0 };
    onRead = (p) => logRead(log, p, (i) => sz[i]!);
    const sock = await bindUdp('10.125.0.1', 0);
    const before = dev.counters.rxPackets;
    const octets = await sendInBursts(
      sz,
      (i) => {
        const payload = Buffer.from(datagram(i, sz[i]!).subarray(28));
        sock.send(payload, RX_PORT, RX_TO);
      },
      () => log.seen.length,
    );
    await until(() => log.seen.length >= RX_TOTAL);
    sock.close();
    emit({
      event: 'result',
      expected: RX_TOTAL,
      octets,
      received: log.seen.length,
      intact: log.intact,
      inOrder: log.seen.every((v, k) => v === k),
      rxRead: dev.counters.rxPackets - before,
      other: log.other,
      firstOutOfOrder: log.seen.findIndex((v, k) => v !== k),
      ...counters(),
    });
    process.exit(0);
  }

  if (mode === 'rx-flood') {
    const log: ReadLog = { seen: [], intact: 0, other: 0 };
    onRead = (p) => logRead(log, p, () => RX_FLOOD_SIZE + 28, true);
    const dir = mkdtempSync(join(tmpdir(), 'ikg-tunring-'));
    const doneFile = join(dir, 'done');
    const rxBefore = dev.counters.rxPackets;
    const dropBefore = dev.counters.rxRingFull;
    const kernelBefore = linkStat('tx_packets');
    const rssBefore = process.memoryUsage.rss();
    const py = spawn(
      'python3',
      ['-c', FLOOD_PY, String(RX_FLOOD), String(RX_FLOOD_SIZE), RX_TO, String(RX_PORT), doneFile],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let pyOut = '';
    py.stdout.setEncoding('utf8').on('data', (c: string) => (pyOut += c));
    const pyExit = new Promise<number | null>((resolve) => py.once('exit', resolve));
    // This thread is busy (no event-loop turn) while the flood is read: bounded by BUSY_MAX_MS.
    const busyFrom = Date.now();
    let spins = 0;
    while (!existsSync(doneFile) && Date.now() - busyFrom < BUSY_MAX_MS) spins++;
    const busyMs = Date.now() - busyFrom;
    const rssBusy = process.memoryUsage.rss();
    const code = await pyExit;
    rmSync(dir, { recursive: true, force: true });
    const handed = (): number => dev.counters.rxPackets - rxBefore + dev.counters.rxRingFull - dropBefore;
    const accounted = await until(() => handed() === linkStat('tx_packets') - kernelBefore);
    emit({
      event: 'result',
      pythonExit: code,
      sent: Number(pyOut.trim()),
      busyMs,
      spins,
      kernelRead: linkStat('tx_packets') - kernelBefore,
      accounted,
      read: dev.counters.rxPackets - rxBefore,
      rxRingFull: dev.counters.rxRingFull - dropBefore,
      received: log.seen.length,
      intact: log.intact,
      increasing: increasing(log.seen),
      rssBefore,
      rssBusy,
      rssAfter: process.memoryUsage.rss(),
    });
    process.exit(0);
  }

  if (mode === 'rx-close') {
    const log: ReadLog = { seen: [], intact: 0, other: 0 };
    onRead = (p) => logRead(log, p, () => 200);
    const sock = await bindUdp('10.125.0.1', 0);
    for (let i = 0; i < 3; i++) sock.send(Buffer.from(datagram(i, 200).subarray(28)), RX_PORT, RX_TO);
    const arrived = await until(() => log.seen.length === 3);
    sock.close();
    await new Promise((resolve) => setTimeout(resolve, 200)); // this thread now waits on the empty ring
    const stopped = await closeAndStop(dev);
    emit({ event: 'result', arrived, intact: log.intact, stopped, ...counters() });
    return; // no process.exit: the process must end on its own
  }
  if (mode === 'gro-forward') {
    emit({ event: 'result', ...(await groForwarded(dev, (f) => (onRead = f))), ...counters() });
    process.exit(0);
  }
  if (mode === 'gro' || mode === 'gro-off') {
    const result = await groThroughKernel(dev, (f) => (onRead = f));
    emit({ event: 'result', vnetHdr: dev.vnetHdr, ...result, ...counters() });
    process.exit(0);
  }
  throw new Error(`unknown mode ${mode}`);
}

const GRO_PORT = 5558;
const GRO_SERVER = [10, 125, 0, 1] as const;
const GRO_SEGMENT = 1000;
/**
 * The hand-made peer's port, one per run: the suite's namespace outlives a fixture, and the
 * kernel may still hold the last run's connection (its socket closed at exit, FIN unanswered).
 */
const GRO_PEER_PORT = 20_000 + (process.pid % 40_000);

/**
 * A TCP segment with valid checksums: IPv4 10.125.0.7 -> 10.125.0.`to` (DF unless `df` is false),
 * or IPv6 fd00:25::7 -> fd00:25::`to`.
 */
function tcpSegment(o: {
  v6?: boolean;
  to: number;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window?: number;
  id?: number;
  df?: boolean;
  options?: number[];
  payload: Uint8Array;
}): Uint8Array {
  const iph = o.v6 ? 40 : 20;
  const options = o.options ?? [];
  const tcph = 20 + options.length;
  const p = new Uint8Array(iph + tcph + o.payload.length);
  const v = new DataView(p.buffer);
  if (o.v6) {
    v.setUint32(0, 6 << 28);
    v.setUint16(4, tcph + o.payload.length);
    p[6] = 6;
    p[7] = 64;
    p.set([0xfd, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7], 8);
    p.set([0xfd, 0, 0, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, o.to], 24);
  } else {
    p[0] = 0x45;
    v.setUint16(2, p.length);
    v.setUint16(4, o.id ?? 0);
    p[6] = o.df === false ? 0 : 0x40;
    p[8] = 64;
    p[9] = 6;
    p.set([10, 125, 0, 7], 12);
    p.set([10, 125, 0, o.to], 16);
    v.setUint16(10, ~fold(onesSum(p, 0, 20)) & 0xffff);
  }
  v.setUint16(iph, o.sport);
  v.setUint16(iph + 2, o.dport);
  v.setUint32(iph + 4, o.seq >>> 0);
  v.setUint32(iph + 8, o.ack >>> 0);
  p[iph + 12] = (tcph / 4) << 4;
  p[iph + 13] = o.flags;
  v.setUint16(iph + 14, o.window ?? 65535);
  p.set(options, iph + 20);
  p.set(o.payload, iph + tcph);
  const pseudo = o.v6 ? onesSum(p, 8, 40, 6 + p.length - 40) : onesSum(p, 12, 20, 6 + p.length - 20);
  v.setUint16(iph + 16, ~fold(onesSum(p, iph, p.length, pseudo)) & 0xffff);
  return p;
}

/** A segment from the hand-made peer (10.125.0.7:GRO_PEER_PORT) to GRO_SERVER:GRO_PORT. */
const toServer = (seq: number, ack: number, flags: number, payload: Uint8Array): Uint8Array =>
  tcpSegment({ to: GRO_SERVER[3], sport: GRO_PEER_PORT, dport: GRO_PORT, seq, ack, flags, payload });

/**
 * A TCP peer made by hand on the device's side: a handshake with a real listening socket, then
 * as many 1000-octet segments as its window takes, written in one turn (so write() merges them
 * into one GSO write, gro.ts). Reports what the socket received and how the kernel acknowledged.
 */
async function groThroughKernel(
  dev: TunDevice,
  setOnRead: (f: (p: Uint8Array) => void) => void,
): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  const server = createServer((sock) => {
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => undefined); // the RST below
  });
  await new Promise<void>((resolve) => server.listen(GRO_PORT, GRO_SERVER.join('.'), resolve));
  const fromServer: { seq: number; ack: number; flags: number; window: number }[] = [];
  setOnRead((p) => {
    if (p.length < 40 || p[9] !== 6 || ((p[20]! << 8) | p[21]!) !== GRO_PORT) return;
    const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
    fromServer.push({ seq: v.getUint32(24), ack: v.getUint32(28), flags: p[33]!, window: v.getUint16(34) });
  });
  const iss = 1000;
  dev.write(toServer(iss, 0, 0x02, new Uint8Array(0)));
  if (!(await until(() => fromServer.some((f) => f.flags === 0x12)))) throw new Error('no SYN-ACK');
  const synAck = fromServer.find((f) => f.flags === 0x12)!;
  const ack = synAck.seq + 1;
  dev.write(toServer(iss + 1, ack, 0x10, new Uint8Array(0)));
  const count = Math.min(40, Math.floor(synAck.window / GRO_SEGMENT));
  const sent = Buffer.alloc(count * GRO_SEGMENT);
  for (let i = 0; i < sent.length; i++) sent[i] = (i * 7 + (i >>> 10)) & 0xff;
  const before = fromServer.length;
  for (let k = 0; k < count; k++) {
    const flags = k === count - 1 ? 0x18 : 0x10;
    dev.write(
      toServer(iss + 1 + k * GRO_SEGMENT, ack, flags, sent.subarray(k * GRO_SEGMENT, (k + 1) * GRO_SEGMENT)),
    );
  }
  const all = () => chunks.reduce((n, c) => n + c.length, 0);
  const arrived = await until(() => all() >= sent.length);
  await new Promise((resolve) => setTimeout(resolve, 300)); // the kernel's (delayed) ACKs
  const acks = fromServer.slice(before).filter((f) => (f.flags & 0x10) !== 0 && f.ack > iss + 1);
  // Reset the connection from our side, so the namespace holds nothing of it for later fixtures
  // (a FIN from the closed socket would be retransmitted into the next device of this name).
  dev.write(toServer(iss + 1 + sent.length, ack, 0x04, new Uint8Array(0)));
  await new Promise((resolve) => setTimeout(resolve, 100));
  server.close();
  return {
    segments: count,
    arrived,
    intact: Buffer.concat(chunks).equals(sent),
    acks: acks.length,
    ackedAll: acks.some((f) => f.ack === iss + 1 + sent.length),
  };
}

/**
 * Merged writes forwarded back out of the same device: the TUN has no offloads, so the kernel
 * splits each GSO packet in software and completes every checksum from our partial one (where
 * local delivery would trust it). Each case's segments must come back exactly as written, less
 * one hop (TTL or hop limit, and the IPv4 header checksum).
 */
async function groForwarded(
  dev: TunDevice,
  setOnRead: (f: (p: Uint8Array) => void) => void,
): Promise<Record<string, unknown>> {
  const sh = (...a: string[]): void => void execFileSync(a[0]!, a.slice(1));
  sh('ip', '-6', 'addr', 'add', 'fd00:25::1/64', 'dev', NAME, 'nodad');
  sh('sysctl', '-qw', 'net.ipv4.ip_forward=1');
  sh('sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1');
  sh('sysctl', '-qw', 'net.ipv4.conf.all.send_redirects=0');
  sh('sysctl', '-qw', `net.ipv4.conf.${NAME}.send_redirects=0`);
  const back: Uint8Array[] = [];
  setOnRead((p) => {
    const v = p[0]! >>> 4;
    if ((v === 4 && p[9] === 6 && p[19] === 9) || (v === 6 && p[6] === 6 && p[39] === 9))
      back.push(p.slice());
  });
  const hop = (p: Uint8Array): Uint8Array => {
    const q = p.slice();
    if (q[0]! >>> 4 === 6) q[7]!--;
    else {
      q[8]!--;
      q[10] = 0;
      q[11] = 0;
      new DataView(q.buffer).setUint16(10, ~fold(onesSum(q, 0, 20)) & 0xffff);
    }
    return q;
  };
  /** A segment of the forwarded flow: to .9, a payload pattern of its sequence number. */
  const segment = (o: {
    v6?: boolean;
    df?: boolean;
    id: number;
    options?: number[];
    seq: number;
    size: number;
    flags: number;
  }) =>
    tcpSegment({
      ...o,
      to: 9,
      sport: 40000,
      dport: 5201,
      ack: 77,
      window: 502,
      payload: Uint8Array.from({ length: o.size }, (_, i) => (i * 13 + o.seq) & 0xff),
    });
  /** `n` in-sequence segments of `size`, PSH on the last unless `psh` is false. */
  const flow = (
    n: number,
    size: number,
    o: { v6?: boolean; df?: boolean; id?: number; options?: number[] },
    seq: number,
    psh = true,
  ) =>
    Array.from({ length: n }, (_, k) =>
      segment({
        ...o,
        seq: (seq + k * size) >>> 0,
        size,
        id: ((o.id ?? 100) + k) & 0xffff,
        flags: psh && k === n - 1 ? 0x18 : 0x10,
      }),
    );
  const cases: Record<string, Uint8Array[]> = {
    timestamps: flow(10, 1000, { options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] }, 1000),
    oddTail: [
      ...flow(5, 1001, {}, 7, false),
      segment({ seq: 7 + 5 * 1001, size: 333, id: 105, flags: 0x18 }),
    ],
    noDfIdsWrap: flow(6, 1200, { df: false, id: 0xfffd }, 5000),
    seqWraps: flow(6, 1000, {}, 0xffffffff - 2500),
    ipv6: flow(8, 1200, { v6: true }, 9000),
  };
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(cases)) {
    back.length = 0;
    const merged = dev.counters.txCoalesced;
    for (const p of input) dev.write(p);
    await until(() => back.length >= input.length, 3000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    out[name] = {
      merged: dev.counters.txCoalesced - merged,
      written: input.length,
      back: back.length,
      same:
        back.length === input.length &&
        back.every((b, i) => Buffer.from(b).equals(Buffer.from(hop(input[i]!)))),
    };
  }
  return { cases: out };
}

fixtureMain(main);
