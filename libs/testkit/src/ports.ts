/**
 * Free loopback ports for tests, benches and the local drill cluster.
 *
 * A port from `listen(0)` lies in the kernel's ephemeral range, which the kernel also hands to every
 * outgoing connection and every other `listen(0)` on the machine. Between our close and the child
 * process's listen, another suite could take it: CI saw `EADDRINUSE` that way, once in a gRPC
 * relay and once in `ikegate up`. So ports come from below the ephemeral range, where the kernel
 * never allocates on its own, and each is reserved across processes by a file named after it,
 * created exclusively, holding the reserving pid. A file whose pid has exited is taken over, and a
 * process removes its own files when it exits.
 */
import { createSocket } from 'node:dgram';
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The lowest port handed out: well above the well-known and registered ports services use. */
const LOW = 20_000;
/**
 * Where reservations live: one directory per user (0700), so another user's files can neither
 * block nor be removed by us; processes of one user, as a test run is, share it.
 */
const DIR = join(tmpdir(), `ikegate-ports-${process.getuid?.() ?? 'user'}`);
const ATTEMPTS = 200;

const mine = new Set<string>();
let cleanupInstalled = false;

/** The kernel's ephemeral range (`ip_local_port_range`); the Linux default when unreadable. */
export function ephemeralRange(): [number, number] {
  try {
    const [lo = NaN, hi = NaN] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux, or no /proc: assume the default
  }
  return [32_768, 60_999];
}

/**
 * The ports we pick from, none in the ephemeral range: [LOW, lo) when that holds 1,000 ports,
 * else (hi, 65535] when that does, else undefined (then the kernel's choice is all we have).
 * `extra` is an offset whose port must fit in the same window (a Redis cluster bus: port + 10000).
 */
export function candidateWindow([lo, hi]: [number, number], extra = 0): [number, number] | undefined {
  if (lo - extra - LOW >= 1_000) return [LOW, lo - extra - 1];
  if (65_535 - extra - hi >= 1_000) return [hi + 1, 65_535 - extra];
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid a reservation file names, or undefined (gone, empty, not a pid). */
function holderOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A file holding our pid, written aside first: what it replaces or creates is never seen empty. */
function written(file: string): string {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, String(process.pid));
  return tmp;
}

/** Creates `file` holding our pid, atomically (a hard link); false when it exists. */
function create(file: string): boolean {
  const tmp = written(file);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Reserves `port` for this process until it exits; false when a live process holds it. A
 * reservation left by a process that exited without its exit hook (killed by a signal) is taken
 * over, under a claim file only one process can create, so two processes never both take it.
 */
export function reservePort(port: number): boolean {
  mkdirIfMissing();
  const file = reservationFile(port);
  if (create(file)) {
    mine.add(file);
    return true;
  }
  const holder = holderOf(file);
  if (holder === undefined || pidAlive(holder)) return false;
  const claim = `${file}.claim`;
  if (!create(claim)) return false;
  try {
    if (holderOf(file) !== holder) return false;
    renameSync(written(file), file);
    mine.add(file);
    return true;
  } finally {
    rmSync(claim, { force: true });
  }
}

function mkdirIfMissing(): void {
  mkdirSync(DIR, { recursive: true, mode: 0o700 });
  installCleanup();
}

/** The file that reserves `port` (for tests). */
export const reservationFile = (port: number): string => join(DIR, String(port));

/** Gives `file` up: removed only while it still names us. */
function release(file: string): void {
  if (holderOf(file) === process.pid) rmSync(file, { force: true });
  mine.delete(file);
}

/** Gives up our reservation of `port` before we exit (no-op when we do not hold it). */
export function releasePort(port: number): void {
  release(reservationFile(port));
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', () => {
    for (const f of [...mine]) release(f);
  });
}

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    u.once('error', () => resolve(false));
    u.bind(port, host, () => u.close(() => resolve(true)));
  });
}

const bothFree = async (port: number, host: string) =>
  (await tcpFree(port, host)) && (await udpFree(port, host));

/** The kernel's pick: only where no window outside the ephemeral range is left. */
async function kernelPort(host: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, host, () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    if (port > 0 && (await udpFree(port, host))) return port;
  }
  throw new Error('no free port');
}

export interface FreePortOptions {
  /** The address the port must be free on (default 127.0.0.1). */
  host?: string;
  /** Also reserve, and check free, `port + alsoOffset` (a Redis cluster's bus port). */
  alsoOffset?: number;
}

/**
 * A loopback port free for TCP and for UDP (an edge listens on both), outside the kernel's
 * ephemeral range and reserved for this process until it exits, so no parallel suite, outgoing
 * connection or other `freePort` caller on the machine takes it before the caller binds it.
 */
export async function freePort(opts: FreePortOptions | string = {}): Promise<number> {
  const { host = '127.0.0.1', alsoOffset = 0 } = typeof opts === 'string' ? { host: opts } : opts;
  const window = candidateWindow(ephemeralRange(), alsoOffset);
  if (!window) {
    // No window outside the ephemeral range on this machine: the kernel's pick, unreserved.
    for (let i = 0; i < 50; i++) {
      const port = await kernelPort(host);
      if (!alsoOffset || (port + alsoOffset <= 65_535 && (await bothFree(port + alsoOffset, host))))
        return port;
    }
    throw new Error(`no free port with port + ${alsoOffset} free`);
  }
  const [from, to] = window;
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    const ports = alsoOffset ? [port, port + alsoOffset] : [port];
    const held: number[] = [];
    for (const p of ports) {
      if (!reservePort(p)) break;
      held.push(p);
    }
    if (held.length === ports.length) {
      let free = true;
      for (const p of ports) free = free && (await bothFree(p, host));
      if (free) return port;
    }
    // Reserved by another process, or bound by something that does not reserve: try another.
    for (const p of held) release(reservationFile(p));
  }
  throw new Error(`no free port in ${from}-${to} after ${ATTEMPTS} tries`);
}
