/**
 * Runs a real strongSwan charon (userspace ESP via kernel-libipsec) inside a network namespace,
 * following INTEROP.md: a private /run bind-mounted inside the namespace (charon's pid file path
 * is compiled in), a self-contained strongswan.conf, swanctl over the vici socket.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const CHARON = '/usr/lib/ipsec/charon';

export function haveStrongswan(): boolean {
  return existsSync(CHARON) && spawnSync('swanctl', ['--help'], { stdio: 'ignore' }).status === 0;
}

export interface CharonOptions {
  readonly netns: string;
  /** swanctl.conf contents: one setting per line (semicolons are not separators there). */
  readonly swanctlConf: string;
  /** Extra lines inside `charon { ... }`. */
  readonly charonExtra?: string;
  /**
   * Credential files to place beside swanctl.conf, where swanctl looks for them: destination path
   * relative to that directory (e.g. 'x509/me.pem', 'x509ca/ca.pem', 'pkcs8/me.key') -> source.
   */
  readonly files?: Record<string, string>;
  /** Log levels, e.g. { ike: 2, cfg: 2 }. */
  readonly log?: Record<string, number>;
}

export class Charon {
  readonly dir: string;
  #proc: ChildProcess | undefined;

  constructor(readonly opts: CharonOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'ikegate-charon-'));
    mkdirSync(join(this.dir, 'run'));
    const levels = Object.entries(opts.log ?? { ike: 2, cfg: 1 })
      .map(([k, v]) => `        ${k} = ${v}`)
      .join('\n');
    writeFileSync(
      join(this.dir, 'strongswan.conf'),
      `charon {
  load_modular = no
  load = random nonce openssl pem pkcs1 pkcs8 x509 pubkey aes sha1 sha2 hmac gcm kdf kernel-libipsec kernel-netlink socket-default vici
  plugins {
    vici {
      socket = unix:///run/charon.vici
    }
  }
  filelog {
    log {
      path = ${join(this.dir, 'charon.log')}
      default = 1
${levels}
      flush_line = yes
    }
  }
${opts.charonExtra ?? ''}
}
swanctl {
  socket = unix://${join(this.dir, 'run', 'charon.vici')}
}
`,
    );
    writeFileSync(join(this.dir, 'swanctl.conf'), opts.swanctlConf);
    for (const [dest, src] of Object.entries(opts.files ?? {})) {
      mkdirSync(dirname(join(this.dir, dest)), { recursive: true });
      copyFileSync(src, join(this.dir, dest));
    }
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, STRONGSWAN_CONF: join(this.dir, 'strongswan.conf') };
  }

  /** Starts charon and waits (bounded) for its vici socket, then loads the configuration. */
  async start(timeoutMs = 10_000): Promise<void> {
    this.#proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.opts.netns,
        'sh',
        '-c',
        `mount --bind ${join(this.dir, 'run')} /run && exec env STRONGSWAN_CONF=${join(this.dir, 'strongswan.conf')} ${CHARON}`,
      ],
      { stdio: 'ignore' },
    );
    const sock = join(this.dir, 'run', 'charon.vici');
    const until = Date.now() + timeoutMs;
    while (!existsSync(sock)) {
      if (Date.now() > until) throw new Error(`charon did not start in ${timeoutMs} ms; log:\n${this.log()}`);
      if (this.#proc.exitCode !== null)
        throw new Error(`charon exited with ${this.#proc.exitCode}; log:\n${this.log()}`);
      await sleep(50);
    }
    this.swanctl('--load-all', '--file', join(this.dir, 'swanctl.conf'));
  }

  swanctl(...args: string[]): string {
    return execFileSync('swanctl', args, { env: this.env, encoding: 'utf8', timeout: 30_000 });
  }

  log(): string {
    const p = join(this.dir, 'charon.log');
    return existsSync(p) ? readFileSync(p, 'utf8') : '';
  }

  /** Stops only the charon this object started and waits (bounded) for it to exit. */
  async stop(timeoutMs = 8_000): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null) return;
    p.kill('SIGTERM');
    const until = Date.now() + timeoutMs;
    while (p.exitCode === null && p.signalCode === null && Date.now() < until) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
