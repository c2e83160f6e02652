/**
 * The OpenAPI 3.1 document of an API, generated from its registered routes (server.ts): every
 * path, method, parameter, request body and response comes from the schemas fastify validates and
 * serializes with, so the document cannot drift from what the server does. Error responses are
 * RFC 9457 problem documents; every protected route lists 401 and 403, every route with a body
 * 400, 413 and 415.
 */
import { problemSchema, PROBLEM_CONTENT_TYPE } from './problem.js';
import type { RouteRecord } from './server.js';

type Schema = Record<string, unknown>;

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'The request is not valid (problem document naming each field)',
  401: 'No or unknown credentials',
  403: 'The credentials do not allow this',
  404: 'Not found',
  409: 'Conflicts with the current state',
  412: 'The configuration is no longer at the version If-Match names',
  413: 'Body too large',
  415: 'Unsupported content type',
  503: 'Not ready, or a dependency is unavailable',
};

function pathOf(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function parameters(schema: Schema | undefined, where: 'path' | 'query' | 'header'): Schema[] {
  const props = (schema?.properties ?? {}) as Record<string, Schema>;
  const required = new Set((schema?.required as string[] | undefined) ?? []);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === 'path' ? true : required.has(name),
      ...(description ? { description } : {}),
      schema: rest,
    };
  });
}

export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  readonly description: string;
}

export function openApiDocument(routes: readonly RouteRecord[], info: OpenApiInfo): Schema {
  const paths: Record<string, Record<string, Schema>> = {};
  const problem = { content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } } };
  for (const r of routes) {
    const s = (r.schema ?? {}) as Schema;
    const responses: Record<string, Schema> = {};
    const declared = (s.response ?? {}) as Record<string, Schema>;
    for (const [code, schema] of Object.entries(declared)) {
      const status = Number(code);
      if (status >= 400 && schema === problemSchema) {
        responses[code] = { description: STATUS_TEXT[status] ?? 'Error', ...problem };
        continue;
      }
      const { description, ...body } = schema;
      responses[code] = {
        description: (description as string | undefined) ?? STATUS_TEXT[status] ?? 'Success',
        ...(status === 204 ? {} : { content: { 'application/json': { schema: body } } }),
      };
    }
    if (r.config.produces)
      responses['200'] = {
        description: STATUS_TEXT[200]!,
        content: { [r.config.produces]: { schema: { type: 'string' } } },
      };
    const add = (status: number) => {
      responses[String(status)] ??= { description: STATUS_TEXT[status]!, ...problem };
    };
    if (r.config.role !== 'public') {
      add(401);
      add(403);
    }
    if (s.body || s.querystring || s.params) add(400);
    if (s.params) add(404);
    if ((s.headers as Schema | undefined)?.properties) add(412);
    if (s.body) {
      add(413);
      add(415);
    }
    const op: Schema = {
      operationId: `${r.method.toLowerCase()}${pathOf(r.url)
        .split(/[/{}.-]+/)
        .filter(Boolean)
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join('')}`,
      summary: r.config.summary,
      ...(r.config.description ? { description: r.config.description } : {}),
      ...(r.config.tags ? { tags: [...r.config.tags] } : {}),
      ...(r.config.role !== 'public'
        ? { security: [{ bearer: [] }, { mtls: [] }], 'x-ikegate-role': r.config.role }
        : { security: [] }),
      parameters: [
        ...parameters(s.params as Schema | undefined, 'path'),
        ...parameters(s.querystring as Schema | undefined, 'query'),
        ...parameters(s.headers as Schema | undefined, 'header'),
      ],
      responses,
    };
    if (s.body) {
      const contentTypes =
        r.method === 'PATCH' ? ['application/merge-patch+json', 'application/json'] : ['application/json'];
      const body = s.body as Schema;
      const required = !(r.method === 'POST' && !(body.required as unknown[] | undefined)?.length);
      op.requestBody = {
        required,
        content: Object.fromEntries(contentTypes.map((t) => [t, { schema: body }])),
      };
    }
    (paths[pathOf(r.url)] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info,
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description: 'A token from the access file (control.accessFile); roles viewer < operator < admin',
        },
        mtls: { type: 'mutualTLS', description: 'A client certificate listed in the access file' },
      },
    },
    paths,
  };
}
