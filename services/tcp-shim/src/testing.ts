/**
 * Loopback helpers for the shim's tests: a fake RFC 9329 responder (TCP or TLS) that decodes what
 * the shim sends with IketcpDecoder, and a fake daemon (two UDP sockets standing for its ports 500
 * and 4500). Not exported from index.ts.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';

import { IketcpDecoder, type IketcpEvent } from '@ikegate/iketcp';

/** An event copied out of the decoder (its views do not outlive the next poll). */
export type RecordedEvent =
  | { kind: 'prefix' }
  | { kind: 'ike'; message: Buffer }
  | { kind: 'esp'; packet: Buffer }
  | { kind: 'other'; event: IketcpEvent['kind'] };

export interface ResponderConnection {
  readonly socket: net.Socket;
  readonly events: RecordedEvent[];
  /** The first octets the shim sent on this stream. */
  firstBytes: Buffer;
  closed: boolean;
}

export interface FakeResponder {
  readonly port: number;
  readonly connections: ResponderConnection[];
  close(): Promise<void>;
}

export async function startResponder(tlsOptions?: tls.TlsOptions): Promise<FakeResponder> {
  const connections: ResponderConnection[] = [];
  const onConnection = (socket: net.Socket): void => {
    const conn: ResponderConnection = { socket, events: [], firstBytes: Buffer.alloc(0), closed: false };
    connections.push(conn);
    const decoder = new IketcpDecoder({ expectPrefix: true });
    socket.on('data', (chunk: Buffer) => {
      if (conn.firstBytes.length < 16)
        conn.firstBytes = Buffer.concat([conn.firstBytes, chunk]).subarray(0, 16);
      decoder.push(chunk);
      for (let ev = decoder.poll(); ev !== undefined; ev = decoder.poll()) {
        if (ev.kind === 'prefix') conn.events.push({ kind: 'prefix' });
        else if (ev.kind === 'ike') conn.events.push({ kind: 'ike', message: Buffer.from(ev.message) });
        else if (ev.kind === 'esp') conn.events.push({ kind: 'esp', packet: Buffer.from(ev.packet) });
        else conn.events.push({ kind: 'other', event: ev.kind });
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      conn.closed = true;
    });
  };
  const server = tlsOptions === undefined ? net.createServer(onConnection) : tls.createServer(tlsOptions);
  if (tlsOptions !== undefined) server.on('secureConnection', onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections,
    async close() {
      for (const c of connections) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface FakeDaemon {
  /** Stands for the daemon's port 500 socket. */
  readonly ike: dgram.Socket;
  /** Stands for the daemon's port 4500 socket. */
  readonly natT: dgram.Socket;
  readonly receivedIke: Buffer[];
  readonly receivedNatT: Buffer[];
  close(): Promise<void>;
}

export async function startDaemon(): Promise<FakeDaemon> {
  const bind = async (into: Buffer[]): Promise<dgram.Socket> => {
    const sock = dgram.createSocket('udp4');
    sock.on('message', (msg) => into.push(msg));
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return sock;
  };
  const receivedIke: Buffer[] = [];
  const receivedNatT: Buffer[] = [];
  const ike = await bind(receivedIke);
  const natT = await bind(receivedNatT);
  return {
    ike,
    natT,
    receivedIke,
    receivedNatT,
    async close() {
      await Promise.all([ike, natT].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    },
  };
}

export function send(sock: dgram.Socket, data: Uint8Array, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    sock.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
  );
}

/** Polls `predicate` every 5 ms; rejects after `timeoutMs` (every wait in the tests is bounded). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** An IKE message: 28-octet header whose Length field is right, then `body` filler octets. */
export function ikeMessage(bodyLength: number, fill = 0x2e): Buffer {
  const msg = Buffer.alloc(28 + bodyLength, fill);
  msg.fill(0x11, 0, 8); // initiator SPI
  msg.fill(0, 8, 16); // responder SPI
  msg[16] = 33; // next payload: SA
  msg[17] = 0x20; // version 2.0
  msg[18] = 34; // IKE_SA_INIT
  msg[19] = 0x08; // initiator flag
  msg.writeUInt32BE(0, 20);
  msg.writeUInt32BE(msg.length, 24);
  return msg;
}

/** An ESP packet: SPI, sequence number, then filler. */
export function espPacket(spi: number, seq: number, bodyLength = 24): Buffer {
  const p = Buffer.alloc(8 + bodyLength, 0xab);
  p.writeUInt32BE(spi, 0);
  p.writeUInt32BE(seq, 4);
  return p;
}

export function withMarker(ike: Uint8Array): Buffer {
  return Buffer.concat([Buffer.alloc(4), ike]);
}
