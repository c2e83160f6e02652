/**
 * Issue #12: the chart's values are documented and typed. Every key of helm/ikegate/values.yaml
 * (down to where values.schema.json stops describing structure: resources, probes, annotations
 * are one key each) has a row in helm/ikegate/README.md's values table and an entry in
 * values.schema.json; no README row names a key that does not exist; the schema accepts the
 * defaults and every profile (merged over the defaults as helm merges them) and refuses unknown
 * keys and out-of-range values; Chart.yaml carries package.json's version as appVersion.
 * Needs no tools: it reads the files and runs the schema with ajv.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parse } from 'yaml';

const REPO = new URL('../..', import.meta.url).pathname;
const CHART = join(REPO, 'helm', 'ikegate');

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };
interface SchemaNode {
  readonly type?: string | string[];
  readonly properties?: Record<string, SchemaNode>;
  readonly additionalProperties?: boolean | SchemaNode;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as JsonObject;
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
const readme = readFileSync(join(CHART, 'README.md'), 'utf8');

/**
 * The documented keys of `v`: a key whose value is a non-empty mapping and whose schema node lists
 * properties is descended into; any other key is one documented key. Keys with no schema node are
 * returned in `unknown`.
 */
function keys(v: JsonObject, node: SchemaNode | undefined, prefix: string, unknown: string[]): string[] {
  const out: string[] = [];
  for (const [k, sub] of Object.entries(v)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const child = node?.properties?.[k];
    if (child === undefined) unknown.push(path);
    if (isObject(sub) && Object.keys(sub).length > 0 && child?.properties !== undefined)
      out.push(...keys(sub, child, path, unknown));
    else out.push(path);
  }
  return out;
}

/** Helm's merge of a values file over the defaults: mappings merge, everything else replaces. */
function merge(base: JsonObject, over: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? merge(b, v) : v;
  }
  return out;
}

function profiles(): [string, JsonObject][] {
  const dir = join(CHART, 'profiles');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => [f, parse(readFileSync(join(dir, f), 'utf8')) as JsonObject]);
}

describe('helm/ikegate values: documented and typed (issue #12)', () => {
  const unknown: string[] = [];
  const documented = keys(values, schema, '', unknown);
  const table = readme.slice(readme.indexOf('\n## Values'));
  const rows = [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);

  test('every key of values.yaml is described in values.schema.json', () => {
    assert.ok(documented.length > 150, `only ${documented.length} keys found`);
    assert.deepEqual(unknown, [], 'keys of values.yaml missing from values.schema.json');
  });

  test("every key of values.yaml has a row in README.md's values table, with a description", () => {
    const missing = documented.filter((k) => !rows.includes(k));
    assert.deepEqual(missing, [], 'keys of values.yaml missing from the README table');
    for (const line of table.split('\n').filter((l) => l.startsWith('| `'))) {
      const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
      assert.ok((cells[3] ?? '').length > 3, `no description: ${line}`);
    }
  });

  test('every row of the README values table names a key that values.yaml has', () => {
    const stale = rows.filter((r) => !documented.includes(r));
    assert.deepEqual(stale, [], 'README rows for keys that values.yaml does not have');
  });

  test('values.schema.json accepts the defaults and every profile merged over them', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    assert.ok(validate(values), JSON.stringify(validate.errors));
    const all = profiles();
    assert.ok(all.length >= 6, `profiles: ${all.map(([f]) => f).join(' ')}`);
    for (const [file, p] of all)
      assert.ok(validate(merge(values, p)), `${file}: ${JSON.stringify(validate.errors)}`);
  });

  test('values.schema.json refuses unknown keys, unknown enum values and out-of-range numbers', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const bad: [string, JsonObject, RegExp][] = [
      ['a typo at the top', { edgee: {} }, /additional/],
      ['a typo in edge', { edge: { replica: 3 } }, /additional/],
      ['an unknown service mode', { edge: { service: { mode: 'both' } } }, /allowed values|enum/],
      ['port 0', { edge: { containerPorts: { ike: 0 } } }, />= 1|minimum/],
      ['an unknown Redis mode', { redis: { mode: 'memory' } }, /allowed values|enum/],
      [
        'a token hash that is not SHA-256 hex',
        { api: { tokens: [{ name: 'a', role: 'admin', sha256: 'xyz' }] } },
        /pattern/,
      ],
      ['an unknown config section', { config: { cluser: {} } }, /additional/],
      [
        'a PSK under 16 characters',
        { secrets: { psks: { values: { a: 'short' } } } },
        /fewer than 16|minLength/,
      ],
    ];
    for (const [what, over, why] of bad) {
      assert.equal(validate(merge(values, over)), false, `${what} was accepted`);
      assert.match(JSON.stringify(validate.errors), why, what);
    }
  });

  test("Chart.yaml: apiVersion v2, kubeVersion >=1.28.0-0, appVersion is package.json's version", () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as JsonObject;
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    assert.equal(chart.apiVersion, 'v2');
    assert.equal(chart.kubeVersion, '>=1.28.0-0');
    assert.equal(chart.appVersion, pkg.version);
  });
});
