/**
 * /v1/peers, /v1/pools, /v1/policies/failover, /v1/config: the managed configuration (issue #10).
 *
 * Every change goes through `ManagedFollower.mutate`: the plan is checked against the latest
 * state (names, identities, pools, overlaps) and committed on that version, or planned again when
 * another control replica committed first. Peer documents are validated by libs/config exactly as
 * the config file's peers are, and stored normalized (defaults filled, file paths absolute). The
 * PSK is write-only: responses carry `auth.kind` and file paths, never the key.
 */
import {
  checkFailoverDoc,
  checkPeerDoc,
  checkPoolDoc,
  type ConfigIssue,
  type PeerDoc,
  type PeerGlobals,
  peerDoc,
  type Pool,
  type PoolDoc,
  poolDoc,
} from '@ikegate/config';
import type { ConfigChange, ManagedFollower, ManagedState } from '@ikegate/store';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ControlBackend } from './backend.js';
import { type FieldError, type PoolHolder, ProblemError, problemSchema } from './problem.js';
import * as S from './schemas.js';

export interface ConfigRoutesOptions {
  readonly managed: ManagedFollower;
  readonly backend: ControlBackend;
  /** The global lifetimes peer overrides are checked against. */
  readonly globals: PeerGlobals;
  /** Relative file paths in documents resolve against this (the config file's directory). */
  readonly baseDir?: string;
}

const VERSION_HEADER = 'ikegate-config-version';

function bodyErrors(issues: readonly ConfigIssue[], prefix = ''): FieldError[] {
  return issues.map((i) => ({
    in: 'body' as const,
    field: i.path === '(root)' ? prefix : prefix ? `${prefix}.${i.path}` : i.path,
    message: i.message,
  }));
}

/** The peer as the API shows it: everything but the PSK. */
export function peerView(d: PeerDoc) {
  const a = d.auth;
  const auth =
    'ca' in a
      ? { kind: 'ca', ca: a.ca }
      : typeof a.psk === 'string'
        ? { kind: 'psk' }
        : { kind: 'psk-file', file: a.psk.file };
  return {
    name: d.name,
    id: d.id,
    auth,
    pool: d.pool ?? null,
    localTs: d.localTs ?? ['0.0.0.0/0'],
    remoteTs: d.remoteTs ?? ['dynamic'],
    ...(d.proposals ? { proposals: d.proposals } : {}),
    ...(d.lifetimes ? { lifetimes: d.lifetimes } : {}),
    ...(d.dpd ? { dpd: d.dpd } : {}),
    ...(d.failover ? { failover: d.failover } : {}),
  };
}

function authKind(d: PeerDoc): 'psk' | 'psk-file' | 'ca' {
  return 'ca' in d.auth ? 'ca' : typeof d.auth.psk === 'string' ? 'psk' : 'psk-file';
}

export function encodeCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined, valid: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!valid.test(key))
    throw new ProblemError('validation', 'the cursor is not one this API gave out', {
      errors: [{ in: 'query', field: 'cursor', message: 'is not a cursor from a previous page' }],
    });
  return key;
}

const NAME_RE = new RegExp(S.NAME_PATTERN);

/** A normalized, valid peer document, or a 400 naming each field. */
function validPeer(doc: unknown, state: ManagedState, o: ConfigRoutesOptions): PeerDoc {
  const r = checkPeerDoc(doc, {
    pools: new Set(state.pools.keys()),
    lifetimes: o.globals.lifetimes,
    ...(o.baseDir !== undefined ? { baseDir: o.baseDir } : {}),
  });
  if (!r.ok) throw new ProblemError('validation', 'the body is not valid', { errors: bodyErrors(r.issues) });
  return peerDoc(r.value);
}

/** 409 when another peer has the same identity pattern (it could never match). */
function checkUniqueId(doc: PeerDoc, state: ManagedState): void {
  const id = doc.id.toLowerCase();
  for (const other of state.peers.values())
    if (other.name !== doc.name && other.id.toLowerCase() === id)
      throw new ProblemError('conflict', `peer "${other.name}" already has the identity "${other.id}"`, {
        errors: [{ in: 'body', field: 'id', message: `is the identity of peer "${other.name}"` }],
      });
}

/** RFC 7396 merge patch; `auth` is replaced whole (its variants do not merge). */
function mergePatch(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else if (
      k !== 'auth' &&
      typeof v === 'object' &&
      !Array.isArray(v) &&
      typeof out[k] === 'object' &&
      out[k] !== null
    )
      out[k] = mergePatch(out[k] as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}

function ipNumber(a: Uint8Array): number {
  return ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) >>> 0;
}

function dotted(s: string): number {
  return s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/**
 * Holders a pool change would cut off: an address outside the new network's usable hosts, or any
 * holder at all when the network's base moves (cluster workers split a pool by host index).
 */
export function cutOff(holders: readonly PoolHolder[], from: Pool | undefined, to: Pool): PoolHolder[] {
  const base = ipNumber(to.cidr.address);
  const hosts = 2 ** (32 - to.cidr.prefix);
  const moved = from !== undefined && ipNumber(from.cidr.address) !== base;
  return holders.filter((h) => {
    const i = dotted(h.address) - base;
    return moved || i < 2 || i > hosts - 2;
  });
}

function withVersion(reply: FastifyReply, version: number): FastifyReply {
  return reply.header(VERSION_HEADER, String(version)).header('etag', `"${version}"`);
}

/** The version an `If-Match` header names (the ETag a response carried), if any. */
function ifMatch(req: { headers: Record<string, unknown> }): number | undefined {
  const v = req.headers['if-match'];
  if (typeof v !== 'string') return undefined;
  const m = /^(?:W\/)?"?([0-9]{1,15})"?$/.exec(v.trim());
  if (!m)
    throw new ProblemError('validation', 'If-Match must name a configuration version (an ETag of this API)', {
      errors: [{ in: 'header', field: 'if-match', message: 'must be a version such as "42"' }],
    });
  return Number(m[1]);
}

/** 412 unless the state is at the version `If-Match` named (optimistic concurrency for clients). */
function precondition(expected: number | undefined, state: ManagedState): void {
  if (expected !== undefined && state.version !== expected)
    throw new ProblemError(
      'precondition-failed',
      `the configuration is at version ${state.version}, not ${expected}: read it again and retry`,
    );
}

/** Headers every mutating route takes (documented, so clients and Schemathesis know). */
const mutationHeaders = {
  type: 'object',
  properties: {
    'if-match': {
      type: 'string',
      pattern: '^(W/)?"?[0-9]{1,15}"?$',
      description: 'Apply only if the configuration is still at this version (the ETag of a response)',
    },
  },
} as const;

export function configRoutes(app: FastifyInstance, o: ConfigRoutesOptions): void {
  const { managed } = o;
  type Req = { principal: { actor: string } | null; headers: Record<string, unknown> };
  const actor = (req: Req) => req.principal?.actor ?? 'anonymous';
  /** managed.mutate as the caller, honouring If-Match. */
  function mutate<T>(
    req: Req,
    plan: (state: ManagedState) => { changes: ConfigChange[]; result: T },
  ): Promise<{ version: number; result: T }> {
    const expected = ifMatch(req);
    return managed.mutate(actor(req), (state) => {
      precondition(expected, state);
      return plan(state);
    });
  }
  const tags = ['peers'];
  const notFound = (what: string, name: string) =>
    new ProblemError('not-found', `no ${what} named "${name}"`);

  // --- peers -------------------------------------------------------------------------------------

  app.get<{ Querystring: { limit: number; cursor?: string; pool?: string; auth?: string } }>(
    '/v1/peers',
    {
      config: { role: 'viewer', summary: 'List peers (by name, paged)', tags },
      schema: { querystring: S.peerQuery, response: { 200: S.peerList } },
    },
    async (req) => {
      await managed.refresh();
      const after = decodeCursor(req.query.cursor, NAME_RE);
      const names = [...managed.state.peers.keys()].filter((n) => after === undefined || n > after).sort();
      const items: PeerDoc[] = [];
      let more = false;
      for (const n of names) {
        const d = managed.state.peers.get(n)!;
        if (req.query.pool !== undefined && d.pool !== req.query.pool) continue;
        if (req.query.auth !== undefined && authKind(d) !== req.query.auth) continue;
        if (items.length === req.query.limit) {
          more = true;
          break;
        }
        items.push(d);
      }
      return { items: items.map(peerView), next: more ? encodeCursor(items.at(-1)!.name) : null };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/peers/:name',
    {
      config: { role: 'viewer', summary: 'One peer (no PSK)', tags },
      schema: { params: S.nameParams, response: { 200: S.peerOutput } },
    },
    async (req) => {
      await managed.refresh();
      const d = managed.state.peers.get(req.params.name);
      if (!d) throw notFound('peer', req.params.name);
      return peerView(d);
    },
  );

  app.post<{ Body: Record<string, unknown> }>(
    '/v1/peers',
    {
      config: {
        role: 'admin',
        summary: 'Create a peer',
        description: 'Every worker accepts it within a second, without a restart.',
        tags,
      },
      schema: {
        headers: mutationHeaders,
        body: S.peerCreate,
        response: { 201: S.peerOutput, 409: problemSchema },
      },
    },
    async (req, reply) => {
      const r = await mutate(req, (state) => {
        const doc = validPeer(req.body, state, o);
        if (state.peers.has(doc.name))
          throw new ProblemError(
            'already-exists',
            `peer "${doc.name}" exists; PUT /v1/peers/${doc.name} replaces it`,
          );
        checkUniqueId(doc, state);
        return { changes: [{ kind: 'peer', name: doc.name, value: doc }], result: doc };
      });
      return withVersion(reply, r.version)
        .code(201)
        .header('location', `/v1/peers/${encodeURIComponent(r.result.name)}`)
        .send(peerView(r.result));
    },
  );

  app.put<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/v1/peers/:name',
    {
      config: { role: 'admin', summary: 'Create or replace a peer', tags },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        body: S.peerReplace,
        response: { 200: S.peerOutput, 201: S.peerOutput, 409: problemSchema },
      },
    },
    async (req, reply) => {
      if (req.body.name !== undefined && req.body.name !== req.params.name)
        throw new ProblemError('validation', 'the body names another peer than the path', {
          errors: [
            { in: 'body', field: 'name', message: `must be "${req.params.name}" (the path's) or absent` },
          ],
        });
      const r = await mutate(req, (state) => {
        const doc = validPeer({ ...req.body, name: req.params.name }, state, o);
        checkUniqueId(doc, state);
        return {
          changes: [{ kind: 'peer', name: doc.name, value: doc }],
          result: { doc, created: !state.peers.has(doc.name) },
        };
      });
      return withVersion(reply, r.version)
        .code(r.result.created ? 201 : 200)
        .send(peerView(r.result.doc));
    },
  );

  app.patch<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/v1/peers/:name',
    {
      config: {
        role: 'admin',
        summary: 'Change some fields of a peer (RFC 7396 merge patch)',
        description: 'null resets a field to its default; `auth` is replaced as a whole.',
        tags,
      },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        body: S.peerPatch,
        response: { 200: S.peerOutput, 409: problemSchema },
      },
    },
    async (req, reply) => {
      const r = await mutate(req, (state) => {
        const old = state.peers.get(req.params.name);
        if (!old) throw notFound('peer', req.params.name);
        const merged = mergePatch(old as unknown as Record<string, unknown>, req.body);
        const doc = validPeer({ ...merged, name: req.params.name }, state, o);
        checkUniqueId(doc, state);
        return { changes: [{ kind: 'peer', name: doc.name, value: doc }], result: doc };
      });
      return withVersion(reply, r.version).send(peerView(r.result));
    },
  );

  app.delete<{ Params: { name: string }; Querystring: { keepSas: boolean } }>(
    '/v1/peers/:name',
    {
      config: {
        role: 'admin',
        summary: 'Delete a peer',
        description:
          'Its SAs get an INFORMATIONAL DELETE (RFC 7296 §1.4.1) and their addresses go back to the pool, unless keepSas=true.',
        tags,
      },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        querystring: S.deletePeerQuery,
        response: { 200: S.deletedPeer },
      },
    },
    async (req, reply) => {
      const keepSas = req.query.keepSas;
      const r = await mutate(req, (state) => {
        if (!state.peers.has(req.params.name)) throw notFound('peer', req.params.name);
        return { changes: [{ kind: 'peer', name: req.params.name, value: null, keepSas }], result: null };
      });
      return withVersion(reply, r.version).send({ name: req.params.name, version: r.version, keepSas });
    },
  );

  // --- pools -------------------------------------------------------------------------------------

  const poolTags = ['pools'];
  const poolView = async (d: PoolDoc, state: ManagedState) => {
    const p = checkPoolDoc(d, []);
    const usage = await o.backend.poolHolders(d.name);
    const peers = [...state.peers.values()]
      .filter((x) => x.pool === d.name)
      .map((x) => x.name)
      .sort();
    return {
      name: d.name,
      cidr: d.cidr,
      dns: [...(d.dns ?? [])],
      gateway: p.ok ? p.value.gateway.text : '',
      size: p.ok ? 2 ** (32 - p.value.cidr.prefix) - 3 : 0,
      inUse: usage.holders.length,
      peers,
      ...(usage.unreachable.length > 0 ? { unreachable: usage.unreachable } : {}),
    };
  };
  const poolsOf = (state: ManagedState): Pool[] =>
    [...state.pools.values()].flatMap((d) => {
      const r = checkPoolDoc(d, []);
      return r.ok ? [r.value] : [];
    });

  app.get(
    '/v1/pools',
    {
      config: { role: 'viewer', summary: 'List address pools with their use', tags: poolTags },
      schema: { response: { 200: S.poolList } },
    },
    async () => {
      await managed.refresh();
      const state = managed.state;
      const docs = [...state.pools.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
      return { items: await Promise.all(docs.map((d) => poolView(d, state))) };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/v1/pools/:name',
    {
      config: { role: 'viewer', summary: 'One pool with its use', tags: poolTags },
      schema: { params: S.nameParams, response: { 200: S.poolOutput } },
    },
    async (req) => {
      await managed.refresh();
      const d = managed.state.pools.get(req.params.name);
      if (!d) throw notFound('pool', req.params.name);
      return poolView(d, managed.state);
    },
  );

  /** Puts a pool; refuses (409 in-use, with the holders) a change that would cut holders off. */
  const putPool = async (name: string, body: Record<string, unknown>, req: Req, create: boolean) => {
    await managed.refresh();
    const before = managed.state.pools.get(name);
    let holders: PoolHolder[] = [];
    let unreachable: string[] = [];
    if (before && before.cidr !== body.cidr) ({ holders, unreachable } = await o.backend.poolHolders(name));
    return mutate(req, (state) => {
      const current = state.pools.get(name);
      if (create && current)
        throw new ProblemError('already-exists', `pool "${name}" exists; PUT /v1/pools/${name} changes it`);
      if (current?.cidr !== before?.cidr)
        throw new ProblemError(
          'version-conflict',
          `pool "${name}" changed while this change was checked; retry`,
        );
      const others = poolsOf(state).filter((p) => p.name !== name);
      const r = checkPoolDoc({ ...body, name }, others);
      if (!r.ok)
        throw new ProblemError('validation', 'the body is not valid', { errors: bodyErrors(r.issues) });
      const from = current ? checkPoolDoc(current, []) : undefined;
      const cut = cutOff(holders, from?.ok ? from.value : undefined, r.value);
      if (cut.length > 0)
        throw new ProblemError(
          'in-use',
          `${cut.length} address(es) of pool "${name}" are held outside ${r.value.cidr.text}` +
            (from?.ok && ipNumber(from.value.cidr.address) !== ipNumber(r.value.cidr.address)
              ? ' (the network base may only move while no address is held)'
              : ''),
          { holders: cut.slice(0, 100) },
        );
      if (unreachable.length > 0)
        throw new ProblemError(
          'unavailable',
          `workers ${unreachable.join(', ')} did not say which addresses they hold`,
        );
      const doc = poolDoc(r.value);
      return {
        changes: [{ kind: 'pool', name, value: doc } as ConfigChange],
        result: { doc, created: !current },
      };
    });
  };

  app.post<{ Body: Record<string, unknown> & { name: string } }>(
    '/v1/pools',
    {
      config: { role: 'admin', summary: 'Create a pool', tags: poolTags },
      schema: {
        headers: mutationHeaders,
        body: S.poolCreate,
        response: { 201: S.poolOutput, 409: problemSchema },
      },
    },
    async (req, reply) => {
      const r = await putPool(req.body.name, req.body, req, true);
      return withVersion(reply, r.version)
        .code(201)
        .header('location', `/v1/pools/${encodeURIComponent(req.body.name)}`)
        .send(await poolView(r.result.doc, managed.state));
    },
  );

  app.put<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/v1/pools/:name',
    {
      config: {
        role: 'admin',
        summary: 'Create or change a pool',
        description:
          'A change that leaves an address in use outside the new network (or moves the network base while any is in use) is refused with 409 and the holders.',
        tags: poolTags,
      },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        body: S.poolReplace,
        response: { 200: S.poolOutput, 201: S.poolOutput, 409: problemSchema, 503: problemSchema },
      },
    },
    async (req, reply) => {
      if (req.body.name !== undefined && req.body.name !== req.params.name)
        throw new ProblemError('validation', 'the body names another pool than the path', {
          errors: [
            { in: 'body', field: 'name', message: `must be "${req.params.name}" (the path's) or absent` },
          ],
        });
      const r = await putPool(req.params.name, req.body, req, false);
      return withVersion(reply, r.version)
        .code(r.result.created ? 201 : 200)
        .send(await poolView(r.result.doc, managed.state));
    },
  );

  app.patch<{ Params: { name: string }; Body: { cidr?: string; dns?: string[] | null } }>(
    '/v1/pools/:name',
    {
      config: {
        role: 'admin',
        summary: 'Change some fields of a pool (RFC 7396 merge patch)',
        description:
          'Fields left out keep their values; `dns: null` removes the DNS servers. Refused like PUT.',
        tags: poolTags,
      },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        body: S.poolPatch,
        response: { 200: S.poolOutput, 409: problemSchema, 503: problemSchema },
      },
    },
    async (req, reply) => {
      await managed.refresh();
      const old = managed.state.pools.get(req.params.name);
      if (!old) throw notFound('pool', req.params.name);
      const merged = mergePatch(old as unknown as Record<string, unknown>, req.body);
      const r = await putPool(req.params.name, merged, req, false);
      return withVersion(reply, r.version).send(await poolView(r.result.doc, managed.state));
    },
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/pools/:name',
    {
      config: {
        role: 'admin',
        summary: 'Delete a pool',
        description: 'Refused (409) while a peer names it or any address is held.',
        tags: poolTags,
      },
      schema: {
        headers: mutationHeaders,
        params: S.nameParams,
        response: { 204: { description: 'Deleted' }, 409: problemSchema, 503: problemSchema },
      },
    },
    async (req, reply) => {
      const name = req.params.name;
      const { holders, unreachable } = await o.backend.poolHolders(name);
      const r = await mutate(req, (state) => {
        if (!state.pools.has(name)) throw notFound('pool', name);
        const peers = [...state.peers.values()].filter((p) => p.pool === name).map((p) => p.name);
        if (peers.length > 0 || holders.length > 0)
          throw new ProblemError(
            'in-use',
            `pool "${name}" is named by ${peers.length} peer(s) and ${holders.length} address(es) are held`,
            { holders: holders.slice(0, 100), peers },
          );
        if (unreachable.length > 0)
          throw new ProblemError(
            'unavailable',
            `workers ${unreachable.join(', ')} did not say which addresses they hold`,
          );
        return { changes: [{ kind: 'pool', name, value: null }], result: null };
      });
      return withVersion(reply, r.version).code(204).send();
    },
  );

  // --- policies ----------------------------------------------------------------------------------

  const policyTags = ['policies'];
  const failoverView = () => {
    const s = managed.state;
    const overrides = [...s.peers.values()]
      .filter((p) => p.failover?.waitSeconds !== undefined)
      .map((p) => ({ peer: p.name, waitSeconds: p.failover!.waitSeconds! }))
      .sort((a, b) => (a.peer < b.peer ? -1 : 1));
    return { policy: s.failover.policy, waitSeconds: s.failover.waitSeconds, overrides, version: s.version };
  };

  app.get(
    '/v1/policies/failover',
    {
      config: {
        role: 'viewer',
        summary: 'The wait-for-reconnect policy and its per-peer overrides',
        tags: policyTags,
      },
      schema: { response: { 200: S.failoverOutput } },
    },
    async () => {
      await managed.refresh();
      return failoverView();
    },
  );

  app.put<{ Body: { policy?: string; waitSeconds: number } }>(
    '/v1/policies/failover',
    {
      config: {
        role: 'admin',
        summary: 'Set the cluster-wide wait-for-reconnect policy',
        description:
          'How long an SA whose TCP/TLS stream closed is held for its peer to come back (RFC 9329 §6: only the initiator reconnects). Applies to held SAs at once.',
        tags: policyTags,
      },
      schema: { headers: mutationHeaders, body: S.failoverPolicy, response: { 200: S.failoverOutput } },
    },
    async (req, reply) => {
      const r = await mutate(req, () => {
        const c = checkFailoverDoc({ policy: 'wait-for-reconnect', ...req.body });
        if (!c.ok)
          throw new ProblemError('validation', 'the body is not valid', { errors: bodyErrors(c.issues) });
        return { changes: [{ kind: 'failover', value: c.value }], result: null };
      });
      return withVersion(reply, r.version).send(failoverView());
    },
  );

  const setOverride = async (req: Req, peer: string, waitSeconds: number | null) =>
    mutate(req, (state) => {
      const old = state.peers.get(peer);
      if (!old) throw notFound('peer', peer);
      // Clearing an override that is not there is done already (DELETE is idempotent).
      if (waitSeconds === null && old.failover?.waitSeconds === undefined)
        return { changes: [], result: null };
      const { failover: _, ...rest } = old;
      const doc: PeerDoc = waitSeconds === null ? rest : { ...rest, failover: { waitSeconds } };
      return { changes: [{ kind: 'peer', name: peer, value: doc }], result: null };
    });

  app.put<{ Params: { peer: string }; Body: { waitSeconds: number } }>(
    '/v1/policies/failover/overrides/:peer',
    {
      config: { role: 'admin', summary: "Set one peer's wait-for-reconnect time", tags: policyTags },
      schema: {
        headers: mutationHeaders,
        params: S.peerParams,
        body: S.overrideBody,
        response: { 200: S.failoverOutput },
      },
    },
    async (req, reply) => {
      const r = await setOverride(req, req.params.peer, req.body.waitSeconds);
      return withVersion(reply, r.version).send(failoverView());
    },
  );

  app.delete<{ Params: { peer: string } }>(
    '/v1/policies/failover/overrides/:peer',
    {
      config: {
        role: 'admin',
        summary: "Remove one peer's override (it follows the cluster policy)",
        tags: policyTags,
      },
      schema: { headers: mutationHeaders, params: S.peerParams, response: { 200: S.failoverOutput } },
    },
    async (req, reply) => {
      const r = await setOverride(req, req.params.peer, null);
      return withVersion(reply, r.version).send(failoverView());
    },
  );

  app.get(
    '/v1/config',
    {
      config: {
        role: 'viewer',
        summary: 'The managed configuration version, and the version each member applied',
        description: 'A change is live on every worker once each lists its version.',
        tags: ['cluster'],
      },
      schema: { response: { 200: S.configStatus } },
    },
    async () => {
      await managed.refresh();
      return { version: managed.state.version, members: await o.backend.configVersions() };
    },
  );
}
