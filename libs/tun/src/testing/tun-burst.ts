/**
 * Test fixture for batched TUN writes: run as root inside a network namespace (`ip netns exec <ns>
 * node --import tsx tun-burst.ts`). Re-executes itself holding TUN device ikgb0, configures
 * 10.124.0.1/24 on it, binds a UDP socket on 10.124.0.1:5555 and writes TURNS bursts of PER_TURN
 * UDP datagrams from 10.124.0.7 into the device, each burst within one event-loop turn. Packet i
 * carries i (4 octets) then a pattern derived from i, sizes cycling over 32..1500 octets, so a
 * burst is larger than one batch buffer. The next burst waits (bounded) for the last one to arrive,
 * so the socket's receive buffer is not what is tested. Prints one JSON line {"event":"result", received,
 * intact, inOrder, ...counters} once every datagram arrived or after 10 s, then exits 0; on a
 * failure {"event":"error",...} and exit 1.
 */
import { createSocket } from 'node:dgram';
import { TunDevice } from '../device.js';
import { configure } from '../netlink.js';
import { reexecWithTun, TunUnavailableError } from '../open.js';
import { internetChecksum } from './icmp.js';

const NAME = 'ikgb0';
const PORT = 5555;
const TURNS = 5;
const PER_TURN = 150;

function emit(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const sizeOf = (i: number): number => 32 + ((i * 997) % (1500 - 32 + 1));

/** Payload octet k of datagram i. */
const fill = (i: number, k: number): number => (i * 31 + k * 7) & 0xff;

/** An IPv4/UDP datagram 10.124.0.7:4000 -> 10.124.0.1:PORT of sizeOf(i) octets (UDP checksum 0). */
function datagram(i: number): Uint8Array {
  const total = sizeOf(i);
  const p = new Uint8Array(total);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, total);
  v.setUint16(4, i & 0xffff);
  p[8] = 64;
  p[9] = 17;
  p.set([10, 124, 0, 7, 10, 124, 0, 1], 12);
  v.setUint16(10, internetChecksum(p.subarray(0, 20)));
  v.setUint16(20, 4000);
  v.setUint16(22, PORT);
  v.setUint16(24, total - 20);
  for (let k = 28; k < total; k++) p[k] = fill(i, k - 28);
  if (total >= 32) v.setUint32(28, i);
  return p;
}

async function main(): Promise<void> {
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return;
  const dev = TunDevice.fromFd(NAME, r.fds.get(NAME)!, { wakeFd: r.wakeFds.get(NAME) });
  dev.start(
    () => undefined,
    (err) => emit({ event: 'error', reason: 'read', message: err.message }),
  );
  await configure(NAME, { address: '10.124.0.1/24', mtu: 1500 });
  const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => sock.bind(PORT, '10.124.0.1', resolve));
  const expected = TURNS * PER_TURN;
  const seen: number[] = [];
  let intact = 0;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    sock.on('message', (m) => {
      const i = m.readUInt32BE(0);
      seen.push(i);
      let ok = m.length === sizeOf(i) - 28;
      for (let k = 4; ok && k < m.length; k++) ok = m[k] === fill(i, k);
      if (ok) intact++;
      if (seen.length === expected) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (let t = 0; t < TURNS; t++) {
    for (let n = 0; n < PER_TURN; n++) dev.write(datagram(t * PER_TURN + n));
    for (let waited = 0; seen.length < (t + 1) * PER_TURN && waited < 2_000; waited += 5)
      await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await done;
  const inOrder = seen.every((v, k) => v === k);
  emit({ event: 'result', expected, received: seen.length, intact, inOrder, ...dev.counters });
  sock.close();
  process.exit(0);
}

main().catch((err: unknown) => {
  const reason = err instanceof TunUnavailableError ? err.reason : 'error';
  emit({ event: 'error', reason, message: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
