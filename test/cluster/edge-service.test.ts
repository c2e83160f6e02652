/**
 * Issue #11, "edges behind one address": two edges behind one service address, as a Kubernetes
 * Service puts them. The test plays kube-proxy with nftables in this namespace: the service
 * address 10.67.0.100 (UDP 500/4500, TCP 4500) is DNAT'ed to the edges' own addresses and ports,
 * picked by a hash of the client's address; when an endpoint goes away its backend leaves the
 * rule and the UDP conntrack entries toward the service are deleted (what kube-proxy does with
 * `conntrack -D` for UDP services).
 *
 * Two `ikegate connect` clients (UDP and TCP, TUNs and virtual IPs, pinging a host behind the
 * cluster) reach the service address only. `kill -9` of the edge carrying them: the UDP peer's
 * next ESP packets reach the other edge, whose worker moves the SA there on the first
 * authenticated one (RFC 7296 §2.23, RFC 4555-style path update without MOBIKE); the TCP peer sees
 * its stream closed, dials the same address again, lands on the other edge and continues on the
 * same IKE SA (RFC 9329 §6). Neither re-authenticates. Outages are reported from the pings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { requirement } from '@ikegate/testkit';
import { canUseNetns, ip } from '../interop/lib/netns.js';
import { pingThrough } from '../interop/lib/swanctl.js';
import { type EdgeProc, PSK, type Proc, TestCluster, until } from './lib/cluster.js';
import { ClientHostNet } from './lib/client-host.js';

const netns = canUseNetns();
const tools = ['nft', 'conntrack', 'redis-server'].filter(
  (t) =>
    spawnSync(t, ['--version'], { stdio: 'ignore' }).status !== 0 && spawnSync('which', [t]).status !== 0,
);
const skip = requirement(!netns.ok ? netns.why : tools.length > 0 ? `missing: ${tools.join(', ')}` : false);

const tag = `es${process.pid % 10000}`;
const TABLE = `ikegate_svc_${tag}`;
const SERVICE = '10.67.0.100';
const EDGE_ADDRESSES = ['10.67.0.11', '10.67.0.12'];

function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** kube-proxy's part: the service's DNAT rules toward `backends` (replaced as a whole). */
function program(backends: readonly EdgeProc[]): void {
  const map = (port: (e: EdgeProc) => number) =>
    backends.map((e, i) => `${i} : ${e.address} . ${port(e)}`).join(', ');
  const pick = `jhash ip saddr mod ${backends.length} seed 0x1b5`; // one seed: every rule picks alike
  const rules = [
    ['udp', 500, map((e) => e.ike)],
    ['udp', 4500, map((e) => e.natT)],
    ['tcp', 4500, map((e) => e.tcp)],
  ]
    .map(
      ([proto, port, m]) =>
        `ip daddr ${SERVICE} ${proto} dport ${port} dnat ip addr . port to ${pick} map { ${m} }`,
    )
    .join('\n    ');
  spawnSync('nft', ['delete', 'table', 'ip', TABLE], { stdio: 'ignore' });
  sh(
    'nft',
    ['-f', '-'],
    `table ip ${TABLE} {\n  chain pre {\n    type nat hook prerouting priority dstnat; policy accept;\n    ${rules}\n  }\n}\n`,
  );
}

/** The edge address each live flow toward the service was DNAT'ed to (conntrack's reply source). */
function flows(): { proto: string; backend: string }[] {
  const out = spawnSync('conntrack', ['-L', '-d', SERVICE], { encoding: 'utf8' }).stdout ?? '';
  return (
    out
      .split('\n')
      .filter((l) => l.includes(`dst=${SERVICE}`))
      // A closed TCP flow lingers in TIME_WAIT/CLOSE: only live ones count.
      .filter((l) => !l.startsWith('tcp') || l.includes('ESTABLISHED'))
      .map((l) => ({ proto: l.split(/\s+/)[0] ?? '', backend: /src=(\S+).*src=(\S+)/.exec(l)?.[2] ?? '' }))
  );
}

describe(
  'edges behind one service address (nftables DNAT as kube-proxy): kill -9 of an edge, UDP and TCP peers continue through the other on the same IKE SA (issue #11, RFC 9329 §6, RFC 7296 §2.23)',
  { skip },
  () => {
    const c = new TestCluster(4000, { pool: '10.202.0.0/16', localTs: '10.66.2.0/24' });
    const net = new ClientHostNet(tag, { hostAddresses: ['10.66.2.130'], clientDefaultRoute: true });
    const clients: { transport: 'udp' | 'tcp'; proc: Proc; vip: string; host: string }[] = [];
    // One client namespace (one source address, so one backend), two hosts: each client's
    // selectors cover only its own host, so their TUN routes do not overlap.
    const HOSTS = {
      udp: { ts: '10.66.2.0/25', host: '10.66.2.2' },
      tcp: { ts: '10.66.2.128/25', host: '10.66.2.130' },
    };

    before(async () => {
      net.setUp();
      // The edges' own (pod) addresses, on this side of the client's link (gone with it).
      for (const a of EDGE_ADDRESSES) ip('addr', 'add', `${a}/32`, 'dev', net.clientLink);
      await c.start();
      await c.addWorker('w1', `ik${tag}1`.slice(0, 15));
      await c.addWorker('w2', `ik${tag}2`.slice(0, 15));
      await c.addEdge('e1', { address: EDGE_ADDRESSES[0]! });
      await c.addEdge('e2', { address: EDGE_ADDRESSES[1]! });
      await c.startControl();
      await until(
        () => c.shards().then((r) => r.owned),
        (n) => n === 1024,
      );
      program(c.edges);
    });

    after(async () => {
      await c.stop();
      spawnSync('nft', ['delete', 'table', 'ip', TABLE], { stdio: 'ignore' });
      spawnSync('conntrack', ['-D', '-d', SERVICE], { stdio: 'ignore' });
      net.tearDown();
    });

    test('a UDP and a TCP peer reach the cluster through the service address only, get virtual IPs and ping the host', async () => {
      for (const transport of ['udp', 'tcp'] as const) {
        const proc = c.spawn(
          `connect-${transport}`,
          [
            'connect',
            '--server',
            SERVICE,
            '--transport',
            transport,
            '--id',
            `svc-${transport}@example.org`,
            '--remote-id',
            'gw.example.org',
            '--psk',
            PSK,
            '--ts',
            HOSTS[transport].ts,
            '--tun',
            `ik${tag}${transport[0]}`.slice(0, 15),
            '--dpd',
            '0',
          ],
          net.client,
        );
        const vip = String((await proc.waitFor('tun-configured', 30_000)).virtualIp);
        assert.match(vip, /^10\.202\.\d+\.\d+$/);
        const host = HOSTS[transport].host;
        clients.push({ transport, proc, vip, host });
      }
      for (const { transport, vip, host } of clients)
        assert.equal(pingThrough(net.client, vip, host, 2), 2, `${transport} pings`);
      const backends = new Set(flows().map((f) => f.backend));
      assert.equal(backends.size, 1, `one client address, one backend: ${JSON.stringify(flows())}`);
      assert.ok(EDGE_ADDRESSES.includes([...backends][0]!));
    });

    test('kill -9 of the edge carrying both; the endpoint leaves the service: both continue through the other edge on the same IKE SA', async () => {
      const [address] = new Set(flows().map((f) => f.backend));
      const victim = c.edges.find((e) => e.address === address)!;
      const survivor = c.edges.find((e) => e !== victim)!;
      const killedAt = Date.now();
      await victim.proc.stop('SIGKILL');
      // kube-proxy: the dead endpoint leaves the rule; UDP flows toward the service are forgotten.
      program([survivor]);
      spawnSync('conntrack', ['-D', '-p', 'udp', '-d', SERVICE], { stdio: 'ignore' });
      const outage: Record<string, number> = {};
      for (const { transport, vip, host } of clients) {
        const replies = await until(
          async () => pingThrough(net.client, vip, host, 1),
          (n) => n === 1,
          30_000,
        );
        assert.equal(replies, 1, `${transport} traffic flows again`);
        outage[`${transport} first ping answered`] = Date.now() - killedAt;
      }
      for (const { transport, proc, vip, host } of clients) {
        assert.equal(pingThrough(net.client, vip, host, 3), 3, `${transport} steady again`);
        assert.equal(proc.count('initiating'), 1, `${transport}: no new IKE_SA_INIT`);
      }
      assert.ok(
        flows().every((f) => f.backend === survivor.address),
        `every flow now on ${survivor.address}: ${JSON.stringify(flows())}`,
      );
      const tcp = clients.find((x) => x.transport === 'tcp')!.proc;
      assert.equal(tcp.count('stream-closed'), 1, 'the TCP peer saw its stream close once');
      assert.equal(tcp.count('stream-restored'), 1, 'and restored the IKE SA on a new stream');
      const restored = await tcp.waitFor('stream-restored', 1000);
      outage['tcp stream restored'] = Date.parse(String(restored.time)) - killedAt;
      const sas = await c.sasByWorker();
      assert.equal(
        [...sas.values()].reduce((n, s) => n + s.length, 0),
        2,
        'both SAs still held, none lost',
      );
      console.log(
        `# after kill -9 of ${victim.id}, ms (a failed ping waits its timeout): ${JSON.stringify(outage)}`,
      );
    });
  },
);
