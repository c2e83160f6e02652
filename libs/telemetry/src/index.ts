export { createLogger, type Logger, type LoggerConfig, REDACTED_FIELDS } from './logger.js';
export { Metrics } from './metrics.js';
