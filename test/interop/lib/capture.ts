/**
 * tcpdump inside a namespace, written packet by packet (--immediate-mode -U) so that stopping it
 * loses nothing, and tshark with ikegate's RFC 9329 dissector to read the result.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const DISSECTOR = new URL('../../../docs/wireshark/iketcp.lua', import.meta.url).pathname;

export function haveCaptureTools(): boolean {
  return ['tcpdump', 'tshark'].every((t) => spawnSync('which', [t], { stdio: 'ignore' }).status === 0);
}

export class Capture {
  #proc: ChildProcess | undefined;
  constructor(
    readonly netns: string,
    readonly iface: string,
    readonly file: string,
    readonly filter: string,
  ) {}

  async start(): Promise<void> {
    this.#proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.netns,
        'tcpdump',
        '--immediate-mode',
        '-U',
        '-Z',
        'root',
        '-i',
        this.iface,
        '-w',
        this.file,
        this.filter,
      ],
      { stdio: 'ignore' },
    );
    const until = Date.now() + 5000;
    while (!(existsSync(this.file) && statSync(this.file).size >= 24)) {
      if (Date.now() > until) throw new Error('tcpdump did not start');
      await sleep(20);
    }
    await sleep(100);
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null) return;
    await sleep(200);
    p.kill('SIGTERM');
    const until = Date.now() + 5000;
    while (p.exitCode === null && p.signalCode === null && Date.now() < until) await sleep(20);
  }
}

/** tshark -T fields over a capture, with the RFC 9329 dissector loaded; one array per frame. */
export function tsharkFields(file: string, fields: string[], extra: string[] = []): string[][] {
  const out = execFileSync(
    'tshark',
    [
      '-X',
      `lua_script:${DISSECTOR}`,
      '-r',
      file,
      ...extra,
      '-T',
      'fields',
      '-E',
      'separator=\t',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 },
  );
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t'));
}
