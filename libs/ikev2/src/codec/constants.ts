/**
 * IKEv2 registry values (RFC 7296 §3 and IANA "Internet Key Exchange Version 2 (IKEv2)
 * Parameters"), with the companions ikegate implements: RFC 5282, 5903, 6311, 7383, 7427,
 * 8031, 9242, 9370. RFC 9329 defines no IKE payload or notify of its own.
 */

export const IKE_HEADER_LENGTH = 28;
export const GENERIC_PAYLOAD_HEADER_LENGTH = 4;
export const IKE_SPI_LENGTH = 8;
export const IKE_MAJOR_VERSION = 2;

/** RFC 7296 §3.1 Exchange Type, RFC 9242 (IKE_INTERMEDIATE), RFC 9370 (IKE_FOLLOWUP_KE). */
export const ExchangeType = {
  IKE_SA_INIT: 34,
  IKE_AUTH: 35,
  CREATE_CHILD_SA: 36,
  INFORMATIONAL: 37,
  IKE_INTERMEDIATE: 43,
  IKE_FOLLOWUP_KE: 44,
} as const;
export type ExchangeType = (typeof ExchangeType)[keyof typeof ExchangeType];

/** RFC 7296 §3.1 Flags. */
export const HeaderFlag = {
  INITIATOR: 0x08,
  VERSION: 0x10,
  RESPONSE: 0x20,
} as const;

/** RFC 7296 §3.2 Next Payload types; SKF from RFC 7383. */
export const PayloadType = {
  NONE: 0,
  SA: 33,
  KE: 34,
  IDi: 35,
  IDr: 36,
  CERT: 37,
  CERTREQ: 38,
  AUTH: 39,
  NONCE: 40,
  NOTIFY: 41,
  DELETE: 42,
  VENDOR_ID: 43,
  TSi: 44,
  TSr: 45,
  SK: 46,
  CP: 47,
  EAP: 48,
  SKF: 53,
} as const;
export type PayloadType = (typeof PayloadType)[keyof typeof PayloadType];

/** RFC 7296 §3.3.1 Protocol ID. */
export const ProtocolId = { NONE: 0, IKE: 1, AH: 2, ESP: 3 } as const;
export type ProtocolId = (typeof ProtocolId)[keyof typeof ProtocolId];

/** RFC 7296 §3.3.2 Transform Type; RFC 9370 ADDKE1..ADDKE7. */
export const TransformType = {
  ENCR: 1,
  PRF: 2,
  INTEG: 3,
  KE: 4,
  ESN: 5,
  ADDKE1: 6,
  ADDKE2: 7,
  ADDKE3: 8,
  ADDKE4: 9,
  ADDKE5: 10,
  ADDKE6: 11,
  ADDKE7: 12,
} as const;
export type TransformType = (typeof TransformType)[keyof typeof TransformType];

/** RFC 7296 §3.3.5 transform attribute types (only Key Length is defined). */
export const TransformAttributeType = { KEY_LENGTH: 14 } as const;

/** Transform type 5 values. */
export const EsnId = { NO_ESN: 0, ESN: 1 } as const;

/** RFC 7296 §3.5 ID Type. */
export const IdType = {
  ID_IPV4_ADDR: 1,
  ID_FQDN: 2,
  ID_RFC822_ADDR: 3,
  ID_IPV6_ADDR: 5,
  ID_DER_ASN1_DN: 9,
  ID_DER_ASN1_GN: 10,
  ID_KEY_ID: 11,
} as const;
export type IdType = (typeof IdType)[keyof typeof IdType];

/** RFC 7296 §3.6 Certificate Encoding. */
export const CertEncoding = {
  X509_CERT_SIGNATURE: 4,
  X509_CERT_CRL: 7,
  HASH_URL_X509_CERT: 12,
  HASH_URL_X509_BUNDLE: 13,
} as const;

/** RFC 7296 §3.8 Auth Method; RFC 4754 ECDSA; RFC 7427 Digital Signature. */
export const AuthMethod = {
  RSA_DIGITAL_SIGNATURE: 1,
  SHARED_KEY_MIC: 2,
  DSS_DIGITAL_SIGNATURE: 3,
  ECDSA_SHA256_P256: 9,
  ECDSA_SHA384_P384: 10,
  ECDSA_SHA512_P521: 11,
  DIGITAL_SIGNATURE: 14,
} as const;
export type AuthMethod = (typeof AuthMethod)[keyof typeof AuthMethod];

/** RFC 7427 §7 Hash Algorithm Identifiers, carried in SIGNATURE_HASH_ALGORITHMS. */
export const SignatureHashAlgorithm = {
  SHA1: 1,
  SHA2_256: 2,
  SHA2_384: 3,
  SHA2_512: 4,
  IDENTITY: 5,
} as const;

/** RFC 7296 §3.13.1 Traffic Selector Type. */
export const TsType = { TS_IPV4_ADDR_RANGE: 7, TS_IPV6_ADDR_RANGE: 8 } as const;
export type TsType = (typeof TsType)[keyof typeof TsType];

/** RFC 7296 §3.15 CFG Type. */
export const CfgType = { CFG_REQUEST: 1, CFG_REPLY: 2, CFG_SET: 3, CFG_ACK: 4 } as const;
export type CfgType = (typeof CfgType)[keyof typeof CfgType];

/** RFC 7296 §3.15.1 Configuration Attributes. */
export const CfgAttributeType = {
  INTERNAL_IP4_ADDRESS: 1,
  INTERNAL_IP4_NETMASK: 2,
  INTERNAL_IP4_DNS: 3,
  INTERNAL_IP4_NBNS: 4,
  INTERNAL_IP4_DHCP: 6,
  APPLICATION_VERSION: 7,
  INTERNAL_IP6_ADDRESS: 8,
  INTERNAL_IP6_DNS: 10,
  INTERNAL_IP6_DHCP: 12,
  INTERNAL_IP4_SUBNET: 13,
  SUPPORTED_ATTRIBUTES: 14,
  INTERNAL_IP6_SUBNET: 15,
} as const;

/** RFC 7296 §3.10.1 Notify Message Types: errors (< 16384). */
export const NotifyError = {
  UNSUPPORTED_CRITICAL_PAYLOAD: 1,
  INVALID_IKE_SPI: 4,
  INVALID_MAJOR_VERSION: 5,
  INVALID_SYNTAX: 7,
  INVALID_MESSAGE_ID: 9,
  INVALID_SPI: 11,
  NO_PROPOSAL_CHOSEN: 14,
  INVALID_KE_PAYLOAD: 17,
  AUTHENTICATION_FAILED: 24,
  SINGLE_PAIR_REQUIRED: 34,
  NO_ADDITIONAL_SAS: 35,
  INTERNAL_ADDRESS_FAILURE: 36,
  FAILED_CP_REQUIRED: 37,
  TS_UNACCEPTABLE: 38,
  INVALID_SELECTORS: 39,
  TEMPORARY_FAILURE: 43,
  CHILD_SA_NOT_FOUND: 44,
  STATE_NOT_FOUND: 47,
} as const;
export type NotifyError = (typeof NotifyError)[keyof typeof NotifyError];

/** RFC 7296 §3.10.1 Notify Message Types: status (>= 16384), with the companion RFCs. */
export const NotifyStatus = {
  INITIAL_CONTACT: 16384,
  SET_WINDOW_SIZE: 16385,
  ADDITIONAL_TS_POSSIBLE: 16386,
  IPCOMP_SUPPORTED: 16387,
  NAT_DETECTION_SOURCE_IP: 16388,
  NAT_DETECTION_DESTINATION_IP: 16389,
  COOKIE: 16390,
  USE_TRANSPORT_MODE: 16391,
  HTTP_CERT_LOOKUP_SUPPORTED: 16392,
  REKEY_SA: 16393,
  ESP_TFC_PADDING_NOT_SUPPORTED: 16394,
  NON_FIRST_FRAGMENTS_ALSO: 16395,
  MOBIKE_SUPPORTED: 16396,
  ADDITIONAL_IP4_ADDRESS: 16397,
  ADDITIONAL_IP6_ADDRESS: 16398,
  NO_ADDITIONAL_ADDRESSES: 16399,
  UPDATE_SA_ADDRESSES: 16400,
  COOKIE2: 16401,
  NO_NATS_ALLOWED: 16402,
  /** RFC 6311 §4 */
  IKEV2_MESSAGE_ID_SYNC_SUPPORTED: 16420,
  IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED: 16421,
  IKEV2_MESSAGE_ID_SYNC: 16422,
  IPSEC_REPLAY_COUNTER_SYNC: 16423,
  /** RFC 7383 §2.3 */
  IKEV2_FRAGMENTATION_SUPPORTED: 16430,
  /** RFC 7427 §4 */
  SIGNATURE_HASH_ALGORITHMS: 16431,
  /** RFC 8019 */
  PUZZLE: 16434,
  /** RFC 9242 §3 */
  INTERMEDIATE_EXCHANGE_SUPPORTED: 16438,
  /** RFC 9370 §3.2.4 */
  ADDITIONAL_KEY_EXCHANGE: 16441,
} as const;
export type NotifyStatus = (typeof NotifyStatus)[keyof typeof NotifyStatus];

/**
 * draft-smyslov-ipsecme-ikev2-reliable-transport: RELIABLE_IKE_TRANSPORT has no IANA value yet.
 * ikegate uses this private-use status value by default (RFC 7296 §3.10.1: 40960-65535); it is
 * configurable and the feature is off by default.
 */
export const RELIABLE_IKE_TRANSPORT_DEFAULT = 40960;
