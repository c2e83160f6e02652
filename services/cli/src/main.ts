/**
 * The `ikegate` command.
 *
 *   ikegate up [--config FILE] [--no-tun] [--tls-keylog FILE]   all roles in one process
 *   ikegate tcp-shim --listen ADDR --upstream HOST[:PORT] ...    RFC 9329 TCP in front of a UDP-only IKE daemon
 *   ikegate version
 */
import { ConfigError } from '@ikegate/config';
import { runTcpShim } from '@ikegate/tcp-shim';
import { TunUnavailableError } from '@ikegate/tun';
import { up } from './up.js';

const USAGE = `usage: ikegate <command> [options]

commands:
  up          run edge, worker and control in one process
              --config FILE      configuration (default: ikegate.yaml, see docs/ikegate.example.yaml)
              --no-tun           control plane only: no TUN device, no root needed
              --tls-keylog FILE  write TLS secrets (NSS key log) for decrypting captures
  tcp-shim    carry a UDP-only IKE daemon's traffic over RFC 9329 TCP (ikegate tcp-shim --help)
  version     print the version
`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return v;
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up': {
      const known = new Set(['--config', '--no-tun', '--tls-keylog']);
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i]!;
        if (!known.has(a)) throw new UsageError(`unknown option ${a}`);
        if (a !== '--no-tun') i++;
      }
      const tlsKeylog = flag(rest, '--tls-keylog');
      const running = await up({
        configPath: flag(rest, '--config') ?? 'ikegate.yaml',
        noTun: rest.includes('--no-tun'),
        ...(tlsKeylog ? { tlsKeylog } : {}),
      });
      if (!running) return -1; // the launcher of a re-executed child: its exit code follows
      for (const sig of ['SIGINT', 'SIGTERM'] as const)
        process.once(sig, () => {
          void running.stop().then(() => process.exit(0));
        });
      return -1;
    }
    case 'tcp-shim': {
      const ac = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
      const shim = await runTcpShim(rest, { signal: ac.signal });
      return shim ? -1 : 0;
    }
    case 'version':
    case '--version':
      process.stdout.write('ikegate 0.1.0\n');
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      process.stderr.write(`ikegate: ${e.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (e instanceof ConfigError || e instanceof TunUnavailableError) {
      process.stderr.write(`ikegate: ${e.message}\n`);
      process.exit(e instanceof ConfigError ? 3 : 4);
    }
    process.stderr.write(`ikegate: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
