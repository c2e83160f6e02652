/**
 * The data-plane topology the cluster suites share: a client namespace (10.66.1.2) and a host
 * namespace (10.66.2.2, plus `hostAddresses`) joined by veths to this namespace (10.66.1.1 and
 * 10.66.2.1), where the cluster runs and forwards between them. Names derive from `tag`; `setUp`
 * removes leftovers of an earlier run first, `tearDown` restores ip_forward.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ip } from '../../interop/lib/netns.js';

const FORWARD = '/proc/sys/net/ipv4/ip_forward';

export class ClientHostNet {
  /** The client's namespace, and the host's (behind the cluster). */
  readonly client: string;
  readonly host: string;
  /** This namespace's end of the client's veth (10.66.1.1), and the client's end. */
  readonly clientLink: string;
  readonly clientPeerLink: string;
  #forwardBefore = '0';

  constructor(
    readonly tag: string,
    readonly o: {
      /** More addresses of the host namespace, besides 10.66.2.2 (all /24). */
      readonly hostAddresses?: readonly string[];
      /** A default route in the client namespace via 10.66.1.1 (to reach addresses beyond it). */
      readonly clientDefaultRoute?: boolean;
    } = {},
  ) {
    this.client = `ig${tag}c`;
    this.host = `ig${tag}h`;
    this.clientLink = `v${tag}c`;
    this.clientPeerLink = `v${tag}cc`;
  }

  setUp(): void {
    const { tag, client, host } = this;
    this.#forwardBefore = readFileSync(FORWARD, 'utf8').trim();
    for (const ns of [client, host]) {
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    for (const l of [`v${tag}c`, `v${tag}h`]) spawnSync('ip', ['link', 'del', l], { stdio: 'ignore' });
    ip('link', 'add', `v${tag}c`, 'type', 'veth', 'peer', 'name', `v${tag}cc`);
    ip('link', 'set', `v${tag}cc`, 'netns', client);
    ip('addr', 'add', '10.66.1.1/24', 'dev', `v${tag}c`);
    ip('link', 'set', `v${tag}c`, 'up');
    ip('-n', client, 'addr', 'add', '10.66.1.2/24', 'dev', `v${tag}cc`);
    ip('-n', client, 'link', 'set', `v${tag}cc`, 'up');
    if (this.o.clientDefaultRoute) ip('-n', client, 'route', 'add', 'default', 'via', '10.66.1.1');
    ip('link', 'add', `v${tag}h`, 'type', 'veth', 'peer', 'name', `v${tag}hh`);
    ip('link', 'set', `v${tag}hh`, 'netns', host);
    ip('addr', 'add', '10.66.2.1/24', 'dev', `v${tag}h`);
    ip('link', 'set', `v${tag}h`, 'up');
    for (const a of ['10.66.2.2', ...(this.o.hostAddresses ?? [])])
      ip('-n', host, 'addr', 'add', `${a}/24`, 'dev', `v${tag}hh`);
    ip('-n', host, 'link', 'set', `v${tag}hh`, 'up');
    ip('-n', host, 'route', 'add', 'default', 'via', '10.66.2.1');
    writeFileSync(FORWARD, '1');
  }

  tearDown(): void {
    for (const ns of [this.client, this.host]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    for (const l of [`v${this.tag}c`, `v${this.tag}h`])
      spawnSync('ip', ['link', 'del', l], { stdio: 'ignore' });
    writeFileSync(FORWARD, this.#forwardBefore);
  }
}
