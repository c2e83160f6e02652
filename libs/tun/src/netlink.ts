/**
 * Interface, route, forwarding and NAT setup by running `ip` and `nft` (iproute2 / nftables) with
 * execFile and argument arrays; nothing goes through a shell. Every function takes an optional
 * `netns`, which runs the command as `ip netns exec <netns> <command> ...` (tests use it to stay inside
 * a namespace of their own). Failures reject with NetlinkCommandError naming the command and its stderr.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';

export class NetlinkCommandError extends Error {
  override readonly name = 'NetlinkCommandError';
  constructor(
    /** The full argv that failed, e.g. ['ip', 'addr', 'add', '10.0.0.1/24', 'dev', 'tun0']. */
    readonly argv: readonly string[],
    readonly stderr: string,
    /** Exit code, or undefined when the command could not be started or died of a signal. */
    readonly exitCode: number | undefined,
    cause?: unknown,
  ) {
    const how = exitCode === undefined ? 'failed' : `failed (exit ${exitCode})`;
    super(`\`${argv.join(' ')}\` ${how}: ${stderr.trim() || String((cause as Error)?.message ?? '')}`, {
      cause,
    });
  }
}

export interface NetnsOption {
  /** Run inside this network namespace (`ip netns exec <netns> ...`). */
  netns?: string;
}

const TIMEOUT_MS = 15_000;

/** Runs argv[0] with argv[1..] (inside `netns` if given), optionally feeding `input` on stdin. */
export function run(argv: readonly string[], opts: NetnsOption & { input?: string } = {}): Promise<string> {
  const full = opts.netns === undefined ? [...argv] : ['ip', 'netns', 'exec', opts.netns, ...argv];
  const [file, ...args] = full as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: TIMEOUT_MS, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof err.code === 'number' ? err.code : undefined;
        const why = typeof err.code === 'string' ? `${err.code} ${stderr}` : stderr;
        reject(new NetlinkCommandError(full, why, code, err));
        return;
      }
      resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

export interface InterfaceConfig extends NetnsOption {
  /** Address with prefix length, e.g. '10.10.0.1/24'. */
  address: string;
  mtu: number;
}

/** `ip addr add <address> dev <name>`, `ip link set dev <name> mtu <mtu>`, `ip link set dev <name> up`. */
export async function configure(name: string, cfg: InterfaceConfig): Promise<void> {
  const o = { netns: cfg.netns };
  await run(['ip', 'addr', 'add', cfg.address, 'dev', name], o);
  await run(['ip', 'link', 'set', 'dev', name, 'mtu', String(cfg.mtu)], o);
  await run(['ip', 'link', 'set', 'dev', name, 'up'], o);
}

/** `ip route replace <cidr> dev <dev>` (replace: re-running is not an error). */
export async function addRoute(cidr: string, dev: string, opts: NetnsOption = {}): Promise<void> {
  await run(['ip', 'route', 'replace', cidr, 'dev', dev], opts);
}

/** `ip route del <cidr> dev <dev>`. */
export async function removeRoute(cidr: string, dev: string, opts: NetnsOption = {}): Promise<void> {
  await run(['ip', 'route', 'del', cidr, 'dev', dev], opts);
}

/** `ip link del dev <name>`; also wakes a TunDevice read blocked on a closed device. */
export async function deleteLink(name: string, opts: NetnsOption = {}): Promise<void> {
  await run(['ip', 'link', 'del', 'dev', name], opts);
}

/**
 * Writes 1 to /proc/sys/net/ipv4/ip_forward (inside `netns`: through `ip netns exec <ns> tee`).
 * Does not write when it already reads 1: a container's /proc/sys is read-only (runc, Kubernetes),
 * and there the pod sets the sysctl (securityContext.sysctls) instead.
 */
export async function enableForwarding(opts: NetnsOption = {}): Promise<void> {
  const path = '/proc/sys/net/ipv4/ip_forward';
  if (opts.netns === undefined) {
    if ((await readFile(path, 'utf8').catch(() => '')).trim() === '1') return;
    try {
      await writeFile(path, '1\n');
    } catch (err) {
      throw new NetlinkCommandError([`write ${path}`], (err as Error).message, undefined, err);
    }
    return;
  }
  await run(['tee', path], { netns: opts.netns, input: '1\n' });
}

export interface MasqueradeConfig extends NetnsOption {
  /** nftables table name (family ip). Default 'ikegate'. */
  table?: string;
  /** Source addresses to masquerade, e.g. the client pool '10.10.0.0/24'. */
  sourceCidr: string;
  /** Only masquerade packets leaving through this interface. */
  outInterface?: string;
}

const TABLE_RE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
const IFNAME_RE = /^[A-Za-z0-9_.@-]{1,15}$/;

function checkTable(table: string): void {
  if (!TABLE_RE.test(table)) throw new RangeError(`bad nftables table name ${JSON.stringify(table)}`);
}

function checkCidr(cidr: string): void {
  const [ip, len, ...rest] = cidr.split('/');
  const n = Number(len);
  if (rest.length > 0 || !ip || !isIPv4(ip) || !/^\d{1,2}$/.test(len ?? '') || n > 32) {
    throw new RangeError(`bad IPv4 CIDR ${JSON.stringify(cidr)}`);
  }
}

/**
 * Creates (or recreates) `table ip <table>` with a `postrouting` nat chain holding one rule:
 * `ip saddr <sourceCidr> [oifname <outInterface>] masquerade`. Applied as one atomic `nft -f -`
 * transaction that first deletes any existing table of that name, so calling it again is harmless.
 * Inputs are validated before they reach the nft script (table name, IPv4 CIDR, interface name).
 */
export async function ensureMasquerade(cfg: MasqueradeConfig): Promise<void> {
  const table = cfg.table ?? 'ikegate';
  checkTable(table);
  checkCidr(cfg.sourceCidr);
  if (cfg.outInterface !== undefined && !IFNAME_RE.test(cfg.outInterface)) {
    throw new RangeError(`bad interface name ${JSON.stringify(cfg.outInterface)}`);
  }
  const oif = cfg.outInterface === undefined ? '' : ` oifname "${cfg.outInterface}"`;
  const script = [
    `table ip ${table}`,
    `delete table ip ${table}`,
    `table ip ${table} {`,
    `  chain postrouting {`,
    `    type nat hook postrouting priority 100; policy accept;`,
    `    ip saddr ${cfg.sourceCidr}${oif} masquerade`,
    `  }`,
    `}`,
    '',
  ].join('\n');
  await run(['nft', '-f', '-'], { netns: cfg.netns, input: script });
}

/** Deletes `table ip <table>`; a table that is not there is not an error. */
export async function removeMasquerade(table = 'ikegate', opts: NetnsOption = {}): Promise<void> {
  checkTable(table);
  await run(['nft', '-f', '-'], {
    netns: opts.netns,
    input: `table ip ${table}\ndelete table ip ${table}\n`,
  });
}
