// Builds the native UDP addon (services/transport/native/udp_batch.c -> build/udp_batch.node) with
// the system's C compiler ($CC, else cc) against the Node-API headers of the node running this. Run
// by `npm ci`/`npm install` (postinstall) and by `npm run build:native`. A machine without a
// compiler or the headers still installs: ikegate then receives UDP through node's dgram, and says
// so in its `udp-receive-buffer` log line. Under CI=true the transport tests fail without the addon.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'services/transport/native/udp_batch.c');
const out = join(root, 'services/transport/native/build/udp_batch.node');

function skip(why) {
  console.warn(`build-native: native UDP receive not built (${why}); ikegate falls back to node:dgram`);
  process.exit(0);
}

if (process.platform !== 'linux') skip(`${process.platform} is not Linux`);
const include = [
  resolve(dirname(process.execPath), '../include/node'),
  '/usr/include/node',
  '/usr/local/include/node',
].find((dir) => existsSync(join(dir, 'node_api.h')) && existsSync(join(dir, 'uv.h')));
if (include === undefined) skip(`no node_api.h and uv.h for node ${process.version}`);
const cc = process.env.CC || 'cc';
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const args = ['-std=gnu11', '-O2', '-fPIC', '-shared', '-Wall', '-Wextra', '-I', include, '-o', tmp, source];
const r = spawnSync(cc, args, { encoding: 'utf8' });
if (r.error) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) {
  rmSync(tmp, { force: true });
  process.stderr.write(r.stderr);
  skip(`${cc} exited ${r.status}`);
}
if (r.stderr) process.stderr.write(r.stderr);
renameSync(tmp, out);
console.log(`build-native: ${out} (${cc}, headers ${include})`);
