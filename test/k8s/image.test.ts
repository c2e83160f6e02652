/**
 * Issue #12, the image: `Containerfile` built by scripts/image.sh (FROM scratch, a rootfs from the
 * machine's Debian packages and node binary, no registry pull), then run with podman the way the
 * chart runs it: read-only root filesystem, numeric non-root user, every capability dropped, no
 * network (`--network=none`: the containers share one private loopback-only namespace), /tmp on a
 * tmpfs. Edges need no capability: `ikegate up --no-tun` binds 500/4500/443 with only the
 * `net.ipv4.ip_unprivileged_port_start=0` sysctl (a Kubernetes "safe" sysctl). Workers need
 * NET_ADMIN and /dev/net/tun: the last test runs the full `up` (TUN through the python3 opener,
 * `ip`, `nft`) as root with NET_ADMIN as its only capability.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { buildImage, IMAGE, podman, podmanMissing, PODMAN_RUN } from './lib/realnode-image.js';

const skip = requirement(podmanMissing());
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
const PSK = 'image-test-pre-shared-key-0123';
const PREFIX = 'ikg-imgtest';
/** What every container here gets: the chart's securityContext for an edge/control pod. */
const LOCKED = [
  '--read-only',
  '--cap-drop',
  'ALL',
  '--user',
  '10001:10001',
  '--tmpfs',
  '/tmp:rw,size=64m,mode=1777',
];

let dir = '';
const started: string[] = [];

function config(stateFile: string): string {
  return `identity: { id: gw.example.org }
listen:
  udp: { address: 0.0.0.0, ikePort: 500, natTPort: 4500 }
  tcp: { address: 0.0.0.0, port: 4500 }
  tls: { address: 0.0.0.0, port: 443 }
control: { address: 127.0.0.1, port: 8080, stateFile: ${stateFile} }
pools:
  - { name: rw, cidr: 10.10.0.0/24 }
peers:
  - name: rw
    id: '*@example.org'
    auth: { psk: '${PSK}' }
    pool: rw
    localTs: [0.0.0.0/0]
    remoteTs: [dynamic]
dataplane:
  tun: { name: ikgimg0, mtu: 1400 }
  masquerade: { enabled: true, outInterface: lo }
`;
}

/** `podman run -d` with a name this suite removes in after(). */
function runDetached(name: string, args: readonly string[]): void {
  podman(['rm', '-f', name]);
  started.push(name);
  const r = podman([...PODMAN_RUN, '-d', '--name', name, ...args]);
  assert.equal(r.status, 0, r.stderr);
}

/** Polls the container's log (bounded) until `msg` appears; returns the parsed line. */
async function waitForLog(name: string, msg: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = podman(['logs', name]);
    const out = `${r.stdout}${r.stderr}`;
    for (const line of out.split('\n')) {
      if (!line.startsWith('{')) continue;
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j.msg === msg) return j;
    }
    if (Date.now() > deadline)
      assert.fail(`no "${msg}" from ${name} within ${timeoutMs} ms:\n${out.slice(-3000)}`);
    await sleep(250);
  }
}

/** Runs JavaScript with the image's node inside a running container (the image has no shell). */
function nodeIn(name: string, code: string): { status: number; out: string } {
  const r = podman(['exec', name, 'node', '-e', code]);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe(
  'the ikegate image: FROM scratch, non-root, read-only root, no capability (issue #12)',
  { skip, timeout: 1_200_000 },
  () => {
    before(() => {
      const b = buildImage(IMAGE);
      console.log(`# image ${b.tag} built/reused in ${b.seconds.toFixed(1)} s`);
      dir = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
      chmodSync(dir, 0o755);
      writeFileSync(join(dir, 'ikegate.yaml'), config('/tmp/ikegate.state.json'), { mode: 0o644 });
    });

    after(() => {
      for (const n of started) podman(['rm', '-f', '-t', '2', n]);
      if (dir !== '') rmSync(dir, { recursive: true, force: true });
    });

    test('the image runs `ikegate` as the numeric user 10001, carries the OCI labels and no shell', () => {
      const r = podman(['image', 'inspect', IMAGE]);
      assert.equal(r.status, 0, r.stderr);
      const [img] = JSON.parse(r.stdout) as {
        Config: { User: string; Entrypoint: string[]; Labels: Record<string, string> };
        Size: number;
      }[];
      assert.ok(img);
      assert.equal(img.Config.User, '10001:10001');
      assert.deepEqual(img.Config.Entrypoint, ['ikegate']);
      assert.equal(img.Config.Labels['org.opencontainers.image.title'], 'ikegate');
      assert.equal(img.Config.Labels['org.opencontainers.image.version'], VERSION);
      assert.equal(img.Config.Labels['org.opencontainers.image.licenses'], 'Apache-2.0');
      assert.match(img.Config.Labels['org.opencontainers.image.revision'] ?? '', /^([0-9a-f]{40}|unknown)$/);
      console.log(`# image size ${(img.Size / 1e6).toFixed(1)} MB`);
      const sh = podman([
        ...PODMAN_RUN,
        '--rm',
        '--network=none',
        ...LOCKED,
        '--entrypoint',
        '/bin/sh',
        IMAGE,
        '-c',
        'true',
      ]);
      assert.notEqual(sh.status, 0, 'no shell in the image');
    });

    test('`ikegate --help` and `ikegate version` on a read-only root, non-root, all capabilities dropped', () => {
      const help = podman([...PODMAN_RUN, '--rm', '--network=none', ...LOCKED, IMAGE, '--help']);
      assert.equal(help.status, 0, help.stderr);
      for (const c of ['up', 'connect', 'edge', 'worker', 'control'])
        assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'));
      const v = podman([...PODMAN_RUN, '--rm', '--network=none', ...LOCKED, IMAGE, 'version']);
      assert.equal(v.status, 0, v.stderr);
      assert.equal(v.stdout.trim(), `ikegate ${VERSION}`);
    });

    test('the run-time tools a worker execs are in the image: python3 with the TUN opener modules, ip, nft, openssl, ping', () => {
      const tools: [string, string[], RegExp][] = [
        ['python3', ['-c', 'import errno, fcntl, json, os, socket, struct, sys; print("ok")'], /^ok$/m],
        ['ip', ['-V'], /iproute2/],
        ['nft', ['--version'], /nftables v1\./],
        ['openssl', ['version'], /OpenSSL 3\./],
        ['ping', ['-V'], /iputils/],
      ];
      for (const [bin, args, want] of tools) {
        const r = podman([
          ...PODMAN_RUN,
          '--rm',
          '--network=none',
          ...LOCKED,
          '--entrypoint',
          bin,
          IMAGE,
          ...args,
        ]);
        assert.equal(r.status, 0, `${bin}: ${r.stderr}`);
        assert.match(`${r.stdout}${r.stderr}`, want, bin);
      }
    });

    test('`ikegate up --no-tun` binds 500/4500/443 with no capability, answers /readyz, runs on jemalloc; uid 10001, no effective capability, root fs read-only', async () => {
      const name = `${PREFIX}-up`;
      runDetached(name, [
        '--network=none',
        ...LOCKED,
        '--sysctl',
        'net.ipv4.ip_unprivileged_port_start=0',
        '-v',
        `${dir}:/etc/ikegate:ro`,
        IMAGE,
        'up',
        '--no-tun',
        '--config',
        '/etc/ikegate/ikegate.yaml',
      ]);
      const upLine = await waitForLog(name, 'ikegate-up');
      assert.equal(upLine.ike, 500);
      assert.equal(upLine.tls, 443);
      assert.equal(upLine.allocator, 'jemalloc', 'the image preloads jemalloc for every role (issue #14)');
      const ready = nodeIn(
        name,
        'fetch("http://127.0.0.1:8080/readyz").then(async (r) => console.log(r.status, await r.text()))',
      );
      assert.equal(ready.status, 0, ready.out);
      assert.match(ready.out, /^200 /);
      // PID 1 is ikegate itself (no init, no shell)
      const st = nodeIn(name, 'process.stdout.write(require("fs").readFileSync("/proc/1/status", "utf8"))');
      assert.equal(st.status, 0, st.out);
      assert.match(st.out, /^Uid:\t10001\t10001\t10001\t10001$/m);
      assert.match(st.out, /^CapEff:\t0000000000000000$/m);
      assert.match(st.out, /^CapPrm:\t0000000000000000$/m);
      const cmd = nodeIn(
        name,
        'process.stdout.write(require("fs").readFileSync("/proc/1/cmdline", "utf8").split("\\0").join(" "))',
      );
      assert.match(cmd.out, /ikegate.* up --no-tun/);
      for (const path of ['/opt/ikegate/x', '/etc/x', '/x']) {
        const w = nodeIn(
          name,
          `try { require("fs").writeFileSync(${JSON.stringify(path)}, "x"); console.log("written") } catch (e) { console.log(e.code) }`,
        );
        assert.match(w.out, /^(EROFS|EACCES)$/m, `${path}: ${w.out}`);
      }
      const tmp = nodeIn(name, 'require("fs").writeFileSync("/tmp/x", "x"); console.log("ok")');
      assert.match(tmp.out, /^ok$/m, 'the tmpfs is writable');
      const state = nodeIn(name, 'console.log(require("fs").existsSync("/tmp/ikegate.state.json"))');
      assert.match(state.out, /^true$/m, 'the state file lives on the tmpfs');
    });

    for (const transport of ['udp', 'tcp'] as const) {
      test(`\`ikegate connect\` from a second locked-down container brings up an IKE SA and a CHILD SA over ${transport.toUpperCase()} (RFC 7296${transport === 'tcp' ? ', RFC 9329' : ''})`, async () => {
        const name = `${PREFIX}-c-${transport}`;
        runDetached(name, [
          '--network',
          `container:${PREFIX}-up`,
          ...LOCKED,
          IMAGE,
          'connect',
          '--server',
          '127.0.0.1',
          '--transport',
          transport,
          '--id',
          `image-${transport}@example.org`,
          '--remote-id',
          'gw.example.org',
          '--psk',
          PSK,
          '--no-tun',
          '--dpd',
          '0',
        ]);
        const ike = await waitForLog(name, 'ike-sa-established');
        assert.equal(ike.transport, transport);
        const child = await waitForLog(name, 'child-sa-installed');
        assert.match(String(child.virtualIp), /^10\.10\.0\.\d+$/);
        podman(['rm', '-f', '-t', '2', name]);
      });
    }

    test('worker data plane: as root with NET_ADMIN only and /dev/net/tun, `ikegate up` opens its TUN (python3 opener), addresses it and installs the nftables masquerade', async () => {
      const name = `${PREFIX}-tun`;
      runDetached(name, [
        '--network=none',
        '--read-only',
        '--cap-drop',
        'ALL',
        '--cap-add',
        'NET_ADMIN',
        '--user',
        '0:0',
        '--device',
        '/dev/net/tun',
        '--tmpfs',
        '/tmp:rw,size=64m,mode=1777',
        // a container's /proc/sys is read-only: the runtime sets forwarding, ikegate only checks it
        '--sysctl',
        'net.ipv4.ip_forward=1',
        '--sysctl',
        'net.ipv4.ip_unprivileged_port_start=0',
        '-v',
        `${dir}:/etc/ikegate:ro`,
        IMAGE,
        'up',
        '--config',
        '/etc/ikegate/ikegate.yaml',
      ]);
      await waitForLog(name, 'ikegate-up');
      const link = podman(['exec', name, 'ip', '-o', 'addr', 'show', 'dev', 'ikgimg0']);
      assert.equal(link.status, 0, link.stderr);
      assert.match(link.stdout, /inet 10\.10\.0\.1\//);
      const nft = podman(['exec', name, 'nft', 'list', 'ruleset']);
      assert.equal(nft.status, 0, nft.stderr);
      assert.match(nft.stdout, /10\.10\.0\.0\/24.*masquerade/s);
      const st = nodeIn(
        name,
        'process.stdout.write(require("fs").readFileSync("/proc/self/status", "utf8"))',
      );
      assert.match(st.out, /^CapEff:\t0000000000001000$/m, 'CAP_NET_ADMIN (bit 12) and nothing else');
    });
  },
);
