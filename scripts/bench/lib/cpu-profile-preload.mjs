// CPU profile of every node process a bench starts, where `--cpu-prof` cannot be passed: node
// refuses --cpu-prof in NODE_OPTIONS, and the benches start `ikegate` through `ip netns exec`.
// Usage: IKEGATE_CPU_PROFILE_DIR=/tmp/prof \
//          NODE_OPTIONS="--import $PWD/scripts/bench/lib/cpu-profile-preload.mjs" npm run bench tunnel
// Each process writes <dir>/<pid>-<command>.cpuprofile when it exits (process.exit or end of
// work; not on SIGKILL). Read them with scripts/profile-summary.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, join } from 'node:path';

const dir = process.env.IKEGATE_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  const script = basename(process.argv[1] ?? 'node').replace(/\.[mc]?[jt]s$/, '');
  const command = [script, process.argv[2]].filter((x) => x && !x.startsWith('-')).join('-');
  process.once('exit', () => {
    // The in-process inspector session answers synchronously, so this runs before the exit.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, `${process.pid}-${command}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
