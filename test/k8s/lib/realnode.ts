/**
 * The real node of test/k8s/node.sh (kubelet + containerd + runc + CNI bridge + kube-proxy +
 * CoreDNS, the control plane, all inside the network namespace `ikg-k8snode`) seen from a test:
 * start and stop it, kubectl and helm against it, commands inside its namespace, and the two
 * namespaces outside the cluster the tests route through it:
 *
 *   client ns (10.77.1.2) --veth-- node ns (10.77.1.1; LoadBalancer addresses 10.77.2.0/24 are
 *                                   routed by kube-proxy to the edge pods)
 *   host ns   (10.77.3.2) --veth-- node ns (10.77.3.1): a network "behind" the cluster that the
 *                                   workers reach (masqueraded to their pod IP) for the tunnel's pings
 *
 * Nothing has an address outside these namespaces.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';
import { K8S_BIN, k8sToolsMissing } from './toolchain.js';

const NODE_SH = new URL('../node.sh', import.meta.url).pathname;

export const CLIENT_NS = 'ikg-rp-client';
export const HOST_NS = 'ikg-rp-host';
export const CLIENT_IP = '10.77.1.2';
export const HOST_IP = '10.77.3.2';
export const HOST_CIDR = '10.77.3.0/24';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Why a real node cannot run here, or false. */
export function realNodeMissing(): string | false {
  if (process.getuid?.() !== 0) return 'not root (network namespaces, containerd and the kubelet need root)';
  for (const c of ['podman', 'runc', 'iptables', 'ip', 'go', 'openssl', 'curl', 'ping'])
    if (!has(c)) return `${c} not found (.ci/run installs it)`;
  if (!existsSync('/usr/lib/cni/bridge'))
    return '/usr/lib/cni/bridge not found (apt-get install containernetworking-plugins)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun missing (workers and the client need TUN)';
  return k8sToolsMissing([
    'etcd',
    'kube-apiserver',
    'kube-controller-manager',
    'kube-scheduler',
    'kubectl',
    'kubelet',
    'kube-proxy',
    'helm',
  ]);
}

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

export class RealNode {
  env: Record<string, string> = {};
  /** Milliseconds `node.sh up` took. */
  upMs = 0;

  get kubeconfig(): string {
    return this.env.KUBECONFIG ?? '';
  }
  get ns(): string {
    return this.env.NODE_NS ?? 'ikg-k8snode';
  }

  /** `node.sh up` with these images imported; throws with its output when the node does not come up Ready. */
  async up(images: readonly string[]): Promise<void> {
    const t0 = Date.now();
    const r = await run('bash', [NODE_SH, 'up'], {
      timeoutMs: 1_500_000,
      env: { ...process.env, NODE_IMAGES: images.join(' ') },
    });
    this.upMs = Date.now() - t0;
    if (r.status !== 0) throw new Error(`node.sh up failed:\n${r.out}`);
    for (const line of r.stdout.split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m) this.env[m[1]!] = m[2]!;
    }
    if (!this.kubeconfig) throw new Error(`node.sh up printed no KUBECONFIG:\n${r.out}`);
  }

  async importImages(images: readonly string[]): Promise<RunResult> {
    return run('bash', [NODE_SH, 'import', ...images], { timeoutMs: 600_000 });
  }

  async down(): Promise<RunResult> {
    return run('bash', [NODE_SH, 'down'], { timeoutMs: 300_000 });
  }

  /** kubectl in the node's namespace (the API server listens on the node address there). */
  kubectl(args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
    return run(
      'nsenter',
      [`--net=/run/netns/${this.ns}`, join(K8S_BIN, 'kubectl'), '--kubeconfig', this.kubeconfig, ...args],
      {
        timeoutMs,
      },
    );
  }

  async json<T>(args: readonly string[]): Promise<T> {
    const r = await this.kubectl([...args, '-o', 'json']);
    if (r.status !== 0) throw new Error(r.out);
    return JSON.parse(r.stdout) as T;
  }

  /** helm in the node's namespace, with its caches under `helmHome`. */
  helm(args: readonly string[], helmHome: string, timeoutMs = 900_000): Promise<RunResult> {
    return run(
      'nsenter',
      [`--net=/run/netns/${this.ns}`, join(K8S_BIN, 'helm'), '--kubeconfig', this.kubeconfig, ...args],
      {
        timeoutMs,
        env: {
          ...process.env,
          HELM_CACHE_HOME: join(helmHome, 'cache'),
          HELM_CONFIG_HOME: join(helmHome, 'config'),
          HELM_DATA_HOME: join(helmHome, 'data'),
        },
      },
    );
  }

  /** A command inside the node's network namespace. */
  inNode(cmd: string, args: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], { timeoutMs });
  }

  /** The client and host namespaces, each joined to the node's namespace by a veth pair. */
  attachOutside(): void {
    this.detachOutside();
    const lb = this.env.LB_CIDR ?? '10.77.2.0/24';
    const pairs: [string, string, string, string, string][] = [
      // ns, its link, node's link, its address, node's address
      [CLIENT_NS, 'ikgrpc1', 'ikgrpc0', CLIENT_IP, '10.77.1.1'],
      [HOST_NS, 'ikgrph1', 'ikgrph0', HOST_IP, '10.77.3.1'],
    ];
    for (const [ns, link, nodeLink, addr, nodeAddr] of pairs) {
      ip('netns', 'add', ns);
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'add', link, 'type', 'veth', 'peer', 'name', nodeLink, 'netns', this.ns);
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', link);
      ip('-n', ns, 'link', 'set', link, 'up');
      ip('-n', this.ns, 'addr', 'add', `${nodeAddr}/24`, 'dev', nodeLink);
      ip('-n', this.ns, 'link', 'set', nodeLink, 'up');
    }
    // the client knows the load balancer's addresses are behind the node; the host answers via it
    ip('-n', CLIENT_NS, 'route', 'add', lb, 'via', '10.77.1.1');
    ip('-n', HOST_NS, 'route', 'add', 'default', 'via', '10.77.3.1');
  }

  detachOutside(): void {
    for (const ns of [CLIENT_NS, HOST_NS]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** ping from `netns` (source `src`) to `dst`: how many of `count` replies came back. */
export function pingFrom(netns: string, src: string, dst: string, count: number): number {
  const r = spawnSync(
    'ip',
    ['netns', 'exec', netns, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', '-I', src, dst],
    {
      encoding: 'utf8',
      timeout: 30_000,
    },
  );
  return Number(/(\d+) received/.exec(r.stdout ?? '')?.[1] ?? 0);
}
