/**
 * Renders docs/api-reference.md from the OpenAPI 3.1 documents the APIs serve at /openapi.json:
 * the control API, and the admin APIs of cluster workers and edges. The documents come from the
 * route tables themselves (built in this process, no sockets), so the reference says what the
 * code does; services/control/src/api-reference.test.ts fails when the file in the repository
 * differs from a fresh rendering.
 *
 * Usage: npx tsx scripts/api-reference.ts            (writes docs/api-reference.md)
 *        npx tsx scripts/api-reference.ts --check    (exits 1 when it is out of date)
 *
 * What OpenAPI does not say is which problem `type` a status carries; that follows from the
 * status (PROBLEMS) except for 409, where the kinds depend on the route (CONFLICTS).
 * A route that declares a 409 and is not in CONFLICTS, or an entry for a route that declares
 * none, fails the rendering, so the table cannot silently go stale.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { AccessControl } from '../services/control/src/access.js';
import { buildEdgeAdmin, buildWorkerAdmin } from '../services/control/src/admin-api.js';
import { PROBLEMS, type ProblemKind } from '../services/control/src/problem.js';
import { testGateway } from '../services/control/src/testing/gateway.js';

export const REFERENCE_FILE = fileURLToPath(new URL('../docs/api-reference.md', import.meta.url));
export const REGENERATE = 'npx tsx scripts/api-reference.ts';

type Schema = Record<string, unknown>;

interface Operation {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags?: readonly string[];
  readonly 'x-ikegate-role'?: string;
  readonly parameters?: readonly {
    name: string;
    in: string;
    required: boolean;
    description?: string;
    schema: Schema;
  }[];
  readonly requestBody?: { required: boolean; content: Record<string, { schema: Schema }> };
  readonly responses: Record<string, { description: string; content?: Record<string, { schema: Schema }> }>;
}

export interface OpenApiDocument {
  readonly info: { title: string; version: string; description?: string };
  readonly paths: Record<string, Record<string, Operation>>;
}

/** One API to render: its document, and the heading and prose around it. */
export interface ApiSection {
  readonly key: string;
  readonly title: string;
  readonly intro: string;
  readonly doc: OpenApiDocument;
  /** Leave out the public routes (they are the same in every API and rendered once). */
  readonly omitPublic?: boolean;
}

/** The problem kinds a route's 409 carries (read from its handler). */
const CONFLICTS: Record<string, readonly ProblemKind[]> = {
  'POST /v1/peers': ['already-exists', 'conflict'],
  'PUT /v1/peers/{name}': ['conflict'],
  'PATCH /v1/peers/{name}': ['conflict'],
  'POST /v1/pools': ['already-exists', 'version-conflict'],
  'PUT /v1/pools/{name}': ['in-use', 'version-conflict'],
  'PATCH /v1/pools/{name}': ['in-use', 'version-conflict'],
  'DELETE /v1/pools/{name}': ['in-use'],
  'DELETE /v1/sas/{spi}': ['sa-not-ready'],
  'POST /v1/sas/{spi}/rekey': ['sa-not-ready'],
  'POST /v1/sas/{spi}/liveness': ['sa-not-ready'],
  'POST /v1/workers/{id}/drain': ['not-clustered'],
  'DELETE /v1/workers/{id}/drain': ['not-clustered'],
  'POST /v1/edges/{id}/drain': ['not-clustered'],
  'POST /internal/v1/sas/{spi}/command': ['sa-not-ready'],
};

const METHOD_ORDER = ['get', 'post', 'put', 'patch', 'delete'];

// --- schemas as table rows -------------------------------------------------------------------------

/** Text for a table cell: pipes escaped, newlines flattened. */
function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function code(s: string): string {
  return s.includes('`') ? `\`\` ${s} \`\`` : `\`${s}\``;
}

function isObjectSchema(s: Schema): boolean {
  const t = s.type;
  return t === 'object' || (Array.isArray(t) && t.includes('object')) || s.properties !== undefined;
}

function branches(s: Schema): Schema[] | undefined {
  return (s.oneOf ?? s.anyOf) as Schema[] | undefined;
}

/** Whether a schema has fields worth their own rows (an object with properties, somewhere). */
function hasFields(s: Schema): boolean {
  if (s.properties && Object.keys(s.properties as Schema).length > 0) return true;
  const b = branches(s);
  if (b) return b.some(hasFields);
  if (s.items) return hasFields(s.items as Schema);
  return false;
}

function constraints(s: Schema): string[] {
  const out: string[] = [];
  if (Array.isArray(s.enum))
    out.push(`one of ${(s.enum as unknown[]).map((v) => code(String(v))).join(', ')}`);
  if (s.format !== undefined) out.push(`format ${code(String(s.format))}`);
  if (s.pattern !== undefined) out.push(`pattern ${code(String(s.pattern))}`);
  const range = (lo: unknown, hi: unknown, unit: string) => {
    if (lo !== undefined && hi !== undefined) out.push(`${lo}–${hi}${unit}`);
    else if (lo !== undefined) out.push(`at least ${lo}${unit}`);
    else if (hi !== undefined) out.push(`at most ${hi}${unit}`);
  };
  range(s.minimum, s.maximum, '');
  range(s.minLength, s.maxLength, ' characters');
  range(s.minItems, s.maxItems, ' items');
  if (s.minProperties !== undefined) out.push(`at least ${s.minProperties} field(s)`);
  if (s.default !== undefined) out.push(`default ${code(JSON.stringify(s.default))}`);
  return out;
}

/** A schema's type in a few words, with its constraints. */
export function typeText(s: Schema): string {
  const b = branches(s);
  if (b) {
    if (b.every((x) => !hasFields(x))) return b.map(typeText).join(', or ');
    return 'one of the objects below';
  }
  let base: string;
  const t = s.type;
  if (t === 'array') base = `array of ${s.items ? typeText(s.items as Schema) : 'any'}`;
  else if (Array.isArray(t)) base = (t as string[]).join(' or ');
  else if (t === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object')
    base = `object: name → ${typeText(s.additionalProperties as Schema)}`;
  else if (t === 'object' && s.additionalProperties === true && !s.properties) base = 'any JSON object';
  else if (typeof t === 'string') base = t;
  else base = 'any';
  if (t === 'array') {
    const c = constraints({ ...s, items: undefined, pattern: undefined, enum: undefined });
    return c.length > 0 ? `${base} (${c.join('; ')})` : base;
  }
  const c = constraints(s);
  return c.length > 0 ? `${base}; ${c.join('; ')}` : base;
}

interface Row {
  readonly field: string;
  readonly type: string;
  readonly required: string;
  readonly description: string;
}

/** The rows of an object schema's fields, nested ones as `a.b` and `a[].b`. */
export function fieldRows(s: Schema, prefix = '', option = ''): Row[] {
  const rows: Row[] = [];
  const props = (s.properties ?? {}) as Record<string, Schema>;
  const required = new Set((s.required as string[] | undefined) ?? []);
  for (const [name, p] of Object.entries(props)) {
    const path = prefix === '' ? name : `${prefix}.${name}`;
    rows.push({
      field: path,
      type: typeText(p),
      required: (required.has(name) ? 'yes' : 'no') + option,
      description: (p.description as string | undefined) ?? '',
    });
    rows.push(...nestedRows(p, path, option));
  }
  return rows;
}

function nestedRows(p: Schema, path: string, option: string): Row[] {
  const b = branches(p);
  if (b && b.some(hasFields)) {
    const objects = b.filter(hasFields);
    return objects.flatMap((x, i) =>
      fieldRows(x, path, objects.length > 1 ? ` (option ${i + 1} of ${objects.length})` : ''),
    );
  }
  if (p.type === 'array' && p.items && hasFields(p.items as Schema)) {
    const items = p.items as Schema;
    return isObjectSchema(items)
      ? fieldRows(items, `${path}[]`, option)
      : nestedRows(items, `${path}[]`, option);
  }
  if (isObjectSchema(p) && p.properties) return fieldRows(p, path, option);
  return [];
}

function fieldTable(s: Schema): string[] {
  const rows = fieldRows(s);
  if (rows.length === 0) return [`Type: ${typeText(s)}.`, ''];
  return [
    '| Field | Type | Required | Description |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${code(r.field)} | ${cell(r.type)} | ${r.required} | ${cell(r.description)} |`),
    '',
  ];
}

// --- operations ----------------------------------------------------------------------------------

/**
 * The problem kinds a response status carries: the kinds PROBLEMS has for that status, less
 * `route-not-found` (no route's own answer) and `malformed-body` for a route without a body; for
 * 409, which has several kinds, the route's entry in CONFLICTS.
 */
function problemKinds(method: string, path: string, status: number, op: Operation, used: Set<string>) {
  if (status === 409) {
    const key = `${method.toUpperCase()} ${path}`;
    const kinds = CONFLICTS[key];
    if (!kinds)
      throw new Error(
        `${key} declares a 409: add its problem kinds to CONFLICTS in scripts/api-reference.ts`,
      );
    used.add(key);
    return kinds;
  }
  const kinds = (Object.entries(PROBLEMS) as [ProblemKind, readonly [number, string]][])
    .filter(
      ([k, [st]]) => st === status && k !== 'route-not-found' && (k !== 'malformed-body' || op.requestBody),
    )
    .map(([k]) => k);
  if (kinds.length === 0)
    throw new Error(`${method.toUpperCase()} ${path}: PROBLEMS has no kind for status ${status}`);
  return kinds;
}

function anchor(api: string, op: Operation): string {
  return `${api}-${op.operationId}`;
}

function roleOf(op: Operation): string {
  return op['x-ikegate-role'] ?? 'public';
}

interface Entry {
  readonly method: string;
  readonly path: string;
  readonly op: Operation;
}

function entries(doc: OpenApiDocument, omitPublic: boolean): Entry[] {
  const out: Entry[] = [];
  for (const [path, methods] of Object.entries(doc.paths))
    for (const method of METHOD_ORDER) {
      const op = methods[method];
      if (!op || (omitPublic && roleOf(op) === 'public')) continue;
      out.push({ method, path, op });
    }
  return out;
}

function renderOperation(api: string, e: Entry, used: Set<string>): string[] {
  const { method, path, op } = e;
  const out: string[] = [
    `<a id="${anchor(api, op)}"></a>`,
    '',
    `### ${method.toUpperCase()} ${path}`,
    '',
    `${op.summary}. Role: **${roleOf(op)}**.`,
    '',
  ];
  if (op.description) out.push(op.description, '');

  const params = op.parameters ?? [];
  if (params.length > 0) {
    out.push(
      'Parameters:',
      '',
      '| Name | In | Type | Required | Description |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const p of params)
      out.push(
        `| ${code(p.name)} | ${p.in} | ${cell(typeText(p.schema))} | ${p.required ? 'yes' : 'no'} | ${cell(p.description ?? '')} |`,
      );
    out.push('');
  }

  if (op.requestBody) {
    const types = Object.keys(op.requestBody.content);
    const schema = Object.values(op.requestBody.content)[0]!.schema;
    out.push(
      `Request body (${types.map(code).join(' or ')}, ${op.requestBody.required ? 'required' : 'optional'})` +
        (schema.additionalProperties === false ? '; a field not listed here is refused:' : ':'),
      '',
      ...fieldTable(schema),
    );
  }

  out.push('Responses:', '', '| Status | Meaning | Body |', '| --- | --- | --- |');
  const bodies: { statuses: string[]; type: string; schema: Schema }[] = [];
  for (const [status, r] of Object.entries(op.responses).sort(([a], [b]) => Number(a) - Number(b))) {
    const [type, content] = Object.entries(r.content ?? {})[0] ?? [];
    let body: string;
    if (!type || !content) body = 'none';
    else if (type === 'application/problem+json')
      body =
        'problem: ' +
        problemKinds(method, path, Number(status), op, used)
          .map((k) => `[${code(k)}](#problem-${k})`)
          .join(', ');
    else if (type === 'application/json') {
      const same = bodies.find((b) => JSON.stringify(b.schema) === JSON.stringify(content.schema));
      if (same) same.statuses.push(status);
      else bodies.push({ statuses: [status], type, schema: content.schema });
      body = hasFields(content.schema) ? 'JSON, fields below' : `JSON: ${cell(typeText(content.schema))}`;
    } else body = `${code(type)}`;
    out.push(`| ${status} | ${cell(r.description)} | ${body} |`);
  }
  out.push('');
  for (const b of bodies.filter((x) => hasFields(x.schema)))
    out.push(`Response ${b.statuses.join(' and ')} (${code(b.type)}):`, '', ...fieldTable(b.schema));
  return out;
}

function renderSection(s: ApiSection, used: Set<string>): string[] {
  const list = entries(s.doc, s.omitPublic ?? false);
  const out: string[] = [`## ${s.title}`, '', s.intro, ''];
  out.push('| Method | Path | Role | Summary |', '| --- | --- | --- | --- |');
  for (const e of list)
    out.push(
      `| ${e.method.toUpperCase()} | [${code(e.path)}](#${anchor(s.key, e.op)}) | ${roleOf(e.op)} | ${cell(e.op.summary)} |`,
    );
  out.push('');
  for (const e of list) out.push(...renderOperation(s.key, e, used));
  return out;
}

/** The whole reference: a header, the problem types, then each API. Throws on a stale CONFLICTS. */
export function renderApiReference(sections: readonly ApiSection[]): string {
  const used = new Set<string>();
  const control = sections[0]!;
  const out: string[] = [
    `<!-- Generated by scripts/api-reference.ts from the routes' /openapi.json; do not edit. Regenerate: ${REGENERATE} -->`,
    '',
    '# ikegate API reference',
    '',
    `${control.doc.info.title} ${control.doc.info.version}, rendered from the OpenAPI 3.1 document it serves at`,
    '`GET /openapi.json`. The walkthrough, how to create tokens, and when each error happens are in',
    '[api.md](api.md).',
    '',
    'A route whose role is not `public` needs `Authorization: Bearer <token>` with a token from the',
    'access file (`control.accessFile`), or a client certificate listed there (mTLS). Roles are ordered',
    '`viewer` < `operator` < `admin`; each may do what the roles before it may. No credentials, or',
    'unknown ones, get 401; a role too low gets 403. Without an access file only the public routes exist.',
    '',
    'Request bodies are JSON (`PATCH` also takes `application/merge-patch+json`), at most 64 KiB,',
    'validated without type coercion; query strings and path parameters are converted from text.',
    '',
    '## Problem types',
    '',
    'Every error is an RFC 9457 problem document (`application/problem+json`) whose `type` is',
    '`urn:ikegate:problem:<kind>`:',
    '',
    '| Kind | Status | Title |',
    '| --- | --- | --- |',
    ...Object.entries(PROBLEMS).map(
      ([k, [status, title]]) => `| <a id="problem-${k}"></a>${code(k)} | ${status} | ${title} |`,
    ),
    '',
  ];
  for (const s of sections) out.push(...renderSection(s, used));
  const stale = Object.keys(CONFLICTS).filter((k) => !used.has(k));
  if (stale.length > 0)
    throw new Error(`CONFLICTS in scripts/api-reference.ts names routes without a 409: ${stale.join(', ')}`);
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

// --- the live documents --------------------------------------------------------------------------

async function openApiOf(app: {
  inject: (o: { method: 'GET'; url: string }) => Promise<{ statusCode: number; body: string }>;
}) {
  const r = await app.inject({ method: 'GET', url: '/openapi.json' });
  if (r.statusCode !== 200) throw new Error(`GET /openapi.json answered ${r.statusCode}`);
  return JSON.parse(r.body) as OpenApiDocument;
}

/** Builds the control API (with an access file) and both admin APIs in this process; their documents. */
export async function liveSections(): Promise<ApiSection[]> {
  const gw = await testGateway();
  const log = createLogger({ destination: new PassThrough().resume(), level: 'silent' });
  const metrics = new Metrics({ processMetrics: false });
  const access = new AccessControl({ file: null, log });
  const base = { log, metrics, access, ready: () => true };
  const worker = buildWorkerAdmin({
    ...base,
    worker: gw.worker,
    status: () => ({ id: 'w', shards: [], draining: false, configVersion: 0, pendingWrites: 0, invalid: [] }),
  });
  const edge = buildEdgeAdmin({
    ...base,
    status: () => ({ id: 'e', connections: 0, draining: false, unowned: 0, shardsByWorker: {} }),
    drain: async () => undefined,
  });
  try {
    return [
      {
        key: 'control',
        title: 'Control API',
        intro:
          'Served by `ikegate up` and by `ikegate control` on `control.address`:`control.port` (HTTPS with `control.tls`).',
        doc: await openApiOf(gw.app),
      },
      {
        key: 'worker',
        title: 'Worker admin API',
        intro:
          "Served by each `ikegate worker` on its `--admin HOST:PORT`; the control process reads and commands the worker through it. It takes the same tokens as the control API, and the cluster's internal credential (derived from the KEK). `/healthz`, `/readyz` (ready once it holds a shard lease, or while draining), `/metrics` and `/openapi.json` are public, as on the control API.",
        doc: await openApiOf(worker),
        omitPublic: true,
      },
      {
        key: 'edge',
        title: 'Edge admin API',
        intro:
          'Served by each `ikegate edge` on its `--admin HOST:PORT`, with the same credentials as the worker admin API. `/readyz` answers 503 while the edge drains, so a Kubernetes Service stops sending it peers.',
        doc: await openApiOf(edge),
        omitPublic: true,
      },
    ];
  } finally {
    await worker.close();
    await edge.close();
    await gw.close();
    rmSync(gw.dir, { recursive: true, force: true });
  }
}

export async function renderLiveReference(): Promise<string> {
  return renderApiReference(await liveSections());
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const text = await renderLiveReference();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(REFERENCE_FILE, 'utf8');
    } catch {
      // a missing file is out of date
    }
    if (current !== text) {
      console.error(`docs/api-reference.md is out of date; regenerate it with: ${REGENERATE}`);
      process.exit(1);
    }
    console.log('docs/api-reference.md is up to date');
  } else {
    writeFileSync(REFERENCE_FILE, text);
    console.log(`wrote ${REFERENCE_FILE}`);
  }
}
