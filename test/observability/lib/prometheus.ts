/**
 * Prometheus and promtool from Debian's package, extracted by scripts/prometheus.sh into
 * .prometheus/ (never installed system-wide). A server started here listens on 127.0.0.1 only,
 * keeps its data in a temporary directory and is killed on stop.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '@ikegate/testkit';

const BIN = new URL('../../../.prometheus/root/usr/bin/', import.meta.url).pathname;
export const PROMETHEUS = join(BIN, 'prometheus');
export const PROMTOOL = join(BIN, 'promtool');

/** Why the tools are not there (run `bash scripts/prometheus.sh install`), or false. */
export function prometheusMissing(): string | false {
  return existsSync(PROMETHEUS) && existsSync(PROMTOOL)
    ? false
    : 'prometheus/promtool not extracted: run `bash scripts/prometheus.sh install`';
}

export function promtool(args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync(PROMTOOL, args, {
    encoding: 'utf8',
    timeout: 60_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export interface ScrapeTarget {
  readonly address: string;
  readonly labels: Record<string, string>;
}

export class PrometheusServer {
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-prom-'));
  port = 0;
  #proc: ChildProcess | undefined;
  #stderr = '';

  /** Scrapes `targets` every second; `labels` go on every series (cluster, namespace). */
  async start(targets: readonly ScrapeTarget[]): Promise<void> {
    this.port = await freePort();
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '900ms' },
      scrape_configs: [
        {
          job_name: 'ikegate',
          static_configs: targets.map((t) => ({ targets: [t.address], labels: t.labels })),
        },
      ],
    };
    writeFileSync(join(this.dir, 'prometheus.yml'), JSON.stringify(config));
    this.#proc = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#proc.stderr?.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${this.port}/-/ready`);
        if (r.ok) return;
      } catch {
        // not up yet
      }
      if (Date.now() > until || this.#proc.exitCode !== null)
        throw new Error(`prometheus did not start: ${this.#stderr}`);
      await sleep(100);
    }
  }

  /** An instant query through the HTTP API: the result vector (or scalar as one element). */
  async query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await r.json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: unknown };
    };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? r.status}`);
    const { resultType, result } = body.data!;
    if (resultType === 'scalar') return [{ metric: {}, value: result as [number, string] }];
    return result as { metric: Record<string, string>; value: [number, string] }[];
  }

  /** Health of every scrape target, by address. */
  async targets(): Promise<Map<string, string>> {
    const r = await fetch(`http://127.0.0.1:${this.port}/api/v1/targets`);
    const body = (await r.json()) as {
      data: { activeTargets: { scrapeUrl: string; health: string }[] };
    };
    return new Map(body.data.activeTargets.map((t) => [new URL(t.scrapeUrl).host, t.health]));
  }

  async stop(): Promise<void> {
    const p = this.#proc;
    if (p && p.exitCode === null) {
      p.kill('SIGTERM');
      for (let i = 0; i < 100 && p.exitCode === null && p.signalCode === null; i++) await sleep(50);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
