/**
 * IKEv2 exchanges (RFC 7296): the sans-IO IKE SA state machine. See ike-sa.ts for how it works.
 */
export { intersectSelector, narrowSelectors } from './child-sa.js';
export { createIkeSa, IkeSa, STATUS_TRANSITIONS, step } from './ike-sa.js';
export { MAX_FRAGMENTS, MAX_REASSEMBLY_BYTES } from './fragmentation.js';
export { DEFAULT_FRAGMENT_SIZE, DEFAULT_RETRANSMIT } from './message-window.js';
export type {
  AddressAssignment,
  ChildRekeyCollision,
  ChildSaAlgorithm,
  ChildSaState,
  DeleteReason,
  Endpoint,
  EspProposalPolicy,
  EspSuite,
  IkeKeys,
  IkeProposalPolicy,
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaCore,
  IkeSaEvent,
  IkeSaPolicy,
  IkeSaState,
  IkeSaStatus,
  IkeSuite,
  IkeTask,
  InstallChildAction,
  OutstandingRequest,
  Reassembly,
  RetransmitPolicy,
  StepResult,
  Transport,
} from './types.js';
