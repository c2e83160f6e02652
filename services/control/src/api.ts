/**
 * The control REST API (issue #10): health and metrics for anyone; with an access file, peers,
 * pools, policies, SAs and the cluster for callers whose role allows it; `/openapi.json`
 * generated from the routes. The same builder serves `ikegate up` (LocalBackend) and the cluster's
 * control process (ClusterBackend).
 *
 *   GET    /healthz /readyz /metrics /openapi.json             public
 *   GET    /v1/peers[/{name}]  /v1/pools[/{name}]  /v1/sas[/{spi}]  /v1/policies/failover
 *          /v1/workers  /v1/edges  /v1/shards  /v1/config       viewer
 *   DELETE /v1/sas/{spi}, POST /v1/sas/{spi}/rekey|liveness, drains             operator
 *   POST/PUT/PATCH/DELETE peers, pools, policies                                admin
 */
import type { PeerGlobals } from '@ikegate/config';
import type { ManagedFollower } from '@ikegate/store';
import type { Logger, Metrics } from '@ikegate/telemetry';
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from './access.js';
import type { ControlBackend } from './backend.js';
import { openApiDocument } from './openapi.js';
import { configRoutes } from './routes-config.js';
import { opsRoutes } from './routes-ops.js';
import * as S from './schemas.js';
import { createServer, type RouteRecord, type ServerOptions } from './server.js';

export interface ControlApiOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly access: AccessControl;
  readonly backend: ControlBackend;
  readonly managed: ManagedFollower;
  readonly globals: PeerGlobals;
  readonly baseDir?: string;
  readonly ready: () => boolean;
  readonly tls?: ServerOptions['tls'];
  readonly version?: string;
}

/** Health, metrics and the OpenAPI document: what every ikegate HTTP server serves to anyone. */
export function publicRoutes(
  app: FastifyInstance,
  o: {
    metrics: Metrics;
    ready: () => boolean;
    routes: readonly RouteRecord[];
    title: string;
    version?: string;
  },
): void {
  const tags = ['health'];
  app.get(
    '/healthz',
    {
      config: { role: 'public', summary: 'Liveness: 200 while the process serves', tags },
      schema: { response: { 200: S.health } },
    },
    async () => ({ status: 'ok' }),
  );
  app.get(
    '/readyz',
    {
      config: { role: 'public', summary: 'Readiness: 200 once serving (edges: not while draining)', tags },
      schema: { response: { 200: S.health, 503: S.health } },
    },
    async (_req, reply) => (o.ready() ? { status: 'ready' } : reply.code(503).send({ status: 'not-ready' })),
  );
  app.get(
    '/metrics',
    {
      config: {
        role: 'public',
        summary: 'Prometheus metrics (text exposition format)',
        tags,
        produces: 'text/plain',
      },
    },
    async (_req, reply) => {
      reply.header('content-type', o.metrics.contentType);
      return o.metrics.render();
    },
  );
  let doc: Record<string, unknown> | undefined;
  app.get(
    '/openapi.json',
    {
      config: { role: 'public', summary: 'This API as OpenAPI 3.1 (generated from its route schemas)', tags },
      schema: {
        response: {
          200: { description: 'The OpenAPI document', type: 'object', additionalProperties: true },
        },
      },
    },
    async () =>
      (doc ??= openApiDocument(o.routes, {
        title: o.title,
        version: o.version ?? '0.1.0',
        description:
          'ikegate: errors are RFC 9457 problem documents with a stable `type` (urn:ikegate:problem:<kind>); see docs/api.md.',
      })),
  );
}

export function buildControlApi(o: ControlApiOptions): FastifyInstance {
  const { app, routes } = createServer({
    log: o.log,
    metrics: o.metrics,
    access: o.access,
    ...(o.tls ? { tls: o.tls } : {}),
  });
  publicRoutes(app, {
    metrics: o.metrics,
    ready: o.ready,
    routes,
    title: 'ikegate control API',
    ...(o.version ? { version: o.version } : {}),
  });
  // No access file: nobody could authenticate, so the rest does not exist (apiNotice says so).
  if (!o.access.enabled) return app;
  configRoutes(app, {
    managed: o.managed,
    backend: o.backend,
    globals: o.globals,
    ...(o.baseDir !== undefined ? { baseDir: o.baseDir } : {}),
  });
  opsRoutes(app, o.backend);
  return app;
}

/** The log line every API server writes at start: what it serves and to whom. */
export function apiNotice(log: Logger, access: AccessControl, where: string): void {
  if (access.enabled)
    log.info({ where, ...access.entries }, 'api-serving: /v1 routes need a token or client certificate');
  else
    log.warn(
      { where },
      'api-restricted: no control.accessFile is configured, so only /healthz, /readyz, /metrics and /openapi.json are served (see docs/api.md to create tokens)',
    );
}
