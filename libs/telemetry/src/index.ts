export { createLogger, type Logger, type LoggerConfig, REDACTED_FIELDS } from './logger.js';
export { exchangeLabel, IKEGATE_VERSION, Metrics, type PeerFigures, tlsFailureReason } from './metrics.js';
