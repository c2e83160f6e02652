/**
 * /v1/sas (list, one, commands) and the cluster: /v1/workers, /v1/edges, /v1/shards and drains.
 *
 * SA pages are keyset pages in SPI order (worker admin.ts): the cursor is the last SPI of the
 * previous page, so every SA that exists for the whole listing appears exactly once, on whichever
 * worker it lives, while others come and go. A command on an SA that is not established is a 409.
 */
import type { FastifyInstance } from 'fastify';
import type { ControlBackend, SaCommand } from './backend.js';
import { ProblemError, problemSchema } from './problem.js';
import { decodeCursor, encodeCursor } from './routes-config.js';
import * as S from './schemas.js';

const SPI_RE = /^[0-9a-f]{16}$/;

interface SaQueryString {
  limit: number;
  cursor?: string;
  peer?: string;
  identity?: string;
  worker?: string;
  edge?: string;
  transport?: string;
  state?: string;
  virtualIp?: string;
}

export function opsRoutes(app: FastifyInstance, backend: ControlBackend): void {
  const tags = ['sas'];

  app.get<{ Querystring: SaQueryString }>(
    '/v1/sas',
    {
      config: {
        role: 'viewer',
        summary: 'List IKE SAs (keyset pages in SPI order) with counts by state',
        description:
          'Every SA that exists for the whole listing is returned exactly once, whatever is created or deleted meanwhile.',
        tags,
      },
      schema: { querystring: S.saQuery, response: { 200: S.saList } },
    },
    async (req) => {
      const { cursor, limit, ...filters } = req.query;
      const after = decodeCursor(cursor, SPI_RE);
      const page = await backend.sas({ ...filters, limit, ...(after !== undefined ? { after } : {}) });
      return {
        items: page.items,
        next: page.more && page.items.length > 0 ? encodeCursor(page.items.at(-1)!.spi) : null,
        counts: page.counts,
        unreachable: page.unreachable,
      };
    },
  );

  app.get<{ Params: { spi: string } }>(
    '/v1/sas/:spi',
    {
      config: {
        role: 'viewer',
        summary: 'One IKE SA: children, traffic, last activity, owner worker, shard and epoch',
        tags,
      },
      schema: { params: S.spiParams, response: { 200: S.saOutput, 503: problemSchema } },
    },
    async (req) => {
      const sa = await backend.sa(req.params.spi.toLowerCase());
      if (!sa) throw new ProblemError('not-found', `no IKE SA with SPI ${req.params.spi.toLowerCase()}`);
      return sa;
    },
  );

  const command = async (spi: string, c: SaCommand) => {
    const s = spi.toLowerCase();
    const r = await backend.command(s, c);
    if (r === 'not-found') throw new ProblemError('not-found', `no IKE SA with SPI ${s}`);
    if (r === 'not-ready')
      throw new ProblemError(
        'sa-not-ready',
        `IKE SA ${s} cannot take that command now (not established, or its request queue is full)`,
      );
    return s;
  };
  const commandResponses = { 202: S.accepted, 409: problemSchema, 503: problemSchema };

  app.delete<{ Params: { spi: string } }>(
    '/v1/sas/:spi',
    {
      config: {
        role: 'operator',
        summary: 'Delete an IKE SA: INFORMATIONAL DELETE to the peer (RFC 7296 §1.4.1)',
        tags,
      },
      schema: { params: S.spiParams, response: commandResponses },
    },
    async (req, reply) =>
      reply.code(202).send({ status: 'deleting', spi: await command(req.params.spi, 'delete') }),
  );

  app.post<{ Params: { spi: string }; Body: { what?: 'ike' | 'children' } | undefined }>(
    '/v1/sas/:spi/rekey',
    {
      config: { role: 'operator', summary: 'Rekey the IKE SA or its CHILD SAs (RFC 7296 §1.3)', tags },
      schema: { params: S.spiParams, body: S.rekeyBody, response: commandResponses },
    },
    async (req, reply) => {
      const what = req.body?.what ?? 'children';
      const spi = await command(req.params.spi, what === 'ike' ? 'rekey-ike' : 'rekey-children');
      return reply.code(202).send({ status: 'rekeying', what, spi });
    },
  );

  app.post<{ Params: { spi: string } }>(
    '/v1/sas/:spi/liveness',
    {
      config: {
        role: 'operator',
        summary: 'Check the peer is alive: an empty INFORMATIONAL (RFC 7296 §1.4)',
        tags,
      },
      schema: { params: S.spiParams, response: commandResponses },
    },
    async (req, reply) =>
      reply.code(202).send({ status: 'checking', spi: await command(req.params.spi, 'liveness') }),
  );

  // --- cluster -----------------------------------------------------------------------------------

  const clusterTags = ['cluster'];
  const clustered = () => {
    if (!backend.clustered)
      throw new ProblemError('not-clustered', '`ikegate up` runs one worker and one edge in one process');
  };

  app.get(
    '/v1/workers',
    {
      config: {
        role: 'viewer',
        summary: 'Workers: health, shards, SAs, draining, config version',
        tags: clusterTags,
      },
      schema: { response: { 200: S.workerList } },
    },
    async () => ({ items: await backend.workers() }),
  );

  app.get(
    '/v1/edges',
    {
      config: { role: 'viewer', summary: 'Edges: health, open streams, draining', tags: clusterTags },
      schema: { response: { 200: S.edgeList } },
    },
    async () => ({ items: await backend.edges() }),
  );

  app.get<{ Querystring: { owner?: string; unowned?: boolean } }>(
    '/v1/shards',
    {
      config: { role: 'viewer', summary: 'Shard leases: owner, epoch, expiry', tags: clusterTags },
      schema: { querystring: S.shardQuery, response: { 200: S.shardList } },
    },
    async (req) => {
      const { count, items } = await backend.shards();
      const byWorker: Record<string, number> = {};
      for (const s of items) if (s.owner) byWorker[s.owner] = (byWorker[s.owner] ?? 0) + 1;
      const shown = items.filter(
        (s) =>
          (req.query.owner === undefined || s.owner === req.query.owner) &&
          (req.query.unowned !== true || s.owner === undefined),
      );
      return {
        count,
        owned: items.filter((s) => s.owner !== undefined).length,
        byWorker,
        items: shown.map((s) => ({
          shard: s.shard,
          ...(s.owner !== undefined ? { owner: s.owner } : {}),
          ...(s.epoch !== undefined ? { epoch: s.epoch } : {}),
          ...(s.expiresAt !== undefined ? { expiresAt: new Date(s.expiresAt).toISOString() } : {}),
        })),
      };
    },
  );

  const drainResponses = { 202: S.drainOutput, 200: S.drainOutput, 409: problemSchema, 503: problemSchema };

  app.post<{ Params: { id: string } }>(
    '/v1/workers/:id/drain',
    {
      config: {
        role: 'operator',
        summary: 'Drain a worker: its shards (and SAs) move to the others, none lost',
        description:
          'The worker writes every SA, releases its leases and takes no shard until undrained; the others adopt its SAs (same SPIs, no re-authentication).',
        tags: clusterTags,
      },
      schema: { params: S.idParams, response: drainResponses },
    },
    async (req, reply) => {
      clustered();
      if ((await backend.drainWorker(req.params.id, true)) === 'not-found')
        throw new ProblemError('not-found', `no worker "${req.params.id}" is a member`);
      return reply.code(202).send({ id: req.params.id, draining: true });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/workers/:id/drain',
    {
      config: { role: 'operator', summary: 'Undrain a worker: it takes shards again', tags: clusterTags },
      schema: { params: S.idParams, response: drainResponses },
    },
    async (req, reply) => {
      clustered();
      // Idempotent: undraining a worker that is not drained leaves it so.
      await backend.drainWorker(req.params.id, false);
      return reply.code(200).send({ id: req.params.id, draining: false });
    },
  );

  app.post<{ Params: { id: string }; Body: { graceSeconds?: number } | undefined }>(
    '/v1/edges/:id/drain',
    {
      config: {
        role: 'operator',
        summary: 'Drain an edge: no new streams; open ones closed over the grace period',
        description:
          'It reports not ready (a Service stops sending it peers), stops accepting TCP/TLS, and closes its streams spread over graceSeconds so their peers reconnect elsewhere (RFC 9329 §6); the SAs wait for them.',
        tags: clusterTags,
      },
      schema: { params: S.idParams, body: S.drainBody, response: drainResponses },
    },
    async (req, reply) => {
      clustered();
      const r = await backend.drainEdge(req.params.id, req.body?.graceSeconds ?? 30);
      if (r === 'not-found') throw new ProblemError('not-found', `no edge "${req.params.id}" is a member`);
      if (r === 'unreachable')
        throw new ProblemError('unavailable', `edge "${req.params.id}" did not answer`);
      return reply.code(202).send({ id: req.params.id, draining: true });
    },
  );
}
