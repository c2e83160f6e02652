export {
  runLoadgen,
  type LoadgenOptions,
  type LoadgenProgress,
  type LoadgenRun,
  type LoadgenSamples,
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
  mergeSummaries,
  SATURATED_CPU_PERCENT,
  type LoadgenSummary,
  type ProcessPart,
  type ProcessSummary,
} from './stats.js';
export { runLoadgenProcesses, splitEvenly, type ProcessesOptions } from './processes.js';
export { MuxConnector } from './mux.js';
