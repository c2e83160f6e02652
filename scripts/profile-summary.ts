/**
 * Summarises a V8 CPU profile (`node --cpu-prof` writes `*.cpuprofile`): the top N functions by
 * self time (with file:line), the top N by inclusive time, and the N heaviest stacks (the sampled
 * call paths, leaf last, that took most time). Times come from the profile's own sample deltas, so
 * they are the sampled process's CPU samples, not wall-clock of anything else.
 *
 * TypeScript run through tsx is compiled to one line per module (esbuild minifyWhitespace), so V8
 * reports nearly every function at line 1. The original line is recovered from tsx's transform cache
 * (`$TMPDIR/tsx-<uid>/`: the code that actually ran, with its source map): the newest cached
 * compilation of the file whose code has the function's name at the reported column is mapped
 * through node:module's SourceMap. A frame it cannot map keeps V8's line, marked `?`.
 *
 * Usage: node --import tsx scripts/profile-summary.ts FILE.cpuprofile [--top N] [--depth D]
 *          [--markdown] [--include-idle]
 *   --top N        rows per table (default 10)
 *   --depth D      frames shown per stack, nearest the leaf (default 6)
 *   --markdown     print Markdown tables (for docs/performance.md)
 *   --include-idle count (idle) samples in the percentages (default: percent of busy samples)
 *   --focus NAME   only samples with NAME on their stack (a function name, or name@path-part,
 *                  e.g. deliver@worker.ts): one side of an in-process pair, one code path
 *   --tsx-cache DIR where tsx keeps compiled modules (default $TMPDIR/tsx-<uid>)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface Row {
  readonly name: string;
  readonly location: string;
  readonly ms: number;
  readonly percent: number;
}

export interface Summary {
  readonly totalMs: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly gcMs: number;
  readonly samples: number;
  readonly self: readonly Row[];
  readonly inclusive: readonly Row[];
  readonly stacks: readonly {
    readonly frames: readonly string[];
    readonly ms: number;
    readonly percent: number;
  }[];
}

interface Compiled {
  readonly code: string;
  readonly map: SourceMap;
  readonly mtimeMs: number;
}

/** tsx's transform cache, read lazily: absolute source path -> its compilations, newest first. */
class TsxCache {
  #byPath: Map<string, Compiled[]> | undefined;
  readonly #mapped = new Map<string, number | undefined>();

  constructor(readonly dir: string) {}

  #load(): Map<string, Compiled[]> {
    const byPath = new Map<string, Compiled[]>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return byPath;
    }
    for (const name of names) {
      try {
        const file = join(this.dir, name);
        const entry = JSON.parse(readFileSync(file, 'utf8')) as { code?: string; map?: SourceMapPayload };
        const source = entry.map?.sources?.[0];
        if (!entry.code || !entry.map || !source) continue;
        const list = byPath.get(source) ?? [];
        list.push({ code: entry.code, map: new SourceMap(entry.map), mtimeMs: statSync(file).mtimeMs });
        byPath.set(source, list);
      } catch {
        // not a cache entry we understand
      }
    }
    for (const list of byPath.values()) list.sort((a, b) => b.mtimeMs - a.mtimeMs);
    return byPath;
  }

  /** The original 1-based line of a frame in a tsx-compiled module, when it can be told. */
  line(path: string, f: CallFrame): number | undefined {
    const key = `${path}:${f.lineNumber}:${f.columnNumber}:${f.functionName}`;
    if (this.#mapped.has(key)) return this.#mapped.get(key);
    this.#byPath ??= this.#load();
    let line: number | undefined;
    const bare = f.functionName.replace(/^#/, '');
    for (const c of this.#byPath.get(path) ?? []) {
      const lineText = c.code.split('\n')[f.lineNumber] ?? '';
      // V8 reports a function at its name (methods, declarations) or its parameter list (arrows).
      const around = lineText.slice(
        Math.max(0, f.columnNumber - bare.length - 12),
        f.columnNumber + bare.length + 12,
      );
      if (bare && !around.includes(bare)) continue;
      const e = c.map.findEntry(f.lineNumber, f.columnNumber) as { originalLine?: number };
      if (typeof e.originalLine === 'number') {
        line = e.originalLine + 1;
        break;
      }
    }
    this.#mapped.set(key, line);
    return line;
  }
}

let tsxCache = new TsxCache(join(tmpdir(), `tsx-${process.getuid?.() ?? 0}`));

/** A frame's place: path relative to the working directory (or as given), 1-based line. */
function location(f: CallFrame): string {
  if (!f.url) return '(native)';
  let path = f.url;
  let absolute: string | undefined;
  if (path.startsWith('file://')) {
    try {
      absolute = fileURLToPath(path);
      path = relative(process.cwd(), absolute);
    } catch {
      // keep the URL
    }
  }
  if (absolute && /\.[cm]?ts$/.test(absolute)) {
    const line = tsxCache.line(absolute, f);
    return line !== undefined ? `${path}:${line}` : `${path}:${f.lineNumber + 1}?`;
  }
  return `${path}:${f.lineNumber + 1}`;
}

const label = (f: CallFrame) => f.functionName || '(anonymous)';
const META = new Set(['(root)', '(program)', '(idle)', '(garbage collector)']);

export function summarize(
  profile: CpuProfile,
  o: { top?: number; depth?: number; includeIdle?: boolean; focus?: string } = {},
): Summary {
  const [focusName, focusPath] = (o.focus ?? '').split('@');
  const top = o.top ?? 10;
  const depth = o.depth ?? 6;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  // Time per sample: timeDeltas[i] is the gap before sample i; the gap after it (the next delta)
  // is the time the sample stands for. The last sample gets the mean delta.
  const n = profile.samples.length;
  const deltas = profile.timeDeltas;
  const mean = n > 0 ? (profile.endTime - profile.startTime) / n : 0;
  const weight = (i: number) => Math.max(0, (i + 1 < n ? (deltas[i + 1] ?? mean) : mean) / 1000);

  const self = new Map<string, { name: string; location: string; ms: number }>();
  const inclusive = new Map<string, { name: string; location: string; ms: number }>();
  const stacks = new Map<string, { frames: string[]; ms: number }>();
  let totalMs = 0;
  let idleMs = 0;
  let gcMs = 0;
  for (let i = 0; i < n; i++) {
    const ms = weight(i);
    totalMs += ms;
    const leaf = byId.get(profile.samples[i]!);
    if (!leaf) continue;
    const leafName = leaf.callFrame.functionName;
    if (leafName === '(idle)') {
      idleMs += ms;
      if (!o.includeIdle) continue;
    }
    if (focusName) {
      let hit = false;
      for (let id: number | undefined = leaf.id; id !== undefined && !hit; id = parent.get(id)) {
        const f = byId.get(id)?.callFrame;
        hit = f !== undefined && f.functionName === focusName && (!focusPath || f.url.includes(focusPath));
      }
      if (!hit) continue;
    }
    if (leafName === '(garbage collector)') gcMs += ms;
    const key = (f: CallFrame) => `${label(f)} ${location(f)}`;
    const add = (m: Map<string, { name: string; location: string; ms: number }>, f: CallFrame) => {
      const k = key(f);
      const e = m.get(k);
      if (e) e.ms += ms;
      else m.set(k, { name: label(f), location: location(f), ms });
    };
    add(self, leaf.callFrame);
    // Inclusive: each function once per sample, however often it recurs on the stack.
    const seen = new Set<string>();
    const path: string[] = [];
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id);
      if (!node) break;
      const f = node.callFrame;
      if (f.functionName === '(root)') break;
      const k = key(f);
      if (!seen.has(k)) {
        seen.add(k);
        if (!META.has(f.functionName)) add(inclusive, f);
      }
      if (path.length < depth) path.push(`${label(f)} (${location(f)})`);
    }
    const frames = path.reverse();
    const sk = frames.join(' > ');
    const s = stacks.get(sk);
    if (s) s.ms += ms;
    else stacks.set(sk, { frames, ms });
  }
  // With a focus, "busy" is the focused samples' time.
  const busyMs = focusName ? [...self.values()].reduce((a, r) => a + r.ms, 0) : totalMs - idleMs;
  const base = o.includeIdle ? totalMs : busyMs;
  const pct = (ms: number) => (base > 0 ? (ms / base) * 100 : 0);
  const rows = (m: Map<string, { name: string; location: string; ms: number }>) =>
    [...m.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((r) => ({ ...r, percent: pct(r.ms) }));
  return {
    totalMs,
    busyMs,
    idleMs,
    gcMs,
    samples: n,
    self: rows(self),
    inclusive: rows(inclusive),
    stacks: [...stacks.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top)
      .map((s) => ({ ...s, percent: pct(s.ms) })),
  };
}

export function formatSummary(s: Summary, markdown: boolean): string {
  const out: string[] = [];
  const f1 = (x: number) => x.toFixed(1);
  out.push(
    `samples ${s.samples}, profiled ${f1(s.totalMs)} ms, busy ${f1(s.busyMs)} ms, idle ${f1(s.idleMs)} ms, GC ${f1(s.gcMs)} ms (${f1((s.gcMs / Math.max(1e-9, s.busyMs)) * 100)}% of busy)`,
  );
  const table = (title: string, rows: readonly Row[]) => {
    out.push('', markdown ? `**${title}**` : `## ${title}`, '');
    if (markdown) {
      out.push('| # | function | where | ms | % |', '|---|---|---|---:|---:|');
      rows.forEach((r, i) =>
        out.push(`| ${i + 1} | \`${r.name}\` | \`${r.location}\` | ${f1(r.ms)} | ${f1(r.percent)} |`),
      );
    } else {
      rows.forEach((r, i) =>
        out.push(
          `${String(i + 1).padStart(3)}. ${f1(r.percent).padStart(5)}% ${f1(r.ms).padStart(9)} ms  ${r.name}  ${r.location}`,
        ),
      );
    }
  };
  table('Top functions by self time', s.self);
  table('Top functions by inclusive time', s.inclusive);
  out.push('', markdown ? '**Heaviest stacks** (leaf last)' : '## Heaviest stacks (leaf last)', '');
  s.stacks.forEach((st, i) => {
    const head = `${i + 1}. ${f1(st.percent)}% (${f1(st.ms)} ms)`;
    out.push(markdown ? `${head}: ${st.frames.map((x) => `\`${x}\``).join(' > ')}` : head);
    if (!markdown) for (const fr of st.frames) out.push(`       ${fr}`);
  });
  return out.join('\n') + '\n';
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '10' },
      depth: { type: 'string', default: '6' },
      markdown: { type: 'boolean', default: false },
      'include-idle': { type: 'boolean', default: false },
      'tsx-cache': { type: 'string' },
      focus: { type: 'string' },
    },
  });
  if (values['tsx-cache']) tsxCache = new TsxCache(values['tsx-cache']);
  const file = positionals[0];
  if (!file) {
    process.stderr.write(
      'usage: profile-summary FILE.cpuprofile [--top N] [--depth D] [--markdown] [--include-idle]\n',
    );
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(
    formatSummary(
      summarize(profile, {
        top: Number(values.top),
        depth: Number(values.depth),
        includeIdle: values['include-idle']!,
        ...(values.focus ? { focus: values.focus } : {}),
      }),
      values.markdown!,
    ),
  );
}
