/**
 * `ikegate <command> --help` (and `-h`, and `ikegate help <command>`) prints that command's usage
 * with every option its parser accepts, on stdout, and exits 0; `ikegate --help` lists every
 * command. Run as users run it: the real `bin/ikegate.mjs` in a child process.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const IKEGATE_BIN = fileURLToPath(new URL('../bin/ikegate.mjs', import.meta.url));

/** Every command and the options its parser accepts (what its --help must name, and nothing else). */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  up: ['--config', '--no-tun', '--tls-keylog'],
  connect: [
    '--server',
    '--id',
    '--remote-id',
    '--psk',
    '--psk-file',
    '--transport',
    '--ts',
    '--ike',
    '--esp',
    '--tun',
    '--no-tun',
    '--no-vip',
    '--ca',
    '--insecure',
    '--keylog',
    '--dpd',
    '--alternate',
    '--udp-fallback',
    '--port-ike',
    '--port-natt',
    '--port-tcp',
    '--port-tls',
    '--metrics',
    '--log-level',
  ],
  edge: [
    '--config',
    '--id',
    '--admin',
    '--address',
    '--udp-ike',
    '--udp-natt',
    '--tcp',
    '--tls',
    '--relay-cert',
    '--relay-key',
  ],
  worker: ['--config', '--id', '--relay', '--admin', '--tun', '--relay-cert', '--relay-key'],
  control: ['--config'],
  ctl: [
    '--url',
    '--token-file',
    '--ca',
    '--cert',
    '--key',
    '--timeout',
    '--json',
    '--peer',
    '--identity',
    '--worker',
    '--edge',
    '--state',
    '--transport',
    '--vip',
    '--limit',
    '--ike',
    '--replace',
    '--keep-sas',
    '--dns',
    '--owner',
    '--unowned',
    '--grace',
    '--name',
    '--role',
  ],
  loadgen: [
    '--server',
    '--remote-id',
    '--psk',
    '--psk-file',
    '--count',
    '--concurrency',
    '--processes',
    '--rate',
    '--transport',
    '--id',
    '--ts',
    '--ike',
    '--esp',
    '--ca',
    '--insecure',
    '--timeout',
    '--udp-sockets',
    '--hold',
    '--delete-at-end',
    '--json',
    '--no-vip',
    '--quiet',
    '--port-ike',
    '--port-natt',
    '--port-tcp',
    '--port-tls',
    '--log-level',
  ],
  drill: [
    '--local',
    '--workers',
    '--edges',
    '--lease-ttl',
    '--control',
    '--token-file',
    '--edge',
    '--psk-file',
    '--id',
    '--remote-id',
    '--peers',
    '--transport',
    '--probe-interval',
    '--before',
    '--after',
    '--stop-for',
    '--max-p99',
    '--max-lost',
    '--max-reauths',
    '--json',
    '--html',
    '--quiet',
  ],
  'tcp-shim': [
    '--listen',
    '--ike-port',
    '--natt-port',
    '--upstream',
    '--tls',
    '--insecure',
    '--ca',
    '--servername',
    '--keylog',
    '--connect-timeout',
    '--max-queued-bytes',
  ],
  version: [],
  help: [],
};

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function ikegate(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [IKEGATE_BIN, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The long options a help text names, without --help itself. */
function optionsNamed(text: string): string[] {
  const found = new Set(text.match(/--[a-z][a-z0-9-]*/g) ?? []);
  found.delete('--help');
  return [...found].sort();
}

const commands = Object.keys(COMMAND_OPTIONS);

describe('ikegate <command> --help', () => {
  for (const command of commands) {
    test(`\`ikegate ${command} --help\` and \`-h\` print its usage naming every option it accepts, exit 0`, async () => {
      const [long, short] = await Promise.all([ikegate(command, '--help'), ikegate(command, '-h')]);
      for (const [flag, r] of [
        ['--help', long],
        ['-h', short],
      ] as const) {
        assert.equal(r.code, 0, `${command} ${flag}: stderr ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^usage: ikegate ${command}\\b`), `${command} ${flag}`);
        assert.equal(r.stderr, '', `${command} ${flag}`);
      }
      assert.equal(short.stdout, long.stdout, `${command}: -h and --help print the same`);
      assert.deepEqual(optionsNamed(long.stdout), [...COMMAND_OPTIONS[command]!].sort());
    });
  }

  test('`ikegate help <command>` prints the same usage as `ikegate <command> --help`', async () => {
    const runs = await Promise.all(
      commands.map((c) => Promise.all([ikegate('help', c), ikegate(c, '--help')])),
    );
    runs.forEach(([viaHelp, viaFlag], i) => {
      assert.equal(viaHelp.code, 0, commands[i]);
      assert.equal(viaHelp.stdout, viaFlag.stdout, commands[i]);
    });
  });

  test('--help wins over other arguments, even ones that would be a usage error', async () => {
    const r = await ikegate('edge', '--no-such-option', '--help');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^usage: ikegate edge\b/);
  });
});

describe('ikegate --help', () => {
  test('`ikegate --help`, `-h`, `help` and no arguments list every command with a summary, exit 0', async () => {
    const runs = await Promise.all([ikegate('--help'), ikegate('-h'), ikegate('help'), ikegate()]);
    for (const r of runs) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, runs[0]!.stdout);
    }
    const text = runs[0]!.stdout;
    assert.match(text, /^usage: ikegate <command> \[options\]/);
    for (const c of commands) assert.match(text, new RegExp(`^  ${c} +\\S`, 'm'), c);
    assert.match(text, /ikegate <command> --help/);
  });

  test("a command's usage error prints that command's usage on stderr and exits 2", async () => {
    for (const [command, args] of [
      ['up', ['--bogus']],
      ['worker', ['--bogus']],
      ['tcp-shim', ['--bogus']],
      ['ctl', ['--bogus']],
      ['drill', ['kill-worker', '--bogus']],
    ] as const) {
      const r = await ikegate(command, ...args);
      assert.equal(r.code, 2, `${command}: ${r.stderr}`);
      assert.match(r.stderr, /bogus/);
      assert.match(r.stderr, new RegExp(`^usage: ikegate ${command}\\b`, 'm'), command);
    }
  });

  test('an unknown command exits 2 and lists the commands', async () => {
    for (const args of [['no-such-command'], ['help', 'no-such-command']]) {
      const r = await ikegate(...args);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown command no-such-command/);
      assert.match(r.stderr, /^usage: ikegate <command>/m);
    }
  });
});
