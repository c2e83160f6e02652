/**
 * A real, loopback-only Kubernetes control plane for one test file, started and stopped through
 * test/k8s/control-plane.sh on free ports, with its own state directory. The script's watchdog
 * (K8S_OWNER_PID) stops it if this process dies before `stop()` runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './run.js';
import { CONTROL_PLANE_SH, K8S_BIN, tool } from './toolchain.js';
import { freePort } from '@ikegate/testkit';

export interface ControlPlaneOptions {
  /** kwok fake nodes (pods bound to them go Running/Ready; no container runs). */
  readonly kwokNodes?: number;
  /** A /24 whose addresses LoadBalancer Services get in their status, as a cloud would give. */
  readonly lbSubnet?: string;
}

export class ControlPlane {
  readonly dir: string;
  readonly kubeconfig: string;
  readonly #env: NodeJS.ProcessEnv;

  private constructor(dir: string, env: NodeJS.ProcessEnv) {
    this.dir = dir;
    this.kubeconfig = join(dir, 'kubeconfig');
    this.#env = env;
  }

  /** Starts etcd, kube-apiserver, controller-manager, scheduler (+ kwok); throws with the log tail. */
  static async start(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
    const parent = mkdtempSync(join(tmpdir(), 'ikegate-k8s-'));
    const dir = join(parent, 'cp');
    // distinct free ports; etcd's peer port is its own free port, not client + 1
    const ports = new Set<number>();
    while (ports.size < 4) ports.add(await freePort());
    const [api, etcd, peer, kwok] = [...ports] as [number, number, number, number];
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      K8S_BIN,
      K8S_DIR: dir,
      K8S_APISERVER_PORT: String(api),
      K8S_ETCD_PORT: String(etcd),
      K8S_ETCD_PEER_PORT: String(peer),
      K8S_KWOK_PORT: String(kwok),
      K8S_KWOK_NODES: String(opts.kwokNodes ?? 0),
      K8S_OWNER_PID: String(process.pid),
      ...(opts.lbSubnet !== undefined ? { K8S_LB_SUBNET: opts.lbSubnet } : {}),
    };
    const cp = new ControlPlane(dir, env);
    const r = await run('bash', [CONTROL_PLANE_SH, 'up'], { env, timeoutMs: 240_000 });
    if (r.status !== 0) {
      await cp.stop();
      rmSync(parent, { recursive: true, force: true });
      throw new Error(`control plane did not start:\n${r.out}`);
    }
    return cp;
  }

  /** Environment for tools that talk to this API server (KUBECONFIG, HELM_* state dirs). */
  get env(): NodeJS.ProcessEnv {
    const base = join(this.dir, '..');
    return {
      ...process.env,
      KUBECONFIG: this.kubeconfig,
      HELM_CACHE_HOME: join(base, 'helm-cache'),
      HELM_CONFIG_HOME: join(base, 'helm-config'),
      HELM_DATA_HOME: join(base, 'helm-data'),
      PATH: `${K8S_BIN}:${process.env.PATH ?? ''}`,
    };
  }

  kubectl(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return run(tool('kubectl'), args, { env: this.env, ...opts });
  }

  helm(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<RunResult> {
    return run(tool('helm'), args, { env: this.env, timeoutMs: opts.timeoutMs ?? 300_000 });
  }

  /** Stops every process the script started and removes the state (idempotent). */
  async stop(): Promise<void> {
    await run('bash', [CONTROL_PLANE_SH, 'down'], { env: this.#env, timeoutMs: 60_000 });
    rmSync(join(this.dir, '..'), { recursive: true, force: true });
  }
}
