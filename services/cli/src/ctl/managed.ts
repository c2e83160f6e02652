/**
 * The managed configuration: `ctl peers|peer`, `ctl pools|pool`, `ctl failover`, `ctl config`.
 *
 * Peer files go to the API as written (it validates them field by field, as libs/config validates
 * the config file); a file of several peers is sent one request per peer, each reported, and the
 * exit status is 1 when any was refused. A PSK in a file is scrubbed from everything printed.
 */
import type { ApiAnswer } from './client.js';
import { type Ctx, type CtlCommand, str } from './context.js';
import { readPeerFile } from './documents.js';
import { CtlApiError, CtlInputError, CtlUsageError, EXIT_API, EXIT_OK } from './errors.js';
import { formatProblem, NONE, table } from './output.js';

/** GET /v1/peers items (schemas.ts peerOutput): never a PSK. */
interface Peer {
  readonly name: string;
  readonly id: string;
  readonly auth: { readonly kind: 'psk' | 'psk-file' | 'ca'; readonly file?: string; readonly ca?: string };
  readonly pool: string | null;
  readonly localTs: readonly string[];
  readonly remoteTs: readonly string[];
  readonly proposals?: { readonly esp?: readonly string[] };
  readonly lifetimes?: {
    readonly ikeSeconds?: number;
    readonly childSeconds?: number;
    readonly rekeyMarginSeconds?: number;
  };
  readonly dpd?: { readonly intervalSeconds?: number };
  readonly failover?: { readonly waitSeconds?: number };
}

interface Pool {
  readonly name: string;
  readonly cidr: string;
  readonly dns: readonly string[];
  readonly gateway: string;
  readonly size: number;
  readonly inUse: number;
  readonly peers: readonly string[];
  readonly unreachable?: readonly string[];
}

interface Failover {
  readonly policy: string;
  readonly waitSeconds: number;
  readonly overrides: readonly { readonly peer: string; readonly waitSeconds: number }[];
  readonly version: number;
}

const PAGE_MAX = 1000;
const VERSION_HEADER = 'ikegate-config-version';

export const MANAGED_USAGE = {
  peers: `usage: ikegate ctl peers [--json]

Lists the peers: name, identity, how they authenticate, address pool, remote traffic selectors.
  --json                  print { items, next } (every page)
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  peer: `usage: ikegate ctl peer NAME [--json]
       ikegate ctl peer show NAME [--json]
       ikegate ctl peer add FILE [--replace] [--json]
       ikegate ctl peer set NAME FILE [--json]
       ikegate ctl peer delete NAME [--keep-sas] [--json]

\`peer NAME\` (or \`peer show NAME\`, for a peer named add, set or delete) shows one peer; its PSK is
never shown. FILE is YAML or JSON: one peer document (name, id, auth, pool, localTs, remoteTs,
proposals, lifetimes, dpd, failover, as in the config file's peers:), a list of them, or a config
file's peers: section. Each peer is a request of its own; every refusal is printed.
  add                     create each peer (exists already: refused, unless --replace)
  set                     create or replace the peer NAME with FILE's one document
  delete                  delete the peer; its SAs get a DELETE and give their addresses back
  --replace               add: create or replace (PUT) instead of create only
  --keep-sas              delete: leave its SAs up until they end by themselves
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  pools: `usage: ikegate ctl pools [--json]

Lists the address pools: network, gateway address, size, addresses in use, DNS servers, the peers
that name each.
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  pool: `usage: ikegate ctl pool NAME [--json]
       ikegate ctl pool show NAME [--json]
       ikegate ctl pool add NAME CIDR [--dns A,B] [--json]
       ikegate ctl pool set NAME CIDR [--dns A,B] [--json]
       ikegate ctl pool delete NAME [--json]

\`pool NAME\` shows one pool and its use.
  add                     create a pool (an IPv4 network, /8 to /30)
  set                     create or change a pool; keeps its DNS servers unless --dns is given.
                          Refused, with the SAs holding them, when addresses in use would fall
                          outside the new network
  delete                  delete a pool (refused while a peer names it or an address is held)
  --dns A,B               DNS servers handed out with the addresses (--dns '' for none)
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  failover: `usage: ikegate ctl failover [--json]
       ikegate ctl failover set SECONDS [--json]
       ikegate ctl failover override PEER SECONDS [--json]
       ikegate ctl failover clear PEER [--json]

The wait-for-reconnect policy: how long an SA whose TCP/TLS stream closed is held for its peer to
come back (RFC 9329 §6), cluster-wide and per peer.
  set                     the cluster-wide time, 0 to 3600 seconds
  override                one peer's time instead of the cluster-wide one
  clear                   remove a peer's override (it follows the cluster-wide time)
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  config: `usage: ikegate ctl config [--json]

The managed configuration's version, and the version each member (worker, control) applied: a
change is live everywhere once every member shows it.
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
} as const;

function versionOf(r: ApiAnswer): string {
  const v = r.headers[VERSION_HEADER];
  return typeof v === 'string' ? ` (config version ${v})` : '';
}

function seconds(v: string, what: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
    throw new CtlUsageError(`${what} must be whole seconds, got ${v}`);
  return n;
}

function seg(name: string): string {
  return encodeURIComponent(name);
}

// --- peers ---------------------------------------------------------------------------------------

function authText(a: Peer['auth']): string {
  return a.kind === 'psk-file' ? `psk-file ${a.file ?? ''}` : a.kind === 'ca' ? `ca ${a.ca ?? ''}` : a.kind;
}

async function listPeers(ctx: Ctx): Promise<void> {
  const items: Peer[] = [];
  let cursor: string | null = null;
  do {
    const r = await ctx.api().call('GET', '/v1/peers', {
      query: { limit: PAGE_MAX, ...(cursor !== null ? { cursor } : {}) },
    });
    const page = r.body as { items: Peer[]; next: string | null };
    items.push(...page.items);
    if (page.next !== null && page.next === cursor)
      throw new CtlApiError({ status: r.status, title: 'the API gave the same page twice' });
    cursor = page.next;
  } while (cursor !== null);
  if (ctx.json) {
    ctx.printJson({ items, next: null });
    return;
  }
  if (items.length === 0) {
    ctx.out('no peers\n');
    return;
  }
  ctx.out(
    table(
      ['NAME', 'ID', 'AUTH', 'POOL', 'REMOTE TS'],
      items.map((p) => [p.name, p.id, p.auth.kind, p.pool ?? NONE, p.remoteTs.join(',')]),
    ),
  );
}

function showPeer(ctx: Ctx, p: Peer): void {
  const lt = p.lifetimes;
  const rows: [string, string | undefined][] = [
    ['id', p.id],
    ['auth', authText(p.auth)],
    ['pool', p.pool ?? NONE],
    ['local TS', p.localTs.join(', ')],
    ['remote TS', p.remoteTs.join(', ')],
    ['ESP proposals', p.proposals?.esp?.join(', ')],
    [
      'lifetimes',
      lt &&
        [
          lt.ikeSeconds !== undefined ? `IKE ${lt.ikeSeconds} s` : '',
          lt.childSeconds !== undefined ? `CHILD ${lt.childSeconds} s` : '',
          lt.rekeyMarginSeconds !== undefined ? `rekey margin ${lt.rekeyMarginSeconds} s` : '',
        ]
          .filter(Boolean)
          .join(', '),
    ],
    ['DPD', p.dpd?.intervalSeconds !== undefined ? `${p.dpd.intervalSeconds} s` : undefined],
    ['failover wait', p.failover?.waitSeconds !== undefined ? `${p.failover.waitSeconds} s` : undefined],
  ];
  ctx.out(
    `peer ${p.name}\n${rows
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `  ${k.padEnd(15)}${v}`)
      .join('\n')}\n`,
  );
}

async function getPeer(ctx: Ctx, name: string): Promise<void> {
  const r = await ctx.api().call('GET', `/v1/peers/${seg(name)}`);
  if (ctx.json) ctx.printJson(r.body);
  else showPeer(ctx, r.body as Peer);
}

/**
 * Sends each document of `file`: POST, or PUT to `/v1/peers/<name>` with `replace` (or `setName`,
 * which also requires the file to hold one document). Refusals are printed as they come; the exit
 * status is 1 when any was refused. A connection failure ends the run (exit 3): later documents
 * are not sent.
 */
async function sendPeers(ctx: Ctx, file: string, o: { replace: boolean; setName?: string }): Promise<number> {
  const { documents, secrets } = readPeerFile(file);
  for (const s of secrets) ctx.addSecret(s);
  if (o.setName !== undefined && documents.length !== 1)
    throw new CtlInputError(`${file}: holds ${documents.length} peers; \`peer set\` takes one`);
  const results: unknown[] = [];
  let refused = 0;
  for (const d of documents) {
    const name = o.setName ?? d.name;
    const label = `peer ${name ?? '(no name)'}${documents.length > 1 ? ` (${d.where})` : ''}`;
    if ((o.replace || o.setName !== undefined) && name === undefined)
      throw new CtlInputError(`${d.where}: a peer needs a name to be replaced`);
    try {
      const r =
        o.replace || o.setName !== undefined
          ? await ctx.api().call('PUT', `/v1/peers/${seg(name!)}`, { body: d.value })
          : await ctx.api().call('POST', '/v1/peers', { body: d.value });
      results.push(r.body);
      if (!ctx.json)
        ctx.out(`peer ${(r.body as Peer).name}: ${r.status === 201 ? 'added' : 'replaced'}${versionOf(r)}\n`);
    } catch (e) {
      if (!(e instanceof CtlApiError)) throw e;
      refused++;
      ctx.err(formatProblem(e.problem, { label, credentials: ctx.credentials() }));
    }
  }
  if (ctx.json && results.length > 0) ctx.printJson(documents.length === 1 ? results[0] : results);
  if (documents.length > 1 && refused > 0)
    ctx.err(`${refused} of ${documents.length} peers refused; the others were applied\n`);
  return refused > 0 ? EXIT_API : EXIT_OK;
}

async function deletePeer(ctx: Ctx, name: string, keepSas: boolean): Promise<void> {
  const r = await ctx.api().call('DELETE', `/v1/peers/${seg(name)}`, {
    ...(keepSas ? { query: { keepSas: true } } : {}),
  });
  if (ctx.json) {
    ctx.printJson(r.body);
    return;
  }
  const v = r.body as { version: number };
  ctx.out(
    `peer ${name}: deleted; ${keepSas ? 'its SAs stay up until they end' : 'its SAs are sent a DELETE'} (config version ${v.version})\n`,
  );
}

// --- pools ---------------------------------------------------------------------------------------

function warnUnreachable(ctx: Ctx, workers: readonly string[] | undefined): void {
  if (workers && workers.length > 0)
    ctx.err(`warning: workers ${workers.join(', ')} did not answer: addresses in use may be more\n`);
}

function poolLine(p: Pool): string {
  return `pool ${p.name}: ${p.cidr}, ${p.inUse} of ${p.size} addresses in use`;
}

async function listPools(ctx: Ctx): Promise<void> {
  const r = await ctx.api().call('GET', '/v1/pools');
  const items = (r.body as { items: Pool[] }).items;
  for (const p of items) warnUnreachable(ctx, p.unreachable);
  if (ctx.json) {
    ctx.printJson(r.body);
    return;
  }
  if (items.length === 0) {
    ctx.out('no pools\n');
    return;
  }
  ctx.out(
    table(
      ['NAME', 'CIDR', 'GATEWAY', 'SIZE', 'IN USE', 'DNS', 'PEERS'],
      items.map((p) => [
        p.name,
        p.cidr,
        p.gateway,
        String(p.size),
        String(p.inUse),
        p.dns.join(',') || NONE,
        p.peers.join(',') || NONE,
      ]),
    ),
  );
}

function showPool(ctx: Ctx, p: Pool): void {
  ctx.out(
    `pool ${p.name}\n` +
      [
        ['network', p.cidr],
        ['gateway', `${p.gateway} (ours, never handed out)`],
        ['in use', `${p.inUse} of ${p.size}`],
        ['DNS', p.dns.join(', ') || NONE],
        ['peers', p.peers.join(', ') || NONE],
      ]
        .map(([k, v]) => `  ${k!.padEnd(10)}${v}`)
        .join('\n') +
      '\n',
  );
}

function dnsList(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

async function putPool(ctx: Ctx, how: 'add' | 'set', name: string, cidr: string, dns: string | undefined) {
  let servers = dns === undefined ? undefined : dnsList(dns);
  let r: ApiAnswer;
  if (how === 'add') {
    r = await ctx.api().call('POST', '/v1/pools', {
      body: { name, cidr, ...(servers ? { dns: servers } : {}) },
    });
  } else {
    // PUT replaces the whole pool: without --dns, keep the servers it has.
    if (servers === undefined) {
      try {
        const now = await ctx.api().call('GET', `/v1/pools/${seg(name)}`);
        servers = [...(now.body as Pool).dns];
      } catch (e) {
        if (!(e instanceof CtlApiError) || e.problem.status !== 404) throw e;
      }
    }
    r = await ctx.api().call('PUT', `/v1/pools/${seg(name)}`, {
      body: { cidr, ...(servers && servers.length > 0 ? { dns: servers } : {}) },
    });
  }
  const p = r.body as Pool;
  warnUnreachable(ctx, p.unreachable);
  if (ctx.json) ctx.printJson(p);
  else ctx.out(`${poolLine(p)}${r.status === 201 ? ' (created)' : ''}${versionOf(r)}\n`);
}

// --- failover ------------------------------------------------------------------------------------

function showFailover(ctx: Ctx, r: ApiAnswer): void {
  if (ctx.json) {
    ctx.printJson(r.body);
    return;
  }
  const f = r.body as Failover;
  ctx.out(`policy ${f.policy}: hold an SA ${f.waitSeconds} s for its peer to reconnect\n`);
  if (f.overrides.length === 0) ctx.out('no per-peer overrides\n');
  else
    ctx.out(
      `overrides:\n${table(
        ['PEER', 'WAIT'],
        f.overrides.map((o) => [o.peer, `${o.waitSeconds} s`]),
        '  ',
      )}`,
    );
  ctx.out(`config version ${f.version}\n`);
}

// --- config --------------------------------------------------------------------------------------

async function configStatus(ctx: Ctx): Promise<void> {
  const r = await ctx.api().call('GET', '/v1/config');
  if (ctx.json) {
    ctx.printJson(r.body);
    return;
  }
  const c = r.body as {
    version: number;
    members: { id: string; kind: string; version?: number }[];
  };
  ctx.out(`configuration version ${c.version}\n`);
  if (c.members.length === 0) {
    ctx.out('no members\n');
    return;
  }
  ctx.out(
    table(
      ['MEMBER', 'KIND', 'APPLIED', 'STATUS'],
      c.members.map((m) => [
        m.id,
        m.kind,
        m.version === undefined ? NONE : String(m.version),
        m.version === undefined ? 'unknown' : m.version >= c.version ? 'current' : 'behind',
      ]),
    ),
  );
}

export const MANAGED_COMMANDS: readonly CtlCommand[] = [
  { words: ['peers'], args: [], run: (ctx) => listPeers(ctx) },
  { words: ['peer'], args: ['NAME'], run: (ctx, [name]) => getPeer(ctx, name!) },
  { words: ['peer', 'show'], args: ['NAME'], run: (ctx, [name]) => getPeer(ctx, name!) },
  {
    words: ['peer', 'add'],
    args: ['FILE'],
    options: ['replace'],
    run: (ctx, [file], v) => sendPeers(ctx, file!, { replace: v.replace === true }),
  },
  {
    words: ['peer', 'set'],
    args: ['NAME', 'FILE'],
    run: (ctx, [name, file]) => sendPeers(ctx, file!, { replace: true, setName: name! }),
  },
  {
    words: ['peer', 'delete'],
    args: ['NAME'],
    options: ['keep-sas'],
    run: (ctx, [name], v) => deletePeer(ctx, name!, v['keep-sas'] === true),
  },
  { words: ['pools'], args: [], run: (ctx) => listPools(ctx) },
  {
    words: ['pool'],
    args: ['NAME'],
    async run(ctx, [name]) {
      const r = await ctx.api().call('GET', `/v1/pools/${seg(name!)}`);
      if (ctx.json) ctx.printJson(r.body);
      else showPool(ctx, r.body as Pool);
    },
  },
  {
    words: ['pool', 'show'],
    args: ['NAME'],
    async run(ctx, [name]) {
      const r = await ctx.api().call('GET', `/v1/pools/${seg(name!)}`);
      if (ctx.json) ctx.printJson(r.body);
      else showPool(ctx, r.body as Pool);
    },
  },
  ...(['add', 'set'] as const).map((how): CtlCommand => ({
    words: ['pool', how],
    args: ['NAME', 'CIDR'],
    options: ['dns'],
    run: (ctx, [name, cidr], v) => putPool(ctx, how, name!, cidr!, str(v, 'dns')),
  })),
  {
    words: ['pool', 'delete'],
    args: ['NAME'],
    async run(ctx, [name]) {
      const r = await ctx.api().call('DELETE', `/v1/pools/${seg(name!)}`);
      if (!ctx.json) ctx.out(`pool ${name}: deleted${versionOf(r)}\n`);
    },
  },
  {
    words: ['failover'],
    args: [],
    run: async (ctx) => showFailover(ctx, await ctx.api().call('GET', '/v1/policies/failover')),
  },
  {
    words: ['failover', 'set'],
    args: ['SECONDS'],
    run: async (ctx, [s]) =>
      showFailover(
        ctx,
        await ctx
          .api()
          .call('PUT', '/v1/policies/failover', { body: { waitSeconds: seconds(s!, 'SECONDS') } }),
      ),
  },
  {
    words: ['failover', 'override'],
    args: ['PEER', 'SECONDS'],
    run: async (ctx, [peer, s]) =>
      showFailover(
        ctx,
        await ctx.api().call('PUT', `/v1/policies/failover/overrides/${seg(peer!)}`, {
          body: { waitSeconds: seconds(s!, 'SECONDS') },
        }),
      ),
  },
  {
    words: ['failover', 'clear'],
    args: ['PEER'],
    run: async (ctx, [peer]) =>
      showFailover(ctx, await ctx.api().call('DELETE', `/v1/policies/failover/overrides/${seg(peer!)}`)),
  },
  { words: ['config'], args: [], run: (ctx) => configStatus(ctx) },
];
