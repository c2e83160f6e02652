/**
 * The API's documents stay true to its routes: docs/api-reference.md is a rendering of the live
 * /openapi.json (scripts/api-reference.ts), and docs/api.md names every problem type and every
 * protected route. The test lives here because scripts/run-tests.mjs finds tests under libs/,
 * services/ and test/ only.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  liveSections,
  REFERENCE_FILE,
  REGENERATE,
  renderApiReference,
  type ApiSection,
} from '../../../scripts/api-reference.js';
import { PROBLEMS } from './problem.js';

const API_GUIDE = new URL('../../../docs/api.md', import.meta.url);

/** The first line where two texts differ, for a message a reader can act on. */
function firstDifference(a: string, b: string): string {
  const x = a.split('\n');
  const y = b.split('\n');
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if (x[i] !== y[i])
      return `line ${i + 1}:\n  in the file:   ${x[i] ?? '(end of file)'}\n  from the code: ${y[i] ?? '(end of file)'}`;
  return 'no line differs';
}

describe('API documentation (issue #10)', () => {
  let sections: ApiSection[];

  test('docs/api-reference.md is the rendering of the routes’ /openapi.json', async () => {
    sections = await liveSections();
    const fresh = renderApiReference(sections);
    let current = '';
    try {
      current = readFileSync(REFERENCE_FILE, 'utf8');
    } catch {
      // missing: reported below
    }
    assert.ok(
      current === fresh,
      `docs/api-reference.md is out of date; regenerate it with \`${REGENERATE}\` (first difference at ${firstDifference(current, fresh)})`,
    );
  });

  test('docs/api.md explains every problem type and names every protected control route', async () => {
    const guide = readFileSync(API_GUIDE, 'utf8');
    for (const kind of Object.keys(PROBLEMS))
      assert.ok(guide.includes(`\`${kind}\``), `docs/api.md does not explain the problem type \`${kind}\``);
    sections ??= await liveSections();
    const control = sections.find((s) => s.key === 'control')!;
    for (const [path, methods] of Object.entries(control.doc.paths))
      for (const [method, op] of Object.entries(methods)) {
        if (op['x-ikegate-role'] === undefined) continue;
        const route = `${method.toUpperCase()} ${path}`;
        assert.ok(
          guide.includes(`\`${route}\``),
          `docs/api.md does not list \`${route}\` in its role tables`,
        );
      }
  });
});
