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
import { TunDevice } from '../device.js';
import { configure } from '../netlink.js';
import { reexecWithTun } from '../open.js';
import { bindUdp, emit, fixtureMain, numberedDatagram, patternIntact, until } from './fixture.js';

const NAME = 'ikgb0';
const PORT = 5555;
const TURNS = 5;
const PER_TURN = 150;
const ROUTE = { src: [10, 124, 0, 7], dst: [10, 124, 0, 1], port: PORT } as const;

const sizeOf = (i: number): number => 32 + ((i * 997) % (1500 - 32 + 1));
/** Datagram i: 10.124.0.7:4000 -> 10.124.0.1:PORT, sizeOf(i) octets. */
const datagram = (i: number): Uint8Array => numberedDatagram(ROUTE, i, sizeOf(i));

async function main(): Promise<void> {
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return;
  const dev = TunDevice.fromReexec(NAME, r);
  dev.start(
    () => undefined,
    (err) => emit({ event: 'error', reason: 'read', message: err.message }),
  );
  await configure(NAME, { address: '10.124.0.1/24', mtu: 1500 });
  const sock = await bindUdp('10.124.0.1', PORT, 4 << 20);
  const expected = TURNS * PER_TURN;
  const seen: number[] = [];
  let intact = 0;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    sock.on('message', (m) => {
      const i = m.readUInt32BE(0);
      seen.push(i);
      if (m.length === sizeOf(i) - 28 && patternIntact(m, i)) intact++;
      if (seen.length === expected) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (let t = 0; t < TURNS; t++) {
    for (let n = 0; n < PER_TURN; n++) dev.write(datagram(t * PER_TURN + n));
    await until(() => seen.length >= (t + 1) * PER_TURN, 2_000);
  }
  await done;
  const inOrder = seen.every((v, k) => v === k);
  emit({ event: 'result', expected, received: seen.length, intact, inOrder, ...dev.counters });
  sock.close();
  process.exit(0);
}

fixtureMain(main);
