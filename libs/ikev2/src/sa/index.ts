/**
 * One IKE SA (RFC 7296): the pure state machine and its task manager. See ike-sa.ts for how it
 * works; the exchanges are tasks in ../exchange/.
 */
export { createIkeSa, IkeSa, nextTimeout, STATUS_TRANSITIONS, step } from './ike-sa.js';
export { compactState } from './compact.js';
export { DEFAULT_REKEY_RETRY_MS } from './lifetimes.js';
export { DEFAULT_FRAGMENT_SIZE, DEFAULT_RETRANSMIT, MAX_QUEUED } from './task-manager.js';
export type {
  AddressAssignment,
  CachedResponse,
  ChildRekeyCollision,
  ChildSaAlgorithm,
  ChildSaState,
  DeleteReason,
  Endpoint,
  EspProposalPolicy,
  IkeInitData,
  IkePath,
  IkeProposalPolicy,
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaCore,
  IkeSaEvent,
  IkeSaPolicy,
  IkeSaState,
  IkeSaStatus,
  IkeTask,
  InstallChildAction,
  LifetimePolicy,
  OutstandingRequest,
  QueuedRequest,
  Reassembly,
  Rejection,
  RequestSource,
  RetransmitPolicy,
  StepResult,
  Transport,
} from './types.js';
