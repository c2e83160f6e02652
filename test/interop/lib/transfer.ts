/**
 * A bulk TCP transfer through a tunnel with an end-to-end checksum: a sink in one namespace hashes
 * everything it receives (SHA-256) and answers the digest; a source in another namespace sends
 * random octets from a given source address, half-closes, and compares digests. Both run as real
 * processes (`ip netns exec node -e ...`) and stop by themselves (timeouts on both sides).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

const SINK = `
const net = require('node:net'); const { createHash } = require('node:crypto');
const [addr, port, lifeMs] = process.argv.slice(1);
const srv = net.createServer((s) => { const h = createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => s.end(JSON.stringify({ bytes: n, sha256: h.digest('hex') })));
  s.on('error', () => {}); });
srv.listen(Number(port), addr, () => process.stdout.write('listening\\n'));
setTimeout(() => process.exit(0), Number(lifeMs)).unref();
`;

const SOURCE = `
const net = require('node:net'); const { createHash, randomBytes } = require('node:crypto');
const [src, dst, port, total, timeoutMs] = process.argv.slice(1);
const h = createHash('sha256'); let sent = 0; let reply = '';
const t0 = Date.now();
const s = net.connect({ host: dst, port: Number(port), localAddress: src });
setTimeout(() => { process.stdout.write(JSON.stringify({ error: 'timeout', sent })); process.exit(2); }, Number(timeoutMs)).unref();
s.on('error', (e) => { process.stdout.write(JSON.stringify({ error: e.message, sent })); process.exit(1); });
function pump() { while (sent < Number(total)) { const c = randomBytes(Math.min(65536, Number(total) - sent)); h.update(c); sent += c.length; if (!s.write(c)) return s.once('drain', pump); } s.end(); }
s.on('connect', pump);
s.on('data', (d) => { reply += d; });
s.on('end', () => { process.stdout.write(JSON.stringify({ sent, sha256: h.digest('hex'), reply: JSON.parse(reply || '{}'), ms: Date.now() - t0 })); process.exit(0); });
`;

export interface TransferResult {
  readonly sent: number;
  readonly sha256: string;
  readonly reply: { bytes?: number; sha256?: string };
  readonly ms: number;
  readonly error?: string;
}

export class Sink {
  #proc: ChildProcess | undefined;
  async start(netns: string, address: string, port: number, lifeMs = 120_000): Promise<void> {
    this.#proc = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, '-e', SINK, address, String(port), String(lifeMs)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    this.#proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    const until = Date.now() + 10_000;
    while (!out.includes('listening')) {
      if (Date.now() > until) throw new Error('sink did not start');
      await sleep(20);
    }
  }
  stop(): void {
    this.#proc?.kill('SIGTERM');
  }
}

/** Sends `bytes` random octets from `src` to `dst:port` inside `netns`; resolves with both digests. */
export function transfer(
  netns: string,
  src: string,
  dst: string,
  port: number,
  bytes: number,
  timeoutMs = 60_000,
): Promise<TransferResult> {
  return new Promise((resolve) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        netns,
        process.execPath,
        '-e',
        SOURCE,
        src,
        dst,
        String(port),
        String(bytes),
        String(timeoutMs),
      ],
      { encoding: 'utf8', timeout: timeoutMs + 5000 },
      (_err, stdout) => {
        try {
          resolve(JSON.parse(stdout) as TransferResult);
        } catch {
          resolve({ sent: 0, sha256: '', reply: {}, ms: 0, error: `no result: ${stdout}` });
        }
      },
    );
  });
}
