/**
 * The HTTP server every API of ikegate runs on (control, and the workers' and edges' admin
 * endpoints): fastify with strict request validation, RFC 9457 errors, authentication and roles,
 * an audit line per mutating call, request metrics, and the route table `/openapi.json` is made of.
 *
 * How this works: each route declares `config: { role, summary }`. `role: 'public'` routes
 * (health, metrics, the OpenAPI document) need nothing; any other needs a principal whose role
 * allows it (access.ts): no or bad credentials -> 401 with `WWW-Authenticate: Bearer`, a role too
 * low -> 403. The check runs in `onRequest`, before the body is read, so an unauthenticated caller
 * cannot make us parse anything. Without an access file only public routes exist (the builder of
 * each API registers nothing else), which `start` says in its log.
 *
 * Bodies are validated without type coercion and unknown fields are refused; query strings and
 * path parameters are coerced (they are text on the wire). Bodies are bounded (`bodyLimit`).
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { Ajv2020 } from 'ajv/dist/2020.js';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from 'fastify';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { Attr, httpSpanName, type Logger, type Metrics, tracer, tracingActive } from '@ikegate/telemetry';
import { type AccessControl, type Principal, type Role, roleAllows } from './access.js';
import { PROBLEM_CONTENT_TYPE, ProblemError, problemOf, sendProblem } from './problem.js';

export type RouteRole = Role | 'public';

export interface RouteConfig {
  readonly role: RouteRole;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  /** A non-JSON 200 response's content type (the route then has no response schema). */
  readonly produces?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole;
    summary?: string;
    description?: string;
    tags?: readonly string[];
    produces?: string;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export interface ServerOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly access: AccessControl;
  /** HTTPS, and with `clientCa` client certificates (mTLS) as credentials. */
  readonly tls?: { readonly certificate: string; readonly key: string; readonly clientCa?: string };
  /** Default 64 KiB. */
  readonly bodyLimit?: number;
  /** Open connections at most (default 1024); node closes any more at once. */
  readonly maxConnections?: number;
}

/** A registered route, as /openapi.json describes it. */
export interface RouteRecord {
  readonly method: string;
  readonly url: string;
  readonly schema: RouteOptions['schema'];
  readonly config: RouteConfig;
}

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function traceIdsOf(span: Span): { trace_id: string; span_id: string } {
  const c = span.spanContext();
  return { trace_id: c.traceId, span_id: c.spanId };
}

function certificateOf(raw: IncomingMessage) {
  const socket = raw.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const cn = cert.subject?.CN;
  return {
    ...(typeof cn === 'string' ? { subjectCN: cn } : {}),
    ...(cert.fingerprint256 ? { fingerprint256: cert.fingerprint256 } : {}),
    authorized: socket.authorized === true,
  };
}

export function createServer(o: ServerOptions): { app: FastifyInstance; routes: RouteRecord[] } {
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // Bounded work per request: no path parameter of unbounded size reaches a handler, and a
    // client that sends slowly (or not at all) is cut off instead of holding a socket forever.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 256 },
    requestTimeout: 30_000,
    connectionTimeout: 60_000,
    keepAliveTimeout: 10_000,
    ...(o.tls
      ? {
          https: {
            cert: o.tls.certificate,
            key: o.tls.key,
            ...(o.tls.clientCa ? { ca: o.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
          },
        }
      : {}),
  }) as unknown as FastifyInstance;

  app.server.maxConnections = o.maxConnections ?? 1024;
  const strict = new Ajv2020({ allErrors: true, strict: false, coerceTypes: false, useDefaults: true });
  const lenient = new Ajv2020({ allErrors: true, strict: false, coerceTypes: true, useDefaults: true });
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const validate = (httpPart === 'body' ? strict : lenient).compile(schema as object);
    // A body schema with no required field (and no minimum) makes the body optional: none means
    // defaults.
    const shape = schema as { required?: unknown[]; minProperties?: number };
    const optional = httpPart === 'body' && !shape.required?.length && !shape.minProperties;
    if (!optional) return validate;
    // fastify reads `.errors` after the call: copy them over (a getter copied by Object.assign
    // would freeze its value, and every invalid body would pass). No body arrives as null.
    const wrapped = (data: unknown): boolean => {
      const ok = data === undefined || data === null || validate(data);
      wrapped.errors = ok ? null : validate.errors;
      return ok;
    };
    wrapped.errors = null as typeof validate.errors;
    return wrapped;
  });
  // JSON only: a text/plain body is an unsupported media type (415), not a malformed object.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser(
    'application/merge-patch+json',
    { parseAs: 'string' },
    app.getDefaultJsonParser('error', 'error'),
  );

  const routes: RouteRecord[] = [];
  app.addHook('onRoute', (r) => {
    const config = r.config as RouteConfig | undefined;
    if (!config?.role) throw new Error(`route ${r.method} ${r.url} declares no role`);
    for (const method of [r.method].flat()) {
      if (method === 'HEAD') continue;
      routes.push({ method, url: r.url, schema: r.schema, config });
    }
  });

  app.decorateRequest('principal', null);
  // Tracing (docs/observability.md): a server span per request, first of all hooks, active for
  // everything after it (authentication, the handler, their log lines). Method, route pattern
  // and status only: never the URL's values, a header or a body.
  const spans = new WeakMap<FastifyRequest, Span>();
  const endSpan = (req: FastifyRequest, status: number | undefined) => {
    const span = spans.get(req);
    if (!span) return;
    spans.delete(req);
    if (status !== undefined) span.setAttribute(Attr.httpStatus, status);
    if (status === undefined || status >= 500) {
      span.setAttribute(Attr.errorType, status === undefined ? 'aborted' : String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
  };
  app.addHook('onRequest', (req, _reply, done) => {
    if (!tracingActive()) return done();
    const route = req.routeOptions.url;
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = tracer().startSpan(
      httpSpanName(req.method, route),
      {
        kind: SpanKind.SERVER,
        attributes: {
          [Attr.httpMethod]: req.method,
          ...(route !== undefined ? { [Attr.httpRoute]: route } : {}),
        },
      },
      parent,
    );
    spans.set(req, span);
    context.with(trace.setSpan(parent, span), done);
  });
  app.addHook('onRequestAbort', async (req) => endSpan(req, undefined));
  app.addHook('onRequest', async (req: FastifyRequest, reply) => {
    // No route: answer 404/405 now, before fastify reads (and may refuse) a body for it.
    if (req.routeOptions.url === undefined) return notFound(req, reply);
    const role = req.routeOptions.config.role;
    if (role === undefined || role === 'public') return;
    const r = o.access.authenticate(req.headers.authorization, certificateOf(req.raw));
    if (!r.ok) {
      o.metrics.apiAuthFailures.inc({ reason: r.reason });
      return sendProblem(
        reply,
        new ProblemError('unauthenticated', `credentials ${r.reason.replace('-', ' ')}`).problem,
        { 'www-authenticate': 'Bearer realm="ikegate"' },
      );
    }
    req.principal = r.principal;
    if (!roleAllows(r.principal.role, role)) {
      o.metrics.apiAuthFailures.inc({ reason: 'role' });
      return sendProblem(
        reply,
        new ProblemError(
          'forbidden',
          `this needs the ${role} role; ${r.principal.actor} is ${r.principal.role}`,
        ).problem,
      );
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    o.metrics.apiRequests.inc({ method: req.method, route, status: String(reply.statusCode) });
    if (!MUTATING.has(req.method) || req.routeOptions.url === undefined) return;
    const status = reply.statusCode;
    // onResponse runs outside the request's async context: the audit line joins its span here.
    const span = spans.get(req);
    const log = span ? o.log.child(traceIdsOf(span)) : o.log;
    log.info(
      {
        actor: req.principal?.actor ?? 'anonymous',
        via: req.principal?.via,
        actorRole: req.principal?.role,
        action: `${req.method} ${route}`,
        target: {
          ...(req.params as object),
          // A create names its target in the body; only the name is logged, never the body.
          ...(typeof (req.body as { name?: unknown } | undefined)?.name === 'string'
            ? { name: (req.body as { name: string }).name }
            : {}),
        },
        status,
        result: status < 400 ? 'ok' : status === 401 || status === 403 ? 'refused' : 'failed',
        remote: req.ip,
      },
      'audit',
    );
  });

  // After the audit hook: the span ends once everything about the request is written.
  app.addHook('onResponse', async (req, reply) => endSpan(req, reply.statusCode));

  app.setErrorHandler((error, req, reply) => {
    const { problem, headers } = problemOf(error as Parameters<typeof problemOf>[0]);
    if (problem.status >= 500)
      o.log.error({ err: (error as Error).message, route: req.routeOptions.url }, 'api-internal-error');
    return sendProblem(reply, problem, headers);
  });
  // A known path with another method is 405 with the methods it has (RFC 9110 §15.5.6).
  let patterns: { re: RegExp; method: string }[] | undefined;
  const notFound = (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '';
    patterns ??= routes.map((r) => ({
      re: new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z0-9_]+/g, '[^/]+')}$`),
      method: r.method,
    }));
    const allow = [...new Set(patterns.filter((p) => p.re.test(path)).map((p) => p.method))];
    if (allow.length > 0)
      return sendProblem(
        reply,
        new ProblemError('method-not-allowed', `${req.method} ${path}; allowed: ${allow.join(', ')}`).problem,
        { allow: allow.join(', ') },
      );
    return sendProblem(reply, new ProblemError('route-not-found', `${req.method} ${path}`).problem);
  };
  app.setNotFoundHandler(notFound);
  return { app, routes };
}

/** Every route answers with problem documents for these; `/openapi.json` lists them per route. */
export { PROBLEM_CONTENT_TYPE };
