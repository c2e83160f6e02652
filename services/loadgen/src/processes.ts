/**
 * `ikegate loadgen --processes N`: one run split over N child processes, so the client can out-run
 * the responder it measures (issue #14).
 *
 * Why processes, not worker threads: each child has its own event loop, its own heap and GC, and
 * its own CPU account (`process.cpuUsage()` in a worker thread counts the whole process, so a
 * saturated thread could not be told from a busy process); a child that crashes takes only its own
 * share of the setups with it. The cost, one Node process each (~50 MB), is nothing next to what
 * a load test measures.
 *
 * How a run goes:
 *   parent                                  child k (bin/loadgen-child.mjs -> child.ts)
 *   fork; send `run` {SAs firstN_k.., c_k} ->  builds its Worker, opens its own UDP sockets
 *                                          <-  `ready`
 *   all ready (or lost): send `go`        ->  setups start (same instant for all children)
 *                                          <-  `progress` every 500 ms
 *                                          <-  `done` {summary, samples}
 *   stop(): send `stop` {deleteSas}       ->  deletes (optionally) and closes
 *                                          <-  `stopped` {deleted}; exits
 * `--count` and `--concurrency` (and `--rate`) are split as evenly as integers allow; child k's
 * identities are `{n}` = firstN_k .. firstN_k + count_k - 1, disjoint ranges that together are
 * 1..count, exactly as one process would number them.
 *
 * Bounded: a child that exits, errs or has not reported `done` by its deadline (startup allowance +
 * its per-setup timeout x its rounds of setups) is killed (SIGKILL) and all its setups count as
 * failed (`process-exited`, `process-error`, `process-timeout`); the run never waits on it again.
 * Children ignore SIGINT/SIGTERM (a terminal's Ctrl-C reaches the whole process group): the parent
 * decides, and tells them through `stop`. A child whose parent is gone (IPC channel closed) stops
 * on its own, deleting its SAs if the run was to delete them.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type { LoadgenOptions, LoadgenProgress, LoadgenRun, LoadgenSamples } from './loadgen.js';
import { type LoadgenSummary, mergeSummaries, type ProcessPart } from './stats.js';

const CHILD_ENTRY = new URL('../bin/loadgen-child.mjs', import.meta.url).pathname;

/** Time a child gets to load (tsx compiles the sources on a cold start) and report `ready`. */
const STARTUP_ALLOWANCE_MS = 60_000;
/** Added to a child's deadline: closing, the summary's trip through IPC. */
const DEADLINE_MARGIN_MS = 10_000;

/** What a child runs: the options less what cannot cross a process boundary. */
export type ChildRunOptions = Omit<LoadgenOptions, 'onProgress' | 'progressIntervalMs' | 'startGate'>;

export type ToChild =
  | { readonly kind: 'run'; readonly options: ChildRunOptions; readonly deleteOnOrphan: boolean }
  | { readonly kind: 'go' }
  | { readonly kind: 'stop'; readonly deleteSas: boolean; readonly timeoutMs?: number };

export type FromChild =
  | { readonly kind: 'ready' }
  | { readonly kind: 'progress'; readonly progress: LoadgenProgress }
  | { readonly kind: 'done'; readonly summary: LoadgenSummary; readonly samples: LoadgenSamples }
  | { readonly kind: 'stopped'; readonly deleted: number; readonly held: number }
  | { readonly kind: 'error'; readonly message: string };

export interface ProcessesOptions extends LoadgenOptions {
  /** Child processes (>= 1; at most `count` and `concurrency`). */
  readonly processes: number;
  /** Override of each child's deadline to report `done` (ms from its fork); for tests. */
  readonly childDeadlineMs?: number;
  /** Called with each child's pid right after it is forked, in order of its SA range. */
  readonly onProcessStarted?: (index: number, pid: number) => void;
  /** Whether a child whose parent vanished deletes its SAs before exiting (`--delete-at-end`). */
  readonly deleteOnOrphan?: boolean;
}

/** `total` split over `n` parts as evenly as integers allow; part i gets one more while they last. */
export function splitEvenly(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

const now = () => performance.timeOrigin + performance.now();

interface Child {
  readonly index: number;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly firstN: number;
  readonly count: number;
  readonly concurrency: number;
  state: 'starting' | 'ready' | 'running' | 'reported' | 'lost';
  progress?: LoadgenProgress;
  part?: ProcessPart;
  deadline?: NodeJS.Timeout;
  exited: Promise<void>;
  /** Resolves a pending `stop` round trip. */
  onStopped?: (m: { deleted: number; held: number } | undefined) => void;
  held: number;
}

export async function runLoadgenProcesses(o: ProcessesOptions): Promise<LoadgenRun> {
  const n = o.processes;
  if (!Number.isInteger(n) || n < 1) throw new Error('processes must be a positive integer');
  if (n > o.count || n > o.concurrency)
    throw new Error(`processes (${n}) must not exceed count (${o.count}) or concurrency (${o.concurrency})`);
  const counts = splitEvenly(o.count, n);
  const concurrencies = splitEvenly(o.concurrency, n);
  const {
    onProgress,
    progressIntervalMs,
    processes: _p,
    childDeadlineMs,
    onProcessStarted,
    deleteOnOrphan,
    startGate: _g,
    ...shared
  } = o;
  const firstN0 = o.firstN ?? 1;
  const startedAt = now();
  const children: Child[] = [];
  let resolveAll: () => void = () => undefined;
  const allSettled = new Promise<void>((r) => (resolveAll = r));
  let goSent = false;
  let goAt = startedAt;

  const checkReady = () => {
    if (goSent || children.some((c) => c.state === 'starting')) return;
    goSent = true;
    goAt = now();
    for (const c of children) if (c.state === 'ready' && send(c, { kind: 'go' })) c.state = 'running';
  };
  const checkSettled = () => {
    if (children.every((c) => c.state === 'reported' || c.state === 'lost')) resolveAll();
  };
  const send = (c: Child, m: ToChild): boolean => {
    if (!c.proc.connected) return false;
    try {
      // A failed send surfaces as the child's exit (or its deadline), not as an 'error' event.
      c.proc.send(m, (e) => void e);
      return true;
    } catch {
      return false;
    }
  };
  const lose = (
    c: Child,
    reason: 'process-exited' | 'process-timeout' | 'process-error',
    message?: string,
  ) => {
    if (c.state === 'reported' || c.state === 'lost') return;
    c.state = 'lost';
    clearTimeout(c.deadline);
    c.part = {
      kind: 'lost',
      pid: c.pid,
      firstN: c.firstN,
      count: c.count,
      concurrency: c.concurrency,
      reason,
      ...(message ? { message } : {}),
      startedAt: goSent ? goAt : now(),
      lostAt: now(),
    };
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    checkReady();
    checkSettled();
  };

  let firstN = firstN0;
  for (let i = 0; i < n; i++) {
    const count = counts[i]!;
    const concurrency = concurrencies[i]!;
    const proc = fork(CHILD_ENTRY, [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'advanced',
      execArgv: [],
    });
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    const c: Child = {
      index: i,
      proc,
      pid: proc.pid ?? -1,
      firstN,
      count,
      concurrency,
      state: 'starting',
      exited,
      held: 0,
    };
    firstN += count;
    children.push(c);
    onProcessStarted?.(i, c.pid);
    const rounds = Math.ceil(count / concurrency);
    const rateMs = o.rate ? (count / (o.rate / n)) * 1000 : 0;
    const deadlineMs =
      childDeadlineMs ?? STARTUP_ALLOWANCE_MS + rounds * o.timeoutMs + rateMs + DEADLINE_MARGIN_MS;
    c.deadline = setTimeout(
      () => lose(c, 'process-timeout', `no summary within ${Math.round(deadlineMs / 1000)} s`),
      deadlineMs,
    );
    proc.on('message', (m: FromChild) => {
      switch (m.kind) {
        case 'ready':
          if (c.state !== 'starting') return;
          c.state = 'ready';
          if (goSent && send(c, { kind: 'go' })) c.state = 'running';
          return checkReady();
        case 'progress':
          c.progress = m.progress;
          return;
        case 'done':
          if (c.state === 'lost' || c.state === 'reported') return;
          c.state = 'reported';
          clearTimeout(c.deadline);
          c.held = m.summary.held;
          c.part = {
            kind: 'reported',
            pid: c.pid,
            firstN: c.firstN,
            summary: m.summary,
            startedAt: m.samples.startedAt,
            completedAt: m.samples.completedAt,
            latenciesMs: m.samples.latenciesMs,
            cpuMs: m.samples.cpuMs,
          };
          return checkSettled();
        case 'stopped':
          c.held = m.held;
          c.onStopped?.({ deleted: m.deleted, held: m.held });
          return;
        case 'error':
          return lose(c, 'process-error', m.message);
      }
    });
    proc.once('exit', (code, signal) => {
      c.onStopped?.(undefined);
      lose(c, 'process-exited', `exit ${signal ?? code}`);
    });
    proc.once('error', (e) => lose(c, 'process-error', e.message));
    send(c, {
      kind: 'run',
      options: { ...shared, firstN: c.firstN, count, concurrency, ...(o.rate ? { rate: o.rate / n } : {}) },
      deleteOnOrphan: deleteOnOrphan ?? false,
    });
  }

  const progress = (): LoadgenProgress => {
    const p = { count: o.count, attempted: 0, established: 0, failed: 0, inFlight: 0 };
    for (const c of children) {
      if (c.part?.kind === 'lost') {
        p.attempted += c.count;
        p.failed += c.count;
      } else if (c.part?.kind === 'reported') {
        p.attempted += c.part.summary.attempted;
        p.established += c.part.summary.established;
        p.failed += c.part.summary.failed;
      } else if (c.progress) {
        p.attempted += c.progress.attempted;
        p.established += c.progress.established;
        p.failed += c.progress.failed;
        p.inFlight += c.progress.inFlight;
      }
    }
    return { ...p, elapsedMs: goSent ? now() - goAt : 0 };
  };
  const ticker = onProgress
    ? setInterval(() => onProgress(progress()), progressIntervalMs ?? 1000)
    : undefined;
  await allSettled;
  clearInterval(ticker);
  onProgress?.(progress());

  const parts = children.map((c) => c.part!);
  const summary = mergeSummaries(
    { server: o.server, transport: o.transport, count: o.count, concurrency: o.concurrency },
    parts,
  );
  const reported = parts.filter(
    (p): p is Extract<ProcessPart, { kind: 'reported' }> => p.kind === 'reported',
  );
  const samples: LoadgenSamples = {
    startedAt: Math.min(...parts.map((p) => p.startedAt)),
    completedAt: reported.flatMap((p) => p.completedAt).sort((a, b) => a - b),
    latenciesMs: reported.flatMap((p) => p.latenciesMs),
    cpuMs: reported.reduce((a, p) => a + p.cpuMs, 0),
  };

  let stopped: Promise<number> | undefined;
  return {
    summary,
    samples,
    held: () => children.reduce((a, c) => a + (c.state === 'reported' ? c.held : 0), 0),
    stop(so = {}) {
      stopped ??= (async () => {
        const timeoutMs = so.timeoutMs ?? 10_000;
        const answers = await Promise.all(
          children.map(async (c) => {
            if (c.state !== 'reported' || !c.proc.connected) return 0;
            const answer = new Promise<{ deleted: number; held: number } | undefined>(
              (r) => (c.onStopped = r),
            );
            const bound = setTimeout(() => c.onStopped?.(undefined), timeoutMs + DEADLINE_MARGIN_MS);
            send(c, { kind: 'stop', deleteSas: so.deleteSas ?? false, timeoutMs });
            const a = await answer;
            clearTimeout(bound);
            return a?.deleted ?? 0;
          }),
        );
        // Every child is gone before stop() returns: those that do not exit in time are killed.
        await Promise.all(
          children.map(async (c) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
            const t = setTimeout(() => c.proc.kill('SIGKILL'), DEADLINE_MARGIN_MS);
            await c.exited;
            clearTimeout(t);
          }),
        );
        for (const c of children) clearTimeout(c.deadline);
        return answers.reduce((a, b) => a + b, 0);
      })();
      return stopped;
    },
  };
}
