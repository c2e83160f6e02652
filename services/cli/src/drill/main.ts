/** `ikegate drill`: arguments, progress on stderr, the summary, `--json` and `--html`. */
import { writeFileSync } from 'node:fs';
import { DRILL_USAGE, DrillUsageError, parseDrillArgs, type DrillOptions } from './args.js';
import { DrillError, type DrillUi, pendingCleanups, runDrill } from './drill.js';
import { htmlReport } from './report-html.js';
import { formatResult, progressBar } from './stats.js';

export { DRILL_USAGE } from './args.js';

interface Out {
  write(s: string): unknown;
  readonly isTTY?: boolean;
}

/** A progress display on `err`: one rewritten line on a terminal, a line every few seconds otherwise. */
export function progressUi(err: Out, quiet: boolean): DrillUi & { end(): void } {
  const tty = err.isTTY === true;
  let phase = '';
  let lastLine = 0;
  let open = false;
  return {
    step(what) {
      if (quiet) return;
      if (open) err.write('\n');
      open = false;
      phase = what;
      if (!tty) err.write(`drill: ${what}\n`);
    },
    progress(done, total, label) {
      if (quiet) return;
      const line = `${phase}: ${progressBar(done, total, 30, label)}`;
      if (tty) {
        err.write(`\r${line}\x1b[K`);
        open = true;
      } else if (Date.now() - lastLine >= 3000) {
        lastLine = Date.now();
        err.write(`drill: ${line}\n`);
      }
    },
    end() {
      if (open && !quiet) err.write('\n');
      open = false;
    },
  };
}

/** Runs `ikegate drill`; returns the exit status (0 passed, 1 a bar failed, 2 usage, 3 could not run). */
export async function drillMain(
  argv: readonly string[],
  out: Out = process.stdout,
  err: Out = process.stderr,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(DRILL_USAGE);
    return 0;
  }
  let o: DrillOptions;
  try {
    o = parseDrillArgs(argv);
  } catch (e) {
    if (!(e instanceof DrillUsageError)) throw e;
    err.write(`ikegate drill: ${e.message}\n\n${DRILL_USAGE}`);
    return 2;
  }
  const ui = progressUi(err, o.quiet);
  // Interrupted: stop what the drill started (processes, SAs), then exit 130.
  const onSignal = () => {
    ui.end();
    err.write('ikegate drill: interrupted, cleaning up\n');
    void Promise.all([...pendingCleanups].map((c) => c())).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result;
  try {
    result = await runDrill(o, ui);
  } catch (e) {
    ui.end();
    if (e instanceof DrillError || (e as Error).message?.startsWith('drill:')) {
      err.write(`ikegate drill: ${(e as Error).message}\n`);
      return 3;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  ui.end();
  if (o.html) writeFileSync(o.html, htmlReport(result));
  if (o.json) out.write(JSON.stringify(result) + '\n');
  else out.write(formatResult(result));
  if (o.json && !o.quiet) err.write(formatResult(result));
  return result.failures.length === 0 ? 0 : 1;
}
