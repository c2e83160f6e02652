/**
 * Linux TUN devices for Node without native addons: descriptors come from a python3 re-exec
 * (reexecWithTun), packets move through fs.read/fs.writeSync (TunDevice), and interface/NAT setup runs
 * `ip` and `nft` (configure, addRoute, enableForwarding, ensureMasquerade).
 */
export {
  OPENER_EXIT_CODES,
  reexecWithTun,
  TUN_FDS_ENV,
  TUN_VNET_HDR_SWITCH_ENV,
  TUN_WAKE_FDS_ENV,
  tunFdsFromEnv,
  tunWakeFdsFromEnv,
  TunUnavailableError,
  type ReexecOptions,
  type ReexecResult,
  type TunUnavailableReason,
} from './open.js';
export {
  TUN_MAX_PACKET,
  TUN_READ_BUFFER_SIZE,
  TUN_READ_RING_DEFAULT_BYTES,
  TUN_WRITE_RING_DEFAULT_BYTES,
  TunDevice,
  type TunCounters,
} from './device.js';
export {
  addRoute,
  removeRoute,
  configure,
  deleteLink,
  enableForwarding,
  ensureMasquerade,
  NetlinkCommandError,
  removeMasquerade,
  type InterfaceConfig,
  type MasqueradeConfig,
  type NetnsOption,
} from './netlink.js';
