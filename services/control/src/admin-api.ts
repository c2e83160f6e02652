/**
 * The admin endpoints of a cluster's workers and edges: what the control process reads and
 * commands them through. Health, metrics and the OpenAPI document are public; everything else
 * needs the same credentials as the control API (a token from the access file) or the cluster's
 * internal credential (derived from the KEK, which only cluster processes hold). So a worker's
 * admin port reached from the network cannot delete a tunnel (issue #10).
 *
 *   worker  GET  /internal/v1/status              id, shards with epochs, SAs, config version
 *           GET  /internal/v1/sas                  one keyset page (`after` = last SPI seen)
 *           GET  /internal/v1/sas/{spi}
 *           POST /internal/v1/sas/{spi}/command    {command: delete|rekey-ike|rekey-children|liveness}
 *           GET  /internal/v1/pools/{name}/holders
 *   edge    GET  /internal/v1/status              id, open streams, draining, unowned shards
 *           POST /internal/v1/drain               {graceSeconds}
 */
import type { Metrics, Logger } from '@ikegate/telemetry';
import type { SaQuery, Worker } from '@ikegate/worker';
import type { FastifyInstance } from 'fastify';
import type { AccessControl } from './access.js';
import { publicRoutes } from './api.js';
import { ProblemError, problemSchema } from './problem.js';
import * as S from './schemas.js';
import { createServer } from './server.js';

const SPI = { type: 'string', pattern: '^[0-9a-f]{16}$' } as const;

export interface AdminBase {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly access: AccessControl;
  readonly ready: () => boolean;
}

export interface WorkerStatus {
  readonly id: string;
  readonly shards: readonly { shard: number; epoch: number }[];
  readonly draining: boolean;
  readonly configVersion: number;
  readonly pendingWrites: number;
  /** Managed documents this worker could not apply. */
  readonly invalid: readonly { kind: 'peer' | 'pool'; name: string; error: string }[];
}

const workerStatus = {
  type: 'object',
  required: ['id', 'shards', 'draining', 'configVersion', 'pendingWrites', 'sas', 'invalid'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    shards: {
      type: 'array',
      items: {
        type: 'object',
        required: ['shard', 'epoch'],
        additionalProperties: false,
        properties: { shard: { type: 'integer' }, epoch: { type: 'integer' } },
      },
    },
    draining: { type: 'boolean' },
    configVersion: { type: 'integer' },
    pendingWrites: { type: 'integer' },
    sas: { type: 'integer' },
    invalid: S.invalidDocuments,
  },
} as const;

const internalSaQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: S.pageFields.limit,
    after: SPI,
    peer: S.saQuery.properties.peer,
    identity: S.saQuery.properties.identity,
    edge: S.saQuery.properties.edge,
    transport: S.saQuery.properties.transport,
    state: S.saQuery.properties.state,
    virtualIp: S.saQuery.properties.virtualIp,
  },
} as const;

const internalSaPage = {
  type: 'object',
  required: ['items', 'more', 'counts'],
  additionalProperties: false,
  properties: {
    items: S.saList.properties.items,
    more: { type: 'boolean' },
    counts: S.saList.properties.counts,
  },
} as const;

const commandBody = {
  type: 'object',
  required: ['command'],
  additionalProperties: false,
  properties: { command: { type: 'string', enum: ['delete', 'rekey-ike', 'rekey-children', 'liveness'] } },
} as const;

const holders = {
  type: 'object',
  required: ['holders'],
  additionalProperties: false,
  properties: { holders: problemSchema.properties.holders },
} as const;

function server(o: AdminBase, title: string) {
  const { app, routes } = createServer({ log: o.log, metrics: o.metrics, access: o.access });
  publicRoutes(app, { metrics: o.metrics, ready: o.ready, routes, title });
  return app;
}

export function buildWorkerAdmin(
  o: AdminBase & { readonly worker: Worker; readonly status: () => WorkerStatus },
): FastifyInstance {
  const app = server(o, 'ikegate worker admin API');
  const tags = ['internal'];
  app.get(
    '/internal/v1/status',
    {
      config: { role: 'viewer', summary: 'This worker: shards held with epochs, SAs, config version', tags },
      schema: { response: { 200: workerStatus } },
    },
    async () => ({ ...o.status(), sas: o.worker.ikeSaCount }),
  );
  app.get<{ Querystring: SaQuery }>(
    '/internal/v1/sas',
    {
      config: { role: 'viewer', summary: 'One keyset page of this worker’s SAs', tags },
      schema: { querystring: internalSaQuery, response: { 200: internalSaPage } },
    },
    async (req) => o.worker.page(req.query),
  );
  app.get<{ Params: { spi: string } }>(
    '/internal/v1/sas/:spi',
    {
      config: { role: 'viewer', summary: 'One SA held here', tags },
      schema: { params: S.spiParams, response: { 200: S.saOutput } },
    },
    async (req) => {
      const sa = o.worker.get(req.params.spi);
      if (!sa) throw new ProblemError('not-found', `no IKE SA with SPI ${req.params.spi} here`);
      return sa;
    },
  );
  app.post<{
    Params: { spi: string };
    Body: { command: 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness' };
  }>(
    '/internal/v1/sas/:spi/command',
    {
      config: { role: 'operator', summary: 'Start an exchange on an SA held here', tags },
      schema: { params: S.spiParams, body: commandBody, response: { 202: S.accepted, 409: problemSchema } },
    },
    async (req, reply) => {
      const spi = req.params.spi.toLowerCase();
      if (!o.worker.get(spi)) throw new ProblemError('not-found', `no IKE SA with SPI ${spi} here`);
      if (!o.worker.command(spi, req.body.command))
        throw new ProblemError('sa-not-ready', `IKE SA ${spi} cannot take that command now`);
      return reply.code(202).send({ status: req.body.command, spi });
    },
  );
  app.get<{ Params: { name: string } }>(
    '/internal/v1/pools/:name/holders',
    {
      config: { role: 'viewer', summary: 'Addresses of a pool held here, with their SAs', tags },
      schema: { params: S.nameParams, response: { 200: holders } },
    },
    async (req) => ({ holders: o.worker.poolHolders(req.params.name) }),
  );
  return app;
}

export interface EdgeStatus {
  readonly id: string;
  readonly connections: number;
  readonly draining: boolean;
  readonly unowned: number;
  readonly shardsByWorker: Record<string, number>;
}

const edgeStatus = {
  type: 'object',
  required: ['id', 'connections', 'draining', 'unowned', 'shardsByWorker'],
  additionalProperties: false,
  properties: {
    id: { type: 'string' },
    connections: { type: 'integer' },
    draining: { type: 'boolean' },
    unowned: { type: 'integer' },
    shardsByWorker: { type: 'object', additionalProperties: { type: 'integer' } },
  },
} as const;

export function buildEdgeAdmin(
  o: AdminBase & { readonly status: () => EdgeStatus; readonly drain: (graceMs: number) => Promise<void> },
): FastifyInstance {
  const app = server(o, 'ikegate edge admin API');
  const tags = ['internal'];
  app.get(
    '/internal/v1/status',
    {
      config: { role: 'viewer', summary: 'This edge: open streams, draining, routes', tags },
      schema: { response: { 200: edgeStatus } },
    },
    async () => o.status(),
  );
  app.post<{ Body: { graceSeconds?: number } | undefined }>(
    '/internal/v1/drain',
    {
      config: { role: 'operator', summary: 'Drain this edge', tags },
      schema: { body: S.drainBody, response: { 202: S.drainOutput } },
    },
    async (req, reply) => {
      await o.drain((req.body?.graceSeconds ?? 30) * 1000);
      return reply.code(202).send({ id: o.status().id, draining: true });
    },
  );
  return app;
}
