/** `ikegate drill` arguments. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { Bars } from './stats.js';

export const DRILL_FAULTS = [
  'kill-worker',
  'stop-worker',
  'kill-edge',
  'drain-worker',
  'redis-failover',
  'partition-worker',
] as const;
export type DrillFault = (typeof DRILL_FAULTS)[number];

/** Faults that need the processes (local mode). */
export const PROCESS_FAULTS: readonly DrillFault[] = ['kill-worker', 'stop-worker', 'kill-edge'];

export const DRILL_USAGE = `usage: ikegate drill FAULT [options]

Injects FAULT into a cluster while N peers carry live traffic, and reports per-peer outage
(p50/p99/max), SAs lost, re-authentications (new IKE_SA_INITs), ESP packets lost and a timeline.
Each peer sends an IKE liveness check (and one ESP packet) every probe interval; its outage is
the longest time between answered checks, minus one interval.

faults:
  kill-worker             kill -9 the worker holding the most SAs (local)
  stop-worker             SIGSTOP the worker holding the most SAs past its lease TTL, then SIGCONT;
                          checks it is fenced: its SAs stay with the others (local)
  kill-edge               kill -9 the first edge: TCP peers reconnect through the others (local)
  drain-worker            drain the worker holding the most SAs through the control API
  redis-failover, partition-worker   not supported yet

topology (default: --local, started by the drill on loopback and stopped at the end):
  --local                 start redis-server, the workers, the edges and control as processes
  --workers N             workers in the local cluster (default 3)
  --edges N               edges in the local cluster (default 2)
  --lease-ttl SECONDS     cluster.leaseTtlMs of the local cluster (default 10)
  --control URL           target a running cluster through its control API instead (drain-worker only)
  --token-file FILE       the API token (operator or admin) for --control
  --edge HOST:IKE:NATT:TCP   an edge of the running cluster the peers connect to, repeatable (with --control)
  --psk-file FILE         the peers' PSK (with --control; the local cluster makes its own)
  --id PATTERN            the peers' identities, {n} = peer number (default drill-{n}@example.org)
  --remote-id ID          the gateway's identity (default gw.example.org)

traffic and timing:
  --peers N               peers, one IKE SA + CHILD SA each (default 60)
  --transport T           udp | tcp | mix (default mix: odd peers UDP, even peers TCP)
  --probe-interval MS     per-peer probe interval (default 100)
  --before SECONDS        traffic before the fault (default 3)
  --after SECONDS         traffic after the fault (default 15; stop-worker: after SIGCONT)
  --stop-for SECONDS      stop-worker: how long it stays stopped (default lease TTL + 2)

bars (exit status 1 when one fails):
  --max-p99 DURATION      outage p99 over all peers, e.g. 2s or 1500ms (default: no bar)
  --max-lost N            SAs lost (default 0)
  --max-reauths N         re-authentications (default 0)

output:
  --json                  the result as JSON on stdout
  --html FILE             a self-contained HTML report with a timeline plot
  --quiet                 no progress on stderr
  -h, --help              show this text
Exit status: 0 passed, 1 a bar failed, 2 usage error or unsupported fault, 3 the drill could not run.
`;

export class DrillUsageError extends Error {}

export interface RemoteTarget {
  readonly controlUrl: string;
  readonly token: string;
  readonly edges: readonly { id: string; address: string; ike: number; natT: number; tcp: number }[];
  readonly psk: string;
}

export interface DrillOptions {
  readonly fault: DrillFault;
  readonly local?: { readonly workers: number; readonly edges: number; readonly leaseTtlMs: number };
  readonly remote?: RemoteTarget;
  readonly peers: number;
  readonly transport: 'udp' | 'tcp' | 'mix';
  readonly probeIntervalMs: number;
  readonly beforeMs: number;
  readonly afterMs: number;
  readonly stopForMs?: number;
  readonly idPattern: string;
  readonly remoteId: string;
  readonly bars: Bars;
  readonly json: boolean;
  readonly html?: string;
  readonly quiet: boolean;
}

function int(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < min || n > max)
    throw new DrillUsageError(`${name} must be an integer ${min}-${max}, got ${v}`);
  return n;
}

function secondsMs(v: string | undefined, name: string, dflt: number, min = 0, max = 3600): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max)
    throw new DrillUsageError(`${name} must be a number of seconds ${min}-${max}, got ${v}`);
  return Math.round(n * 1000);
}

/** `2s`, `1.5s`, `1500ms`, `1500` (ms) -> ms. */
export function parseDuration(v: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(v.trim());
  if (!m) throw new DrillUsageError(`${name} must be a duration like 2s or 1500ms, got ${v}`);
  const n = Number(m[1]);
  return Math.round(m[2] === 's' ? n * 1000 : n);
}

function edgeSpec(v: string, i: number): RemoteTarget['edges'][number] {
  const m = /^([^:]+):(\d+):(\d+):(\d+)$/.exec(v);
  if (!m) throw new DrillUsageError(`--edge must be HOST:IKE:NATT:TCP, got ${v}`);
  const port = (p: string) => {
    const n = Number(p);
    if (n < 1 || n > 65535) throw new DrillUsageError(`--edge ${v}: ports are 1-65535`);
    return n;
  };
  return { id: `edge${i + 1}`, address: m[1]!, ike: port(m[2]!), natT: port(m[3]!), tcp: port(m[4]!) };
}

export function parseDrillArgs(argv: readonly string[]): DrillOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: true,
      options: {
        local: { type: 'boolean', default: false },
        workers: { type: 'string' },
        edges: { type: 'string' },
        'lease-ttl': { type: 'string' },
        control: { type: 'string' },
        'token-file': { type: 'string' },
        edge: { type: 'string', multiple: true },
        'psk-file': { type: 'string' },
        id: { type: 'string', default: 'drill-{n}@example.org' },
        'remote-id': { type: 'string', default: 'gw.example.org' },
        peers: { type: 'string' },
        transport: { type: 'string', default: 'mix' },
        'probe-interval': { type: 'string' },
        before: { type: 'string' },
        after: { type: 'string' },
        'stop-for': { type: 'string' },
        'max-p99': { type: 'string' },
        'max-lost': { type: 'string' },
        'max-reauths': { type: 'string' },
        json: { type: 'boolean', default: false },
        html: { type: 'string' },
        quiet: { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    throw new DrillUsageError((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (positionals.length !== 1)
    throw new DrillUsageError(
      positionals.length === 0
        ? 'which fault? (e.g. kill-worker)'
        : `one fault at a time, got ${positionals.join(' ')}`,
    );
  const fault = positionals[0] as DrillFault;
  if (!DRILL_FAULTS.includes(fault))
    throw new DrillUsageError(`unknown fault ${positionals[0]} (one of ${DRILL_FAULTS.join(', ')})`);
  if (fault === 'redis-failover')
    throw new DrillUsageError(
      'redis-failover is not supported yet: it needs a Redis Sentinel topology, which the drill cannot start yet',
    );
  if (fault === 'partition-worker')
    throw new DrillUsageError(
      'partition-worker is not supported yet (it needs network namespaces and nftables)',
    );
  if (v.control !== undefined && v.local) throw new DrillUsageError('give --local or --control, not both');
  const transport = v.transport as DrillOptions['transport'];
  if (!['udp', 'tcp', 'mix'].includes(transport))
    throw new DrillUsageError(`--transport must be udp, tcp or mix, got ${v.transport}`);

  let local: DrillOptions['local'];
  let remote: RemoteTarget | undefined;
  if (v.control !== undefined) {
    if (PROCESS_FAULTS.includes(fault))
      throw new DrillUsageError(
        `${fault} needs the processes (--local); through the control API only drain-worker is possible`,
      );
    for (const o of ['workers', 'edges', 'lease-ttl'] as const)
      if (v[o] !== undefined) throw new DrillUsageError(`--${o} is for --local, not --control`);
    if (!/^https?:\/\//.test(v.control))
      throw new DrillUsageError(`--control must be an http(s) URL, got ${v.control}`);
    if (!v['token-file']) throw new DrillUsageError('--control needs --token-file');
    if (!v['psk-file'])
      throw new DrillUsageError('--control needs --psk-file (the peers authenticate with it)');
    if (!v.edge?.length) throw new DrillUsageError('--control needs at least one --edge HOST:IKE:NATT:TCP');
    const edges = v.edge.map(edgeSpec);
    const read = (f: string) => {
      try {
        return readFileSync(f, 'utf8').replace(/[\r\n]+$/, '');
      } catch (e) {
        throw new DrillUsageError(`cannot read ${f}: ${(e as Error).message}`);
      }
    };
    remote = {
      controlUrl: v.control.replace(/\/+$/, ''),
      token: read(v['token-file']),
      edges,
      psk: read(v['psk-file']),
    };
  } else {
    if (v['token-file'] || v.edge || v['psk-file'])
      throw new DrillUsageError('--token-file, --edge and --psk-file go with --control');
    local = {
      workers: int(v.workers, '--workers', 3, 2, 16),
      edges: int(v.edges, '--edges', 2, 1, 8),
      leaseTtlMs: secondsMs(v['lease-ttl'], '--lease-ttl', 10_000, 1, 600),
    };
    if (fault === 'kill-edge' && local.edges < 2)
      throw new DrillUsageError(
        'kill-edge needs --edges 2 or more (the peers reconnect through another edge)',
      );
  }
  const stopForMs = v['stop-for'] !== undefined ? secondsMs(v['stop-for'], '--stop-for', 0, 0.1) : undefined;
  if (stopForMs !== undefined && fault !== 'stop-worker')
    throw new DrillUsageError('--stop-for is for stop-worker');
  return {
    fault,
    ...(local ? { local } : {}),
    ...(remote ? { remote } : {}),
    peers: int(v.peers, '--peers', 60, 1, 10_000),
    transport,
    probeIntervalMs: int(v['probe-interval'], '--probe-interval', 100, 20, 10_000),
    beforeMs: secondsMs(v.before, '--before', 3000, 0.5),
    afterMs: secondsMs(v.after, '--after', 15_000, 1),
    ...(stopForMs !== undefined ? { stopForMs } : {}),
    idPattern: v.id!,
    remoteId: v['remote-id']!,
    bars: {
      ...(v['max-p99'] !== undefined ? { maxP99Ms: parseDuration(v['max-p99'], '--max-p99') } : {}),
      maxLost: int(v['max-lost'], '--max-lost', 0, 0, 1e9),
      maxReauths: int(v['max-reauths'], '--max-reauths', 0, 0, 1e9),
    },
    json: v.json!,
    ...(v.html !== undefined ? { html: v.html } : {}),
    quiet: v.quiet!,
  };
}
