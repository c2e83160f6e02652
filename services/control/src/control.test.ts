import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '@ikegate/telemetry';
import type { SaSummary } from '@ikegate/worker';
import { buildControl, type WorkerControl } from './control.js';

/** A worker-shaped view over a fixed list of SAs that records the commands it was given. */
class Sas implements WorkerControl {
  readonly commands: [string, string][] = [];
  constructor(private readonly sas: SaSummary[]) {}
  list(): SaSummary[] {
    return this.sas;
  }
  get(spi: string): SaSummary | undefined {
    return this.sas.find((s) => s.spi === spi.toLowerCase());
  }
  command(spi: string, c: 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness'): boolean {
    this.commands.push([spi, c]);
    // As the worker: only an established SA takes a command.
    return this.get(spi)?.status === 'established';
  }
}

const SA: SaSummary = {
  spi: '0123456789abcdef',
  status: 'established',
  peerId: 'carol@example.org',
  shard: 3,
  transport: 'tcp',
  remote: '192.0.2.10:40000',
  children: [],
};

function app() {
  const sas = new Sas([SA]);
  const metrics = new Metrics({ processMetrics: false });
  metrics.drops.inc({ layer: 'iketcp', reason: 'bad_prefix' });
  const control = buildControl({
    metrics,
    workers: () => [sas],
    peers: () => [{ name: 'rw', id: '*@example.org', auth: 'psk', pool: 'rw' }],
    pools: () => [{ name: 'rw', cidr: '10.10.0.0/24', inUse: 1, size: 253 }],
    ready: () => true,
  });
  return { control, sas };
}

test('control API: lists SAs and finds one by our SPI; bad SPIs get 400, unknown ones 404', async () => {
  const { control } = app();
  const list = await control.inject({ method: 'GET', url: '/v1/sas' });
  assert.equal(list.statusCode, 200);
  assert.deepEqual(list.json(), { sas: [SA] });
  assert.equal((await control.inject({ method: 'GET', url: '/v1/sas/0123456789ABCDEF' })).statusCode, 200);
  const bad = await control.inject({ method: 'GET', url: '/v1/sas/xyz' });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error, 'bad_spi');
  const missing = await control.inject({ method: 'DELETE', url: '/v1/sas/ffffffffffffffff' });
  assert.equal(missing.statusCode, 404);
  assert.match(missing.json().message, /no IKE SA with SPI ffffffffffffffff/);
});

test('control API: DELETE and rekey start exchanges on the worker (RFC 7296 §1.3, §1.4.1); a bad body is a 400 naming the field', async () => {
  const { control, sas } = app();
  assert.equal((await control.inject({ method: 'DELETE', url: `/v1/sas/${SA.spi}` })).statusCode, 202);
  const rekey = await control.inject({
    method: 'POST',
    url: `/v1/sas/${SA.spi}/rekey`,
    payload: { what: 'ike' },
  });
  assert.equal(rekey.statusCode, 202);
  const wrong = await control.inject({
    method: 'POST',
    url: `/v1/sas/${SA.spi}/rekey`,
    payload: { what: 'all' },
  });
  assert.equal(wrong.statusCode, 400);
  assert.match(wrong.json().message, /what must be/);
  assert.deepEqual(sas.commands, [
    [SA.spi, 'delete'],
    [SA.spi, 'rekey-ike'],
  ]);
});

test('control API: a command on an SA that is not established is a 409, not a 202 that does nothing', async () => {
  const halfOpen: SaSummary = { ...SA, spi: 'fedcba9876543210', status: 'init-answered' };
  const sas = new Sas([SA, halfOpen]);
  const control = buildControl({
    metrics: new Metrics({ processMetrics: false }),
    workers: () => [sas],
    peers: () => [],
    pools: () => [],
    ready: () => true,
  });
  const del = await control.inject({ method: 'DELETE', url: `/v1/sas/${halfOpen.spi}` });
  assert.equal(del.statusCode, 409);
  assert.equal(del.json().error, 'conflict');
  const live = await control.inject({ method: 'POST', url: `/v1/sas/${halfOpen.spi}/liveness` });
  assert.equal(live.statusCode, 409);
  assert.equal((await control.inject({ method: 'POST', url: `/v1/sas/${SA.spi}/liveness` })).statusCode, 202);
});

test('control API: /metrics in the Prometheus format, /healthz, peers without credentials, pools', async () => {
  const { control } = app();
  const m = await control.inject({ method: 'GET', url: '/metrics' });
  assert.match(String(m.headers['content-type']), /text\/plain/);
  assert.match(m.body, /ikegate_drops_total\{layer="iketcp",reason="bad_prefix"\} 1/);
  assert.equal((await control.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  const peers = await control.inject({ method: 'GET', url: '/v1/peers' });
  assert.ok(!/psk":|secret/i.test(peers.body.replace('"auth":"psk"', '')));
  assert.equal((await control.inject({ method: 'GET', url: '/v1/pools' })).json().pools[0].inUse, 1);
  const big = await control.inject({
    method: 'POST',
    url: `/v1/sas/${SA.spi}/rekey`,
    payload: { what: 'x'.repeat(20_000) },
  });
  assert.equal(big.statusCode, 413, 'bodies are bounded');
});
