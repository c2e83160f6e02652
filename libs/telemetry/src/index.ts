export {
  createLogger,
  type Logger,
  type LoggerConfig,
  REDACTED_FIELDS,
  RejectionLog,
  traceFields,
} from './logger.js';
export { exchangeLabel, IKEGATE_VERSION, Metrics, type PeerFigures, tlsFailureReason } from './metrics.js';
export {
  Attr,
  exchangeSpanName,
  httpSpanName,
  Outcome,
  SpanEvent,
  SpanName,
  TRACER_NAME,
} from './trace-names.js';
export {
  startTracing,
  tracer,
  tracingActive,
  tracingConfigured,
  type TracingHandle,
  type TracingOptions,
} from './tracing.js';
