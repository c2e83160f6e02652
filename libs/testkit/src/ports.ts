/**
 * Free loopback ports for tests, benches and the local drill cluster.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A port the kernel just handed out as free on `host` for TCP, and that UDP can bind too (an edge
 * listens on both). Another process may still take it before the caller binds: callers retry.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const u = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      u.once('error', () => resolve(false));
      u.bind(port, host, () => u.close(() => resolve(true)));
    });
    if (port > 0 && udpFree) return port;
  }
  throw new Error('no free port');
}
