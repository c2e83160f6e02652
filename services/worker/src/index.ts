export { decodeSnapshot, encodeSnapshot, type SaSnapshot } from './snapshot.js';
export {
  type AddressPoolLike,
  type ChildInfo,
  type InitiateOptions,
  type Persistence,
  TAKEOVER_SEQUENCE_MARGIN,
  type WorkerObserver,
  type PacketDevice,
  type PeerSettings,
  type SaPage,
  type SaQuery,
  type SaSummary,
  Worker,
  type WorkerSettings,
} from './worker.js';
export { addressBytes, toIkePath } from './paths.js';
export { ipv4Ranges, ipv4Text, packetMatches, parseIpv4 } from './ipv4.js';
export {
  DRAIN_PREFIX,
  DURABLE_WAIT_MS,
  EDGE_MEMBER_PREFIX,
  type MemberInfo,
  type MembershipOptions,
  type Membership,
  RedisMembership,
  ShardOwner,
  type ShardOwnerOptions,
} from './cluster.js';
export { PeerDirectory, type DirectoryEvents, type DirectoryGlobals } from './directory.js';
export { ManagedPool } from './managed-pool.js';
