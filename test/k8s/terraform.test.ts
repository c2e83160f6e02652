/**
 * Issue #12: the Terraform module terraform/ through its example terraform/examples/basic, on a
 * real kube-apiserver with kwok nodes (test/k8s/control-plane.sh): `terraform init` offline from
 * the filesystem mirror that test/k8s/toolchain.sh builds (hashicorp/helm 1.3.2 and
 * hashicorp/kubernetes 1.13.4, the only versions the Go module proxy serves) -> validate -> plan
 * -> apply -> the namespace, the module's Secrets and the release's objects are on the API
 * server, the chart uses the module's Secrets, the outputs name the real Services and their
 * load-balancer addresses -> destroy -> nothing left. A variable that breaks a `validation`
 * block fails `plan` with that block's message, before anything reaches the cluster.
 *
 * Runs `terraform` from PATH, or OpenTofu ($K8S_BIN/tofu) where no terraform is installed.
 * The module and example are copied to a temporary directory, so no .terraform/, lock file or
 * state is ever written into the repository.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { getJson, releaseLeftovers, rolloutProblems } from './lib/cluster.js';
import { ControlPlane } from './lib/control-plane.js';
import { run } from './lib/run.js';
import { CONTROL_PLANE_TOOLS, K8S_BIN, REPO, k8sToolsMissing, tool } from './lib/toolchain.js';

const CHART = process.env.IKEGATE_CHART_DIR ?? join(REPO, 'helm', 'ikegate');
const NS = 'ikegate-tf';
const RELEASE = 'vpn';
const KEK = 'a1'.repeat(32);
const PSK = 'alice-psk-0123456789';

function terraformBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':'))
    if (dir && existsSync(join(dir, 'terraform'))) return join(dir, 'terraform');
  return existsSync(tool('tofu')) ? tool('tofu') : undefined;
}
const TF = terraformBinary();

const skip = requirement(
  k8sToolsMissing([
    ...CONTROL_PLANE_TOOLS,
    'terraform.tfrc',
    'terraform-mirror/registry.terraform.io/hashicorp/helm',
    'terraform-mirror/registry.terraform.io/hashicorp/kubernetes',
  ]) ||
    (TF === undefined
      ? 'neither terraform on PATH nor tofu in the toolchain: run `bash test/k8s/toolchain.sh tofu`'
      : false) ||
    (existsSync(join(CHART, 'Chart.yaml')) ? false : `no chart at ${CHART}`),
);

let work = '';
let example = '';
let cp: ControlPlane | undefined;

function tf(args: readonly string[], timeoutMs = 300_000) {
  return run(TF!, [...args, '-no-color'], {
    cwd: example,
    timeoutMs,
    env: {
      ...cp!.env,
      TF_CLI_CONFIG_FILE: join(K8S_BIN, 'terraform.tfrc'),
      TOFU_CLI_CONFIG_FILE: join(K8S_BIN, 'terraform.tfrc'),
      TF_IN_AUTOMATION: '1',
      CHECKPOINT_DISABLE: '1',
      TF_INPUT: '0',
    },
  });
}

const vars = (): string[] => [
  '-var',
  `kubeconfig=${cp!.kubeconfig}`,
  '-var',
  `chart=${CHART}`,
  '-var',
  `namespace=${NS}`,
  '-var',
  `kek=${KEK}`,
  '-var',
  `psk_alice=${PSK}`,
];

describe(
  `terraform/ module with ${TF === undefined ? 'terraform' : basename(TF)}: init (offline mirror) -> validate -> plan -> apply -> destroy on a real kube-apiserver (issue #12)`,
  { skip, timeout: 1_200_000 },
  () => {
    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'ikegate-tf-'));
      cpSync(join(REPO, 'terraform'), join(work, 'terraform'), {
        recursive: true,
        filter: (src) => !/(^|\/)(\.terraform|terraform\.tfstate[^/]*|\.terraform\.lock\.hcl)$/.test(src),
      });
      example = join(work, 'terraform', 'examples', 'basic');
      cp = await ControlPlane.start({ kwokNodes: 3, lbSubnet: '198.51.100.0/24' });
    });

    after(async () => {
      await cp?.stop();
      if (work !== '') rmSync(work, { recursive: true, force: true });
    });

    test('terraform init installs hashicorp/helm and hashicorp/kubernetes from the filesystem mirror, offline', async () => {
      const r = await tf(['init', '-input=false', '-backend=false']);
      assert.equal(r.status, 0, r.out);
      assert.match(r.stdout, /hashicorp\/helm v1\.3\.2/, r.out);
      assert.match(r.stdout, /hashicorp\/kubernetes v1\.13\.4/, r.out);
    });

    test('terraform validate accepts the module and the example', async () => {
      const r = await tf(['validate']);
      assert.equal(r.status, 0, r.out);
      assert.match(r.stdout, /Success! The configuration is valid/);
    });

    test('plan with an invalid variable fails with the validation block’s message (KEK not 64 hex digits, namespace not a DNS label)', async () => {
      const bad = await tf(['plan', '-input=false', ...vars(), '-var', 'kek=not-hex']);
      assert.notEqual(bad.status, 0, bad.out);
      assert.match(
        bad.stderr.replace(/\s+/g, ' '),
        /kek must be exactly 64 hex digits \(32 octets\)/,
        bad.out,
      );
      const ns = await tf(['plan', '-input=false', ...vars(), '-var', 'namespace=Not_A_Label']);
      assert.notEqual(ns.status, 0, ns.out);
      assert.match(ns.stderr.replace(/\s+/g, ' '), /The namespace must be a DNS-1123 label/, ns.out);
      const list = await cp!.kubectl(['get', 'namespaces', '-o', 'name']);
      assert.doesNotMatch(list.stdout, new RegExp(`namespace/${NS}\\b`), 'a failed plan changed nothing');
    });

    test('plan then apply: the namespace, the module’s Secrets and the release are on the API server, every rollout done', async () => {
      const plan = await tf(['plan', '-input=false', '-out=tfplan', ...vars()]);
      assert.equal(plan.status, 0, plan.out);
      assert.match(plan.stdout, /Plan: \d+ to add, 0 to change, 0 to destroy/, plan.out);
      const apply = await tf(['apply', '-input=false', '-auto-approve', 'tfplan'], 600_000);
      assert.equal(apply.status, 0, apply.out);

      const secrets = await getJson(cp!, ['-n', NS, 'get', 'secrets']);
      const names = secrets.items.map((s) => s.metadata.name);
      for (const s of ['vpn-ikegate-tf-kek', 'vpn-ikegate-tf-psks'])
        assert.ok(names.includes(s), `${s} in ${names.join(' ')}`);
      const kek = secrets.items.find((s) => s.metadata.name === 'vpn-ikegate-tf-kek')!;
      assert.equal(Buffer.from(kek.data?.kek ?? '', 'base64').toString(), KEK);
      assert.ok(names.includes(`sh.helm.release.v1.${RELEASE}.v1`), 'helm release record');
      assert.ok(!names.includes('vpn-ikegate-kek'), 'the chart did not generate its own KEK when given one');

      const { checked, problems } = await rolloutProblems(cp!, NS);
      assert.deepEqual(problems, []);
      assert.ok(checked.length >= 3, checked.join(' '));
      // the workers mount the module's Secrets, not chart-generated ones
      const sts = await getJson(cp!, [
        '-n',
        NS,
        'get',
        'statefulsets',
        '-l',
        'app.kubernetes.io/component=worker',
      ]);
      const specText = JSON.stringify(sts.items[0]?.spec ?? {});
      assert.match(specText, /vpn-ikegate-tf-kek/);
      assert.match(specText, /vpn-ikegate-tf-psks/);
    });

    test('outputs name the real edge and control Services, the load-balancer addresses the Services got, and the API URL', async () => {
      const r = await tf(['output', '-json']);
      assert.equal(r.status, 0, r.out);
      const out = JSON.parse(r.stdout) as Record<string, { value: unknown }>;
      const edgeNames = out.edge_service_names!.value as string[];
      const addrs = out.edge_load_balancer_addresses!.value as Record<string, string[]>;
      const svcs = await getJson(cp!, ['-n', NS, 'get', 'services']);
      for (const name of edgeNames) {
        const s = svcs.items.find((x) => x.metadata.name === name);
        assert.ok(s, `edge Service ${name} exists`);
        assert.equal(s.spec?.type, 'LoadBalancer');
        const ingress = (
          (s.status?.loadBalancer as { ingress?: { ip?: string }[] } | undefined)?.ingress ?? []
        ).map((i) => i.ip);
        assert.ok(ingress.length > 0, `${name} has a load-balancer address`);
        assert.deepEqual(addrs[name], ingress, `output address of ${name}`);
      }
      const url = new URL(out.api_url!.value as string);
      const control = url.hostname.split('.')[0]!;
      const cs = svcs.items.find((x) => x.metadata.name === control);
      assert.ok(cs, `control Service ${control} exists`);
      assert.ok(
        ((cs.spec?.ports ?? []) as { port: number }[]).some((p) => String(p.port) === url.port),
        `port ${url.port}`,
      );
      assert.equal(url.hostname, `${control}.${NS}.svc.cluster.local`);
    });

    test('destroy removes the release, the module’s Secrets and the namespace: nothing of it is left', async () => {
      const r = await tf(['destroy', '-input=false', '-auto-approve', ...vars()], 600_000);
      assert.equal(r.status, 0, r.out);
      const left = await releaseLeftovers(cp!, NS, RELEASE);
      assert.deepEqual(left, []);
      const ns = await cp!.kubectl(['get', 'namespace', NS, '-o', 'name']);
      assert.notEqual(ns.status, 0, `namespace ${NS} is gone: ${ns.out}`);
    });
  },
);
