/**
 * Issue #12, real pods: helm/ikegate on a real node (test/k8s/node.sh: kubelet + Debian containerd +
 * runc, the CNI bridge pod network, kube-proxy in iptables mode and CoreDNS, with the control plane,
 * all inside the network namespace `ikg-k8snode`) running the image of scripts/image.sh.
 *
 * The client is outside the cluster: its own namespace, joined to the node's by a veth, with a route
 * to the LoadBalancer addresses through the node (what a cloud load balancer does with ipMode VIP:
 * packets for the address reach a node, kube-proxy DNATs them to a local edge; with
 * externalTrafficPolicy Local the edge sees the client's own address). The LoadBalancer Service is
 * the chart's default, its address comes from control-plane.sh's assigner. The tunnel's pings go to
 * a "host" namespace behind the node (10.77.3.2), which the workers reach masqueraded to their pod IP.
 *
 * What it shows: edge x2, worker x2, control and Redis Ready; `ikegate connect` over UDP and over
 * TCP (RFC 9329) through the edge Service with pings through the tunnel; deleting the worker pod
 * that holds the SA (its preStop drain hands the SA over) keeps the same IKE SA (same SPI, no new
 * IKE_SA_INIT) and pings continue; `helm upgrade` to a second image tag while pings flow replaces
 * every ikegate pod with the SA kept; `helm test` passes.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { Proc, type SaItem, type SaList, until } from '../cluster/lib/cluster.js';
import { buildImage, podman, podmanMissing } from './lib/realnode-image.js';
import { CLIENT_NS, HOST_CIDR, HOST_IP, pingFrom, RealNode, realNodeMissing } from './lib/realnode.js';
import { REPO } from './lib/toolchain.js';

const skip = requirement(podmanMissing() || realNodeMissing());
const CHART = join(REPO, 'helm', 'ikegate');
const VALUES = join(REPO, 'test', 'k8s', 'values-realnode.yaml');
const NS = 'ikegate-rp';
const RELEASE = 'rp';
const FULLNAME = 'rp-ikegate';
const IMAGE_A = 'localhost/ikegate:rp-a';
const IMAGE_B = 'localhost/ikegate:rp-b';
const PSK = 'real-node-outside-pre-shared-key-0123';
const SELECTOR = `app.kubernetes.io/instance=${RELEASE}`;

interface Pod {
  metadata: { name: string; uid: string; labels: Record<string, string>; deletionTimestamp?: string };
  spec: { containers: { image: string }[] };
  status: { phase: string; podIP?: string; conditions?: { type: string; status: string }[] };
}

const node = new RealNode();
let helmHome = '';
let installed = false;
let client: Proc | undefined;
let vip = '';
let spi = '';
let token = '';
let controlUrl = '';
let lbAddress = '';
const procs: ChildProcess[] = [];

function ready(p: Pod): boolean {
  return p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

async function pods(): Promise<Pod[]> {
  const list = await node.json<{ items: Pod[] }>(['-n', NS, 'get', 'pods', '-l', SELECTOR]);
  return list.items.filter((p) => p.metadata.labels['app.kubernetes.io/component'] !== 'test');
}

/** component -> Ready pods that are not being deleted. */
async function readyByComponent(): Promise<Map<string, Pod[]>> {
  const out = new Map<string, Pod[]>();
  for (const p of await pods()) {
    if (!ready(p) || p.metadata.deletionTimestamp) continue;
    const c = p.metadata.labels['app.kubernetes.io/component'] ?? '?';
    out.set(c, [...(out.get(c) ?? []), p]);
  }
  return out;
}

/** What the cluster looks like, for assertion messages. */
async function diagnostics(): Promise<string> {
  const r = await node.kubectl(['-n', NS, 'get', 'pods,svc,endpointslices', '-o', 'wide']);
  const ev = await node.kubectl(['-n', NS, 'get', 'events', '--sort-by=.lastTimestamp']);
  let logs = '';
  for (const p of await pods().catch(() => [])) {
    if (ready(p)) continue;
    const l = await node.kubectl(['-n', NS, 'logs', p.metadata.name, '--all-containers', '--tail=15']);
    logs += `\n--- ${p.metadata.name}\n${l.stdout.slice(-2500)}${l.stderr.slice(-500)}`;
  }
  return `${r.stdout}\n${ev.stdout.slice(-4000)}${logs}`;
}

/**
 * The hand-off lines (leases, relay streams, members, frames waiting at an edge) every ikegate pod
 * logged in the last `seconds`: printed when the first pings after a worker's replacement miss,
 * so the next such run says where the time went (docs/ha.md: cause not found yet).
 */
async function handoffLogs(seconds: number): Promise<string> {
  const wanted =
    /shard-(released|acquired|drain)|relay-worker|worker-(joined|left|drain|undrain)|reroute|lease|takeover|adopt/;
  let out = '';
  for (const p of await pods().catch(() => [])) {
    const l = await node.kubectl([
      '-n',
      NS,
      'logs',
      p.metadata.name,
      '--all-containers',
      `--since=${seconds}s`,
    ]);
    const lines = l.stdout.split('\n').filter((x) => wanted.test(x));
    out += `\n--- ${p.metadata.name} (${lines.length} hand-off lines)\n${lines.slice(-40).join('\n')}`;
  }
  return out;
}

/** The control API through its ClusterIP, from inside the node's namespace (kube-proxy routes it). */
async function api<T>(path: string): Promise<T> {
  const r = await node.inNode('curl', [
    '-sf',
    '--max-time',
    '5',
    '-H',
    `authorization: Bearer ${token}`,
    `${controlUrl}${path}`,
  ]);
  if (r.status !== 0) throw new Error(`GET ${path}: ${r.out}`);
  return JSON.parse(r.stdout) as T;
}

async function establishedSas(): Promise<SaItem[]> {
  return (await api<SaList>('/v1/sas?state=established')).items;
}

function connect(name: string, transport: 'udp' | 'tcp', tun: string): Proc {
  const p = new Proc(
    name,
    [
      'connect',
      '--server',
      lbAddress,
      '--transport',
      transport,
      '--id',
      `${transport}@outside.ikegate.test`,
      '--remote-id',
      'gw.ikegate.test',
      '--psk',
      PSK,
      '--ts',
      HOST_CIDR,
      '--tun',
      tun,
      '--dpd',
      '10',
    ],
    CLIENT_NS,
  );
  procs.push(p.child);
  return p;
}

/** A ping running in the background (5 per second); `stop()` returns transmitted/received. */
function backgroundPing(src: string): {
  stop: () => Promise<{ sent: number; received: number; out: string }>;
} {
  const child = spawn(
    'ip',
    ['netns', 'exec', CLIENT_NS, 'ping', '-i', '0.2', '-W', '1', '-I', src, HOST_IP],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  procs.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return {
    async stop() {
      child.kill('SIGINT');
      for (let i = 0; i < 50 && child.exitCode === null; i++) await sleep(100);
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), out: out.slice(-600) };
    },
  };
}

describe(
  'helm/ikegate on a real kubelet + containerd + runc node with a CNI pod network (issue #12)',
  { skip, timeout: 3_000_000 },
  () => {
    before(async () => {
      const t0 = Date.now();
      const a = buildImage(IMAGE_A);
      // the second image for the upgrade: the same build under a new tag (a new image reference for
      // the pod templates, so every pod is replaced)
      const tag = podman(['tag', IMAGE_A, IMAGE_B]);
      assert.equal(tag.status, 0, tag.stderr);
      console.log(`# image ${a.tag} (+ ${IMAGE_B}) in ${a.seconds.toFixed(1)} s`);
      await node.up([IMAGE_A, IMAGE_B]);
      console.log(`# node.sh up (node Ready, images imported) in ${(node.upMs / 1000).toFixed(1)} s`);
      node.attachOutside();
      helmHome = mkdtempSync(join(tmpdir(), 'ikg-rp-helm-'));
      console.log(`# before() ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    });

    after(async () => {
      await client?.stop().catch(() => undefined);
      for (const c of procs) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      if (installed && node.kubeconfig)
        await node.helm(['uninstall', RELEASE, '-n', NS, '--wait', '--timeout', '3m'], helmHome, 240_000);
      node.detachOutside();
      const d = await node.down();
      if (d.status !== 0) console.error(d.out);
      if (helmHome !== '') rmSync(helmHome, { recursive: true, force: true });
    });

    test('helm install --wait: edge x2, worker x2, control and Redis come up Ready on the real node', async () => {
      const t0 = Date.now();
      const r = await node.helm(
        [
          'install',
          RELEASE,
          CHART,
          '-n',
          NS,
          '--create-namespace',
          '-f',
          VALUES,
          '--set',
          'image.tag=rp-a',
          '--wait',
          '--timeout',
          '12m',
        ],
        helmHome,
      );
      installed = true;
      assert.equal(r.status, 0, `${r.out}\n${await diagnostics()}`);
      console.log(`# helm install --wait on the real node: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const by = await readyByComponent();
      const count = (c: string): number => by.get(c)?.length ?? 0;
      assert.deepEqual(
        { edge: count('edge'), worker: count('worker'), control: count('control'), redis: count('redis') },
        { edge: 2, worker: 2, control: 1, redis: 1 },
        await diagnostics(),
      );
      for (const p of [...(by.get('edge') ?? []), ...(by.get('worker') ?? []), ...(by.get('control') ?? [])])
        assert.equal(p.spec.containers[0]?.image, IMAGE_A);
      const secret = await node.kubectl([
        '-n',
        NS,
        'get',
        'secret',
        `${FULLNAME}-api-tokens`,
        '-o',
        'jsonpath={.data.admin}',
      ]);
      assert.equal(secret.status, 0, secret.out);
      token = Buffer.from(secret.stdout, 'base64').toString('utf8').trim();
      const svc = await node.json<{ spec: { clusterIP: string; ports: { port: number }[] } }>([
        '-n',
        NS,
        'get',
        'service',
        `${FULLNAME}-control`,
      ]);
      controlUrl = `http://${svc.spec.clusterIP}:${svc.spec.ports[0]?.port ?? 8080}`;
      // Ready pods do not mean kube-proxy has programmed the ClusterIP yet, nor that both workers
      // have registered: asked until both hold (one CI run's first GET failed, curl exit 22/28).
      const workers = await until(
        () =>
          api<{ items: { id: string }[] }>('/v1/workers').catch((e: Error) => ({
            items: [],
            error: e.message,
          })),
        (w) => w.items.length === 2,
        30_000,
      );
      assert.equal(workers.items.length, 2, JSON.stringify(workers));
    });

    test('the edge LoadBalancer Service has an address and externalTrafficPolicy Local; its endpoints are the 2 edges', async () => {
      const svc = await node.json<{
        spec: { type: string; externalTrafficPolicy?: string; ports: { port: number; protocol: string }[] };
        status: { loadBalancer: { ingress?: { ip: string }[] } };
      }>(['-n', NS, 'get', 'service', `${FULLNAME}-edge`]);
      assert.equal(svc.spec.type, 'LoadBalancer');
      assert.equal(svc.spec.externalTrafficPolicy, 'Local');
      lbAddress = svc.status.loadBalancer.ingress?.[0]?.ip ?? '';
      assert.match(lbAddress, /^10\.77\.2\.\d+$/);
      assert.deepEqual(svc.spec.ports.map((p) => `${p.protocol}/${p.port}`).sort(), [
        'TCP/443',
        'TCP/4500',
        'UDP/4500',
        'UDP/500',
      ]);
    });

    for (const transport of ['tcp', 'udp'] as const) {
      test(`ikegate connect from the client namespace over ${transport.toUpperCase()} through the edge Service: virtual IP, pings through the tunnel to the host behind the cluster (RFC 7296${transport === 'tcp' ? ', RFC 9329' : ', RFC 3948'})`, async () => {
        const p = connect(`connect-${transport}`, transport, `ikgrp${transport}0`);
        const tun = await p.waitFor('tun-configured', 90_000).catch((e: Error) => {
          throw new Error(
            `${e.message}\n${p.lines
              .map((l) => JSON.stringify(l))
              .join('\n')
              .slice(-3000)}`,
          );
        });
        const address = String(tun.virtualIp);
        assert.match(address, /^10\.210\.\d+\.\d+$/);
        const replies = await until(
          async () => pingFrom(CLIENT_NS, address, HOST_IP, 3),
          (n) => n === 3,
          30_000,
        );
        assert.equal(
          replies,
          3,
          `pings through the ${transport} tunnel: ${JSON.stringify(p.lines.slice(-5))}`,
        );
        const sas = await establishedSas();
        const sa = sas.find((s) => s.virtualIp === address);
        assert.ok(sa, JSON.stringify(sas));
        assert.equal(sa.transport, transport);
        assert.match(sa.worker ?? '', new RegExp(`^${FULLNAME}-worker-[01]$`));
        if (transport === 'udp') {
          client = p; // kept for the worker deletion and the upgrade
          vip = address;
          spi = sa.spi;
        } else {
          await p.stop();
          await until(establishedSas, (l) => !l.some((s) => s.spi === sa.spi), 20_000);
        }
      });
    }

    test('deleting the worker pod that holds the SA: its drain hands the SA to the other worker; same IKE SA (SPI), pings continue, no new IKE_SA_INIT', async () => {
      assert.ok(client && spi, 'the UDP tunnel is up');
      const before = (await establishedSas()).find((s) => s.spi === spi);
      assert.ok(before?.worker);
      const holder = before.worker;
      const other = holder.endsWith('-0') ? `${FULLNAME}-worker-1` : `${FULLNAME}-worker-0`;
      const oldUid = (await node.json<Pod>(['-n', NS, 'get', 'pod', holder])).metadata.uid;
      const del = await node.kubectl(['-n', NS, 'delete', 'pod', holder, '--wait=false']);
      assert.equal(del.status, 0, del.out);
      const moved = await until(
        () => establishedSas().catch(() => [] as SaItem[]),
        (l) => l.some((s) => s.spi === spi && s.worker === other),
        90_000,
      );
      assert.ok(
        moved.some((s) => s.spi === spi && s.worker === other),
        `the SA moved to ${other}: ${JSON.stringify(moved)}`,
      );
      const replies = await until(
        async () => pingFrom(CLIENT_NS, vip, HOST_IP, 3),
        (n) => n === 3,
        30_000,
      );
      assert.equal(replies, 3, 'pings through the new owner');
      // the StatefulSet recreates the pod under the same name (a new pod)
      const back = await until(
        async () => (await readyByComponent()).get('worker') ?? [],
        (w) => w.length === 2 && w.every((p) => p.metadata.uid !== oldUid),
        180_000,
      );
      assert.equal(back.length, 2, await diagnostics());
      // The replacement being Ready may start a rebalance that moves the shard back, and a ping sent
      // during that move can miss ping's 2-s deadline (a known gap of the planned hand-off, see
      // docs/ha.md): the first round's count is printed, and the tunnel must carry 3 of 3 again
      // within 30 s, on the same IKE SA (below), without a new IKE_SA_INIT.
      const firstRound = pingFrom(CLIENT_NS, vip, HOST_IP, 3);
      console.log(`# first ping round after the replacement is Ready: ${firstRound} of 3 answered`);
      if (firstRound < 3) for (const line of (await handoffLogs(60)).split('\n')) console.log(`# ${line}`);
      const again =
        firstRound === 3
          ? 3
          : await until(
              async () => pingFrom(CLIENT_NS, vip, HOST_IP, 3),
              (n) => n === 3,
              30_000,
            );
      assert.equal(again, 3, 'pings after the replacement is Ready');
      const after = (await establishedSas()).filter((s) => s.spi === spi);
      // Whether the rebalance moved the SA back to the new pod (its shard's rendezvous score decides).
      console.log(`# after the replacement: the SA is on ${after.map((s) => s.worker).join(',')}`);
      assert.equal(after.length, 1, 'the same IKE SA (gateway SPI) is established');
      assert.equal(client.count('initiating'), 1, 'the client never started a new IKE SA');
      assert.equal(client.count('ike-sa-established'), 1);
    });

    test('helm upgrade to a second image tag while pings flow: every ikegate pod replaced, the same IKE SA, no SA lost', async () => {
      assert.ok(client && spi, 'the UDP tunnel is up');
      const beforePods = new Map((await pods()).map((p) => [p.metadata.name, p.metadata.uid]));
      const saCount = (await establishedSas()).length;
      const ping = backgroundPing(vip);
      const t0 = Date.now();
      const r = await node.helm(
        [
          'upgrade',
          RELEASE,
          CHART,
          '-n',
          NS,
          '-f',
          VALUES,
          '--set',
          'image.tag=rp-b',
          '--wait',
          '--timeout',
          '15m',
        ],
        helmHome,
      );
      const upgradeSeconds = (Date.now() - t0) / 1000;
      assert.equal(r.status, 0, `${r.out}\n${await diagnostics()}`);
      // --wait returns when the objects are ready; the StatefulSet's last pod may still be rolling
      const by = await until(
        readyByComponent,
        (m) =>
          ['edge', 'worker', 'control'].every((c) =>
            (m.get(c) ?? []).every((p) => p.spec.containers[0]?.image === IMAGE_B),
          ) &&
          (m.get('edge')?.length ?? 0) === 2 &&
          (m.get('worker')?.length ?? 0) === 2 &&
          (m.get('control')?.length ?? 0) === 1,
        300_000,
      );
      const replaced = ['edge', 'worker', 'control'].flatMap((c) => by.get(c) ?? []);
      assert.equal(replaced.length, 5, await diagnostics());
      for (const p of replaced) {
        assert.equal(p.spec.containers[0]?.image, IMAGE_B, p.metadata.name);
        assert.notEqual(beforePods.get(p.metadata.name), p.metadata.uid, `${p.metadata.name} is a new pod`);
      }
      const replies = await until(
        async () => pingFrom(CLIENT_NS, vip, HOST_IP, 3),
        (n) => n === 3,
        60_000,
      );
      const stats = await ping.stop();
      console.log(
        `# helm upgrade --wait: ${upgradeSeconds.toFixed(1)} s; background pings ${stats.received}/${stats.sent} answered`,
      );
      assert.equal(replies, 3, 'pings after the upgrade');
      assert.ok(stats.received > 0, `pings were answered during the upgrade: ${stats.out}`);
      const sas = await establishedSas();
      assert.equal(sas.length, saCount, `no SA lost: ${JSON.stringify(sas)}`);
      assert.ok(
        sas.some((s) => s.spi === spi),
        'the same IKE SA',
      );
      assert.equal(client.count('initiating'), 1, 'no new IKE_SA_INIT');
      assert.equal(client.count('ike-sa-deleted'), 0);
    });

    test('helm test: ikegate connect from a pod through the edge Service, pings through the tunnel', async () => {
      const t0 = Date.now();
      const r = await node.helm(['test', RELEASE, '-n', NS, '--timeout', '5m', '--logs'], helmHome, 420_000);
      console.log(`# helm test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      assert.equal(r.status, 0, `${r.out}\n${await diagnostics()}`);
      assert.match(r.stdout, /Phase:\s+Succeeded/);
      assert.match(r.stdout, /ping-ok/);
    });

    test('no address of the cluster is in the root namespace: node, pods, services and the client/host links live in the test namespaces', () => {
      const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
      assert.doesNotMatch(links, /ikgcni0|ikgnode0|ikgrp[ch][01]/);
      const addrs = spawnSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' }).stdout;
      assert.doesNotMatch(addrs, /inet (10\.77\.|10\.244\.|10\.210\.)/);
    });
  },
);
