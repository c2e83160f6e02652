/**
 * The exchange tasks (RFC 7296 and companions), one file per exchange with its initiator and
 * responder halves; ../sa/ drives them. Exported for tests and tools only where noted.
 */
export { MAX_FRAGMENTS, MAX_REASSEMBLY_BYTES } from './fragmentation.js';
export { DEFAULT_HALF_OPEN_MS, NONCE_LENGTH } from './ike-init.js';
export { sameSelectors } from './child-sa.js';
export { describeProposals } from './sa-payloads.js';
