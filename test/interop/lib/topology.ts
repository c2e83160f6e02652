/**
 * Three namespaces in a row, the road-warrior topology of issue #4:
 *
 *   client (strongSwan or `ikegate connect`) --veth-- gateway (`ikegate up`) --veth-- host
 *        <subnet>.1.2                         <subnet>.1.1 | <subnet>.2.1             <subnet>.2.2
 *
 * The host has no route to the virtual-IP pool: traffic from tunnels reaches it through the
 * gateway's masquerade (nftables), as in a real deployment. Names carry the pid; `destroy()`
 * removes the namespaces with their veths and TUN devices.
 */
import { spawnSync } from 'node:child_process';
import { ip } from './netns.js';

export class Chain3 {
  readonly client: string;
  readonly gateway: string;
  readonly host: string;
  readonly clientAddr: string;
  readonly gatewayOuter: string;
  readonly gatewayInner: string;
  readonly hostAddr: string;
  /** The gateway's interface toward the host (the masquerade's out interface). */
  readonly gatewayToHost: string;

  constructor(
    tag: string,
    readonly subnet: string,
  ) {
    const id = `${tag}${process.pid % 100000}`;
    this.client = `ig${id}c`;
    this.gateway = `ig${id}g`;
    this.host = `ig${id}h`;
    this.clientAddr = `${subnet}.1.2`;
    this.gatewayOuter = `${subnet}.1.1`;
    this.gatewayInner = `${subnet}.2.1`;
    this.hostAddr = `${subnet}.2.2`;
    this.gatewayToHost = `v${id}gh`.slice(0, 15);
  }

  /** The gateway's interface toward the client (named in `create()`). */
  get gatewayToClient(): string {
    return `v${this.gatewayToHost.slice(1, -2)}gc`;
  }

  create(): this {
    this.destroy();
    const id = this.gatewayToHost.slice(1, -2);
    for (const ns of [this.client, this.gateway, this.host]) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    const links: [string, string, string, string, string, string][] = [
      [`v${id}cg`, this.client, this.clientAddr, `v${id}gc`, this.gateway, this.gatewayOuter],
      [this.gatewayToHost, this.gateway, this.gatewayInner, `v${id}hg`, this.host, this.hostAddr],
    ];
    for (const [a, nsA, addrA, b, nsB, addrB] of links) {
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      ip('link', 'set', a, 'netns', nsA);
      ip('link', 'set', b, 'netns', nsB);
      ip('-n', nsA, 'addr', 'add', `${addrA}/24`, 'dev', a);
      ip('-n', nsB, 'addr', 'add', `${addrB}/24`, 'dev', b);
      ip('-n', nsA, 'link', 'set', a, 'up');
      ip('-n', nsB, 'link', 'set', b, 'up');
    }
    return this;
  }

  destroy(): void {
    for (const ns of [this.client, this.gateway, this.host])
      spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}
