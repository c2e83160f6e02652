/**
 * The originator's side of a connection (RFC 9329 §6: the initiator opens, and reopens, the
 * stream): a TCP connect, and for TLS the handshake too (RFC 9329 §8), within one deadline.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { StreamTransport } from './binds.js';
import { DialError } from './errors.js';

export interface DialTlsOptions {
  /** SNI and the name checked in the certificate. Default: `host` when it is a name, none for an IP. */
  readonly servername?: string;
  /** PEM trust anchors (contents, not a path). Default: node's bundled CAs. */
  readonly ca?: string | Uint8Array;
  /** Default true. False accepts any certificate (tests and lab setups only). */
  readonly rejectUnauthorized?: boolean;
  /** Each TLS secret in NSS key log format, for decrypting captures. */
  readonly onKeylog?: (line: Buffer) => void;
}

export interface DialOptions {
  readonly transport: StreamTransport;
  readonly host: string;
  readonly port: number;
  /** Deadline for the TCP connect plus the TLS handshake. */
  readonly timeoutMs: number;
  /** Used when `transport` is 'tls'. */
  readonly tls?: DialTlsOptions;
  /** Aborting gives up the dial at once (the socket is destroyed). */
  readonly signal?: AbortSignal;
}

/**
 * Resolves with the connected socket (TLS: a TLSSocket, handshake done, TLS 1.2 at least), Nagle
 * off and no 'error' listener of ours left on it: the caller owns it and attaches its own (an
 * IketcpStream does) before the next I/O turn. Rejects with DialError (timeout, aborted, or the
 * connect/TLS error) after destroying the socket. Never throws synchronously.
 */
export function dialStream(o: DialOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const where = `${o.host}:${o.port}`;
    if (o.signal?.aborted) {
      reject(new DialError('IKEGATE_ERR_TRANSPORT_DIAL_ABORTED', 'aborted', `dial to ${where} aborted`));
      return;
    }
    let socket: Socket;
    if (o.transport === 'tls') {
      const t = o.tls ?? {};
      const servername = t.servername ?? (isIP(o.host) ? undefined : o.host);
      socket = tlsConnect({
        host: o.host,
        port: o.port,
        minVersion: 'TLSv1.2',
        rejectUnauthorized: t.rejectUnauthorized ?? true,
        ...(servername !== undefined ? { servername } : {}),
        ...(t.ca !== undefined ? { ca: typeof t.ca === 'string' ? t.ca : Buffer.from(t.ca) } : {}),
      });
      if (t.onKeylog) socket.on('keylog', t.onKeylog);
    } else {
      socket = netConnect({ host: o.host, port: o.port, noDelay: true });
    }
    const ready = o.transport === 'tls' ? 'secureConnect' : 'connect';
    let settled = false;
    const finish = (error?: DialError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener('abort', onAbort);
      socket.off(ready, onReady);
      socket.off('error', onError);
      if (error) {
        socket.on('error', () => undefined); // a late error of a socket being destroyed
        socket.destroy();
        reject(error);
        return;
      }
      socket.setNoDelay(true);
      resolve(socket);
    };
    const onReady = (): void => finish();
    const onError = (e: NodeJS.ErrnoException): void =>
      finish(
        new DialError(
          'IKEGATE_ERR_TRANSPORT_DIAL_FAILED',
          e.code ?? 'error',
          `dial to ${where}: ${e.message}`,
          {
            cause: e,
          },
        ),
      );
    const onAbort = (): void =>
      finish(new DialError('IKEGATE_ERR_TRANSPORT_DIAL_ABORTED', 'aborted', `dial to ${where} aborted`));
    const timer = setTimeout(
      () =>
        finish(
          new DialError(
            'IKEGATE_ERR_TRANSPORT_DIAL_TIMEOUT',
            'timeout',
            `dial to ${where} timed out after ${o.timeoutMs} ms`,
          ),
        ),
      o.timeoutMs,
    );
    socket.once(ready, onReady);
    socket.on('error', onError);
    o.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
