/**
 * The child side of `ikegate loadgen --processes N` (protocol in processes.ts): waits for `run`,
 * builds its run, reports `ready`, starts on `go`, reports `progress` and `done`, and on `stop`
 * deletes (optionally), closes and exits. Signals are the parent's business: SIGINT/SIGTERM are
 * ignored here, and a vanished parent (IPC channel closed) stops the run.
 */
import { runLoadgen, type LoadgenRun } from './loadgen.js';
import type { FromChild, ToChild } from './processes.js';

function send(m: FromChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    try {
      process.send!(m, undefined, {}, () => resolve());
    } catch {
      resolve();
    }
  });
}

export async function runLoadgenChild(): Promise<void> {
  if (!process.send) throw new Error('loadgen-child runs only as a forked child of ikegate loadgen');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => undefined);
  let go: () => void = () => undefined;
  const started = new Promise<void>((r) => (go = r));
  let run: LoadgenRun | undefined;
  let deleteOnOrphan = false;
  let finishing = false;
  const finish = async (deleteSas: boolean, timeoutMs?: number) => {
    if (finishing) return;
    finishing = true;
    const deleted = run
      ? await run.stop({ deleteSas, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })
      : 0;
    await send({ kind: 'stopped', deleted, held: run?.held() ?? 0 });
    process.exit(0);
  };
  process.on('disconnect', () => void finish(deleteOnOrphan));
  process.on('message', (m: ToChild) => {
    switch (m.kind) {
      case 'run':
        deleteOnOrphan = m.deleteOnOrphan;
        runLoadgen({
          ...m.options,
          startGate: async () => {
            await send({ kind: 'ready' });
            await started;
          },
          onProgress: (progress) => void send({ kind: 'progress', progress }),
          progressIntervalMs: 500,
        }).then(
          async (r) => {
            run = r;
            await send({ kind: 'done', summary: r.summary, samples: r.samples });
          },
          async (e: unknown) => {
            await send({ kind: 'error', message: e instanceof Error ? e.message : String(e) });
            process.exit(1);
          },
        );
        return;
      case 'go':
        return go();
      case 'stop':
        return void finish(m.deleteSas, m.timeoutMs);
    }
  });
}
