/**
 * Runs a tool to completion with a deadline and returns what it printed. Never throws for a
 * non-zero exit: the caller asserts on `status` and shows `out` in the failure message.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  /** Exit code; -1 when the process was killed at the deadline or failed to start. */
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line and both streams (tail), for assertion messages. */
  readonly out: string;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly input?: string;
  /** Killed (SIGTERM, then SIGKILL 5 s later) after this many milliseconds; default 120 s. */
  readonly timeoutMs?: number;
}

const TAIL = 6000;

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    let killer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    }, opts.timeoutMs ?? 120_000);
    const finish = (status: number, extra = ''): void => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      const line = `$ ${cmd} ${args.join(' ')}`;
      const tail = (s: string): string => (s.length > TAIL ? `…${s.slice(-TAIL)}` : s);
      const note = timedOut ? `\n(killed after ${opts.timeoutMs ?? 120_000} ms)` : '';
      resolve({ status, stdout, stderr, out: `${line}\n${tail(stdout)}${tail(stderr)}${extra}${note}` });
    };
    child.on('error', (e) => finish(-1, `\n${e.message}`));
    child.on('close', (code) => finish(timedOut ? -1 : (code ?? -1)));
  });
}
