export {
  AccessControl,
  AccessFileError,
  internalToken,
  newToken,
  type Role,
  roleAllows,
  tokenHash,
} from './access.js';
export { buildEdgeAdmin, buildWorkerAdmin, type EdgeStatus, type WorkerStatus } from './admin-api.js';
export { apiNotice, buildControlApi, type ControlApiOptions } from './api.js';
export { type ControlBackend, type EdgeView, LocalBackend, type WorkerView } from './backend.js';
export { ClusterBackend } from './cluster-backend.js';
export { openApiDocument } from './openapi.js';
export { PROBLEMS, typeOf } from './problem.js';
export { type ManagedOptions, startManaged } from './managed.js';
