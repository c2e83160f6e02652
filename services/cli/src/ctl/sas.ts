/**
 * `ctl sas` (every IKE SA matching some filters, following `next` until the last page),
 * `ctl sa SPI` (one in detail) and `ctl sa delete|rekey|liveness SPI`.
 */
import type { SaSummary } from '@ikegate/worker';
import { type Ctx, type CtlCommand, str } from './context.js';
import { CtlApiError, CtlUsageError } from './errors.js';
import { ago, bytes, NONE, table, when } from './output.js';

/** GET /v1/sas items, as the API sends them (its schema is built from this type). */
type Sa = SaSummary;

interface SaPage {
  readonly items: Sa[];
  readonly next: string | null;
  readonly counts: Record<string, number>;
  readonly unreachable: string[];
}

/** The API's maximum page. */
const PAGE_MAX = 1000;
const SPI = /^[0-9a-fA-F]{16}$/;

/** Option name -> query parameter of GET /v1/sas. */
const FILTERS = {
  peer: 'peer',
  identity: 'identity',
  worker: 'worker',
  edge: 'edge',
  state: 'state',
  transport: 'transport',
  vip: 'virtualIp',
} as const;

export const SAS_USAGE = {
  sas: `usage: ikegate ctl sas [--peer NAME] [--identity ID] [--worker W] [--edge E] [--state S] [--transport T] [--vip A] [--limit N] [--json]

Lists IKE SAs in SPI order: SPI, peer, identity, state, transport, remote address, virtual IP,
worker, CHILD SAs, bytes in and out, when established; then the counts by state of every SA the
filters match (any state). Follows the API's pages until the last, or until --limit SAs.
  --peer NAME             the configured peer's name
  --identity ID           the authenticated identity: exact, or *suffix
  --worker W              the worker holding it (\`ikegate up\`: local)
  --edge E                the edge its peer is reached through
  --state S               idle, init-sent, init-answered, auth-sent, established, deleted
  --transport T           udp, tcp or tls
  --vip A                 the virtual IP it was given
  --limit N               at most N SAs
  --json                  print { items, next, counts, unreachable } (next: where --limit stopped)
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  sa: `usage: ikegate ctl sa SPI [--json]
       ikegate ctl sa delete|rekey|liveness SPI [--ike] [--json]

\`sa SPI\` shows one IKE SA (our SPI, 16 hex digits): peer, identity, paths, owner worker, shard and
epoch, times, and each CHILD SA's SPIs and traffic.
  delete                  an INFORMATIONAL DELETE to the peer (RFC 7296 §1.4.1)
  rekey                   rekey its CHILD SAs; with --ike the IKE SA itself (RFC 7296 §1.3)
  liveness                an empty INFORMATIONAL: is the peer alive (RFC 7296 §1.4)
  --ike                   rekey: the IKE SA, not the CHILD SAs
  --json                  print the API's JSON
  -h, --help              show this text
The commands are accepted (202) and run in the background: \`ikegate ctl sa SPI\` shows the outcome.
Connection options: see \`ikegate ctl --help\`.
`,
} as const;

function spiArg(spi: string): string {
  if (!SPI.test(spi)) throw new CtlUsageError(`an IKE SPI is 16 hex digits, got ${spi}`);
  return spi.toLowerCase();
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CtlUsageError(`${name} must be a whole number >= 1, got ${v}`);
  return n;
}

function transferred(sa: Sa): { in: number; out: number } {
  let i = 0;
  let o = 0;
  for (const c of sa.children) {
    i += c.bytesIn;
    o += c.bytesOut;
  }
  return { in: i, out: o };
}

function countsLine(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const total = entries.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return 'matching SAs by state: none';
  return `matching SAs by state: ${entries.map(([s, c]) => `${s} ${c}`).join(', ')} (${total} in all)`;
}

async function listSas(ctx: Ctx, values: Readonly<Record<string, string | boolean | undefined>>) {
  const limitText = str(values, 'limit');
  const limit = limitText === undefined ? Infinity : positiveInt(limitText, '--limit');
  const filters: Record<string, string> = {};
  for (const [option, param] of Object.entries(FILTERS)) {
    const v = str(values, option);
    if (v !== undefined) filters[param] = v;
  }
  const items: Sa[] = [];
  const unreachable = new Set<string>();
  let counts: Record<string, number>;
  let cursor: string | null = null;
  do {
    const pageSize = Math.min(PAGE_MAX, limit - items.length);
    const r = await ctx.api().call('GET', '/v1/sas', {
      query: { ...filters, limit: pageSize, ...(cursor !== null ? { cursor } : {}) },
    });
    const page = r.body as SaPage;
    items.push(...page.items.slice(0, limit - items.length));
    counts = page.counts;
    for (const w of page.unreachable) unreachable.add(w);
    if (page.next !== null && page.next === cursor)
      throw new CtlApiError({ status: r.status, title: 'the API gave the same page twice', detail: cursor });
    cursor = page.next;
  } while (cursor !== null && items.length < limit);

  if (unreachable.size > 0)
    ctx.err(`warning: workers ${[...unreachable].join(', ')} did not answer: their SAs are missing\n`);
  if (ctx.json) {
    ctx.printJson({ items, next: cursor, counts, unreachable: [...unreachable] });
    return;
  }
  const now = ctx.now();
  if (items.length === 0) ctx.out('no IKE SAs match\n');
  else
    ctx.out(
      table(
        [
          'SPI',
          'PEER',
          'IDENTITY',
          'STATE',
          'TRANSPORT',
          'REMOTE',
          'VIP',
          'WORKER',
          'CHILDREN',
          'IN',
          'OUT',
          'ESTABLISHED',
        ],
        items.map((sa) => {
          const t = transferred(sa);
          return [
            sa.spi,
            sa.peer ?? NONE,
            sa.peerId ?? NONE,
            sa.status,
            sa.transport,
            sa.remote,
            sa.virtualIp ?? NONE,
            sa.worker ?? NONE,
            String(sa.children.length),
            bytes(t.in),
            bytes(t.out),
            ago(sa.establishedAt, now),
          ];
        }),
      ),
    );
  if (cursor !== null) ctx.out(`showing the first ${items.length} (--limit); more match\n`);
  ctx.out(`${countsLine(counts)}\n`);
}

function showSa(ctx: Ctx, sa: Sa): void {
  const now = ctx.now();
  const t = transferred(sa);
  const rows: [string, string][] = [
    ['state', sa.status],
    ['peer', sa.peer ?? NONE],
    ['identity', sa.peerId ?? NONE],
    ['transport', sa.transport],
    ['remote', sa.remote],
    ['edge', sa.edge ?? NONE],
    ['virtual IP', sa.virtualIp ?? NONE],
    ['worker', sa.worker ?? NONE],
    ['shard', `${sa.shard}${sa.epoch !== undefined ? ` (lease epoch ${sa.epoch})` : ''}`],
    ['created', when(sa.createdAt, now)],
    ['established', when(sa.establishedAt, now)],
    ['last activity', when(sa.lastActivity, now)],
    ['traffic', `${bytes(t.in)} in, ${bytes(t.out)} out`],
  ];
  ctx.out(`IKE SA ${sa.spi}\n${rows.map(([k, v]) => `  ${k.padEnd(14)}${v}`).join('\n')}\n`);
  if (sa.children.length === 0) {
    ctx.out('  no CHILD SAs\n');
    return;
  }
  ctx.out(
    `  CHILD SAs:\n` +
      table(
        ['IN SPI', 'OUT SPI', 'PACKETS IN', 'PACKETS OUT', 'BYTES IN', 'BYTES OUT'],
        sa.children.map((c) => [
          c.inboundSpi,
          c.outboundSpi,
          String(c.packetsIn),
          String(c.packetsOut),
          bytes(c.bytesIn),
          bytes(c.bytesOut),
        ]),
        '    ',
      ),
  );
}

type SaAction = 'delete' | 'rekey' | 'liveness';

async function saCommand(ctx: Ctx, action: SaAction, spiText: string, ike: boolean): Promise<void> {
  const spi = spiArg(spiText);
  const path = `/v1/sas/${spi}`;
  const r =
    action === 'delete'
      ? await ctx.api().call('DELETE', path)
      : action === 'rekey'
        ? await ctx.api().call('POST', `${path}/rekey`, { body: { what: ike ? 'ike' : 'children' } })
        : await ctx.api().call('POST', `${path}/liveness`);
  if (ctx.json) {
    ctx.printJson(r.body);
    return;
  }
  const what =
    action === 'delete'
      ? 'deleting (INFORMATIONAL DELETE sent to the peer)'
      : action === 'rekey'
        ? `rekeying ${ike ? 'the IKE SA' : 'its CHILD SAs'}`
        : `checking the peer is alive (\`ikegate ctl sa ${spi}\` shows its last activity)`;
  ctx.out(`IKE SA ${spi}: ${what}\n`);
}

export const SA_COMMANDS: readonly CtlCommand[] = [
  {
    words: ['sas'],
    args: [],
    options: [...Object.keys(FILTERS), 'limit'],
    run: (ctx, _args, values) => listSas(ctx, values),
  },
  {
    words: ['sa'],
    args: ['SPI'],
    async run(ctx, [spi]) {
      const r = await ctx.api().call('GET', `/v1/sas/${spiArg(spi!)}`);
      if (ctx.json) ctx.printJson(r.body);
      else showSa(ctx, r.body as Sa);
    },
  },
  ...(['delete', 'rekey', 'liveness'] as const).map((action): CtlCommand => ({
    words: ['sa', action],
    args: ['SPI'],
    options: action === 'rekey' ? ['ike'] : [],
    run: (ctx, [spi], values) => saCommand(ctx, action, spi!, values.ike === true),
  })),
];
