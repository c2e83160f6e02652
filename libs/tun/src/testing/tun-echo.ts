/**
 * Test fixture: run as root inside a network namespace (`ip netns exec <ns> node --import tsx
 * tun-echo.ts`). Re-executes itself holding TUN device ikgt0, configures 10.123.0.1/24 on it and
 * answers ICMP echo requests for every other 10.123.0.0/24 address. Prints JSON lines on stdout:
 * {"event":"ready"} once configured, and {"event":"counters",...} on SIGTERM/SIGINT before exiting 0.
 * On failure prints {"event":"error","reason","message"} and exits 1.
 */
import { TunDevice } from '../device.js';
import { configure } from '../netlink.js';
import { reexecWithTun } from '../open.js';
import { emit, fixtureMain } from './fixture.js';
import { makeEchoReply, parseEchoRequest } from './icmp.js';

const NAME = 'ikgt0';

async function main(): Promise<void> {
  const r = await reexecWithTun([NAME]);
  if (r.role === 'parent') return; // the re-executed child does the work; we exit with its code
  const dev = TunDevice.fromReexec(NAME, r);
  let replies = 0;
  const stop = (): void => {
    emit({ event: 'counters', name: NAME, replies, ...dev.counters });
    process.exit(0); // TunDevice closes (and wakes) open devices on 'exit', so this does not hang
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  dev.start(
    (pkt) => {
      const req = parseEchoRequest(pkt);
      if (!req || !req.dst.startsWith('10.123.0.') || req.dst === '10.123.0.1') return;
      if (dev.write(makeEchoReply(pkt))) replies++;
    },
    (err) => emit({ event: 'error', reason: 'read', message: err.message }),
  );
  await configure(NAME, { address: '10.123.0.1/24', mtu: 1400 });
  emit({ event: 'ready', name: NAME, fd: dev.fd, wakeFd: r.wakeFds.get(NAME) ?? null });
}

fixtureMain(main);
