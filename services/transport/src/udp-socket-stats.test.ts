import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import fc from 'fast-check';
import { numericLookup, NodeUdpBind } from './node-binds.js';
import { dropsInTable, procUdpLocal, udpSocketDrops } from './udp-socket-stats.js';

const HOST = '127.0.0.1';

/** A /proc/net/udp table as Linux 6.x prints it (proc_net(5)). */
const TABLE = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:01F4 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1991400 2 00000000bf09eb05 0
 1949: 0100007F:1194 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1991403 2 00000000bf09eb06 95067
`;

test('UDP socket stats: the local-address column of proc_net(5) for IPv4 and IPv6 (32-bit words in host order, the port in hex); a name is not an address', () => {
  assert.deepEqual(procUdpLocal('127.0.0.1', 4500), { table: 'udp', local: '0100007F:1194' });
  assert.deepEqual(procUdpLocal('0.0.0.0', 500), { table: 'udp', local: '00000000:01F4' });
  assert.deepEqual(procUdpLocal('192.0.2.10', 65535), { table: 'udp', local: '0A0200C0:FFFF' });
  assert.deepEqual(procUdpLocal('::', 4500), { table: 'udp6', local: `${'0'.repeat(32)}:1194` });
  assert.deepEqual(procUdpLocal('::1', 500), { table: 'udp6', local: `${'0'.repeat(24)}01000000:01F4` });
  assert.deepEqual(procUdpLocal('2001:db8::a:1', 1), {
    table: 'udp6',
    local: 'B80D0120000000000000000001000A00:0001',
  });
  assert.deepEqual(procUdpLocal('::ffff:192.0.2.1', 4500), {
    table: 'udp6',
    local: '0000000000000000FFFF0000010200C0:1194',
  });
  assert.equal(procUdpLocal('gw.example.org', 500), undefined);
  // A big-endian host prints each word as it is in memory.
  assert.deepEqual(procUdpLocal('192.0.2.10', 4500, 'BE'), { table: 'udp', local: 'C000020A:1194' });
  assert.deepEqual(procUdpLocal('::1', 500, 'BE'), { table: 'udp6', local: `${'0'.repeat(31)}1:01F4` });
});

test('UDP socket stats: the drops of the row with our local address, none for another address; any text is read without throwing (proc_net(5))', () => {
  assert.equal(dropsInTable(TABLE, '0100007F:1194'), 95067);
  assert.equal(dropsInTable(TABLE, '00000000:01F4'), 0);
  assert.equal(dropsInTable(TABLE, '0100007F:01F4'), undefined);
  assert.equal(dropsInTable(TABLE.replace('95067', 'x'), '0100007F:1194'), undefined);
  fc.assert(
    fc.property(fc.string(), fc.string(), (text, local) => {
      const d = dropsInTable(text, local);
      assert.ok(d === undefined || (Number.isSafeInteger(d) && d >= 0));
    }),
    { numRuns: 500 },
  );
});

/** Sends `count` datagrams to `port` in one synchronous run: the receiving process reads none meanwhile. */
async function burst(port: number, count: number): Promise<void> {
  const s: Socket = createSocket({ type: 'udp4', lookup: numericLookup });
  await new Promise<void>((resolve) => s.bind(0, HOST, () => resolve()));
  await new Promise<void>((resolve) => s.connect(port, HOST, () => resolve()));
  const datagram = new Uint8Array(1200).fill(0x5a);
  for (let i = 0; i < count; i++) s.send(datagram);
  await new Promise<void>((resolve) => s.close(() => resolve()));
}

test('UDP socket stats: a bind asks for the receive buffer it was given and reports what the kernel set; a burst its buffer cannot hold is counted in the kernel drops of that socket only (issue #14)', async () => {
  const small = new NodeUdpBind(HOST, 0, 4096);
  const other = new NodeUdpBind(HOST, 0, 4096);
  assert.equal(small.stats(), undefined, 'not open yet');
  let received = 0;
  const local = await small.open(() => received++);
  const otherLocal = await other.open(() => undefined);
  try {
    const before = small.stats()!;
    assert.equal(before.requestedReceiveBuffer, 4096);
    assert.ok(before.receiveBuffer >= 4096 && before.receiveBuffer < 64 * 1024, `${before.receiveBuffer}`);
    assert.equal(before.drops, 0);
    await burst(local.port, 200);
    const after = small.stats()!;
    assert.ok(after.drops! > 0, 'the kernel dropped part of the burst');
    assert.equal(after.drops, udpSocketDrops(local.address, local.port));
    assert.equal(other.stats()!.drops, 0, 'another socket is not charged');
    assert.equal(otherLocal.address, HOST);
  } finally {
    await small.close();
    await other.close();
  }
  assert.equal(small.stats(), undefined, 'closed');
});

test('UDP socket stats: by default a bind asks for 4 MiB; 0 keeps the kernel default; a bad size is refused (issue #14)', async () => {
  const bind = new NodeUdpBind(HOST, 0);
  await bind.open(() => undefined);
  const kernelDefault = new NodeUdpBind(HOST, 0, 0);
  await kernelDefault.open(() => undefined);
  try {
    assert.equal(bind.stats()!.requestedReceiveBuffer, 4 << 20);
    assert.equal(kernelDefault.stats()!.requestedReceiveBuffer, 0);
    assert.ok(bind.stats()!.receiveBuffer >= kernelDefault.stats()!.receiveBuffer);
  } finally {
    await bind.close();
    await kernelDefault.close();
  }
  for (const bad of [-1, 1.5, 2 ** 31, Number.NaN])
    assert.throws(() => new NodeUdpBind(HOST, 0, bad), /bad UDP receive buffer size/);
});
