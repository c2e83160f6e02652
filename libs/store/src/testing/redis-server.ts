/**
 * A throwaway redis-server for tests: loopback only, no persistence, a port from freePort. Returns a
 * skip reason instead when the binary is missing, so suites can skip the Redis half with it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@ikegate/testkit';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly port: number;
  stop(): Promise<void>;
  /**
   * Pauses the server (SIGSTOP): its connections stay up and nothing answers, as in a partition
   * that leaves TCP up or a stalled host. `resume()` (SIGCONT) continues it; stop() resumes first.
   * (A server started by startRedisServer has both.)
   */
  pause?(): void;
  resume?(): void;
}

const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;

function waitReady(child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    let out = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      resolve(ok);
    };
    const onData = (b: Buffer) => {
      out = (out + b.toString('utf8')).slice(-4096);
      if (out.includes('Ready to accept connections')) done(true);
    };
    const onExit = () => done(false);
    const timer = setTimeout(() => done(false), READY_TIMEOUT_MS);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

export interface RedisServerOptions {
  /**
   * Start a one-node Redis Cluster (cluster mode on, all 16384 slots on this node). Cluster mode
   * rejects multi-key commands and scripts whose keys span slots even on one node, so this checks
   * the hash-tag layout for real.
   */
  readonly cluster?: boolean;
  /**
   * Serve TLS only (the plaintext port is closed) with this certificate, key and CA (files); the
   * CA also verifies client certificates when `authClients`.
   */
  readonly tls?: {
    readonly certificate: string;
    readonly key: string;
    readonly ca: string;
    readonly authClients?: boolean;
  };
  /** ACL: the default user is disabled and this one may do everything (AUTH user password). */
  readonly user?: { readonly name: string; readonly password: string };
}

const CLUSTER_OK_POLLS = 100;

async function assignAllSlots(port: number): Promise<boolean> {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  try {
    await c.connect();
    await c.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    for (let i = 0; i < CLUSTER_OK_POLLS; i++) {
      const info = String(await c.call('CLUSTER', 'INFO'));
      if (info.includes('cluster_state:ok')) return true;
      await sleep(50);
    }
    return false;
  } finally {
    c.disconnect();
  }
}

export async function startRedisServer(
  binary = 'redis-server',
  options: RedisServerOptions = {},
): Promise<RedisServer | string> {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    return `${binary} not available (${probe.error?.message ?? `exit ${probe.status}`}); Redis contract skipped`;
  }
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    // A cluster node's bus listens on port + 10000.
    const port = await freePort({ alsoOffset: options.cluster === true ? 10_000 : 0 });
    const dir = mkdtempSync(join(tmpdir(), 'ikegate-redis-'));
    const args = [
      '--port',
      String(port),
      '--save',
      '',
      '--appendonly',
      'no',
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
    ];
    if (options.tls) {
      args.splice(0, 2, '--port', '0', '--tls-port', String(port));
      args.push(
        '--tls-cert-file',
        options.tls.certificate,
        '--tls-key-file',
        options.tls.key,
        '--tls-ca-cert-file',
        options.tls.ca,
        '--tls-auth-clients',
        options.tls.authClients ? 'yes' : 'no',
      );
    }
    if (options.user)
      args.push(
        '--user',
        'default',
        'off',
        '--user',
        options.user.name,
        'on',
        `>${options.user.password}`,
        '~*',
        '&*',
        '+@all',
      );
    if (options.cluster === true)
      args.push(
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-announce-ip',
        '127.0.0.1',
      );
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const stop = () =>
      new Promise<void>((resolve) => {
        const done = () => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        };
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', done);
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      });
    if ((await waitReady(child)) && (options.cluster !== true || (await assignAllSlots(port)))) {
      child.stdout?.resume();
      return {
        port,
        stop,
        pause: () => void child.kill('SIGSTOP'),
        resume: () => void child.kill('SIGCONT'),
      };
    }
    await stop();
  }
  return `${binary} did not start on a free port after ${START_ATTEMPTS} attempts; Redis contract skipped`;
}
