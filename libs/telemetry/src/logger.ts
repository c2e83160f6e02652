/**
 * Logs: pino, one JSON line per event. Events carry SPIs (hex) and peer ids, never key material:
 * every field name that could hold a secret is redacted even if a caller passes it by mistake.
 * A line written while a recording span is active (tracing.ts) carries its `trace_id` and
 * `span_id`, so a trace and its log lines find each other.
 */
import { context, trace } from '@opentelemetry/api';
import { pino, type Logger, type LoggerOptions } from 'pino';

/** Field names that are never written, at any depth we log (pino redact paths). */
export const REDACTED_FIELDS = [
  'psk',
  'key',
  'keys',
  'secret',
  'skD',
  'skeyseed',
  'privateKey',
  'password',
] as const;

const REDACTED: ReadonlySet<string> = new Set(REDACTED_FIELDS);
const CENSOR = '[redacted]';
/** Objects nested deeper than this are written as they are (we log flat objects; 3 levels were redacted before). */
const REDACT_DEPTH = 6;

/**
 * `v` with every field named in REDACTED_FIELDS replaced by the censor, at any depth up to
 * REDACT_DEPTH, in objects and arrays; byte arrays are left alone (they have no field names).
 * Copy on write: the caller's objects are never changed, and an object without such a field is
 * returned as it is. Issue #14: pino's wildcard redact paths (`*.*.psk`) cost ~14 µs per line,
 * four lines per IKE SA at the default level; this walk costs well under a microsecond for the
 * flat objects we log.
 */
export function redactSecrets<T>(v: T, depth = 0): T {
  if (v === null || typeof v !== 'object' || depth > REDACT_DEPTH || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < v.length; i++) {
      const r = redactSecrets(v[i] as unknown, depth + 1);
      if (r !== v[i]) (out ??= v.slice())[i] = r;
    }
    return (out ?? v) as T;
  }
  const o = v as Record<string, unknown>;
  let out: Record<string, unknown> | undefined;
  for (const k of Object.keys(o)) {
    const value = o[k];
    const r = REDACTED.has(k) ? CENSOR : redactSecrets(value, depth + 1);
    if (r !== value) setOwn((out ??= sameKindCopy(o)), k, r);
  }
  // An Error's cause is not enumerable; pino's err serializer writes it (and its fields) too.
  if (v instanceof Error && v.cause !== undefined) {
    const r = redactSecrets(v.cause, depth + 1);
    if (r !== v.cause) setOwn((out ??= sameKindCopy(o)), 'cause', r);
  }
  return (out ?? v) as T;
}

/**
 * A copy with the same prototype and every own property (enumerable or not): an Error stays an
 * Error with its message and stack for pino's err serializer, a class keeps its toJSON.
 */
function sameKindCopy(o: object): Record<string, unknown> {
  return Object.defineProperties(
    Object.create(Object.getPrototypeOf(o) as object | null) as object,
    Object.getOwnPropertyDescriptors(o),
  ) as Record<string, unknown>;
}

function setOwn(o: Record<string, unknown>, k: string, value: unknown): void {
  Object.defineProperty(o, k, {
    value,
    enumerable: Object.keys(o).includes(k),
    writable: true,
    configurable: true,
  });
}

/** The active span's ids for a log line (none without a recording span: no SDK, not sampled). */
export function traceFields(): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(context.active());
  if (!span?.isRecording()) return {};
  const c = span.spanContext();
  return { trace_id: c.traceId, span_id: c.spanId };
}

export interface LoggerConfig {
  readonly level?: string;
  readonly name?: string;
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  readonly destination?: NodeJS.WritableStream;
}

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: { service: config.name ?? 'ikegate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => redactSecrets(bindings),
      log: (object) => redactSecrets(object),
    },
    mixin: traceFields,
  };
  const logger = config.destination
    ? pino(options, config.destination as pino.DestinationStream)
    : pino(options, pino.destination({ fd: 1, sync: true }));
  // A child's bindings are written into every line it logs, and pino gives children no bindings
  // formatter: they are redacted here, once per child. Children inherit this `child` (pino makes
  // a child with Object.create of its parent), so grandchildren are covered too.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, redactSecrets(bindings), childOptions);
  } as Logger['child'];
  return logger;
}

export type { Logger };

/**
 * Log lines for rejections that can come once per packet (a flood would otherwise be a log flood):
 * the first of each `layer`/`reason` is logged at once, then at most one line per `everyMs` for
 * it, with how many were not logged since (`suppressed`). The metric counts every one; this says
 * that it happens, with an example. Keys are the code's own reason names, a bounded set.
 */
export class RejectionLog {
  /** layer -> reason -> when the last line was written and how many were not since. */
  readonly #last = new Map<string, Map<string, { at: number; suppressed: number }>>();
  constructor(
    private readonly log: Logger,
    private readonly everyMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `fields` as a function: built only for a line that is written (not per dropped packet). */
  note(
    layer: string,
    reason: string,
    fields: Record<string, unknown> | (() => Record<string, unknown>) = {},
  ): void {
    let byReason = this.#last.get(layer);
    if (!byReason) this.#last.set(layer, (byReason = new Map()));
    const t = this.now();
    const seen = byReason.get(reason);
    if (seen && t - seen.at < this.everyMs) {
      seen.suppressed++;
      return;
    }
    const suppressed = seen?.suppressed ?? 0;
    if (seen) {
      seen.at = t;
      seen.suppressed = 0;
    } else byReason.set(reason, { at: t, suppressed: 0 });
    const example = typeof fields === 'function' ? fields() : fields;
    this.log.warn({ layer, reason, ...example, ...(suppressed > 0 ? { suppressed } : {}) }, 'rejected');
  }
}
