/* global fetch, AbortSignal, setTimeout */
// Kubernetes lifecycle hooks of the ikegate chart, through the control API (docs/api.md, Drains).
// Usage: node lifecycle.mjs edge-prestop|worker-prestop
// Environment: IKEGATE_URL (the control API), IKEGATE_TOKEN_FILE (an operator token), IKEGATE_MEMBER_ID (the
// pod name = the edge or worker id), IKEGATE_DRAIN_SECONDS (edge: the grace period; worker: the
// longest wait for its shards to move).
//
// edge-prestop: POST /v1/edges/{id}/drain {graceSeconds}: the edge's /readyz turns 503 (the
//   Service stops sending it new peers), it accepts no new stream and closes the open ones spread
//   over the grace period; the hook then waits that long so the process lives until they are gone.
// worker-prestop: POST /v1/workers/{id}/drain: the worker writes every SA and releases its shard
//   leases; the others adopt the SAs (same SPIs, no re-authentication). The hook waits until no
//   shard is leased to it and every shard is leased to another worker (GET /v1/shards), then undrains the id (DELETE .../drain) so
//   the pod that replaces it (same name, StatefulSet) takes shards again. SIGTERM follows; the
//   worker's own stop releases anything left. No drain when no other worker is serving (one
//   worker, or all stopping at once, e.g. helm uninstall): there is nobody to hand shards to.
// Every failure is printed and the hook exits 0: a hook that fails still ends in SIGTERM, and the
// processes' own graceful stop is the fallback. Every wait is bounded.
import { readFileSync } from 'node:fs';

const [action] = process.argv.slice(2);
const url = (process.env.IKEGATE_URL ?? '').replace(/\/$/, '');
const id = process.env.IKEGATE_MEMBER_ID ?? '';
const seconds = Number(process.env.IKEGATE_DRAIN_SECONDS ?? '30');
const log = (msg, extra = {}) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), hook: action, id, msg, ...extra }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let token = '';
try {
  token = readFileSync(process.env.IKEGATE_TOKEN_FILE ?? '', 'utf8').trim();
} catch (e) {
  log('token-unreadable', { err: e.code ?? e.message });
}

async function call(method, path, body) {
  const res = await fetch(url + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return text === '' ? {} : JSON.parse(text);
}

async function edgePrestop() {
  const grace = Number.isFinite(seconds) && seconds >= 0 ? Math.floor(seconds) : 30;
  try {
    await call('POST', `/v1/edges/${encodeURIComponent(id)}/drain`, { graceSeconds: grace });
    log('edge-drain-started', { graceSeconds: grace });
    await sleep(grace * 1000 + 2000);
  } catch (e) {
    // Not drained: give the endpoint removal a moment to reach kube-proxy before SIGTERM.
    log('edge-drain-failed', { err: e.message });
    await sleep(5000);
  }
}

/** Other workers that can take shards: healthy and not draining. */
async function othersServing() {
  const { items } = await call('GET', '/v1/workers');
  return items.filter((w) => w.id !== id && w.healthy && !w.draining).length;
}

async function workerPrestop() {
  const path = `/v1/workers/${encodeURIComponent(id)}/drain`;
  try {
    // Nobody to hand the shards to (one worker, or all of them stopping): a drain would only wait.
    if ((await othersServing()) === 0) {
      log('worker-drain-skipped', { why: 'no other worker serving' });
      return;
    }
  } catch (e) {
    log('worker-drain-failed', { err: e.message });
    return;
  }
  try {
    await call('POST', path);
    log('worker-drain-started');
  } catch (e) {
    log('worker-drain-failed', { err: e.message });
    return;
  }
  const deadline = Date.now() + (Number.isFinite(seconds) && seconds > 0 ? seconds : 60) * 1000;
  let held = -1;
  while (Date.now() < deadline) {
    try {
      const s = await call('GET', `/v1/shards?owner=${encodeURIComponent(id)}`);
      held = s.byWorker?.[id] ?? 0;
      // Done when it holds none and the others took every one (no shard left unowned).
      if (held === 0 && s.owned === s.count) break;
      if ((await othersServing()) === 0) {
        log('worker-drain-stopped', { why: 'no other worker serving any more', shardsHeld: held });
        break;
      }
    } catch (e) {
      log('worker-shards-unreadable', { err: e.message });
    }
    await sleep(1000);
  }
  log(held === 0 ? 'worker-drained' : 'worker-drain-timeout', { shardsHeld: held });
  try {
    await call('DELETE', path);
    log('worker-undrained-for-successor');
  } catch (e) {
    log('worker-undrain-failed', { err: e.message, fix: `ikegate ctl undrain worker ${id}` });
  }
}

if (!url || !id) log('missing-environment', { url, id });
else if (action === 'edge-prestop') await edgePrestop();
else if (action === 'worker-prestop') await workerPrestop();
else log('unknown-action');
