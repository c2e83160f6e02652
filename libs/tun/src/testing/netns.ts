/**
 * The test side of the TUN fixtures (tun-echo.ts, tun-burst.ts, tun-ring.ts): what the machine
 * needs, a network namespace per suite, and a fixture run in it as a child process that is killed
 * after a bound (so a hung fixture fails its test instead of hanging the run). What runs inside a
 * fixture is in fixture.ts.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
/** libs/tun: the fixtures run from here, so that `--import tsx` resolves. */
const LIB_DIR = fileURLToPath(new URL('../..', import.meta.url));

/** Whether `cmd args` can be started here. */
export function has(cmd: string, args: string[] = ['--version']): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).error === undefined;
}

/** Why the fixtures cannot run here (root, /dev/net/tun, python3, ip), or false when they can: for `requirement`. */
export function tunFixturesMissing(): string | false {
  return process.getuid?.() !== 0
    ? 'needs root'
    : !existsSync('/dev/net/tun')
      ? 'needs /dev/net/tun'
      : !has('python3')
        ? 'needs python3'
        : !has('ip', ['-V'])
          ? 'needs ip (iproute2)'
          : false;
}

/** Adds network namespace `ns` (loopback up) before the enclosing suite's tests and deletes it after them. */
export function netnsForSuite(ns: string): void {
  before(async () => {
    await execFileP('ip', ['netns', 'add', ns]);
    await execFileP('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  });
  after(async () => {
    await execFileP('ip', ['netns', 'del', ns]).catch(() => undefined);
  });
}

/** How a fixture process ended. */
export interface FixtureExit {
  code: number | null;
  /** SIGKILL when it was still running at the bound. */
  signal: NodeJS.Signals | null;
}

/** A fixture process running in a namespace; `out`/`err` hold what it printed so far. */
export interface FixtureProcess {
  readonly child: ChildProcess;
  readonly out: string;
  readonly err: string;
  /** Resolves when the process has exited (killed with SIGKILL `killAfterMs` after the start). */
  readonly exited: Promise<FixtureExit>;
}

/**
 * Starts `fixture` (a .ts file, run with tsx) with `args` inside network namespace `ns`, its
 * stdout and stderr collected; SIGKILLs it if it is still running `killAfterMs` after the start.
 */
export function startFixture(
  ns: string,
  fixture: string,
  args: string[],
  killAfterMs: number,
): FixtureProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', fixture, ...args], {
    cwd: LIB_DIR,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const exited = new Promise<FixtureExit>((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    get out() {
      return out;
    },
    get err() {
      return err;
    },
    exited,
  };
}

/** A fixture run to its end: how it exited and everything it printed. */
export interface FixtureRun extends FixtureExit {
  out: string;
  err: string;
}

/** Runs `fixture` in `ns` to its end (bounded: SIGKILLed after `killAfterMs`). */
export async function runFixture(
  ns: string,
  fixture: string,
  args: string[],
  killAfterMs: number,
): Promise<FixtureRun> {
  const fx = startFixture(ns, fixture, args, killAfterMs);
  const exit = await fx.exited;
  return { ...exit, out: fx.out, err: fx.err };
}

/** The first JSON line a fixture printed with "event" `event`, parsed; undefined when there is none. */
export function eventLine(out: string, event: string): Record<string, unknown> | undefined {
  const line = out.split('\n').find((l) => l.includes(`"event":"${event}"`));
  return line === undefined ? undefined : (JSON.parse(line) as Record<string, unknown>);
}
