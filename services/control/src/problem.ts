/**
 * Errors as RFC 9457 problem details (`application/problem+json`), each kind with a stable `type`
 * URI that clients switch on (docs/api.md lists them). Validation problems name every field that
 * is wrong: `errors: [{ in, field, message }]`, `in` being body, query, path or header.
 */
import type { FastifyError, FastifyReply } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem kinds: slug -> [status, title]. The `type` is `urn:ikegate:problem:<slug>`. */
export const PROBLEMS = {
  validation: [400, 'The request is not valid'],
  'malformed-body': [400, 'The request body could not be parsed'],
  unauthenticated: [401, 'Authentication is required'],
  forbidden: [403, 'The credentials do not allow this'],
  'not-found': [404, 'No such resource'],
  'route-not-found': [404, 'No such route'],
  'method-not-allowed': [405, 'The path does not take this method'],
  conflict: [409, 'The request conflicts with the current state'],
  'already-exists': [409, 'A resource with that name exists'],
  'in-use': [409, 'The resource is in use'],
  'sa-not-ready': [409, 'The SA cannot take that command now'],
  'not-clustered': [409, 'Only a cluster has this'],
  'version-conflict': [409, 'The configuration changed concurrently; retry'],
  'precondition-failed': [412, 'The configuration version is not the one If-Match names'],
  'body-too-large': [413, 'The request body is too large'],
  'unsupported-media-type': [415, 'Unsupported content type'],
  unavailable: [503, 'A dependency is unavailable'],
  internal: [500, 'Internal error'],
} as const satisfies Record<string, readonly [number, string]>;

export type ProblemKind = keyof typeof PROBLEMS;

export interface FieldError {
  readonly in: 'body' | 'query' | 'path' | 'header';
  /** Dotted path inside that part, e.g. `auth.psk`, `remoteTs[0]`; empty for the whole part. */
  readonly field: string;
  readonly message: string;
}

export interface PoolHolder {
  readonly address: string;
  readonly spi: string;
  readonly peerId?: string;
  readonly peer?: string;
  readonly worker?: string;
}

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly errors?: readonly FieldError[];
  /** in-use (pools): the SAs holding addresses that the change would cut off. */
  readonly holders?: readonly PoolHolder[];
  /** in-use (pools): the peers that name the pool. */
  readonly peers?: readonly string[];
}

/** Thrown by handlers; the error handler turns it into the response. */
export class ProblemError extends Error {
  readonly problem: Problem;
  readonly headers: Record<string, string>;
  constructor(
    kind: ProblemKind,
    detail?: string,
    extra: Partial<Pick<Problem, 'errors' | 'holders' | 'peers'>> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail ?? PROBLEMS[kind][1]);
    const [status, title] = PROBLEMS[kind];
    this.problem = { type: typeOf(kind), title, status, ...(detail ? { detail } : {}), ...extra };
    this.headers = headers;
  }
}

export function typeOf(kind: ProblemKind): string {
  return `urn:ikegate:problem:${kind}`;
}

export function sendProblem(reply: FastifyReply, p: Problem, headers: Record<string, string> = {}) {
  for (const [k, v] of Object.entries(headers)) reply.header(k, v);
  return reply
    .code(p.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send({ ...p, instance: reply.request.url.split('?')[0] });
}

const PART: Record<string, FieldError['in']> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** `/auth/psk` -> `auth.psk`, `/remoteTs/0` -> `remoteTs[0]`. */
function dotted(pointer: string): string {
  let out = '';
  for (const seg of pointer.split('/').slice(1)) {
    const s = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`;
  }
  return out;
}

interface AjvIssue {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: Record<string, unknown>;
}

/** One FieldError per schema issue; unknown and missing properties name the property itself. */
export function fieldErrors(part: string, issues: readonly AjvIssue[]): FieldError[] {
  const where = PART[part] ?? 'body';
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const i of issues) {
    let field = dotted(i.instancePath);
    let message = i.message ?? 'is invalid';
    if (i.keyword === 'additionalProperties') {
      const p = String(i.params.additionalProperty);
      field = field === '' ? p : `${field}.${p}`;
      message = 'is not a known field';
    } else if (i.keyword === 'required') {
      const p = String(i.params.missingProperty);
      field = field === '' ? p : `${field}.${p}`;
      message = 'is required';
    } else if (i.keyword === 'pattern' || i.keyword === 'format') {
      message = `${message.replace(/ "[^"]*"$/, '')}`;
    } else if (i.keyword === 'enum' && Array.isArray(i.params.allowedValues)) {
      message = `must be one of ${i.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (i.keyword === 'maxProperties' && field.endsWith('auth')) {
      message = 'must have exactly one of psk or ca';
    } else if (i.keyword === 'minProperties' && field.endsWith('auth')) {
      message = 'must have exactly one of psk or ca';
    }
    // oneOf/anyOf branches repeat themselves; keep the first message per field.
    const key = `${where}:${field}:${i.keyword === 'oneOf' ? 'oneOf' : message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ in: where, field, message });
  }
  return out;
}

/** fastify's own errors (parsing, limits, validation) as problems. */
export function problemOf(e: FastifyError & { validation?: AjvIssue[]; validationContext?: string }): {
  problem: Problem;
  headers: Record<string, string>;
} {
  if (e instanceof ProblemError) return { problem: e.problem, headers: e.headers };
  const make = (kind: ProblemKind, detail?: string, extra: Partial<Problem> = {}) => ({
    problem: new ProblemError(kind, detail, extra).problem,
    headers: {},
  });
  const code = (e as { code?: unknown }).code;
  if (code === 'IKEGATE_ERR_STORE_CONFIG_CONFLICT')
    return make(
      'version-conflict',
      'the configuration kept changing under this change; nothing was committed',
    );
  // The store (Redis) is down or refused: the caller may retry, nothing was committed.
  if (
    code === 'ECONNREFUSED' ||
    ['MaxRetriesPerRequestError', 'ReplyError', 'AbortError'].includes((e as Error).name) ||
    /Connection is closed|Stream isn't writeable|store call timed out/.test((e as Error).message)
  )
    return make('unavailable', 'the configuration store is unavailable; nothing was changed');
  if (e.validation)
    return make('validation', `the ${PART[e.validationContext ?? 'body'] ?? 'request'} is not valid`, {
      errors: fieldErrors(e.validationContext ?? 'body', e.validation),
    });
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return make('body-too-large', e.message);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return e.statusCode === 415
        ? make('unsupported-media-type', e.message)
        : make('malformed-body', e.message);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return make('malformed-body', 'the body is empty but its content type says JSON');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return make('malformed-body', 'the body is not valid JSON');
    default:
      break;
  }
  if (e instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message)))
    return make('malformed-body', 'the body is not valid JSON');
  if (e.statusCode === 413) return make('body-too-large', e.message);
  if (e.statusCode === 415) return make('unsupported-media-type', e.message);
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)
    return make('malformed-body', e.message);
  return make('internal');
}

/** The JSON schema of a problem document (every error response). */
export const problemSchema = {
  type: 'object',
  required: ['type', 'title', 'status'],
  additionalProperties: false,
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['in', 'field', 'message'],
        additionalProperties: false,
        properties: {
          in: { type: 'string', enum: ['body', 'query', 'path', 'header'] },
          field: { type: 'string' },
          message: { type: 'string' },
        },
      },
    },
    holders: {
      type: 'array',
      items: {
        type: 'object',
        required: ['address', 'spi'],
        additionalProperties: false,
        properties: {
          address: { type: 'string' },
          spi: { type: 'string' },
          peerId: { type: 'string' },
          peer: { type: 'string' },
          worker: { type: 'string' },
        },
      },
    },
    peers: { type: 'array', items: { type: 'string' } },
  },
} as const;
