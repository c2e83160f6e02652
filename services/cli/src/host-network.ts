/**
 * The host's routing for ikegate's data plane, kept in step with the managed configuration:
 *
 * - `UpNetwork` (`ikegate up`): each pool's gateway address on the TUN (which routes the pool to
 *   it), a route over the TUN for every site-to-site remote subnet, and an nftables masquerade
 *   table per pool; a pool or peer added or removed through the API adds or removes them. Only
 *   what this process added is ever removed.
 * - `HostRoutes` (a cluster worker): a host route per virtual IP its SAs hold, so return traffic
 *   reaches the worker that holds the SA.
 *
 * Commands run one at a time in order (a chain of promises), so a quick add-then-remove never
 * ends in the wrong state; failures are logged, never thrown.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { addRoute, ensureMasquerade, removeMasquerade, removeRoute } from '@ikegate/tun';
import type { Logger, Metrics } from '@ikegate/telemetry';

const run = promisify(execFile);

export class HostRoutes {
  #chain: Promise<void> = Promise.resolve();
  constructor(
    private readonly dev: string,
    private readonly log: Logger,
  ) {}

  set(address: string, present: boolean): void {
    this.#chain = this.#chain.then(async () => {
      try {
        if (present) await run('ip', ['route', 'replace', `${address}/32`, 'dev', this.dev]);
        else await run('ip', ['route', 'del', `${address}/32`, 'dev', this.dev]);
      } catch (e) {
        this.log.warn({ address, present, err: (e as Error).message.split('\n')[0] }, 'vip-route-failed');
      }
    });
  }
}

export function masqueradeTable(pool: string): string {
  return `ikegate_${pool.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

export interface UpNetworkOptions {
  readonly dev: string;
  readonly log: Logger;
  /** Masquerade pool traffic (config dataplane.masquerade). */
  readonly masquerade: { readonly enabled: boolean; readonly outInterface: string | null };
}

/** A pool as the host sees it: its network and the gateway address (first host) on the TUN. */
export interface HostPool {
  readonly name: string;
  readonly cidr: string;
}

/** `10.1.0.0/24` -> `10.1.0.1/24`: the first host, ours (libs/config Pool.gateway). */
export function gatewayOf(cidr: string): string {
  const [net, prefix] = cidr.split('/');
  const n = net!.split('.').reduce((a, o) => a * 256 + Number(o), 0) + 1;
  return `${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}/${prefix}`;
}

export class UpNetwork {
  readonly #o: UpNetworkOptions;
  readonly #routes = new Set<string>();
  readonly #addresses = new Set<string>();
  readonly #masqueraded = new Map<string, string>(); // pool -> cidr
  #chain: Promise<void> = Promise.resolve();

  constructor(o: UpNetworkOptions) {
    this.#o = o;
  }

  /** Makes the routes and masquerades what `pools` and `subnets` (remote CIDRs) call for. */
  sync(pools: readonly HostPool[], subnets: readonly string[]): Promise<void> {
    this.#chain = this.#chain.then(() => this.#sync(pools, subnets));
    return this.#chain;
  }

  /** Removes what this process added (stop). */
  clear(): Promise<void> {
    return this.sync([], []);
  }

  async #sync(pools: readonly HostPool[], subnets: readonly string[]): Promise<void> {
    const { dev, log } = this.#o;
    const step = async (what: string, f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        log.warn({ what, err: (e as Error).message.split('\n')[0] }, 'host-network-change-failed');
      }
    };
    const addresses = new Set(pools.map((p) => gatewayOf(p.cidr)));
    for (const a of [...this.#addresses])
      if (!addresses.has(a)) {
        this.#addresses.delete(a);
        await step(`address del ${a}`, () => run('ip', ['addr', 'del', a, 'dev', dev]));
      }
    for (const a of addresses)
      if (!this.#addresses.has(a)) {
        this.#addresses.add(a);
        await step(`address ${a}`, () => run('ip', ['addr', 'replace', a, 'dev', dev]));
      }
    const want = new Set(subnets.filter((c) => c !== '0.0.0.0/0'));
    for (const cidr of [...this.#routes])
      if (!want.has(cidr)) {
        this.#routes.delete(cidr);
        await step(`route del ${cidr}`, () => removeRoute(cidr, dev));
      }
    for (const cidr of want)
      if (!this.#routes.has(cidr)) {
        this.#routes.add(cidr);
        await step(`route ${cidr}`, () => addRoute(cidr, dev));
      }
    if (!this.#o.masquerade.enabled) return;
    const wanted = new Map(pools.map((p) => [p.name, p.cidr]));
    for (const [name, cidr] of [...this.#masqueraded])
      if (wanted.get(name) !== cidr) {
        this.#masqueraded.delete(name);
        await step(`masquerade del ${name}`, () => removeMasquerade(masqueradeTable(name)));
      }
    for (const [name, cidr] of wanted)
      if (!this.#masqueraded.has(name)) {
        this.#masqueraded.set(name, cidr);
        const out = this.#o.masquerade.outInterface;
        await step(`masquerade ${name}`, () =>
          ensureMasquerade({
            table: masqueradeTable(name),
            sourceCidr: cidr,
            ...(out ? { outInterface: out } : {}),
          }),
        );
      }
  }
}

/**
 * The TUN device's own counters, read at scrape time:
 * - its drops in `ikegate_drops_total{layer="tun"}`: packets its reader thread read and could not
 *   hand over because the read ring was full (`read_ring_full`, the main thread is behind). Writes
 *   refused by a full write ring already count as `write_failed` where the worker writes;
 * - its merged writes in `ikegate_tun_coalesced_segments_total{result}` (libs/tun gro.ts).
 */
export function followTunCounters(
  metrics: Metrics,
  device: {
    readonly counters: {
      readonly rxRingFull: number;
      readonly txCoalesced: number;
      readonly txBadChecksum: number;
    };
  },
): void {
  metrics.follow(metrics.drops, ['tun', 'read_ring_full'], () => device.counters.rxRingFull);
  metrics.follow(metrics.tunCoalesced, ['merged'], () => device.counters.txCoalesced);
  metrics.follow(metrics.tunCoalesced, ['bad_checksum'], () => device.counters.txBadChecksum);
}
