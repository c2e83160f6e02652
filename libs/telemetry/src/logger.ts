/**
 * Logs: pino, one JSON line per event. Events carry SPIs (hex) and peer ids, never key material:
 * every field name that could hold a secret is redacted even if a caller passes it by mistake.
 */
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
  };
  return config.destination
    ? pino(options, config.destination as pino.DestinationStream)
    : pino(options, pino.destination({ fd: 1, sync: true }));
}

export type { Logger };
