/**
 * Where test/k8s/toolchain.sh puts the Kubernetes, Helm and Terraform test tools, and what is
 * missing there. Tests never build anything: `.ci/run` runs toolchain.sh beforehand, so under
 * CI=true a missing tool is a failure (see `requirement` in @ikegate/testkit).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const K8S_DIR = new URL('..', import.meta.url).pathname;
export const REPO = new URL('../../..', import.meta.url).pathname;
export const TOOLCHAIN_SH = join(K8S_DIR, 'toolchain.sh');
export const CONTROL_PLANE_SH = join(K8S_DIR, 'control-plane.sh');

/** The toolchain's binary directory (same rule as toolchain.sh). */
export const K8S_BIN =
  process.env.K8S_BIN ??
  join(process.env.IKEGATE_K8S_CACHE ?? join(homedir(), '.cache', 'ikegate-k8s'), 'bin');

export const CONTROL_PLANE_TOOLS = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
  'kwok',
  'kwok-stages/pod-ready.yaml',
] as const;

/** Why the tools are not all there, or false. */
export function k8sToolsMissing(tools: readonly string[]): string | false {
  const gone = tools.filter((t) => !existsSync(join(K8S_BIN, t)));
  return gone.length === 0
    ? false
    : `${gone.join(', ')} not in ${K8S_BIN}: run \`bash test/k8s/toolchain.sh\``;
}

export const tool = (name: string): string => join(K8S_BIN, name);
