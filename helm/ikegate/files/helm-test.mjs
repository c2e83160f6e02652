/* global fetch, AbortSignal, setTimeout, clearTimeout */
// `helm test` for the ikegate chart: a real client through the edge Service, and pings through
// the tunnel to the worker that holds its SA.
//
// 1. Through the control API (an admin token): creates the test pool and the test peer (PSK).
// 2. For each transport (udp, tcp, ...): runs `ikegate connect` with a TUN device to the edge
//    Service, routing every worker's pod address through the tunnel (--ts <ip>/32); waits for the
//    CHILD SA and its virtual IP; asks the API which worker holds the SA; pings that worker's pod
//    address through the tunnel (ICMP from the virtual IP: it arrives on the worker's TUN and is
//    answered by its own network stack, so no routing beyond the worker is needed). With
//    TEST_PING_OTHERS=true it also pings the other workers (the masquerade path).
// 3. Stops the client (it sends a DELETE), deletes the test peer and pool.
// Exits 0 when every transport passed, 1 otherwise; every wait is bounded by TEST_TIMEOUT_SECONDS.
import { spawn, execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';

const run = promisify(execFile);
const env = process.env;
const url = (env.IKEGATE_URL ?? '').replace(/\/$/, '');
const token = readFileSync(env.IKEGATE_TOKEN_FILE, 'utf8').trim();
const psk = readFileSync(env.TEST_PSK_FILE, 'utf8').trim();
const peer = env.TEST_PEER;
const testId = env.TEST_ID;
const timeoutMs = Number(env.TEST_TIMEOUT_SECONDS ?? '60') * 1000;
const command = JSON.parse(env.IKEGATE_COMMAND ?? '["ikegate"]');
const servers = JSON.parse(env.TEST_SERVERS); // { udp: host, tcp: host, tls: host }
const ports = JSON.parse(env.TEST_PORTS); // { ike, natT, tcp, tls }
const transports = (env.TEST_TRANSPORTS ?? 'udp,tcp').split(',').filter(Boolean);
const tun = 'ikgtest0';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (msg, extra = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }));

async function api(method, path, body, okStatuses = []) {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok && !okStatuses.includes(res.status))
    throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 400)}`);
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

function hostOf(address) {
  return address.slice(0, address.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** Runs `ikegate connect`; resolves with the child and its virtual IP once the CHILD SA is up. */
function connect(transport, routes) {
  const args = [
    ...command.slice(1),
    'connect',
    `--server=${servers[transport]}`,
    `--transport=${transport}`,
    `--id=${testId}`,
    `--remote-id=${env.TEST_REMOTE_ID}`,
    `--psk-file=${env.TEST_PSK_FILE}`,
    `--tun=${tun}`,
    `--port-ike=${ports.ike}`,
    `--port-natt=${ports.natT}`,
    `--port-tcp=${ports.tcp}`,
    `--port-tls=${ports.tls}`,
    ...(transport === 'tls' ? ['--insecure'] : []),
    ...routes.map((ip) => `--ts=${ip}/32`),
  ];
  const child = spawn(command[0], args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no CHILD SA over ${transport} within the timeout`)),
      timeoutMs,
    );
    const onData = (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        process.stdout.write(`  connect: ${line}\n`);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'child-sa-installed' && j.virtualIp) {
            clearTimeout(timer);
            resolve(j.virtualIp);
          }
        } catch {
          // not a log line
        }
      }
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.stderr.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ikegate connect exited (${code}) before a CHILD SA over ${transport}`));
    });
  });
  return { child, ready };
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false) {
    child.kill('SIGKILL');
    await exited;
  }
}

async function ping(ip) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const { stdout } = await run('ping', ['-c', '3', '-W', '2', '-I', tun, ip], { timeout: 15_000 });
      return stdout.trim().split('\n').slice(-2).join(' / ');
    } catch (e) {
      if (e.code === 'ENOENT')
        throw new Error('ping is not in the image (iputils-ping is needed for helm test)', { cause: e });
      last = (e.stdout ?? e.message).trim().split('\n').slice(-2).join(' / ');
    }
    await sleep(1000);
  }
  throw new Error(`no answer from ${ip} through the tunnel: ${last}`);
}

async function main() {
  const workers = (await api('GET', '/v1/workers')).body.items.filter((w) => w.relay);
  if (workers.length === 0) throw new Error('no worker is a member (GET /v1/workers)');
  const ipOf = new Map(workers.map((w) => [w.id, hostOf(w.relay)]));
  say('workers', { workers: Object.fromEntries(ipOf) });

  const pool = await api('GET', `/v1/pools/${peer}`, undefined, [404]);
  const createdPool = pool.status === 404;
  if (createdPool) await api('POST', '/v1/pools', { name: peer, cidr: env.TEST_POOL_CIDR });
  await api('PUT', `/v1/peers/${peer}`, { id: testId, auth: { psk }, pool: peer });
  say('test-peer-ready', { peer, pool: peer, createdPool });

  let failed = 0;
  try {
    for (const transport of transports) {
      const { child, ready } = connect(transport, [...ipOf.values()]);
      try {
        const vip = await ready;
        const sas = (await api('GET', `/v1/sas?identity=${encodeURIComponent(testId)}`)).body.items;
        const sa = sas.find((s) => s.virtualIp === vip) ?? sas[0];
        if (!sa?.worker || !ipOf.has(sa.worker)) throw new Error(`the API shows no worker for ${vip}`);
        say('sa', {
          transport,
          vip,
          spi: sa.spi,
          worker: sa.worker,
          edge: sa.edge,
          saTransport: sa.transport,
        });
        const target = ipOf.get(sa.worker);
        say('ping-ok', { transport, target, result: await ping(target) });
        if (env.TEST_PING_OTHERS === 'true') {
          for (const [id, ip] of ipOf)
            if (id !== sa.worker) say('ping-ok', { transport, target: ip, result: await ping(ip) });
        }
        say('PASS', { transport });
      } catch (e) {
        failed++;
        say('FAIL', { transport, err: e.message });
      } finally {
        await stop(child);
      }
    }
  } finally {
    await api('DELETE', `/v1/peers/${peer}`, undefined, [404]).catch((e) =>
      say('cleanup-failed', { err: e.message }),
    );
    if (createdPool) {
      for (let i = 0; i < 10; i++) {
        const r = await api('DELETE', `/v1/pools/${peer}`, undefined, [404, 409]).catch((e) => ({
          status: 0,
          e,
        }));
        if (r.status !== 409 && r.status !== 0) break;
        await sleep(1000);
      }
    }
  }
  return failed;
}

const failed = await main().catch((e) => {
  say('FAIL', { err: e.message });
  return 1;
});
process.exit(failed === 0 ? 0 : 1);
