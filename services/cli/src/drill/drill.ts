/**
 * The drill engine: a topology (a local cluster of processes it starts, or a running cluster
 * through its control API), peers with live traffic (./peers.ts), one fault, and the result.
 *
 * Sequence: cluster up and its shards placed -> peers set up -> every peer SA listed by the control
 * API (which also tells which worker holds it) -> traffic for `beforeMs` -> the fault -> traffic
 * for `afterMs` (stop-worker: the stop lasts `stopForMs`, then SIGCONT, then `afterMs`) -> traffic
 * stops -> counters read -> every peer SA deleted and the cluster stopped.
 *
 * Instants are on one monotonic clock (performance.now) and reported relative to the fault;
 * cluster log lines (ISO wall-clock times) are mapped onto it through the wall-clock instant of
 * the fault, so their place on the timeline is good to the clocks' drift over a run (nothing).
 */
import { randomBytes } from 'node:crypto';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DrillOptions } from './args.js';
import { type LocalCluster, type LogLine } from './local-cluster.js';
import { type DrillEdge, type PeerEvent, type Peers, startPeers } from './peers.js';
import { type DrillResult, judge, peerOutage, quantiles, type TimelineEvent } from './stats.js';

export interface DrillUi {
  /** A phase starts (setting up, traffic, fault, ...). */
  step(what: string): void;
  /** Progress within the current phase. */
  progress(done: number, total: number, label: string): void;
}

export class DrillError extends Error {}

/**
 * What must be undone if the drill is interrupted (SIGINT/SIGTERM): the peers' SAs deleted, the
 * local cluster's processes stopped (a SIGSTOPped worker included).
 */
export const pendingCleanups = new Set<() => Promise<void>>();

export interface ListedSa {
  readonly spi: string;
  readonly worker?: string;
  readonly workers: string[];
}

/** The control API with a bearer token. */
export class ControlApi {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async call(path: string, method = 'GET'): Promise<{ status: number; body: unknown }> {
    const r = await fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(5000),
    });
    const text = await r.text();
    try {
      return { status: r.status, body: JSON.parse(text) };
    } catch {
      return { status: r.status, body: text };
    }
  }

  async get<T>(path: string): Promise<T> {
    const r = await this.call(path);
    if (r.status !== 200) throw new DrillError(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as T;
  }

  /**
   * Every SA (all pages of GET /v1/sas) by peer id: its SPI, the worker listing it (and every
   * worker listing it, should two list the same peer).
   */
  async sas(): Promise<Map<string, ListedSa>> {
    const out = new Map<string, ListedSa>();
    let cursor: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const page: {
        items: { spi: string; peerId?: string; worker?: string; edge?: string }[];
        next: string | null;
      } = await this.get(`/v1/sas?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      for (const s of page.items) {
        if (!s.peerId) continue;
        const id = s.peerId.toLowerCase();
        const seen = out.get(id);
        if (seen) {
          if (s.worker) seen.workers.push(s.worker);
          continue;
        }
        out.set(id, {
          spi: s.spi,
          ...(s.worker ? { worker: s.worker } : {}),
          workers: s.worker ? [s.worker] : [],
        });
      }
      cursor = page.next;
      if (cursor === null) return out;
    }
    throw new DrillError('GET /v1/sas: more than 1000 pages');
  }

  async shards(): Promise<{ owned: number; byWorker: Record<string, number> }> {
    return this.get('/v1/shards');
  }
}

/** Sum of one counter in a Prometheus text page (labels matched by substring `k="v"`). */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([0-9.e+-]+|NaN)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

async function until<T>(
  f: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (ok(v)) return v;
      last = v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > end)
      throw new DrillError(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await sleep(200);
  }
}

const PEER_ID = (pattern: string, n: number) => pattern.replaceAll('{n}', String(n)).toLowerCase();

interface Counters {
  /** ikegate_esp_packets_total{direction="in"} */
  readonly espIn: number;
  /** ikegate_drops_total by `layer/reason`. */
  readonly drops: Record<string, number>;
}

export function readCounters(text: string): Counters {
  const drops: Record<string, number> = {};
  for (const m of text.matchAll(/^ikegate_drops_total\{([^}]*)\} ([0-9.e+]+)$/gm)) {
    const layer = /layer="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    const reason = /reason="([^"]*)"/.exec(m[1]!)?.[1] ?? '?';
    drops[`${layer}/${reason}`] = (drops[`${layer}/${reason}`] ?? 0) + Number(m[2]);
  }
  return { espIn: metricSum(text, 'ikegate_esp_packets_total', { direction: 'in' }), drops };
}

export async function runDrill(o: DrillOptions, ui: DrillUi): Promise<DrillResult> {
  const clock = () => performance.now();
  const timeline: { at: number; source: TimelineEvent['source']; what: string }[] = [];
  const note = (source: TimelineEvent['source'], what: string, at = clock()) =>
    timeline.push({ at, source, what });
  let cluster: LocalCluster | undefined;
  let peers: Peers | undefined;
  let undrain: (() => Promise<unknown>) | undefined;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const cleanup = async () => {
    await peers?.close().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
  };
  pendingCleanups.add(cleanup);
  try {
    // --- topology -------------------------------------------------------------------------------
    let api: ControlApi;
    let edges: DrillEdge[];
    let psk: string;
    if (o.local) {
      const { LocalCluster } = await import('./local-cluster.js');
      psk = randomBytes(16).toString('hex');
      cluster = new LocalCluster({ ...o.local, psk });
      ui.step('starting the local cluster');
      await cluster.start((what) => ui.progress(0, 1, `starting ${what}`));
      api = new ControlApi(cluster.controlUrl, cluster.token);
      edges = cluster.edges.map((e) => ({
        id: e.id,
        address: e.address,
        ike: e.ike,
        natT: e.natT,
        tcp: e.tcp,
      }));
      const share = 1024 / o.local.workers;
      await until(
        () => api.shards(),
        (s) =>
          s.owned === 1024 &&
          Object.keys(s.byWorker).length === o.local!.workers &&
          Object.values(s.byWorker).every((n) => Math.abs(n - share) <= 1),
        60_000,
        'every shard leased, evenly',
      );
    } else {
      const r = o.remote!;
      api = new ControlApi(r.controlUrl, r.token);
      edges = [...r.edges];
      psk = r.psk;
      await api.shards();
    }

    // --- peers ------------------------------------------------------------------------------------
    ui.step(`setting up ${o.peers} peers`);
    const peerEvents: PeerEvent[] = [];
    peers = await startPeers(
      {
        edges,
        count: o.peers,
        transport: o.transport,
        probeIntervalMs: o.probeIntervalMs,
        psk: new TextEncoder().encode(psk),
        remoteId: o.remoteId,
        idPattern: o.idPattern,
        setupTimeoutMs: 60_000,
        concurrency: 16,
        clock,
        onEvent: (e) => peerEvents.push(e),
      },
      (done, total) => ui.progress(done, total, `peers set up ${done}/${total}`),
    );
    if (peers.established < o.peers)
      throw new DrillError(
        `only ${peers.established} of ${o.peers} peers set up: ${JSON.stringify(peers.failures)}`,
      );
    const ids = new Map(peers.records.map((r) => [PEER_ID(o.idPattern, r.n), r.n]));
    const mine = async () => {
      const all = await api.sas();
      return new Map([...all].filter(([id]) => ids.has(id)).map(([id, s]) => [ids.get(id)!, s]));
    };
    const placed = await until(
      mine,
      (m) => m.size === o.peers,
      30_000,
      'every peer SA listed by the control API',
    );

    // --- counters (local: every worker's and edge's /metrics) ------------------------------------
    const scrape = async (): Promise<Map<string, Counters>> => {
      const out = new Map<string, Counters>();
      if (!cluster) return out;
      const procs = [
        ...cluster.workers.map((w) => ({ id: w.id, admin: w.admin, alive: w.proc.alive })),
        ...cluster.edges.map((e) => ({ id: e.id, admin: e.admin, alive: e.proc.alive })),
      ];
      await Promise.all(
        procs
          .filter((p) => p.alive)
          .map(async (p) => {
            try {
              const r = await fetch(`http://127.0.0.1:${p.admin}/metrics`, {
                signal: AbortSignal.timeout(2000),
              });
              out.set(p.id, readCounters(await r.text()));
            } catch {
              // a stopped process does not answer: its last reading stands
            }
          }),
      );
      return out;
    };
    const counters0 = await scrape();

    // --- traffic, then the fault -----------------------------------------------------------------
    ui.step('traffic before the fault');
    // The drill's own stalls (a busy machine) delay probes and answers alike: measured and shown.
    loopDelay.enable();
    peers.startTraffic();
    const trafficFrom = clock();
    const answering = (now: number) =>
      peers!.records.filter((r) => r.up && (r.answers.at(-1) ?? 0) >= now - 3 * o.probeIntervalMs).length;
    await waitWithProgress(o.beforeMs, ui, () => `answering ${answering(clock())}/${o.peers}`);

    const byWorker = new Map<string, number>();
    for (const s of placed.values()) if (s.worker) byWorker.set(s.worker, (byWorker.get(s.worker) ?? 0) + 1);
    const [victimWorker, victimSas] = [...byWorker].sort(
      (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]),
    )[0] ?? ['', 0];
    const victimPeers = new Set([...placed].filter(([, s]) => s.worker === victimWorker).map(([n]) => n));
    const shardsBefore = await api.shards();
    const victimShards = shardsBefore.byWorker[victimWorker] ?? 0;
    const countersAtFault = await scrape();

    let faultAt = 0;
    let faultWall = 0;
    let target = o.local ? `local cluster (${cluster!.dir})` : o.remote!.controlUrl;
    const checks: { name: string; ok: boolean; detail: string }[] = [];
    let resumeAt: number | undefined;
    let victimEdgeIndex = -1;
    const inject = async () => {
      faultAt = clock();
      faultWall = Date.now();
      switch (o.fault) {
        case 'kill-worker':
        case 'stop-worker': {
          const w = cluster!.worker(victimWorker);
          if (!w) throw new DrillError(`no worker ${victimWorker} holds peer SAs`);
          w.proc.signal(o.fault === 'kill-worker' ? 'SIGKILL' : 'SIGSTOP');
          note(
            'drill',
            `${o.fault === 'kill-worker' ? 'kill -9' : 'SIGSTOP'} ${victimWorker} (pid ${w.proc.pid}, ${victimSas} peer SAs, ${victimShards} shards)`,
            faultAt,
          );
          break;
        }
        case 'kill-edge': {
          victimEdgeIndex = 0;
          const e = cluster!.edges[0]!;
          e.proc.signal('SIGKILL');
          const via = peers!.records.filter((r) => r.firstEdge === 0);
          note(
            'drill',
            `kill -9 ${e.id} (pid ${e.proc.pid}; ${via.filter((r) => r.transport === 'tcp').length} TCP and ${via.filter((r) => r.transport === 'udp').length} UDP peers through it)`,
            faultAt,
          );
          break;
        }
        case 'drain-worker': {
          const r = await api.call(`/v1/workers/${encodeURIComponent(victimWorker)}/drain`, 'POST');
          if (r.status !== 202)
            throw new DrillError(`drain ${victimWorker}: ${r.status} ${JSON.stringify(r.body)}`);
          note('drill', `drain ${victimWorker} (${victimSas} peer SAs, ${victimShards} shards)`, faultAt);
          undrain = () => api.call(`/v1/workers/${encodeURIComponent(victimWorker)}/drain`, 'DELETE');
          break;
        }
        default:
          throw new DrillError(`${o.fault} is not supported`);
      }
    };
    ui.step(`fault: ${o.fault}`);
    await inject();

    // --- watch: shards moving, peers answering -----------------------------------------------------
    const stopFor = o.fault === 'stop-worker' ? (o.stopForMs ?? o.local!.leaseTtlMs + 2000) : 0;
    const endAt = faultAt + stopFor + o.afterMs;
    let firstMoved = false;
    let allMoved = false;
    let worstSilent = 0;
    let worstSilentAt = 0;
    let silentSeen = false;
    let allBackNoted = false;
    for (let round = 0; clock() < endAt && round < 100_000; round++) {
      const now = clock();
      if (o.fault === 'stop-worker' && resumeAt === undefined && now >= faultAt + stopFor) {
        cluster!.worker(victimWorker)!.proc.signal('SIGCONT');
        resumeAt = clock();
        note('drill', `SIGCONT ${victimWorker} after ${Math.round(resumeAt - faultAt)} ms stopped`, resumeAt);
      }
      if (victimShards > 0 && !allMoved && o.fault !== 'kill-edge') {
        const s = await api.shards().catch(() => undefined);
        const left = s ? (s.byWorker[victimWorker] ?? 0) : victimShards;
        if (s && !firstMoved && left < victimShards) {
          firstMoved = true;
          note('cluster', `first shard of ${victimWorker} held by another worker (control API)`);
        }
        if (s && left === 0 && s.owned === 1024) {
          allMoved = true;
          note('cluster', `all ${victimShards} shards of ${victimWorker} held by the others (control API)`);
        }
      }
      const t = clock();
      const silent = o.peers - answering(t);
      if (silent > 0 && !silentSeen && t - faultAt > 3 * o.probeIntervalMs) {
        silentSeen = true;
        note('peers', `peers without an answer for ${3 * o.probeIntervalMs} ms: ${silent}`, t);
      }
      if (silent > worstSilent) {
        worstSilent = silent;
        worstSilentAt = t;
      }
      if (silentSeen && silent === 0 && !allBackNoted) {
        allBackNoted = true;
        note('peers', 'every peer answering again', t);
      }
      ui.progress(
        Math.min(1, (t - faultAt) / (endAt - faultAt)) * 1000,
        1000,
        `${Math.round((t - faultAt) / 1000)}/${Math.round((endAt - faultAt) / 1000)} s after the fault, answering ${o.peers - silent}/${o.peers}`,
      );
      await sleep(250);
    }
    if (worstSilent > 0) note('peers', `most peers without an answer at once: ${worstSilent}`, worstSilentAt);
    peers.stopTraffic();
    const trafficTo = clock();
    loopDelay.disable();

    // --- read what happened ----------------------------------------------------------------------
    ui.step('collecting');
    await sleep(500); // ESP in flight reaches the workers
    const countersEnd = await scrape();
    let espReceived: number | null = null;
    const drops: Record<string, number> = {};
    if (cluster) {
      espReceived = 0;
      for (const p of [...cluster.workers, ...cluster.edges]) {
        const end = countersEnd.get(p.id) ?? countersAtFault.get(p.id);
        const start = counters0.get(p.id);
        if (!end || !start) continue;
        espReceived += end.espIn - start.espIn;
        for (const [k, n] of Object.entries(end.drops)) {
          const d = n - (start.drops[k] ?? 0);
          if (d > 0 && k !== 'esp/no_device') drops[`${p.id} ${k}`] = d;
        }
      }
    }
    const after = await mine().catch(() => new Map<number, ListedSa>());
    // Responses to the same request sent again are dropped as unexpected once one was taken: noise.
    for (const [k, n] of Object.entries(await peers.drops()))
      if (k !== 'ike/unexpected_response') drops[`peers ${k}`] = n;
    const rejected = peers.records.reduce((n, r) => n + r.rejectedAnswers, 0);
    if (rejected > 0) drops['peers answers-not-accepted'] = rejected;
    const stale = peers.records.reduce((n, r) => n + r.staleAnswers, 0);
    if (stale > 0) drops['peers answers-to-another-message-id'] = stale;

    if (cluster) {
      // The survivors' own account, placed on the timeline.
      const onClock = (l: LogLine) => {
        const wall = typeof l.time === 'string' ? Date.parse(l.time) : NaN;
        return Number.isFinite(wall) ? faultAt + (wall - faultWall) : undefined;
      };
      const firstLine = (lines: LogLine[], match: (l: LogLine) => boolean) => {
        for (const l of lines) if (match(l)) return l;
        return undefined;
      };
      for (const w of cluster.workers) {
        const dead = firstLine(w.proc.lines, (l) => l.msg === 'member-dead' && l.worker === victimWorker);
        const at = dead && onClock(dead);
        if (at !== undefined && at >= faultAt) note('cluster', `${w.id}: member-dead ${victimWorker}`, at);
        const acq = w.proc.lines.filter(
          (l) => l.msg === 'shard-acquired' && (onClock(l) ?? -Infinity) >= faultAt,
        );
        if (acq.length > 0) {
          const adopted = acq.reduce((n, l) => n + (typeof l.adopted === 'number' ? l.adopted : 0), 0);
          note(
            'cluster',
            `${w.id}: first shard-acquired with SAs (${acq.length} such shards, ${adopted} SAs adopted)`,
            onClock(acq[0]!)!,
          );
        }
      }
      // Warnings and errors any process logged after the fault: the first of each kind, and how many.
      for (const p of [...cluster.workers, ...cluster.edges]) {
        const kinds = new Map<string, { first: LogLine; n: number }>();
        for (const l of p.proc.lines) {
          const at = onClock(l);
          if (at === undefined || at < faultAt || !['warn', 'error', 'fatal'].includes(String(l.level)))
            continue;
          const k = String(l.msg);
          if (['member-dead', 'shard-lost', 'worker-dead'].includes(k)) continue; // shown above
          const seen = kinds.get(k);
          if (seen) seen.n++;
          else kinds.set(k, { first: l, n: 1 });
        }
        for (const [k, { first, n }] of [...kinds].slice(0, 8))
          note('cluster', `${p.id}: ${k}${n > 1 ? ` x${n} (the first)` : ''}`, onClock(first)!);
      }
      const v = cluster.worker(victimWorker);
      if (v && o.fault === 'stop-worker') {
        const lost = v.proc.lines.filter(
          (l) => l.msg === 'shard-lost' && (onClock(l) ?? -Infinity) >= faultAt,
        );
        if (lost.length > 0)
          note(
            'cluster',
            `${victimWorker}: shard-lost x${lost.length} (${String(lost[0]!.why)}) after SIGCONT`,
            onClock(lost[0]!)!,
          );
      }
    }
    for (const e of peerEvents) {
      if (e.what === 'reconnected' || e.what === 'stream-closed') continue; // summarised below
      note('peers', `peer ${e.peer}: ${e.what}${e.detail ? ` (${e.detail})` : ''}`, e.at);
    }
    const reconnects = peerEvents.filter((e) => e.what === 'reconnected');
    if (reconnects.length > 0) {
      note('peers', `first TCP peer reconnected through ${reconnects[0]!.detail}`, reconnects[0]!.at);
      note('peers', `${reconnects.length} TCP reconnects, the last`, reconnects.at(-1)!.at);
    }

    // --- checks per fault --------------------------------------------------------------------------
    const records = peers.records;
    const outages = records.map((r) => ({
      r,
      ...peerOutage(r.answers, trafficFrom, trafficTo, o.probeIntervalMs),
    }));
    if (o.fault === 'kill-worker' || o.fault === 'stop-worker' || o.fault === 'drain-worker') {
      const moved = [...victimPeers].filter((n) => {
        const s = after.get(n);
        return s !== undefined && s.workers.some((w) => w !== victimWorker) && s.spi === placed.get(n)?.spi;
      });
      checks.push({
        name: `SAs of ${victimWorker} held by the others`,
        ok: moved.length === victimPeers.size,
        detail: `${moved.length}/${victimPeers.size} with the same SPI on another worker at the end`,
      });
      const answering = [...victimPeers].filter((n) => outages[n - 1]!.recovered);
      checks.push({
        name: `peers of ${victimWorker} answering at the end`,
        ok: answering.length === victimPeers.size,
        detail: `${answering.length}/${victimPeers.size}`,
      });
      if (o.fault === 'stop-worker') {
        const back = [...victimPeers].filter((n) => after.get(n)?.workers.includes(victimWorker)).length;
        const v = cluster!.worker(victimWorker)!;
        const lostLines = v.proc.lines.filter((l) => l.msg === 'shard-lost').length;
        checks.push({
          name: `${victimWorker} fenced`,
          ok: back === 0 && allMoved,
          detail: `its shards were taken while it was stopped (${allMoved ? 'all' : 'not all'}), it logged shard-lost ${lostLines} times after SIGCONT, and holds ${back} of its ${victimPeers.size} former peer SAs at the end`,
        });
      }
    }
    if (o.fault === 'kill-edge') {
      const via = records.filter((r) => r.firstEdge === victimEdgeIndex);
      const tcp = via.filter((r) => r.transport === 'tcp');
      const moved = tcp.filter((r) => r.edge !== victimEdgeIndex && r.answers.some((a) => a > faultAt));
      checks.push({
        name: `TCP peers of ${edges[victimEdgeIndex]!.id} back through another edge`,
        ok: moved.length === tcp.length,
        detail: `${moved.length}/${tcp.length}`,
      });
      const udp = via.filter((r) => r.transport === 'udp');
      if (udp.length > 0) {
        const back = udp.filter((r) => r.answers.some((a) => a > faultAt + 3 * o.probeIntervalMs)).length;
        checks.push({
          name: `UDP peers of ${edges[victimEdgeIndex]!.id} (no shared address: they keep sending to the dead edge)`,
          ok: true,
          detail: `${back}/${udp.length} answered after the fault (shown, not judged; counted in SAs lost)`,
        });
      }
      target += `; victim edge ${edges[victimEdgeIndex]!.id}`;
    }

    const lost = outages.filter((x) => x.r.lost || !x.recovered).length;
    const affected = outages.filter((x) => x.gaps.length > 0);
    const espSent = records.reduce((n, r) => n + r.espSent, 0);
    const base = {
      fault: o.fault,
      target,
      topology: o.local
        ? { workers: o.local.workers, edges: o.local.edges, leaseTtlMs: o.local.leaseTtlMs }
        : { workers: Object.keys(shardsBefore.byWorker).length, edges: edges.length, leaseTtlMs: 0 },
      peers: {
        count: o.peers,
        established: peers.established,
        transport: o.transport,
        probeIntervalMs: o.probeIntervalMs,
      },
      outageMs: quantiles(outages.map((x) => x.outageMs)),
      affected: { count: affected.length, outageMs: quantiles(affected.map((x) => x.outageMs)) },
      sasLost: lost,
      reauths: records.reduce((n, r) => n + r.reauths, 0),
      probes: {
        sent: records.reduce((n, r) => n + r.probesSent, 0),
        answered: records.reduce((n, r) => n + r.answers.length, 0),
      },
      esp: {
        sent: espSent,
        received: espReceived ?? -1,
        lost: espReceived === null ? -1 : Math.max(0, espSent - espReceived),
        unsendable: records.reduce((n, r) => n + r.espUnsendable, 0),
      },
      clusterDrops: drops,
      drillLoopDelayMs: {
        p99: Math.round(loopDelay.percentile(99) / 1e6),
        max: Math.round(loopDelay.max / 1e6),
      },
      checks,
      timeline: timeline
        .sort((a, b) => a.at - b.at)
        .map((e) => ({ t: Math.round(e.at - faultAt), source: e.source, what: e.what })),
      perPeer: outages.map((x) => {
        const w = after.get(x.r.n)?.worker;
        const wb = placed.get(x.r.n)?.worker;
        return {
          n: x.r.n,
          transport: x.r.transport,
          edge: edges[x.r.edge]?.id ?? '?',
          ...(wb ? { workerBefore: wb } : {}),
          ...(w ? { worker: w } : {}),
          outageMs: x.outageMs,
          recovered: x.recovered,
          gaps: x.gaps.map((g) => ({ from: Math.round(g.from - faultAt), to: Math.round(g.to - faultAt) })),
        };
      }),
      window: { from: Math.round(trafficFrom - faultAt), to: Math.round(trafficTo - faultAt) },
    };
    return { ...base, failures: judge(base, o.bars) };
  } finally {
    ui.step('cleaning up');
    loopDelay.disable();
    // A running cluster is left as found: the drained worker takes shards again.
    if (!cluster) await undrain?.().catch(() => undefined);
    await cleanup();
    pendingCleanups.delete(cleanup);
  }
}

async function waitWithProgress(msTotal: number, ui: DrillUi, label: () => string): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < 100_000; i++) {
    const el = performance.now() - start;
    if (el >= msTotal) return;
    ui.progress(el, msTotal, label());
    await sleep(Math.min(250, msTotal - el));
  }
}
