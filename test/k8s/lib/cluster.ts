/**
 * Checks on a release in a real API server: rollouts, Service endpoints (EndpointSlices) and
 * what a release leaves behind, found through the discovery API rather than a fixed kind list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlane } from './control-plane.js';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: unknown[];
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
}

export async function getJson<T = { items: KubeObject[] }>(
  cp: ControlPlane,
  args: readonly string[],
): Promise<T> {
  const r = await cp.kubectl([...args, '-o', 'json']);
  if (r.status !== 0) throw new Error(r.out);
  return JSON.parse(r.stdout) as T;
}

/** Polls `check` (null = done, string = why not yet) every 500 ms until `timeoutMs`. */
export async function waitUntil(
  timeoutMs: number,
  check: () => Promise<string | null>,
): Promise<string | null> {
  const until = Date.now() + timeoutMs;
  let why: string | null = 'not checked';
  for (let i = 0; i < 10_000 && Date.now() < until; i++) {
    why = await check();
    if (why === null) return null;
    await sleep(500);
  }
  return why;
}

/** `kubectl rollout status` of every Deployment and StatefulSet in `ns`; the failures. */
export async function rolloutProblems(
  cp: ControlPlane,
  ns: string,
): Promise<{ checked: string[]; problems: string[] }> {
  const r = await cp.kubectl(['-n', ns, 'get', 'deployments,statefulsets', '-o', 'name']);
  if (r.status !== 0) return { checked: [], problems: [r.out] };
  const names = r.stdout.split('\n').filter(Boolean);
  const problems: string[] = [];
  for (const n of names) {
    const s = await cp.kubectl(['-n', ns, 'rollout', 'status', n, '--timeout=120s'], { timeoutMs: 130_000 });
    if (s.status !== 0) problems.push(`${n}: ${s.out}`);
  }
  return { checked: names, problems };
}

interface ServicePort {
  name?: string;
  port: number;
  protocol?: string;
}
interface EndpointSlice {
  ports?: { name?: string; port?: number; protocol?: string }[] | null;
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] | null;
}

/**
 * Every Service with a selector in `ns`: for each of its ports (name + protocol) an
 * EndpointSlice port exists, and that slice has at least one ready endpoint. This is what proves
 * that selectors and (named) targetPorts resolve to real pod ports. Returns what is missing.
 */
export async function endpointProblems(
  cp: ControlPlane,
  ns: string,
): Promise<{ services: string[]; problems: string[] }> {
  const svcs = await getJson(cp, ['-n', ns, 'get', 'services']);
  const withSelector = svcs.items.filter((s) => s.spec?.selector !== undefined);
  const problems: string[] = [];
  for (const svc of withSelector) {
    const slices = await getJson<{ items: EndpointSlice[] }>(cp, [
      '-n',
      ns,
      'get',
      'endpointslices',
      '-l',
      `kubernetes.io/service-name=${svc.metadata.name}`,
    ]);
    for (const p of (svc.spec?.ports ?? []) as ServicePort[]) {
      const proto = p.protocol ?? 'TCP';
      const ready = slices.items.filter(
        (sl) =>
          (sl.ports ?? []).some(
            (q) => (q.name ?? '') === (p.name ?? '') && (q.protocol ?? 'TCP') === proto,
          ) && (sl.endpoints ?? []).some((e) => e.conditions?.ready === true),
      );
      if (ready.length === 0)
        problems.push(
          `service ${svc.metadata.name} port ${p.name ?? ''} ${p.port}/${proto}: no ready endpoint`,
        );
    }
  }
  return { services: withSelector.map((s) => s.metadata.name), problems };
}

/** Objects the API server creates by itself in every namespace; not a release's leftovers. */
const BUILTIN = new Set(['ServiceAccount/default', 'ConfigMap/kube-root-ca.crt']);
/** Records of what happened, not objects a release owns. */
const IGNORED_RESOURCES = new Set(['events', 'events.events.k8s.io']);

/**
 * Everything that remains of a release: every object of every listable namespaced resource type
 * in `ns` (other than what Kubernetes puts into each namespace), plus every object of any type,
 * cluster-scoped or in another namespace, that carries the release's instance label or Helm's
 * release annotation.
 */
export async function releaseLeftovers(cp: ControlPlane, ns: string, release: string): Promise<string[]> {
  const list = async (namespaced: boolean): Promise<string[]> => {
    const r = await cp.kubectl(['api-resources', '--verbs=list', `--namespaced=${namespaced}`, '-o', 'name']);
    if (r.status !== 0) throw new Error(r.out);
    return r.stdout.split('\n').filter((n) => n !== '' && !IGNORED_RESOURCES.has(n));
  };
  const namespaced = await list(true);
  const clusterScoped = await list(false);
  const left: string[] = [];
  const name = (o: KubeObject): string => `${o.kind}/${o.metadata.name}`;
  const inNs = await getJson(cp, ['-n', ns, 'get', namespaced.join(',')]);
  for (const o of inNs.items) if (!BUILTIN.has(name(o))) left.push(`${ns}: ${name(o)}`);
  const ofRelease = (o: KubeObject): boolean =>
    o.metadata.labels?.['app.kubernetes.io/instance'] === release ||
    o.metadata.annotations?.['meta.helm.sh/release-name'] === release;
  const everywhere = await getJson(cp, ['get', namespaced.join(','), '--all-namespaces']);
  for (const o of everywhere.items)
    if (o.metadata.namespace !== ns && ofRelease(o)) left.push(`${o.metadata.namespace ?? ''}: ${name(o)}`);
  const cluster = await getJson(cp, ['get', clusterScoped.join(',')]);
  for (const o of cluster.items) if (ofRelease(o)) left.push(`cluster: ${name(o)}`);
  return left;
}
