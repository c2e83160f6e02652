export { createLogger, type Logger, type LoggerConfig, REDACTED_FIELDS } from './logger.js';
export { exchangeLabel, Metrics } from './metrics.js';
