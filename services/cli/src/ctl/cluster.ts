/**
 * The cluster: `ctl workers`, `ctl edges`, `ctl shards`, `ctl drain|undrain`. Under `ikegate up`
 * (one process) the listings show its one worker and edge, and drains are refused by the API
 * (409 not-clustered), which is printed like any other refusal.
 */
import type { EdgeView as EdgeItem, WorkerView as WorkerItem } from '@ikegate/control';
import { type Ctx, type CtlCommand, str } from './context.js';
import { CtlUsageError } from './errors.js';
import { NONE, table, when } from './output.js';

interface Shards {
  readonly count: number;
  readonly owned: number;
  readonly byWorker: Record<string, number>;
  readonly items: readonly { shard: number; owner?: string; epoch?: number; expiresAt?: string }[];
}

export const CLUSTER_USAGE = {
  workers: `usage: ikegate ctl workers [--json]

Lists the workers: healthy (its admin endpoint answered now), draining, shard leases held, IKE
SAs, managed configuration version applied, SA writes pending, relay and admin addresses.
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  edges: `usage: ikegate ctl edges [--json]

Lists the edges: healthy, draining, open TCP/TLS streams, shards seen without an owner.
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  shards: `usage: ikegate ctl shards [--owner W] [--unowned] [--json]

The shard leases: how many shards, how many owned and by which worker, then each lease's owner,
epoch and expiry.
  --owner W               only the shards worker W holds
  --unowned               only the shards nobody holds
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  drain: `usage: ikegate ctl drain worker ID [--json]
       ikegate ctl drain edge ID [--grace SECONDS] [--json]

worker: it writes every SA, releases its shard leases and takes none until undrained; the other
workers adopt its SAs (same SPIs, no re-authentication).
edge: it reports not ready, accepts no new TCP/TLS stream, and closes the open ones spread over the
grace period so their peers reconnect through another edge (RFC 9329 §6).
  --grace SECONDS         edge: close the open streams over this long (default 30)
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
  undrain: `usage: ikegate ctl undrain worker ID [--json]

The worker takes shard leases again.
  --json                  print the API's JSON
  -h, --help              show this text
Connection options: see \`ikegate ctl --help\`.
`,
} as const;

const yesNo = (b: boolean) => (b ? 'yes' : 'no');
const num = (n: number | undefined) => (n === undefined ? NONE : String(n));

function seg(id: string): string {
  return encodeURIComponent(id);
}

async function workers(ctx: Ctx): Promise<void> {
  const r = await ctx.api().call('GET', '/v1/workers');
  if (ctx.json) return ctx.printJson(r.body);
  const items = (r.body as { items: WorkerItem[] }).items;
  if (items.length === 0) return ctx.out('no workers\n');
  ctx.out(
    table(
      ['ID', 'HEALTHY', 'DRAINING', 'SHARDS', 'SAS', 'CONFIG', 'PENDING', 'RELAY', 'ADMIN'],
      items.map((w) => [
        w.id,
        yesNo(w.healthy),
        yesNo(w.draining),
        String(w.shards),
        num(w.sas),
        num(w.configVersion),
        num(w.pendingWrites),
        w.relay ?? NONE,
        w.admin ?? NONE,
      ]),
    ),
  );
}

async function edges(ctx: Ctx): Promise<void> {
  const r = await ctx.api().call('GET', '/v1/edges');
  if (ctx.json) return ctx.printJson(r.body);
  const items = (r.body as { items: EdgeItem[] }).items;
  if (items.length === 0) return ctx.out('no edges\n');
  ctx.out(
    table(
      ['ID', 'HEALTHY', 'DRAINING', 'STREAMS', 'UNOWNED', 'ADMIN'],
      items.map((e) => [
        e.id,
        yesNo(e.healthy),
        yesNo(e.draining),
        num(e.connections),
        num(e.unowned),
        e.admin ?? NONE,
      ]),
    ),
  );
}

async function shards(ctx: Ctx, owner: string | undefined, unowned: boolean): Promise<void> {
  const r = await ctx.api().call('GET', '/v1/shards', {
    query: { ...(owner !== undefined ? { owner } : {}), ...(unowned ? { unowned: true } : {}) },
  });
  if (ctx.json) return ctx.printJson(r.body);
  const s = r.body as Shards;
  const by = Object.entries(s.byWorker).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  ctx.out(
    `${s.count} shards, ${s.owned} owned${by.length > 0 ? `: ${by.map(([w, n]) => `${w} ${n}`).join(', ')}` : ''}\n`,
  );
  if (s.items.length === 0) return ctx.out('no shard leases shown\n');
  const now = ctx.now();
  ctx.out(
    table(
      ['SHARD', 'OWNER', 'EPOCH', 'EXPIRES'],
      s.items.map((i) => [String(i.shard), i.owner ?? NONE, num(i.epoch), when(i.expiresAt, now)]),
    ),
  );
}

function graceSeconds(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
    throw new CtlUsageError(`--grace must be whole seconds, got ${v}`);
  return n;
}

export const CLUSTER_COMMANDS: readonly CtlCommand[] = [
  { words: ['workers'], args: [], run: (ctx) => workers(ctx) },
  { words: ['edges'], args: [], run: (ctx) => edges(ctx) },
  {
    words: ['shards'],
    args: [],
    options: ['owner', 'unowned'],
    run: (ctx, _a, v) => shards(ctx, str(v, 'owner'), v.unowned === true),
  },
  {
    words: ['drain', 'worker'],
    args: ['ID'],
    async run(ctx, [id]) {
      const r = await ctx.api().call('POST', `/v1/workers/${seg(id!)}/drain`);
      if (ctx.json) return ctx.printJson(r.body);
      ctx.out(`worker ${id}: draining; its shards and SAs move to the other workers\n`);
    },
  },
  {
    words: ['undrain', 'worker'],
    args: ['ID'],
    async run(ctx, [id]) {
      const r = await ctx.api().call('DELETE', `/v1/workers/${seg(id!)}/drain`);
      if (ctx.json) return ctx.printJson(r.body);
      ctx.out(`worker ${id}: takes shards again\n`);
    },
  },
  {
    words: ['drain', 'edge'],
    args: ['ID'],
    options: ['grace'],
    async run(ctx, [id], v) {
      const grace = str(v, 'grace');
      const seconds = grace === undefined ? undefined : graceSeconds(grace);
      const r = await ctx.api().call('POST', `/v1/edges/${seg(id!)}/drain`, {
        ...(seconds !== undefined ? { body: { graceSeconds: seconds } } : {}),
      });
      if (ctx.json) return ctx.printJson(r.body);
      ctx.out(
        `edge ${id}: draining; its open streams close over ${seconds !== undefined ? `${seconds} s` : 'the default grace period'}, their peers reconnect elsewhere\n`,
      );
    },
  },
];
