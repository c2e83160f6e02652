/**
 * Issue #12: the configuration the chart renders is one ikegate accepts. For the default values
 * and every profile (helm/ikegate/profiles/*.yaml), `helm template` renders the chart; the config
 * file in the <fullname>-config ConfigMap is written to disk and loaded with @ikegate/config's
 * loadConfig, the same loader `ikegate edge|worker|control --config` uses. Then the rendered pods
 * are checked against that config: every file it names is mounted in the containers that read
 * it, the edge's container ports are its listeners, the worker's --tun is its TUN name, and the
 * access file the chart makes parses with the control API's own AccessControl and admits the
 * lifecycle, admin and test tokens with their roles. What is loaded is what a pod reads: the
 * config init script (files/compose-config.mjs) runs for real on the ConfigMap, adding the Redis
 * password when the pod is given one.
 * A values change that makes an invalid config is refused by the loader with its field path.
 *
 * helm: $IKEGATE_HELM, else the toolchain's (test/k8s/toolchain.sh) in
 * ${IKEGATE_K8S_CACHE:-~/.cache/ikegate-k8s}/bin/helm; under CI=true a missing helm fails.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Config, ConfigError, loadConfig } from '@ikegate/config';
import { AccessControl } from '@ikegate/control';
import { createLogger } from '@ikegate/telemetry';
import { requirement } from '@ikegate/testkit';
import { parseAllDocuments } from 'yaml';

const REPO = new URL('../..', import.meta.url).pathname;
const CHART = join(REPO, 'helm', 'ikegate');
const HELM =
  process.env.IKEGATE_HELM ??
  join(process.env.IKEGATE_K8S_CACHE ?? join(homedir(), '.cache', 'ikegate-k8s'), 'bin', 'helm');
const skip = requirement(
  existsSync(HELM)
    ? false
    : `helm not found at ${HELM}: set IKEGATE_HELM or run \`bash test/k8s/toolchain.sh\``,
);

interface Mount {
  name: string;
  mountPath: string;
}
interface Container {
  name: string;
  args?: string[];
  ports?: { name: string; containerPort: number; protocol: string }[];
  volumeMounts?: Mount[];
}
interface Volume {
  name: string;
  secret?: { items?: { key: string; path: string }[] };
  configMap?: { items?: { key: string; path: string }[] };
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
}
interface K8sObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: { template?: { spec: PodSpec }; ports?: { name: string; targetPort: string; protocol: string }[] };
}

const work = mkdtempSync(join(tmpdir(), 'ikegate-chart-config-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** `helm template` of the chart; the rendered objects, or the failure. */
function render(args: readonly string[]): K8sObject[] {
  const r = spawnSync(HELM, ['template', 'cfg', CHART, '-n', 'vpn', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(work, 'hc'),
      HELM_CONFIG_HOME: join(work, 'hf'),
      HELM_DATA_HOME: join(work, 'hd'),
    },
  });
  assert.equal(r.status, 0, `helm template ${args.join(' ')}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function find(objects: readonly K8sObject[], kind: string, suffix: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  assert.ok(o, `no ${kind} *${suffix}`);
  return o;
}

let n = 0;
/**
 * What a pod's config init container does, for real: files/compose-config.mjs on the rendered
 * ConfigMap, with a Redis password file when the rendered init container is given one. Then the
 * result is loaded with ikegate's loader, as `ikegate ... --config` loads it.
 */
function loadRendered(objects: readonly K8sObject[]): { config: Config; file: string } {
  const text = find(objects, 'ConfigMap', '-config').data?.['ikegate.json'];
  assert.ok(text, 'the config ConfigMap has ikegate.json');
  const rendered = join(work, `rendered-${++n}.json`);
  writeFileSync(rendered, text);
  const init = find(objects, 'Deployment', '-control').spec!.template!.spec.initContainers!.find(
    (c) => c.name === 'config',
  ) as (Container & { env?: { name: string; value: string }[] }) | undefined;
  assert.ok(init, 'the config init container');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.IKEGATE_REDIS_PASSWORD_FILE;
  if (init.env?.some((e) => e.name === 'IKEGATE_REDIS_PASSWORD_FILE')) {
    env.IKEGATE_REDIS_PASSWORD_FILE = join(work, `password-${n}`);
    writeFileSync(env.IKEGATE_REDIS_PASSWORD_FILE, 'a-redis-password-0123\n');
  }
  const file = join(work, `ikegate-${n}.json`);
  const r = spawnSync(process.execPath, [join(CHART, 'files', 'compose-config.mjs'), rendered, file], {
    encoding: 'utf8',
    env,
  });
  assert.equal(r.status, 0, `compose-config.mjs: ${r.stderr}`);
  return { config: loadConfig(file), file };
}

/** The files a config makes a role read at start, by role. */
function filesRead(c: Config, role: 'edge' | 'worker' | 'control'): string[] {
  const cl = c.cluster!;
  const out = [cl.kek.file, ...(c.control.accessFile ? [c.control.accessFile] : [])];
  if (role !== 'control' && cl.relayTls)
    out.push(cl.relayTls.ca, ...[cl.relayTls.certificate, cl.relayTls.key].filter((f): f is string => !!f));
  if (role === 'edge' && c.listen.tls.enabled && c.listen.tls.certificate)
    out.push(c.listen.tls.certificate, c.listen.tls.key!);
  if (role === 'control' && c.control.tls)
    out.push(
      c.control.tls.certificate,
      c.control.tls.key,
      ...(c.control.tls.clientCa ? [c.control.tls.clientCa] : []),
    );
  const t = cl.redis.tls;
  if (t) out.push(...[t.ca, t.certificate, t.key].filter((f): f is string => !!f));
  return out;
}

/** Why `file` would not exist in `container` of `pod`, or null. */
function unmounted(pod: PodSpec, container: Container, file: string): string | null {
  const m = (container.volumeMounts ?? []).find((v) => file.startsWith(`${v.mountPath}/`));
  if (!m) return `${container.name}: nothing is mounted at ${file}`;
  const vol = pod.volumes?.find((v) => v.name === m.name);
  if (!vol) return `${container.name}: volume ${m.name} is not defined`;
  const items = vol.secret?.items ?? vol.configMap?.items;
  if (items && !items.some((i) => i.path === file.slice(m.mountPath.length + 1)))
    return `${container.name}: volume ${m.name} does not project ${basename(file)}`;
  return null;
}

/**
 * Every option that adds a file to the config or a mount to a pod, at once: the user's own
 * Secrets for everything, TLS on the listener, the API (with mTLS) and Redis (client certificate).
 */
const OWN_SECRETS = `
config: { identity: { id: vpn.example.org } }
edge: { tlsSecret: vpn-listen-tls }
control:
  tls: { existingSecret: vpn-api-tls, clientAuth: true }
  ingress: { enabled: true, className: nginx, hosts: [{ host: vpn-api.example.org }] }
api:
  accessFile: { existingSecret: vpn-access }
  lifecycleToken: { existingSecret: vpn-lifecycle, key: token }
  adminToken: { enabled: false }
secrets:
  kek: { existingSecret: vpn-kek, id: 3 }
  relayTls: { existingSecret: vpn-relay }
  psks: { existingSecret: vpn-psks }
redis:
  mode: external
  external:
    mode: sentinel
    sentinels: [{ host: s0.redis, port: 26379 }, { host: s1.redis }]
    username: ikegate
    password: { existingSecret: vpn-redis, key: pw }
    tls: { enabled: true, existingSecret: vpn-redis-tls, clientCertificate: true, servername: redis.example.org }
networkPolicy: { enabled: true }
tests: { enabled: false }
`;

function profiles(): [string, string[]][] {
  const dir = join(CHART, 'profiles');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.yaml')) : [];
  const own = join(work, 'own-secrets.yaml');
  writeFileSync(own, OWN_SECRETS);
  return [
    ['default values', []],
    ...files.sort().map((f): [string, string[]] => [`profile ${f}`, ['-f', join(dir, f)]]),
    ['every Secret your own, TLS everywhere', ['-f', own]],
  ];
}

describe('the chart renders a config that ikegate loads (issue #12)', { skip }, () => {
  for (const [name, args] of profiles()) {
    test(`${name}: loadConfig accepts the rendered config, and the pods mount every file it names`, () => {
      const objects = render(args);
      const { config } = loadRendered(objects);
      assert.ok(config.cluster, 'cluster: is set (edge, worker and control need it)');
      assert.ok(config.cluster.relayTls, 'the relay runs over mutual TLS');
      assert.equal(config.cluster.insecureRelay, false);
      assert.ok(config.control.accessFile, 'the API has an access file');

      const roles = { edge: '-edge', worker: '-worker', control: '-control' } as const;
      for (const [role, suffix] of Object.entries(roles) as [keyof typeof roles, string][]) {
        const kind = role === 'worker' ? 'StatefulSet' : 'Deployment';
        const pod = find(objects, kind, suffix).spec!.template!.spec;
        const main = pod.containers.find((c) => c.name === role)!;
        assert.deepEqual(main.args?.slice(0, 2), [role, '--config=/run/ikegate/ikegate.json']);
        const problems = filesRead(config, role)
          .map((f) => unmounted(pod, main, f))
          .filter((p): p is string => p !== null);
        assert.deepEqual(problems, [], `${role}: files the config names are not in the pod`);
        const init = pod.initContainers?.find((c) => c.name === 'config');
        assert.ok(init, `${role}: the config init container`);
        assert.ok(init.volumeMounts?.some((m) => m.mountPath === '/run/ikegate'));
      }

      const edge = find(objects, 'Deployment', '-edge').spec!.template!.spec.containers[0]!;
      const port = (n: string) => edge.ports?.find((p) => p.name === n);
      const l = config.listen;
      if (l.udp.enabled) {
        assert.deepEqual([port('ike')?.containerPort, port('ike')?.protocol], [l.udp.ikePort, 'UDP']);
        assert.deepEqual([port('natt')?.containerPort, port('natt')?.protocol], [l.udp.natTPort, 'UDP']);
      }
      if (l.tcp.enabled)
        assert.deepEqual([port('iketcp')?.containerPort, port('iketcp')?.protocol], [l.tcp.port, 'TCP']);
      if (l.tls.enabled)
        assert.deepEqual([port('iketls')?.containerPort, port('iketls')?.protocol], [l.tls.port, 'TCP']);
      for (const svc of objects.filter(
        (o) => o.kind === 'Service' && /-edge(-udp|-tcp)?$/.test(o.metadata.name),
      )) {
        for (const p of svc.spec?.ports ?? []) {
          const target = port(p.targetPort);
          assert.ok(target, `${svc.metadata.name}: targetPort ${p.targetPort} is an edge container port`);
          assert.equal(target.protocol, p.protocol, `${svc.metadata.name} ${p.name}: protocol`);
        }
      }

      const worker = find(objects, 'StatefulSet', '-worker').spec!.template!.spec.containers[0]!;
      const tun = worker.args?.find((a) => a.startsWith('--tun='));
      if (tun) assert.equal(tun, `--tun=${config.dataplane.tun.name}`);
    });
  }

  test('the config init script adds the Redis password from its file (bundled Redis with a password)', () => {
    const objects = render([]);
    const { config, file } = loadRendered(objects);
    assert.equal(config.cluster?.redis.password, 'a-redis-password-0123');
    assert.ok(existsSync(file));
    const withoutAuth = loadRendered(render(['--set', 'redis.bundled.auth.enabled=false'])).config;
    assert.equal(withoutAuth.cluster?.redis.password, undefined, 'no password without auth');
  });

  test('the access file the chart makes admits its tokens with their roles (control AccessControl)', () => {
    const objects = render([]);
    const secret = (suffix: string, key: string) => {
      const v = find(objects, 'Secret', suffix).data?.[key];
      assert.ok(v, `${suffix} has ${key}`);
      return Buffer.from(v, 'base64').toString('utf8');
    };
    const file = join(work, 'access.yaml');
    writeFileSync(file, secret('-api-access', 'access.yaml'));
    const access = new AccessControl({ file, log: createLogger({ level: 'silent' }) });
    access.start();
    try {
      for (const [key, role] of [
        ['lifecycle', 'operator'],
        ['admin', 'admin'],
        ['test', 'admin'],
      ] as const) {
        const token = secret('-api-tokens', key);
        assert.match(token, /^ikg_[A-Za-z0-9]{43}$/);
        const r = access.authenticate(`Bearer ${token}`);
        assert.ok(r.ok, `${key} token refused`);
        assert.equal(r.principal.role, role, `${key} token role`);
      }
      assert.equal(access.authenticate(`Bearer ikg_${'x'.repeat(43)}`).ok, false, 'an unknown token');
    } finally {
      access.stop();
    }
    assert.match(secret('-kek', 'kek'), /^[0-9a-f]{64}$/, 'the KEK is 64 hex digits');
    const relay = secret('-relay-tls', 'edge.crt');
    assert.match(relay, /^-----BEGIN CERTIFICATE-----/);
    assert.notEqual(
      createHash('sha256').update(secret('-relay-tls', 'edge.key')).digest('hex'),
      createHash('sha256').update(secret('-relay-tls', 'worker.key')).digest('hex'),
      'edges and workers have their own keys',
    );
  });

  const invalid: [string, string[], string][] = [
    ['an unknown log level', ['--set', 'config.log.level=loud'], 'log.level'],
    [
      'a rekey margin longer than the CHILD SA lifetime',
      ['--set', 'config.lifetimes.rekeyMarginSeconds=4000'],
      'lifetimes.rekeyMarginSeconds',
    ],
    [
      'a plaintext relay while the chart sets relay TLS',
      ['--set', 'config.cluster.insecureRelay=true'],
      'cluster.insecureRelay',
    ],
    [
      'a peer whose pool does not exist',
      ['--set-json', 'config.peers=[{"name":"p","id":"*","auth":{"psk":"0123456789abcdef"},"pool":"nope"}]'],
      'peers[0].pool',
    ],
  ];
  for (const [what, args, path] of invalid) {
    test(`a values change that makes an invalid config is refused by the loader: ${what} (${path})`, () => {
      try {
        loadRendered(render(args));
        assert.fail('the loader accepted it');
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        assert.ok(
          e.issues.some((i) => i.path === path),
          `issues: ${e.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        );
      }
    });
  }
});
