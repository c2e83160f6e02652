/**
 * The control REST API (fastify): health, Prometheus metrics, and the SAs a worker holds. It reads
 * and commands workers through the same methods the CLI would; it never reads SA keys.
 *
 *   GET    /healthz                      liveness: 200 while the process serves
 *   GET    /readyz                       200 once every listener is bound
 *   GET    /metrics                      Prometheus text format
 *   GET    /v1/sas                       every IKE SA (no secrets)
 *   GET    /v1/sas/:spi                  one IKE SA by our SPI (16 hex digits)
 *   DELETE /v1/sas/:spi                  INFORMATIONAL DELETE to the peer (RFC 7296 §1.4.1)
 *   POST   /v1/sas/:spi/rekey            body {"what": "ike" | "children"} (RFC 7296 §1.3)
 *   POST   /v1/sas/:spi/liveness         an empty INFORMATIONAL (RFC 7296 §1.4)
 *   GET    /v1/peers                     configured peers (no credentials)
 *   GET    /v1/pools                     address pools and their use
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Metrics } from '@ikegate/telemetry';
import type { SaSummary } from '@ikegate/worker';

export interface WorkerControl {
  list(): SaSummary[];
  get(spi: string): SaSummary | undefined;
  command(spi: string, command: 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness'): boolean;
}

export interface ControlSettings {
  readonly metrics: Metrics;
  readonly workers: () => readonly WorkerControl[];
  readonly peers: () => readonly { name: string; id: string; auth: string; pool?: string }[];
  readonly pools: () => readonly { name: string; cidr: string; inUse: number; size: number }[];
  readonly ready: () => boolean;
}

const SPI = /^[0-9a-fA-F]{16}$/;

export function buildControl(s: ControlSettings): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });
  const find = (spi: string) => {
    for (const w of s.workers()) {
      const sa = w.get(spi);
      if (sa) return { w, sa };
    }
    return undefined;
  };
  const badSpi = { error: 'bad_spi', message: 'spi must be 16 hex digits (our IKE SPI)' };
  const notFound = (spi: string) => ({ error: 'not_found', message: `no IKE SA with SPI ${spi}` });
  const notReady = (spi: string) => ({
    error: 'conflict',
    message: `IKE SA ${spi} cannot take that command now (not established, or its request queue is full)`,
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) =>
    s.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'starting' }),
  );
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', s.metrics.contentType);
    return s.metrics.render();
  });
  app.get('/v1/sas', async () => ({ sas: s.workers().flatMap((w) => w.list()) }));
  app.get<{ Params: { spi: string } }>('/v1/sas/:spi', async (req, reply) => {
    if (!SPI.test(req.params.spi)) return reply.code(400).send(badSpi);
    const f = find(req.params.spi);
    return f ? f.sa : reply.code(404).send(notFound(req.params.spi));
  });
  app.delete<{ Params: { spi: string } }>('/v1/sas/:spi', async (req, reply) => {
    if (!SPI.test(req.params.spi)) return reply.code(400).send(badSpi);
    const f = find(req.params.spi);
    if (!f) return reply.code(404).send(notFound(req.params.spi));
    if (!f.w.command(req.params.spi, 'delete')) return reply.code(409).send(notReady(req.params.spi));
    return reply.code(202).send({ status: 'deleting', spi: req.params.spi });
  });
  app.post<{ Params: { spi: string }; Body: { what?: unknown } }>(
    '/v1/sas/:spi/rekey',
    async (req, reply) => {
      if (!SPI.test(req.params.spi)) return reply.code(400).send(badSpi);
      const what = (req.body as { what?: unknown } | undefined)?.what ?? 'children';
      if (what !== 'ike' && what !== 'children')
        return reply.code(400).send({ error: 'bad_request', message: 'what must be "ike" or "children"' });
      const f = find(req.params.spi);
      if (!f) return reply.code(404).send(notFound(req.params.spi));
      if (!f.w.command(req.params.spi, what === 'ike' ? 'rekey-ike' : 'rekey-children'))
        return reply.code(409).send(notReady(req.params.spi));
      return reply.code(202).send({ status: 'rekeying', what, spi: req.params.spi });
    },
  );
  app.post<{ Params: { spi: string } }>('/v1/sas/:spi/liveness', async (req, reply) => {
    if (!SPI.test(req.params.spi)) return reply.code(400).send(badSpi);
    const f = find(req.params.spi);
    if (!f) return reply.code(404).send(notFound(req.params.spi));
    if (!f.w.command(req.params.spi, 'liveness')) return reply.code(409).send(notReady(req.params.spi));
    return reply.code(202).send({ status: 'checking', spi: req.params.spi });
  });
  app.get('/v1/peers', async () => ({ peers: s.peers() }));
  app.get('/v1/pools', async () => ({ pools: s.pools() }));
  return app;
}
