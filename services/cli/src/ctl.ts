/**
 * `ikegate ctl`: the control REST API from the command line, like strongSwan's swanctl. Tables
 * for people, `--json` for scripts, problem documents printed readably on stderr.
 *
 * How this works: the whole argument list is parsed once against every option any command takes;
 * the leading positional words pick a command from the table (ctl/sas.ts, ctl/managed.ts,
 * ctl/cluster.ts, ctl/token.ts: the longest match of words wins, so `peer add F` is the add command
 * and `peer show add` shows a peer named add); then the options given are checked against that
 * command's. `--help` anywhere prints the usage of the command group named (`ikegate ctl sa --help`)
 * or of ctl itself. The run resolves to the exit status:
 *
 *   0 done   1 the API refused or failed (4xx/5xx)   2 usage, or an unreadable input file
 *   3 the API cannot be reached, or did not answer within --timeout
 *
 * Credentials: a bearer token from --token-file, $IKEGATE_TOKEN or $IKEGATE_TOKEN_FILE (never a
 * flag: argv is visible in ps), and/or a client certificate (--cert/--key). A token is printed only
 * by `token new`; a PSK read from a file is scrubbed from everything printed.
 */
import { parseArgs } from 'node:util';
import { ApiClient, connection } from './ctl/client.js';
import { CLUSTER_COMMANDS, CLUSTER_USAGE } from './ctl/cluster.js';
import { type Ctx, type CtlCommand, type CtlIo, str, type Values } from './ctl/context.js';
import {
  CtlApiError,
  CtlConnectError,
  CtlInputError,
  CtlUsageError,
  EXIT_API,
  EXIT_CONNECT,
  EXIT_OK,
  EXIT_USAGE,
} from './ctl/errors.js';
import { MANAGED_COMMANDS, MANAGED_USAGE } from './ctl/managed.js';
import { formatProblem, redact } from './ctl/output.js';
import { SA_COMMANDS, SAS_USAGE } from './ctl/sas.js';
import { TOKEN_COMMANDS, TOKEN_USAGE } from './ctl/token.js';

export type { CtlIo } from './ctl/context.js';

export const CTL_USAGE = `usage: ikegate ctl <command> [options]

The control API from the command line, like strongSwan's swanctl. \`ikegate ctl <command> --help\`
prints a command's usage and options. Tables by default; --json prints the API's JSON.

commands:
  sas [--peer NAME] [--identity ID] [--worker W] [--edge E] [--state S] [--transport T] [--vip A] [--limit N]
                                    the IKE SAs (every page), with counts by state
  sa SPI                            one IKE SA in detail
  sa delete|rekey|liveness SPI [--ike]
                                    delete it; rekey its CHILD SAs (--ike: the IKE SA); is the peer alive
  peers                             the peers
  peer NAME                         one peer (never its PSK)
  peer add FILE [--replace]         create the peers of a YAML or JSON file (--replace: or replace)
  peer set NAME FILE                create or replace one peer
  peer delete NAME [--keep-sas]     delete a peer; its SAs get a DELETE unless --keep-sas
  pools                             the address pools and their use
  pool add|set NAME CIDR [--dns A,B]
                                    create a pool; change one (refused while that cuts off addresses)
  pool delete NAME                  delete a pool
  failover                          the wait-for-reconnect policy and its per-peer overrides
  failover set SECONDS | failover override PEER SECONDS | failover clear PEER
  workers | edges | config          the members; the configuration version each applied
  shards [--owner W] [--unowned]    the shard leases
  drain worker ID | undrain worker ID | drain edge ID [--grace SECONDS]
  token new --name NAME --role viewer|operator|admin
                                    a new API token, offline: the token on stdout, the access-file
                                    line on stderr

connection (every command but token new):
  --url URL               the control API (default $IKEGATE_URL, else http://127.0.0.1:8080)
  --token-file FILE       the file holding the bearer token; else $IKEGATE_TOKEN, else the file
                          $IKEGATE_TOKEN_FILE names (a token is never taken on the command line)
  --ca FILE               https: the CA certificates (PEM) the server's certificate must chain to
  --cert FILE             https: a client certificate (PEM) for mutual TLS, with --key
  --key FILE              https: its private key (PEM)
  --timeout SECONDS       for each request (default 10)
  --json                  print the API's JSON instead of tables
  -h, --help              show this text

exit status: 0 done; 1 the API refused or failed (its problem is printed on stderr); 2 usage, or
a file that cannot be read; 3 the API cannot be reached or did not answer in time.
`;

const CONNECTION_OPTIONS = ['url', 'token-file', 'ca', 'cert', 'key', 'timeout'] as const;

/** Every option of every command; each command then allows its own (CtlCommand.options). */
const OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  ca: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  peer: { type: 'string' },
  identity: { type: 'string' },
  worker: { type: 'string' },
  edge: { type: 'string' },
  state: { type: 'string' },
  transport: { type: 'string' },
  vip: { type: 'string' },
  limit: { type: 'string' },
  ike: { type: 'boolean' },
  replace: { type: 'boolean' },
  'keep-sas': { type: 'boolean' },
  dns: { type: 'string' },
  owner: { type: 'string' },
  unowned: { type: 'boolean' },
  grace: { type: 'string' },
  name: { type: 'string' },
  role: { type: 'string' },
} as const;

const COMMANDS: readonly CtlCommand[] = [
  ...SA_COMMANDS,
  ...MANAGED_COMMANDS,
  ...CLUSTER_COMMANDS,
  ...TOKEN_COMMANDS,
];

/** Each command group's usage, by the first word. */
const GROUP_USAGE: Readonly<Record<string, string>> = {
  ...SAS_USAGE,
  ...MANAGED_USAGE,
  ...CLUSTER_USAGE,
  ...TOKEN_USAGE,
};

function usageOf(group: string | undefined): string {
  const u = group !== undefined && Object.hasOwn(GROUP_USAGE, group) ? GROUP_USAGE[group]! : CTL_USAGE;
  return `${u.trimEnd()}\n`;
}

/** The command the positionals name (longest word match) and its arguments. */
function pick(positionals: readonly string[]): { command: CtlCommand; args: string[] } {
  let best: CtlCommand | undefined;
  for (const c of COMMANDS)
    if (c.words.every((w, i) => positionals[i] === w) && (!best || c.words.length > best.words.length))
      best = c;
  const group = positionals[0]!;
  if (!best) {
    if (Object.hasOwn(GROUP_USAGE, group))
      throw new CtlUsageError(`no such command: ${positionals.join(' ')}`);
    throw new CtlUsageError(`unknown command ${group}`);
  }
  const args = positionals.slice(best.words.length);
  if (args.length !== best.args.length) {
    const want = best.args.length === 0 ? 'no arguments' : best.args.join(' ');
    throw new CtlUsageError(`\`ctl ${best.words.join(' ')}\` takes ${want} (got ${args.length} arguments)`);
  }
  return { command: best, args };
}

function checkOptions(command: CtlCommand, values: Values): void {
  const allowed = new Set<string>([
    'help',
    ...(command.offline ? [] : [...CONNECTION_OPTIONS, 'json']),
    ...(command.options ?? []),
  ]);
  for (const [k, v] of Object.entries(values))
    if (v !== undefined && !allowed.has(k))
      throw new CtlUsageError(`\`ctl ${command.words.join(' ')}\` does not take --${k}`);
}

function processIo(): CtlIo {
  // `ikegate ctl sas | head`: the reader leaving is not an error of ours.
  process.stdout.once('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_OK);
    throw e;
  });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/**
 * Runs `ikegate ctl <argv>`; resolves with the exit status. Throws only for a bug: the API's
 * refusals, usage errors and connection failures are printed on `io.stderr` and become 1, 2, 3.
 */
export async function ctlMain(argv: readonly string[], io: CtlIo = processIo()): Promise<number> {
  const secrets: string[] = [];
  const out = (t: string) => void io.stdout.write(secrets.length > 0 ? redact(t, secrets) : t);
  const err = (t: string) => void io.stderr.write(secrets.length > 0 ? redact(t, secrets) : t);
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  let group: string | undefined;
  let client: ApiClient | undefined;
  let credentials = 'no credentials';
  try {
    let parsed;
    try {
      // With --help, an unknown option must not stop the help from printing.
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: !wantsHelp });
    } catch (e) {
      // parseArgs explains `--` after the first sentence; ctl takes no positional starting with -.
      throw new CtlUsageError((e as Error).message.split('. ')[0]!);
    }
    const { values, positionals } = parsed as { values: Values; positionals: string[] };
    group = positionals[0];
    if (wantsHelp || group === undefined) {
      io.stdout.write(usageOf(group));
      return EXIT_OK;
    }
    const { command, args } = pick(positionals);
    checkOptions(command, values);
    const flags = {
      url: str(values, 'url'),
      'token-file': str(values, 'token-file'),
      ca: str(values, 'ca'),
      cert: str(values, 'cert'),
      key: str(values, 'key'),
      timeout: str(values, 'timeout'),
    };
    const ctx: Ctx = {
      json: values.json === true,
      out,
      err,
      printJson: (v) => out(`${JSON.stringify(v, null, 2)}\n`),
      api() {
        if (!client) {
          const c = connection(flags, io.env, (line) => err(`ikegate ctl: ${line}\n`));
          if (c.token) secrets.push(c.token.token);
          credentials = c.credentials;
          client = new ApiClient(c);
        }
        return client;
      },
      credentials: () => credentials,
      addSecret: (s) => void secrets.push(s),
      now: io.now ?? Date.now,
    };
    return (await command.run(ctx, args, values)) ?? EXIT_OK;
  } catch (e) {
    if (e instanceof CtlUsageError) {
      err(`ikegate ctl: ${e.message}\n\n${usageOf(group)}`);
      return EXIT_USAGE;
    }
    if (e instanceof CtlInputError) {
      err(`ikegate ctl: ${e.message}\n`);
      return EXIT_USAGE;
    }
    if (e instanceof CtlApiError) {
      err(formatProblem(e.problem, { credentials }));
      return EXIT_API;
    }
    if (e instanceof CtlConnectError) {
      err(`ikegate ctl: ${e.message}\n`);
      return EXIT_CONNECT;
    }
    throw e;
  } finally {
    client?.close();
  }
}
