/**
 * Interop harness, initiator role: the protocol core initiates to a real peer over UDP, sends
 * pings through the tunnel, then rekeys the child SA, rekeys the IKE SA and deletes it, with
 * pings after each step (lib/core-peer.ts). Config in env IKEGATE_INTEROP (JSON, with `remote`,
 * `localInner`, `remoteInner`). Ends with `done` or `failed`.
 */
import type { RemoteInfo } from 'node:dgram';
import {
  command,
  context,
  createInitiator,
  events,
  listen,
  log,
  sendPing,
  waitFor,
} from './lib/core-peer.js';

async function pings(from: number, n: number): Promise<void> {
  const before = events.filter((e) => e.event === 'pong').length;
  for (let i = 0; i < n; i++) {
    sendPing(from + i);
    await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor('pong', before + n, 5000);
}

async function main(): Promise<void> {
  listen();
  await waitFor('listening');
  const rinfo: RemoteInfo = { address: process.env.IKEGATE_REMOTE ?? '', family: 'IPv4', port: 500, size: 0 };
  const peer = createInitiator(rinfo, context());
  await waitFor('established');
  await waitFor('install-child');
  await pings(1, 3);
  const child = events.filter((e) => e.event === 'install-child').at(-1)?.inboundSpi as string;
  command(peer, { kind: 'rekey-child', spi: Uint8Array.from(Buffer.from(child, 'hex')) });
  await waitFor('install-child', 2);
  await pings(10, 2);
  command(peer, { kind: 'rekey-ike' });
  await waitFor('rekeyed-ike');
  await pings(20, 2);
  command(peer, { kind: 'delete-ike' });
  await waitFor('deleted');
  log('done');
  setTimeout(() => process.exit(0), 100);
}

main().catch((e: Error) => {
  log('failed', { message: e.message });
  setTimeout(() => process.exit(1), 100);
});
