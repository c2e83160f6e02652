export {
  runLoadgen,
  type LoadgenOptions,
  type LoadgenProgress,
  type LoadgenRun,
  type LoadgenTransport,
} from './loadgen.js';
export {
  loadgenMain,
  parseLoadgenArgs,
  LOADGEN_USAGE,
  LoadgenUsageError,
  type LoadgenCliOptions,
} from './cli.js';
export {
  formatSummary,
  latencySummary,
  percentile,
  quarterRates,
  expandId,
  type LoadgenSummary,
} from './stats.js';
export { MuxConnector } from './mux.js';
