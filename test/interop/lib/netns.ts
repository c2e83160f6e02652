/**
 * Network namespaces for interop tests (INTEROP.md "Test topology that works"). Every address
 * lives inside namespaces this process creates; nothing is routed anywhere else. Names carry the
 * pid so parallel runs do not collide, and `destroy()` removes them (and their veths) again.
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function canUseNetns(): { ok: true } | { ok: false; why: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'needs root for ip netns' };
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, why: `ip netns unavailable: ${r.stderr || r.error}` };
  return { ok: true };
}

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

export interface Link {
  readonly a: string;
  readonly b: string;
  readonly addrA: string;
  readonly addrB: string;
}

/** Two namespaces joined by a veth pair with /24 addresses, loopback up, optional extra /32s on lo. */
export class NetnsPair {
  readonly nsA: string;
  readonly nsB: string;
  readonly link: Link;
  #created = false;

  constructor(
    tag: string,
    readonly subnet = '10.99.0',
  ) {
    const id = `${tag}${process.pid % 100000}`;
    this.nsA = `ig${id}a`;
    this.nsB = `ig${id}b`;
    this.link = {
      a: `v${id}a`.slice(0, 15),
      b: `v${id}b`.slice(0, 15),
      addrA: `${subnet}.1`,
      addrB: `${subnet}.2`,
    };
  }

  create(opts: { loA?: string[]; loB?: string[] } = {}): this {
    this.destroy();
    ip('netns', 'add', this.nsA);
    ip('netns', 'add', this.nsB);
    this.#created = true;
    ip('link', 'add', this.link.a, 'type', 'veth', 'peer', 'name', this.link.b);
    ip('link', 'set', this.link.a, 'netns', this.nsA);
    ip('link', 'set', this.link.b, 'netns', this.nsB);
    ip('-n', this.nsA, 'addr', 'add', `${this.link.addrA}/24`, 'dev', this.link.a);
    ip('-n', this.nsB, 'addr', 'add', `${this.link.addrB}/24`, 'dev', this.link.b);
    for (const [ns, dev] of [
      [this.nsA, this.link.a],
      [this.nsB, this.link.b],
    ] as const) {
      ip('-n', ns, 'link', 'set', dev, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const a of opts.loA ?? []) ip('-n', this.nsA, 'addr', 'add', a, 'dev', 'lo');
    for (const b of opts.loB ?? []) ip('-n', this.nsB, 'addr', 'add', b, 'dev', 'lo');
    return this;
  }

  /** Removes both namespaces; their veth ends and any TUN devices inside go with them. */
  destroy(): void {
    for (const ns of [this.nsA, this.nsB]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    this.#created = false;
  }

  get created(): boolean {
    return this.#created;
  }
}
