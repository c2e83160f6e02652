/**
 * The drill's local topology: a whole cluster as real processes on loopback — a redis-server,
 * `ikegate worker`s, `ikegate edge`s and `ikegate control`, each the real `ikegate` command with
 * the same configuration file — like test/cluster/lib/cluster.ts (TestCluster), so that the drill
 * can kill -9, SIGSTOP or SIGCONT any of them by pid. Ports are ones the kernel just handed out
 * as free; `stop()` ends every process it started (by pid) and nothing else.
 *
 * The relay CA and API tokens come from @ikegate/testkit (throwaway openssl PKI, random tokens):
 * this topology exists only for drills on one machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, makeTestPki, writeApiAccess } from '@ikegate/testkit';
import { type RedisServer, startRedisServer } from '../../../../libs/store/src/testing/redis-server.js';

export const IKEGATE_BIN = new URL('../../bin/ikegate.mjs', import.meta.url).pathname;
const HOST = '127.0.0.1';

export type LogLine = Record<string, unknown> & { msg?: string };

/** One `ikegate` process and its JSON log lines (the last `keep` of them). */
export class ClusterProc {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  #buf = '';
  #stderr = '';

  constructor(
    readonly name: string,
    args: readonly string[],
    private readonly keep = process.env.IKEGATE_DRILL_DUMP ? 500_000 : 5000,
  ) {
    this.child = spawn(process.execPath, [IKEGATE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: 'non-json', line });
        }
        if (this.lines.length > this.keep) this.lines.splice(0, this.lines.length - this.keep);
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  async waitFor(msg: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (this.lines.some((l) => l.msg === msg)) return;
      if (!this.alive) throw new Error(`${this.name} exited before ${msg}: ${this.#stderr.slice(-1500)}`);
      if (Date.now() > until) throw new Error(`${this.name}: no ${msg} in ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.alive) this.child.kill(sig);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGCONT'); // a stopped process would not see SIGKILL's exit promptly otherwise
    this.child.kill('SIGKILL');
    const until = Date.now() + 5000;
    while (this.alive && Date.now() < until) await sleep(20);
  }
}

export interface LocalWorker {
  readonly id: string;
  readonly admin: number;
  readonly proc: ClusterProc;
}

export interface LocalEdge {
  readonly id: string;
  readonly address: string;
  readonly admin: number;
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
  readonly proc: ClusterProc;
}

export interface LocalClusterOptions {
  readonly workers: number;
  readonly edges: number;
  readonly leaseTtlMs: number;
  /** The PSK every `*@example.org` peer authenticates with. */
  readonly psk: string;
  /** Where the files go (default: a fresh directory under the system temp dir, removed on stop). */
  readonly dir?: string;
}

/** The configuration every process of the local cluster reads (one file, role flags on top). */
export function localClusterConfig(o: {
  readonly controlPort: number;
  readonly accessFile: string;
  readonly redisPort: number;
  readonly leaseTtlMs: number;
  readonly psk: string;
  readonly ca: string;
  readonly certificate: string;
  readonly key: string;
}): string {
  return `identity: { id: gw.example.org }
listen:
  udp: { address: ${HOST} }
  tcp: { address: ${HOST} }
  tls: { address: ${HOST}, enabled: false }
control: { address: ${HOST}, port: ${o.controlPort}, accessFile: ${o.accessFile} }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
peers:
  - name: drill
    id: '*@example.org'
    auth: { psk: '${o.psk}' }
    localTs: [10.0.0.0/8]
    remoteTs: [0.0.0.0/0]
dpd: { intervalSeconds: 0 }
dataplane:
  masquerade: { enabled: false }
log: { level: ${process.env.IKEGATE_DRILL_LOG_LEVEL ?? 'info'} }
cluster:
  redis: { host: ${HOST}, port: ${o.redisPort} }
  kek: { file: kek.hex }
  leaseTtlMs: ${o.leaseTtlMs}
  relayTls: { ca: ${o.ca}, certificate: ${o.certificate}, key: ${o.key} }
`;
}

export class LocalCluster {
  readonly dir: string;
  readonly workers: LocalWorker[] = [];
  readonly edges: LocalEdge[] = [];
  control: ClusterProc | undefined;
  controlPort = 0;
  token = '';
  #redis: RedisServer | undefined;
  #ownDir: boolean;

  constructor(readonly o: LocalClusterOptions) {
    this.#ownDir = o.dir === undefined;
    this.dir = o.dir ?? mkdtempSync(join(tmpdir(), 'ikegate-drill-'));
  }

  get controlUrl(): string {
    return `http://${HOST}:${this.controlPort}`;
  }

  /** Starts redis-server, the workers, the edges and control; resolves once each said it is up. */
  async start(onStep: (what: string) => void = () => undefined): Promise<void> {
    const configFile = join(this.dir, 'ikegate.yaml');
    this.controlPort = await freePort();
    const pki = makeTestPki(this.dir);
    const workerCert = pki.issue('relay-worker', 'worker');
    onStep('redis-server');
    const r = await startRedisServer('redis-server');
    if (typeof r === 'string') throw new Error(`drill: ${r}`);
    this.#redis = r;
    writeFileSync(join(this.dir, 'kek.hex'), randomBytes(32).toString('hex'));
    const access = writeApiAccess(this.dir);
    this.token = access.tokens.admin;
    writeFileSync(
      configFile,
      localClusterConfig({
        controlPort: this.controlPort,
        accessFile: access.file,
        redisPort: r.port,
        leaseTtlMs: this.o.leaseTtlMs,
        psk: this.o.psk,
        ca: pki.ca,
        ...workerCert,
      }),
    );
    for (let i = 1; i <= this.o.workers; i++) {
      const id = `w${i}`;
      onStep(`worker ${id}`);
      const admin = await freePort();
      const relay = await freePort();
      const proc = new ClusterProc(id, [
        'worker',
        '--config',
        configFile,
        '--id',
        id,
        '--relay',
        `${HOST}:${relay}`,
        '--admin',
        `${HOST}:${admin}`,
      ]);
      this.workers.push({ id, admin, proc });
      await proc.waitFor('worker-up', 30_000);
    }
    for (let i = 1; i <= this.o.edges; i++) {
      const id = `e${i}`;
      onStep(`edge ${id}`);
      const [admin, ike, natT, tcp] = [
        await freePort(),
        await freePort(),
        await freePort(),
        await freePort(),
      ];
      const cert = pki.issue(`relay-edge-${id}`, `edge:${id}`);
      const proc = new ClusterProc(id, [
        'edge',
        '--relay-cert',
        cert.certificate,
        '--relay-key',
        cert.key,
        '--config',
        configFile,
        '--id',
        id,
        '--admin',
        `${HOST}:${admin}`,
        '--udp-ike',
        String(ike),
        '--udp-natt',
        String(natT),
        '--tcp',
        String(tcp),
      ]);
      this.edges.push({ id, address: HOST, admin, ike, natT, tcp, proc });
      await proc.waitFor('edge-up', 30_000);
    }
    onStep('control');
    this.control = new ClusterProc('control', ['control', '--config', configFile]);
    await this.control.waitFor('control-up', 30_000);
  }

  worker(id: string): LocalWorker | undefined {
    return this.workers.find((w) => w.id === id);
  }

  async stop(): Promise<void> {
    const dump = process.env.IKEGATE_DRILL_DUMP;
    if (dump)
      for (const p of [...this.edges, ...this.workers])
        writeFileSync(`${dump}/${p.id}.jsonl`, p.proc.lines.map((l) => JSON.stringify(l)).join('\n'));
    await Promise.all([...this.edges, ...this.workers].map((p) => p.proc.stop()));
    await this.control?.stop();
    await this.#redis?.stop();
    if (this.#ownDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
