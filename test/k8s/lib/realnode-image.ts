/**
 * The ikegate image for the real-node suites: built by scripts/image.sh (podman, no registry pull),
 * run with podman's runc. Podman's defaults fail on this machine kind (cgroup v1 "hybrid", no
 * CAP_SYS_RESOURCE): crun refuses hybrid cgroups and raising RLIMIT_NOFILE/NPROC is refused, so
 * every container here runs with `--runtime runc` and lowered ulimits (see PODMAN_RUN).
 */
import { spawnSync } from 'node:child_process';

const REPO = new URL('../../../', import.meta.url).pathname;

/** The tag the real-node suites build and run (scripts/image.sh's default). */
export const IMAGE = 'localhost/ikegate:dev';

/** `podman run` with what this machine needs; callers add the security options they test. */
export const PODMAN_RUN = [
  '--runtime',
  'runc',
  'run',
  '--ulimit',
  'nofile=20000:20000',
  '--ulimit',
  'nproc=32768:32768',
] as const;

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why the image suites cannot run here, or false. */
export function podmanMissing(): string | false {
  if (process.getuid?.() !== 0) return 'not root (podman with runc and network namespaces need root)';
  for (const c of ['podman', 'runc', 'apt-get', 'dpkg-deb'])
    if (!has(c)) return `${c} not found (apt-get install podman runc)`;
  return false;
}

export interface Result {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function podman(args: readonly string[], timeoutMs = 120_000): Result {
  const r = spawnSync('podman', args, { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  return {
    status: r.status ?? -1,
    stdout: r.stdout ?? '',
    stderr: `${r.stderr ?? ''}${r.error?.message ?? ''}`,
  };
}

/**
 * Builds `tag` with scripts/image.sh (its rootfs and node_modules are cached, so a rebuild after a
 * source change takes seconds). Throws with the script's output when the build fails.
 */
export function buildImage(tag: string = IMAGE): { tag: string; seconds: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['scripts/image.sh', 'build', '--tag', tag], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 900_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`scripts/image.sh build failed (${r.status}): ${r.stderr}${r.stdout}`);
  return { tag, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}
