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

const redactPaths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

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
    redact: { paths: redactPaths, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin: traceFields,
  };
  return config.destination
    ? pino(options, config.destination as pino.DestinationStream)
    : pino(options, pino.destination({ fd: 1, sync: true }));
}

export type { Logger };
