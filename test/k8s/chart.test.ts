/**
 * Issue #12: the Helm chart helm/ikegate on a real kube-apiserver (etcd, kube-apiserver,
 * controller-manager and scheduler built by test/k8s/toolchain.sh, started by control-plane.sh
 * on free loopback ports) with three kwok fake nodes in three zones: lint --strict and render
 * with the default values, every profile in profiles/*.yaml and a value set that turns on every
 * optional object; server-side dry-run with strict field validation of each rendering (the
 * prometheus-operator CRDs installed, so ServiceMonitor/PodMonitor/PrometheusRule are checked
 * against their real schemas); then install --wait (rollouts, EndpointSlices on every Service
 * port), upgrade (worker replicas, config log level), rollback, uninstall, and nothing of the
 * release left afterwards (every listable resource type, found through discovery).
 *
 * What kwok does not prove: no container runs (images are not pulled, probes not executed,
 * preStop hooks never fire); test/k8s/real-pods.test.ts runs the image on a real kubelet.
 * LoadBalancer Services get an address from 198.51.100.0/24 (TEST-NET-2) written into their
 * status by control-plane.sh, as a cloud's controller would; nothing is routed to it.
 * IKEGATE_CHART_DIR points the suite at another chart directory (development only).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { endpointProblems, getJson, releaseLeftovers, rolloutProblems, waitUntil } from './lib/cluster.js';
import { ControlPlane } from './lib/control-plane.js';
import { run } from './lib/run.js';
import { CONTROL_PLANE_TOOLS, K8S_BIN, REPO, k8sToolsMissing, tool } from './lib/toolchain.js';

const CHART = process.env.IKEGATE_CHART_DIR ?? join(REPO, 'helm', 'ikegate');
const PROFILES_DIR = join(CHART, 'profiles');
const NS = 'ikegate-e2e';
const RELEASE = 'gw';
/** The monitoring kinds the chart may render; the CRDs for them are installed before dry-run. */
const MONITORING_API_VERSIONS = [
  'monitoring.coreos.com/v1',
  'monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor',
  'monitoring.coreos.com/v1/PrometheusRule',
];
const CRDS = [
  'monitoring.coreos.com_servicemonitors.yaml',
  'monitoring.coreos.com_podmonitors.yaml',
  'monitoring.coreos.com_prometheusrules.yaml',
];

/** Switches on the objects no profile renders (PodMonitor, Ingress, HPA, NetworkPolicies, dashboards). */
const EVERY_OPTIONAL_OBJECT = [
  'metrics.podMonitor.enabled=true',
  'metrics.prometheusRule.enabled=true',
  'metrics.dashboards.enabled=true',
  'control.ingress.enabled=true',
  'control.ingress.hosts[0].host=vpn-api.example.org',
  'control.ingress.hosts[0].paths[0].path=/',
  'control.ingress.hosts[0].paths[0].pathType=Prefix',
  'edge.autoscaling.enabled=true',
  'networkPolicy.enabled=true',
];

const missingTools = k8sToolsMissing([...CONTROL_PLANE_TOOLS, 'helm', ...CRDS.map((c) => `crds/${c}`)]);
const skip = requirement(
  missingTools || (existsSync(join(CHART, 'Chart.yaml')) ? false : `no chart at ${CHART}`),
);

/** Every profile the chart ships (helm/ikegate/profiles/*.yaml), as [name, path]. */
function profiles(): [string, string][] {
  if (!existsSync(PROFILES_DIR)) return [];
  return readdirSync(PROFILES_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => [f.replace(/\.ya?ml$/, ''), join(PROFILES_DIR, f)]);
}

const helmLocal = (args: readonly string[]) =>
  run(tool('helm'), args, {
    timeoutMs: 120_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(work, 'hc'),
      HELM_CONFIG_HOME: join(work, 'hf'),
      HELM_DATA_HOME: join(work, 'hd'),
    },
  });

let work = '';
let cp: ControlPlane | undefined;

describe(
  'helm/ikegate on a real kube-apiserver with kwok nodes (issue #12)',
  { skip, timeout: 1_200_000 },
  () => {
    const valueSets: [string, string[]][] = [
      ['default values', []],
      ...profiles().map(([n, p]): [string, string[]] => [`profile ${n}`, ['-f', p]]),
      // what no profile turns on, so that every template reaches the API server's validation
      ['every optional object', EVERY_OPTIONAL_OBJECT.flatMap((v) => ['--set', v])],
    ];

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'ikegate-chart-'));
      cp = await ControlPlane.start({ kwokNodes: 3, lbSubnet: '198.51.100.0/24' });
      const crds = await cp.kubectl(
        ['apply', '--server-side', ...CRDS.flatMap((c) => ['-f', join(K8S_BIN, 'crds', c)])],
        {
          timeoutMs: 120_000,
        },
      );
      assert.equal(crds.status, 0, crds.out);
      const est = await cp.kubectl(
        [
          'wait',
          '--for=condition=Established',
          '--timeout=60s',
          'crd/servicemonitors.monitoring.coreos.com',
          'crd/podmonitors.monitoring.coreos.com',
          'crd/prometheusrules.monitoring.coreos.com',
        ],
        { timeoutMs: 70_000 },
      );
      assert.equal(est.status, 0, est.out);
    });

    after(async () => {
      await cp?.stop();
      if (work !== '') rmSync(work, { recursive: true, force: true });
    });

    test('helm lint --strict passes with the default values, every profile and every optional object', async () => {
      for (const [what, args] of valueSets) {
        const r = await helmLocal(['lint', '--strict', CHART, ...args]);
        assert.equal(r.status, 0, `${what}:\n${r.out}`);
      }
    });

    test('helm template renders the default values, every profile in profiles/*.yaml and every optional object', async () => {
      const kinds = new Set<string>();
      for (const [what, args] of valueSets) {
        const r = await helmLocal([
          'template',
          RELEASE,
          CHART,
          '-n',
          NS,
          ...MONITORING_API_VERSIONS.flatMap((v) => ['--api-versions', v]),
          ...args,
        ]);
        assert.equal(r.status, 0, `${what}:\n${r.out}`);
        assert.match(r.stdout, /^kind: Deployment$/m, `${what} renders no Deployment`);
        writeFileSync(join(work, `${what.replace(/\W+/g, '_')}.yaml`), r.stdout);
        for (const m of r.stdout.matchAll(/^kind: (\w+)$/gm)) kinds.add(m[1]!);
      }
      // every optional kind the templates can make is rendered by one of the value sets
      for (const k of [
        'ServiceMonitor',
        'PodMonitor',
        'PrometheusRule',
        'Ingress',
        'HorizontalPodAutoscaler',
        'NetworkPolicy',
        'PodDisruptionBudget',
      ])
        assert.ok(kinds.has(k), `no value set renders a ${k}: ${[...kinds].join(' ')}`);
    });

    test('server-side dry-run with strict field validation accepts every rendering (defaults, each profile, every optional object)', async () => {
      const ns = await cp!.kubectl(['create', 'namespace', NS]);
      assert.equal(ns.status, 0, ns.out);
      try {
        for (const [what] of valueSets) {
          const file = join(work, `${what.replace(/\W+/g, '_')}.yaml`);
          assert.ok(existsSync(file), `${what} was not rendered`);
          const r = await cp!.kubectl(
            ['apply', '--dry-run=server', '--validate=strict', '-n', NS, '-f', file],
            {
              timeoutMs: 120_000,
            },
          );
          assert.equal(r.status, 0, `${what}:\n${r.out}`);
          assert.doesNotMatch(r.stderr, /unknown field|duplicate field/i, `${what}:\n${r.out}`);
        }
      } finally {
        await cp!.kubectl(['delete', 'namespace', NS, '--wait=true', '--timeout=120s'], {
          timeoutMs: 130_000,
        });
      }
    });

    test('helm install --wait: every Deployment and StatefulSet rolls out, every Service has ready endpoints on every port', async () => {
      const r = await cp!.helm([
        'install',
        RELEASE,
        CHART,
        '-n',
        NS,
        '--create-namespace',
        '--wait',
        '--timeout',
        '240s',
      ]);
      assert.equal(r.status, 0, r.out);
      const { checked, problems } = await rolloutProblems(cp!, NS);
      assert.deepEqual(problems, []);
      assert.ok(
        checked.some((n) => n.startsWith('deployment')),
        `no Deployment rolled out: ${checked.join(' ')}`,
      );
      assert.ok(
        checked.some((n) => n.startsWith('statefulset')),
        `no StatefulSet rolled out: ${checked.join(' ')}`,
      );
      let services: string[] = [];
      const why = await waitUntil(60_000, async () => {
        const e = await endpointProblems(cp!, NS);
        services = e.services;
        return e.problems.length === 0 ? null : e.problems.join('\n');
      });
      assert.equal(why, null);
      assert.ok(services.length >= 2, `services with a selector: ${services.join(' ')}`);
      const lb = await getJson(cp!, ['-n', NS, 'get', 'services']);
      for (const s of lb.items.filter((x) => x.spec?.type === 'LoadBalancer'))
        assert.equal(
          s.spec?.externalTrafficPolicy,
          'Local',
          `${s.metadata.name} keeps client source addresses`,
        );
    });

    test('helm upgrade with one more worker and log level debug: the StatefulSet scales and the config ConfigMap changes', async () => {
      const before = await workerStatefulSet();
      assert.equal(await configLogLevel(), 'info');
      const want = (before.replicas ?? 1) + 1;
      const r = await cp!.helm([
        'upgrade',
        RELEASE,
        CHART,
        '-n',
        NS,
        '--reuse-values',
        '--set',
        `worker.replicas=${want}`,
        '--set',
        'config.log.level=debug',
        '--wait',
        '--timeout',
        '240s',
      ]);
      assert.equal(r.status, 0, r.out);
      const after = await workerStatefulSet();
      assert.equal(after.replicas, want);
      assert.equal(after.readyReplicas, want, 'every worker pod Ready after the upgrade');
      assert.equal(await configLogLevel(), 'debug');
      const rev = await cp!.helm(['history', RELEASE, '-n', NS, '-o', 'json']);
      assert.equal(rev.status, 0, rev.out);
      assert.equal((JSON.parse(rev.stdout) as { revision: number }[]).length, 2);
    });

    test('helm rollback to revision 1 restores the installed worker count and log level', async () => {
      const values = await cp!.helm([
        'get',
        'values',
        RELEASE,
        '-n',
        NS,
        '--revision',
        '1',
        '--all',
        '-o',
        'json',
      ]);
      assert.equal(values.status, 0, values.out);
      const want = (JSON.parse(values.stdout) as { worker?: { replicas?: number } }).worker?.replicas;
      assert.equal(typeof want, 'number', 'worker.replicas in the chart values');
      const r = await cp!.helm(['rollback', RELEASE, '1', '-n', NS, '--wait', '--timeout', '240s']);
      assert.equal(r.status, 0, r.out);
      const why = await waitUntil(120_000, async () => {
        const s = await workerStatefulSet();
        return s.replicas === want && s.readyReplicas === want
          ? null
          : `replicas ${s.replicas} ready ${s.readyReplicas}, want ${want}`;
      });
      assert.equal(why, null);
      assert.equal(await configLogLevel(), 'info');
    });

    test('helm uninstall leaves nothing of the release: no object in its namespace, none labelled with it anywhere', async () => {
      const r = await cp!.helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '240s']);
      assert.equal(r.status, 0, r.out);
      let left: string[] = [];
      // pods end through their graceful deletion; everything else is gone when uninstall returns
      const why = await waitUntil(120_000, async () => {
        left = await releaseLeftovers(cp!, NS, RELEASE);
        return left.length === 0 ? null : left.join('\n');
      });
      assert.equal(why, null, `left behind:\n${left.join('\n')}`);
    });
  },
);

async function workerStatefulSet(): Promise<{ replicas?: number; readyReplicas?: number }> {
  const list = await getJson(cp!, [
    '-n',
    NS,
    'get',
    'statefulsets',
    '-l',
    'app.kubernetes.io/component=worker',
  ]);
  assert.equal(list.items.length, 1, 'one worker StatefulSet labelled app.kubernetes.io/component=worker');
  const s = list.items[0]!;
  return {
    replicas: s.spec?.replicas as number | undefined,
    readyReplicas: s.status?.readyReplicas as number | undefined,
  };
}

/** log.level of the ikegate config rendered into the release's <fullname>-config ConfigMap. */
async function configLogLevel(): Promise<string | undefined> {
  const cms = await getJson(cp!, [
    '-n',
    NS,
    'get',
    'configmaps',
    '-l',
    `app.kubernetes.io/instance=${RELEASE}`,
  ]);
  const cm = cms.items.find((c) => c.metadata.name.endsWith('-config'));
  assert.ok(cm, `a <fullname>-config ConfigMap among ${cms.items.map((c) => c.metadata.name).join(' ')}`);
  for (const v of Object.values(cm.data ?? {})) {
    try {
      const level = (JSON.parse(v) as { log?: { level?: string } }).log?.level;
      if (level !== undefined) return level;
    } catch {
      // not the JSON config (e.g. a script)
    }
  }
  return undefined;
}
