/**
 * What the abuse suites share: one `ikegate up --no-tun` on loopback (ports from the suite, the
 * log in a file so a flood never blocks the gateway on a full pipe), its control API (bearer
 * tokens from an access file in the gateway's directory) and /metrics, and small UDP helpers. No
 * root, no namespaces: everything is on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiAccess, type ApiRole, writeApiAccess } from '@ikegate/testkit';

export const IKEGATE_BIN = new URL('../../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;
export const HOST = '127.0.0.1';
export const PSK = 'abuse-suite-pre-shared-key-0123456789';

export interface Ports {
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
  readonly tls: number;
  readonly control: number;
}

/** Five consecutive ports from `base` (each suite derives its base from its pid). */
export function portsFrom(base: number): Ports {
  return { ike: base, natT: base + 1, tcp: base + 2, tls: base + 3, control: base + 4 };
}

export class Gateway {
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-abuse-'));
  readonly logFile = join(this.dir, 'ikegate.log');
  /** Tokens for the control API (control.accessFile in the config start() writes). */
  readonly access: ApiAccess = writeApiAccess(this.dir);
  #proc: ChildProcess | undefined;

  constructor(readonly ports: Ports) {}

  start(): void {
    const { ports } = this;
    const config = join(this.dir, 'ikegate.yaml');
    writeFileSync(
      config,
      `identity: { id: gw.example.org }
listen:
  udp: { address: ${HOST}, ikePort: ${ports.ike}, natTPort: ${ports.natT} }
  tcp: { address: ${HOST}, port: ${ports.tcp} }
  tls: { address: ${HOST}, port: ${ports.tls} }
  limits: { prefixTimeoutSeconds: 2 }
control: { address: ${HOST}, port: ${ports.control}, accessFile: '${this.access.file}' }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
pools:
  - { name: rw, cidr: 10.99.0.0/24 }
peers:
  - name: road-warriors
    id: '*@example.org'
    auth: { psk: '${PSK}' }
    pool: rw
    remoteTs: [dynamic]
dataplane:
  masquerade: { enabled: false }
log: { level: info }
`,
    );
    const out = openSync(this.logFile, 'a');
    this.#proc = spawn(process.execPath, [IKEGATE_BIN, 'up', '--config', config, '--no-tun'], {
      stdio: ['ignore', out, out],
    });
    closeSync(out);
  }

  /** start(), then waits (bounded, 30 s) for control /healthz; fails with the log tail. */
  async up(): Promise<void> {
    this.start();
    for (let i = 0; i < 300; i++) {
      if (!this.alive) break;
      try {
        if ((await this.control('/healthz')).status === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    assert.fail(`ikegate did not come up; log tail:\n${this.logTail()}`);
  }

  get pid(): number {
    const pid = this.#proc?.pid;
    assert.ok(pid !== undefined, 'ikegate was not spawned');
    return pid;
  }

  get alive(): boolean {
    const p = this.#proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  logTail(n = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-n).join('\n');
    } catch {
      return '';
    }
  }

  /** SIGTERM, a bounded wait, then SIGKILL. */
  async stop(timeoutMs = 8_000): Promise<void> {
    const p = this.#proc;
    if (!p || !this.alive) return;
    p.kill('SIGTERM');
    for (let i = 0; i < timeoutMs / 50 && this.alive; i++) await sleep(50);
    if (this.alive) p.kill('SIGKILL');
  }

  /** One control API request with `role`'s bearer token (none when null). */
  async control(
    path: string,
    init: RequestInit = {},
    role: ApiRole | null = 'admin',
  ): Promise<{ status: number; text: string }> {
    const headers = new Headers(init.headers);
    if (role !== null) headers.set('authorization', this.access.headers(role).authorization);
    const r = await fetch(`http://${HOST}:${this.ports.control}${path}`, {
      ...init,
      headers,
      signal: AbortSignal.timeout(5_000),
    });
    return { status: r.status, text: await r.text() };
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const r = await this.control('/metrics');
    assert.equal(r.status, 200);
    return sample(r.text, name, labels);
  }

  /** The process is running and control /healthz answers 200. */
  async assertUp(): Promise<void> {
    assert.ok(this.alive, `ikegate exited; log tail:\n${this.logTail()}`);
    const h = await this.control('/healthz');
    assert.equal(h.status, 200, 'control /healthz must answer 200');
  }
}

/** Sum of every sample of `name` whose labels include `labels` (absent series count as 0). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map<string, string>();
    for (const kv of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) got.set(kv[1]!, kv[2]!);
    if (Object.entries(labels).every(([k, v]) => got.get(k) === v)) sum += Number(m[4]);
  }
  return sum;
}

/** Polls `read` until `ok(value)` (bounded by timeoutMs); returns the last value read. */
export async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  let v = await read();
  for (let i = 0; i < timeoutMs / 50 && !ok(v); i++) {
    await sleep(50);
    v = await read();
  }
  return v;
}

/** A UDP socket on loopback that keeps every datagram it receives. */
export async function udp(): Promise<{ socket: UdpSocket; received: Buffer[] }> {
  const socket = createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (m) => received.push(m));
  socket.on('error', () => undefined);
  await new Promise<void>((r) => socket.bind(0, HOST, () => r()));
  return { socket, received };
}

export function send(socket: UdpSocket, bytes: Uint8Array, port: number): Promise<void> {
  return new Promise((r) => socket.send(bytes, port, HOST, () => r()));
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmRSS not found');
  return Number(m[1]);
}
