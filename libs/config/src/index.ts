/**
 * @ikegate/config: loading and validating ikegate's configuration file (YAML or JSON), strongSwan
 * style proposal strings, peer matching by identity, and virtual IP pools. Named exports only.
 */
export type { ClusterConfig, ControlConfig, PeerGlobals, RedisSecurity } from './config.js';
export type {
  Config,
  Identity,
  Listen,
  LogLevel,
  ParseOptions,
  Peer,
  PeerAuth,
  PeerIdPattern,
  Pool,
  RemoteTs,
} from './config.js';
export {
  ConfigIdType,
  DEFAULT_ESP_PROPOSALS,
  DEFAULT_IKE_PROPOSALS,
  DYNAMIC,
  identityType,
  loadConfig,
  parseConfig,
} from './config.js';
export { ConfigError, type ConfigIssue } from './errors.js';
export type { PeerDoc, PoolDoc, FailoverDoc, PeerAuthDoc, ManagedDocuments, Checked } from './documents.js';
export { matchPeer, PeerIndex } from './match.js';
export {
  checkFailoverDoc,
  checkPeerDoc,
  checkPoolDoc,
  compileDocuments,
  peerDoc,
  poolDoc,
  seedDocuments,
  type PeerContext,
} from './documents.js';
export type { Cidr, IpAddress } from './net.js';
export { formatIp, parseCidr, parseIp } from './net.js';
export { AddressPool } from './pool.js';
export { parseEspProposal, parseIkeProposal } from './proposals.js';
