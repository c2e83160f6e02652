/**
 * An nftables table a test loads into a namespace it created: lose chosen packets, count them with
 * named counters, copy them to an NFLOG group for `tcpdump -i nflog:N` (with `queue-threshold 1`,
 * or the kernel batches log messages for up to a second and their capture times are meaningless).
 * Rules are matched in the kernel, so "only the first IKE_AUTH response" is exact (a dynamic set
 * remembers it was seen), never a race against a poll loop. `delete()` removes the table again;
 * deleting the namespace removes it too.
 *
 * To lose a packet the way a network does, drop it in a `netdev` table's egress hook: the sender's
 * sendmsg() succeeds. A drop in the inet output hook instead fails the sender's sendmsg() with
 * EPERM, which a real lossy path never does.
 *
 * IKE header fields from the transport header (`@th,<bit offset>,<bits>`): UDP's header is 8
 * octets; on 4500 a 4-octet non-ESP marker (zero) comes first (RFC 3948 §2.2); in the IKE header
 * (RFC 7296 §3.1) the exchange type is octet 18 and the flags octet 19 (Response = 0x20).
 */
import { execFileSync, spawnSync } from 'node:child_process';

export function haveNft(): boolean {
  return spawnSync('nft', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** An nft match for IKE messages of `exchange` on UDP (`port` 500 or 4500, as `dir` port). */
export function ikeMatch(o: {
  readonly port: 500 | 4500;
  readonly dir: 'sport' | 'dport';
  readonly exchange: number;
  readonly response: boolean;
}): string {
  const ike = o.port === 4500 ? 96 : 64; // bit offset of the IKE header in the UDP datagram
  const marker = o.port === 4500 ? ' @th,64,32 0' : '';
  return `udp ${o.dir} ${o.port}${marker} @th,${ike + 18 * 8},8 ${o.exchange} @th,${ike + 19 * 8},8 & 0x20 == ${o.response ? '0x20' : '0'}`;
}

/** Any IKE message (not ESP, not a keepalive) on UDP 4500: the non-ESP marker is zero. */
export function ikeOn4500(dir: 'sport' | 'dport'): string {
  return `udp ${dir} 4500 udp length > 12 @th,64,32 0`;
}

export class NftTable {
  #loaded = false;

  constructor(
    readonly netns: string,
    readonly name: string,
    readonly family: 'inet' | 'netdev' = 'inet',
  ) {}

  /** Loads `body` (sets, counters, chains) as `table <family> <name>`, replacing an earlier one. */
  load(body: string): void {
    this.delete();
    execFileSync('ip', ['netns', 'exec', this.netns, 'nft', '-f', '-'], {
      input: `table ${this.family} ${this.name} {\n${body}\n}\n`,
      encoding: 'utf8',
      timeout: 10_000,
    });
    this.#loaded = true;
  }

  /** Packets counted so far by the named counter `counter`. */
  packets(counter: string): number {
    const out = execFileSync(
      'ip',
      ['netns', 'exec', this.netns, 'nft', '-j', 'list', 'counter', this.family, this.name, counter],
      { encoding: 'utf8', timeout: 10_000 },
    );
    const items = (JSON.parse(out) as { nftables: { counter?: { packets: number } }[] }).nftables;
    const c = items.find((i) => i.counter)?.counter;
    if (!c) throw new Error(`no counter ${counter} in table ${this.family} ${this.name}: ${out}`);
    return c.packets;
  }

  /** Removes the table (nothing if it is not there, or the namespace is gone). */
  delete(): void {
    if (!this.#loaded) return;
    spawnSync('ip', ['netns', 'exec', this.netns, 'nft', 'delete', 'table', this.family, this.name], {
      stdio: 'ignore',
      timeout: 10_000,
    });
    this.#loaded = false;
  }
}
