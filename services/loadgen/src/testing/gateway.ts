/**
 * A real gateway for the loadgen suites: `ikegate up --no-tun` on loopback, PSK peers
 * `*@example.org` with a virtual-IP pool, the control API to count what it holds. Started as users
 * start it (bin/ikegate.mjs in a child process); `stop()` ends only the process it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeApiAccess } from '@ikegate/testkit';

export const IKEGATE_BIN = new URL('../../../cli/bin/ikegate.mjs', import.meta.url).pathname;
export const HOST = '127.0.0.1';
export const PSK = 'loadgen-suite-pre-shared-key-0123456789';

export interface GatewayPorts {
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
  readonly tls: number;
  readonly control: number;
}

/** Five consecutive ports from `base`. */
export function gatewayPorts(base: number): GatewayPorts {
  return { ike: base, natT: base + 1, tcp: base + 2, tls: base + 3, control: base + 4 };
}

export class Gateway {
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-loadgen-'));
  readonly logFile = join(this.dir, 'ikegate.log');
  /** Tokens for the control API (control.accessFile). */
  readonly access = writeApiAccess(this.dir);
  #proc: ChildProcess | undefined;

  constructor(
    readonly ports: GatewayPorts,
    readonly poolCidr = '10.64.0.0/16',
  ) {}

  async start(): Promise<void> {
    const PORTS = this.ports;
    const config = join(this.dir, 'ikegate.yaml');
    writeFileSync(
      config,
      `identity: { id: gw.example.org }
listen:
  udp: { address: ${HOST}, ikePort: ${PORTS.ike}, natTPort: ${PORTS.natT} }
  tcp: { address: ${HOST}, port: ${PORTS.tcp} }
  tls: { address: ${HOST}, port: ${PORTS.tls} }
control: { address: ${HOST}, port: ${PORTS.control}, accessFile: '${this.access.file}' }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
pools:
  - { name: rw, cidr: ${this.poolCidr} }
peers:
  - name: load
    id: '*@example.org'
    auth: { psk: '${PSK}' }
    pool: rw
    remoteTs: [dynamic]
dataplane:
  masquerade: { enabled: false }
log: { level: warn }
`,
    );
    const out = openSync(this.logFile, 'a');
    this.#proc = spawn(process.execPath, [IKEGATE_BIN, 'up', '--config', config, '--no-tun'], {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
    for (let i = 0; i < 200; i++) {
      if (this.#proc.exitCode !== null) break;
      try {
        if ((await fetch(`http://${HOST}:${PORTS.control}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`gateway did not come up; log:\n${readFileSync(this.logFile, 'utf8')}`);
  }

  /**
   * The gateway's established IKE SAs from load identities (control API): every page of /v1/sas,
   * `next` followed until null (a run holds more SAs than one default page).
   */
  async established(): Promise<number> {
    return (await this.loadPeerIds()).length;
  }

  /** The peer identities of those SAs (one entry per SA, so duplicates show). */
  async loadPeerIds(): Promise<string[]> {
    const ids: string[] = [];
    for (let cursor: string | null = null; ;) {
      const url = `http://${HOST}:${this.ports.control}/v1/sas?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await fetch(url, { headers: this.access.headers('viewer') });
      if (res.status !== 200) throw new Error(`GET /v1/sas: ${res.status} ${await res.text()}`);
      const page = (await res.json()) as {
        items: { status: string; peerId?: string; children: unknown[] }[];
        next: string | null;
        unreachable: string[];
      };
      if (page.unreachable.length > 0)
        throw new Error(`GET /v1/sas: unreachable ${page.unreachable.join(', ')}`);
      for (const s of page.items)
        if (s.status === 'established' && s.peerId?.startsWith('load-') && s.children.length > 0)
          ids.push(s.peerId);
      if (page.next === null) return ids;
      cursor = page.next;
    }
  }

  /** Polls (bounded) until the gateway holds `n` load SAs; returns the last count seen. */
  async waitFor(n: number): Promise<number> {
    let seen = -1;
    for (let i = 0; i < 100; i++) {
      seen = await this.established();
      if (seen === n) return seen;
      await sleep(100);
    }
    return seen;
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    for (let i = 0; i < 100 && p.exitCode === null && p.signalCode === null; i++) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
