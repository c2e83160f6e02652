// The config init container: composes the ikegate configuration file that the process reads.
// Usage: node compose-config.mjs <rendered.json> <output file>
// The chart renders the configuration to JSON in a ConfigMap; the one secret that the file itself
// must hold (cluster.redis.password: the file has no password-file option) comes from the file
// named by $IKEGATE_REDIS_PASSWORD_FILE, when set. The output is written with mode 0640 (the pod's fsGroup
// may read it: the worker runs as UID 0 without CAP_DAC_OVERRIDE) to an emptyDir only this pod sees. Exits 1, naming the file, when an input cannot be read.
import { readFileSync, writeFileSync } from 'node:fs';

const [source, target] = process.argv.slice(2);
if (!source || !target) {
  console.error('usage: compose-config.mjs <rendered.json> <output>');
  process.exit(2);
}
function read(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    console.error(`compose-config: cannot read ${file}: ${e.code ?? e.message}`);
    process.exit(1);
  }
}
const config = JSON.parse(read(source));
const passwordFile = process.env.IKEGATE_REDIS_PASSWORD_FILE;
if (passwordFile) {
  const password = read(passwordFile).replace(/\r?\n$/, '');
  if (password === '') {
    console.error(`compose-config: ${passwordFile} is empty`);
    process.exit(1);
  }
  config.cluster.redis.password = password;
}
writeFileSync(target, JSON.stringify(config, null, 2) + '\n', { mode: 0o640 });
console.log(`compose-config: wrote ${target}${passwordFile ? ' (with the Redis password)' : ''}`);
