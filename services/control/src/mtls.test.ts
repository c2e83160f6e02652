import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { AccessControl, newToken, tokenHash } from './access.js';
import { publicRoutes } from './api.js';
import { createServer } from './server.js';

const fixture = (n: string) =>
  readFileSync(new URL(`../../../libs/crypto/src/testdata/${n}`, import.meta.url), 'utf8');

function get(
  port: number,
  o: { cert?: string; key?: string; authorization?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/whoami',
        ca: fixture('ca-ecdsa.pem'),
        checkServerIdentity: () => undefined,
        ...(o.cert ? { cert: o.cert, key: o.key } : {}),
        headers: o.authorization ? { authorization: o.authorization } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('mTLS: a client certificate from the client CA listed in the access file authenticates with its role; others do not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ikegate-mtls-'));
  const token = newToken();
  writeFileSync(
    join(dir, 'access.yaml'),
    `tokens:\n  - { name: ops, role: viewer, sha256: ${tokenHash(token)} }\nclients:\n  - { name: rw-bot, subject: "CN=road warrior", role: operator }\n`,
  );
  // The same subject, but issued by a CA the server does not trust.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=road warrior',
      '-days',
      '2',
      '-keyout',
      join(dir, 'rogue.key'),
      '-out',
      join(dir, 'rogue.pem'),
    ],
    { stdio: 'ignore' },
  );
  const log = createLogger({ level: 'silent' });
  const metrics = new Metrics({ processMetrics: false });
  const access = new AccessControl({ file: join(dir, 'access.yaml'), log, metrics });
  access.start();
  const { app, routes } = createServer({
    log,
    metrics,
    access,
    tls: {
      certificate: fixture('ee-ecdsa.pem'),
      key: fixture('ee-ecdsa.key'),
      clientCa: fixture('ca-ecdsa.pem'),
    },
  });
  publicRoutes(app, { metrics, ready: () => true, routes, title: 't' });
  app.get('/v1/whoami', { config: { role: 'viewer', summary: 'who' } }, async (req) => req.principal);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  try {
    const client = await get(port, { cert: fixture('ee-rsa.pem'), key: fixture('ee-rsa.key') });
    assert.equal(client.status, 200, client.body);
    assert.deepEqual(JSON.parse(client.body), { actor: 'rw-bot', role: 'operator', via: 'certificate' });
    assert.equal((await get(port, {})).status, 401, 'no certificate, no token');
    const rogue = await get(port, {
      cert: readFileSync(join(dir, 'rogue.pem'), 'utf8'),
      key: readFileSync(join(dir, 'rogue.key'), 'utf8'),
    });
    assert.equal(rogue.status, 401, 'same subject from an untrusted CA');
    const withToken = await get(port, { authorization: `Bearer ${token}` });
    assert.equal(JSON.parse(withToken.body).actor, 'ops', 'tokens still work over HTTPS');
  } finally {
    access.stop();
    await app.close();
  }
});
