/**
 * The decoded shape of an IKEv2 message (RFC 7296 §3). Decoders return these as views
 * (`subarray`s) into the input buffer: the caller owns that buffer and must not reuse it while
 * it holds a decoded message (copy what must outlive it). Encoders accept the same shapes.
 *
 * Each payload is tagged by its wire `type` (PayloadType). `critical` is the Critical bit
 * (RFC 7296 §3.2); decoders keep it, encoders send it as given (false for all known payloads).
 */
import type { CfgType, PayloadType } from './constants.js';

/** RFC 7296 §3.1. `length` is the total message length as the header states it. */
export interface IkeHeader {
  readonly initiatorSpi: Uint8Array;
  readonly responderSpi: Uint8Array;
  readonly nextPayload: number;
  readonly majorVersion: number;
  readonly minorVersion: number;
  readonly exchangeType: number;
  /** Raw flags octet; see HeaderFlag. */
  readonly flags: number;
  readonly messageId: number;
  readonly length: number;
}

/** RFC 7296 §3.3.5; ikegate knows only Key Length (type 14, TV format). */
export interface TransformAttribute {
  readonly type: number;
  /** TV attributes carry a 16-bit value; TLV ones carry bytes. */
  readonly value: number | Uint8Array;
}

/** RFC 7296 §3.3.2. */
export interface Transform {
  readonly type: number;
  readonly id: number;
  readonly attributes: readonly TransformAttribute[];
}

/** RFC 7296 §3.3.1. `spi` is empty for IKE_SA_INIT proposals, 4 octets for ESP, 8 for IKE rekey. */
export interface Proposal {
  readonly number: number;
  readonly protocolId: number;
  readonly spi: Uint8Array;
  readonly transforms: readonly Transform[];
}

interface PayloadBase {
  readonly critical: boolean;
}

export interface SaPayload extends PayloadBase {
  readonly type: typeof PayloadType.SA;
  readonly proposals: readonly Proposal[];
}

/** RFC 7296 §3.4; `group` is the Key Exchange Method (Diffie-Hellman Group Num). */
export interface KePayload extends PayloadBase {
  readonly type: typeof PayloadType.KE;
  readonly group: number;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.5. */
export interface IdPayload extends PayloadBase {
  readonly type: typeof PayloadType.IDi | typeof PayloadType.IDr;
  readonly idType: number;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.6. */
export interface CertPayload extends PayloadBase {
  readonly type: typeof PayloadType.CERT;
  readonly encoding: number;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.7; for X.509, `data` is a concatenation of 20-octet SHA-1 hashes of CA keys. */
export interface CertReqPayload extends PayloadBase {
  readonly type: typeof PayloadType.CERTREQ;
  readonly encoding: number;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.8; with method 14 (RFC 7427) `data` starts with the AlgorithmIdentifier. */
export interface AuthPayload extends PayloadBase {
  readonly type: typeof PayloadType.AUTH;
  readonly method: number;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.9: 16 to 256 octets. */
export interface NoncePayload extends PayloadBase {
  readonly type: typeof PayloadType.NONCE;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.10. `spi` may be empty. */
export interface NotifyPayload extends PayloadBase {
  readonly type: typeof PayloadType.NOTIFY;
  readonly protocolId: number;
  readonly notifyType: number;
  readonly spi: Uint8Array;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.11. IKE deletes carry no SPIs (spiSize 0); ESP/AH deletes carry 4-octet SPIs. */
export interface DeletePayload extends PayloadBase {
  readonly type: typeof PayloadType.DELETE;
  readonly protocolId: number;
  readonly spiSize: number;
  readonly spis: readonly Uint8Array[];
}

/** RFC 7296 §3.12. */
export interface VendorIdPayload extends PayloadBase {
  readonly type: typeof PayloadType.VENDOR_ID;
  readonly data: Uint8Array;
}

/** RFC 7296 §3.13.1. Addresses are 4 octets (TS_IPV4_ADDR_RANGE) or 16 (TS_IPV6_ADDR_RANGE). */
export interface TrafficSelector {
  readonly tsType: number;
  /** 0 means any protocol. */
  readonly ipProtocol: number;
  readonly startPort: number;
  readonly endPort: number;
  readonly startAddress: Uint8Array;
  readonly endAddress: Uint8Array;
}

/** RFC 7296 §3.13. */
export interface TsPayload extends PayloadBase {
  readonly type: typeof PayloadType.TSi | typeof PayloadType.TSr;
  readonly selectors: readonly TrafficSelector[];
}

/**
 * RFC 7296 §3.14, as found in a received message: still encrypted. `body` is IV | ciphertext |
 * ICV exactly as on the wire; `firstInnerPayload` is the SK header's Next Payload field.
 */
export interface SkPayload extends PayloadBase {
  readonly type: typeof PayloadType.SK;
  readonly firstInnerPayload: number;
  readonly body: Uint8Array;
}

/** RFC 7383 §2.5. `firstInnerPayload` is non-zero only in fragment number 1. */
export interface SkfPayload extends PayloadBase {
  readonly type: typeof PayloadType.SKF;
  readonly firstInnerPayload: number;
  readonly fragmentNumber: number;
  readonly totalFragments: number;
  readonly body: Uint8Array;
}

/** RFC 7296 §3.15.1. A zero-length value is a request for that attribute. */
export interface CfgAttribute {
  readonly type: number;
  readonly value: Uint8Array;
}

/** RFC 7296 §3.15. */
export interface CpPayload extends PayloadBase {
  readonly type: typeof PayloadType.CP;
  readonly cfgType: CfgType | number;
  readonly attributes: readonly CfgAttribute[];
}

/** RFC 7296 §3.16: an EAP message (RFC 3748), carried opaque. */
export interface EapPayload extends PayloadBase {
  readonly type: typeof PayloadType.EAP;
  readonly data: Uint8Array;
}

/**
 * A payload type ikegate does not know. If `critical` is set the message must be rejected with
 * UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 §2.5); otherwise it is skipped.
 */
export interface UnknownPayload extends PayloadBase {
  readonly type: number;
  readonly unknown: true;
  readonly data: Uint8Array;
}

export type KnownPayload =
  | SaPayload
  | KePayload
  | IdPayload
  | CertPayload
  | CertReqPayload
  | AuthPayload
  | NoncePayload
  | NotifyPayload
  | DeletePayload
  | VendorIdPayload
  | TsPayload
  | SkPayload
  | SkfPayload
  | CpPayload
  | EapPayload;

export type Payload = KnownPayload | UnknownPayload;

/** A payload that may appear inside SK (everything but SK and SKF themselves). */
export type InnerPayload = Exclude<KnownPayload, SkPayload | SkfPayload> | UnknownPayload;

/**
 * A decoded message. For a protected message `payloads` holds the unencrypted payloads followed
 * by the SK (or SKF) payload, still encrypted; decrypting yields `inner`.
 */
export interface IkeMessage {
  readonly header: IkeHeader;
  readonly payloads: readonly Payload[];
}
