/**
 * The public shapes of the IKE SA state machine (see ike-sa.ts for how it works): the events a
 * caller feeds in, the actions it polls out, the injected context, and the serializable state.
 *
 * The state is plain data (Uint8Array, number, string, boolean, arrays and objects of those): a
 * service may JSON-encode it (with Uint8Array as hex/base64) or store it in Redis between events.
 * Nothing in it is a class instance or a closure; crypto keys are kept as raw octets and the key
 * exchange ephemeral as the seed it was drawn from.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CryptoProvider, RandomBytes } from '@ikegate/crypto';
import type { TrafficSelector } from '../codec/index.js';

// --- events --------------------------------------------------------------------------------------

export type Transport = 'udp' | 'tcp';

export type IkeSaCommand =
  | { readonly kind: 'initiate' }
  | { readonly kind: 'rekey-child'; readonly spi: Uint8Array }
  /** `keGroup` overrides the current SA's group (used for the INVALID_KE_PAYLOAD retry). */
  | { readonly kind: 'rekey-ike'; readonly keGroup?: number }
  | { readonly kind: 'delete-child'; readonly spi: Uint8Array }
  | { readonly kind: 'delete-ike' }
  | { readonly kind: 'liveness' }
  | { readonly kind: 'connection-restored' }
  /**
   * RFC 6311 §4: push our Message ID counters to the peer (e.g. after a cluster takeover). Only
   * valid once established and when the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED.
   */
  | { readonly kind: 'mid-sync' };

/** `now` is milliseconds on the caller's monotonic clock; the machine never reads a clock. */
export type IkeSaEvent =
  | {
      readonly kind: 'message';
      readonly bytes: Uint8Array;
      readonly transport: Transport;
      readonly now: number;
    }
  | { readonly kind: 'timer'; readonly id: string; readonly now: number }
  | { readonly kind: 'command'; readonly command: IkeSaCommand; readonly now: number };

// --- actions -------------------------------------------------------------------------------------

export interface ChildSaAlgorithm {
  readonly id: number;
  readonly keyBits: number;
}

/**
 * A child SA to program into ESP. `keys` follow RFC 7296 §2.17: encrI/integI protect traffic sent
 * by the initiator of the exchange that created the child SA. `weInitiated` says whether that was
 * us, so outbound uses encrI/integI when true and encrR/integR otherwise.
 */
export interface InstallChildAction {
  readonly kind: 'install-child';
  readonly inboundSpi: Uint8Array;
  readonly outboundSpi: Uint8Array;
  readonly encryption: ChildSaAlgorithm;
  readonly integrity?: number;
  readonly keys: {
    readonly encrI: Uint8Array;
    readonly integI: Uint8Array;
    readonly encrR: Uint8Array;
    readonly integR: Uint8Array;
  };
  readonly weInitiated: boolean;
  readonly tsLocal: readonly TrafficSelector[];
  readonly tsRemote: readonly TrafficSelector[];
  /** Initiator: the INTERNAL_IP4_ADDRESS it was given; responder: the address it assigned. */
  readonly virtualIp?: Uint8Array;
}

export type IkeSaAction =
  | { readonly kind: 'send'; readonly bytes: Uint8Array }
  | { readonly kind: 'arm-timer'; readonly id: string; readonly at: number }
  | InstallChildAction
  | { readonly kind: 'remove-child'; readonly inboundSpi: Uint8Array }
  | {
      readonly kind: 'established';
      readonly initiatorSpi: Uint8Array;
      readonly responderSpi: Uint8Array;
      readonly peerId: string;
    }
  | {
      readonly kind: 'rekeyed-ike';
      readonly newInitiatorSpi: Uint8Array;
      readonly newResponderSpi: Uint8Array;
    }
  | { readonly kind: 'deleted'; readonly reason: DeleteReason }
  | { readonly kind: 'persist' }
  | { readonly kind: 'close-connection' }
  /** A message was dropped without an answer (STYLE.md rule 7: count it with this reason). */
  | { readonly kind: 'dropped'; readonly reason: string };

export type DeleteReason =
  | 'deleted'
  | 'peer-deleted'
  | 'dead-peer'
  | 'no-proposal-chosen'
  | 'authentication-failed'
  | 'ts-unacceptable'
  | 'error-notify'
  | 'rekeyed'
  | 'half-open-failed';

// --- context -------------------------------------------------------------------------------------

export interface Endpoint {
  /** 4 or 16 octets. */
  readonly address: Uint8Array;
  readonly port: number;
}

/** One IKE proposal (RFC 7296 §3.3): every transform listed is acceptable, in preference order. */
export interface IkeProposalPolicy {
  readonly encryption: readonly ChildSaAlgorithm[];
  readonly prf: readonly number[];
  /** Empty for AEAD proposals. */
  readonly integrity: readonly number[];
  readonly keyExchange: readonly number[];
  /**
   * RFC 9370: ADDKE1 (transform type 6) methods, e.g. ML-KEM-768 (36), run in one IKE_INTERMEDIATE
   * exchange (RFC 9242) after IKE_SA_INIT. Offered in IKE_SA_INIT only (not in IKE SA rekeys).
   */
  readonly additionalKeyExchange1?: readonly number[];
}

export interface EspProposalPolicy {
  readonly encryption: readonly ChildSaAlgorithm[];
  /** Empty for AEAD proposals. */
  readonly integrity: readonly number[];
}

export interface RetransmitPolicy {
  /** First retransmission after this many ms; doubles each time (RFC 7296 §2.4). */
  readonly initialMs: number;
  /** After this many retransmissions without an answer the peer is dead. */
  readonly maxRetransmits: number;
}

export interface IkeSaPolicy {
  /** Our identity: an ID_FQDN unless `localIdType` says otherwise. */
  readonly localId: string;
  /** RFC 7296 §3.5 ID Type of `localId`: ID_FQDN (2, default) or ID_RFC822_ADDR (3). */
  readonly localIdType?: number;
  readonly ikeProposals: readonly IkeProposalPolicy[];
  readonly espProposals: readonly EspProposalPolicy[];
  /** Our side's traffic (TSi for an initiator, TSr for a responder). */
  readonly localTs: readonly TrafficSelector[];
  /** The peer's side's traffic. */
  readonly remoteTs: readonly TrafficSelector[];
  /** Initiator: send CFG_REQUEST(INTERNAL_IP4_ADDRESS, INTERNAL_IP4_DNS) in IKE_AUTH. */
  readonly requestVirtualIp?: boolean;
  /** RFC 6311: announce IKEV2_MESSAGE_ID_SYNC_SUPPORTED in IKE_AUTH. */
  readonly messageIdSync?: boolean;
  /** Key exchange for CREATE_CHILD_SA child SAs (PFS); none when absent. */
  readonly childPfsGroup?: number;
  readonly retransmit?: RetransmitPolicy;
  /** RFC 7383: announce IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT (default true). */
  readonly fragmentation?: boolean;
  /**
   * RFC 7383 §2.5: once both sides announced fragmentation, protected messages longer than this
   * many octets are sent as SKF fragments of at most this size over UDP (default 1280).
   */
  readonly fragmentSize?: number;
}

export interface AddressAssignment {
  readonly address: Uint8Array;
  readonly dns?: readonly Uint8Array[];
}

/**
 * Everything the machine needs from outside; not part of the state, passed with every step.
 * Callbacks must be deterministic under test (the pair harness injects seeded ones).
 */
export interface IkeSaContext {
  readonly provider: CryptoProvider;
  readonly random: RandomBytes;
  /** A fresh, non-zero, unused 8-octet IKE SPI. */
  readonly allocateIkeSpi: () => Uint8Array;
  /** A fresh, unused 4-octet ESP SPI for an inbound child SA. */
  readonly allocateChildSpi: () => Uint8Array;
  readonly policy: IkeSaPolicy;
  /** The pre-shared key for a peer identity, or undefined if the peer is unknown. */
  readonly psk: (peerId: string) => Uint8Array | undefined;
  /** Responder: an internal address for a peer that sent CFG_REQUEST; undefined if none left. */
  readonly assignAddress?: (peerId: string) => AddressAssignment | undefined;
  /** Our address and port, and the peer's, as seen on the transport (RFC 7296 §2.23 NAT detection). */
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** Responder: demand a COOKIE before keeping state (RFC 7296 §2.6), e.g. under load. */
  readonly requireCookie?: () => boolean;
  /** Responder: secret for COOKIE = prf(secret, Ni | IPi | SPIi). */
  readonly cookieSecret?: Uint8Array;
  /** Responder: how long an SA may wait for IKE_AUTH after IKE_SA_INIT (default 30 s). */
  readonly halfOpenTimeoutMs?: number;
  /**
   * Authenticate ourselves with this certificate (RFC 7296 §3.6, RFC 7427 method 14) instead of
   * a PSK. `chainPem` holds our certificate first, then any intermediates.
   */
  readonly certificate?: { readonly chainPem: string; readonly privateKey: KeyObject };
  /** Accept peers that authenticate with a certificate chaining to one of these (RFC 7427). */
  readonly trustAnchors?: readonly X509Certificate[];
  /**
   * Responder: once IKE_AUTH has authenticated the peer as `peerId`, the context to use for the
   * rest of that exchange (e.g. the peer's own traffic selectors, proposals and address pool).
   * Later events must be stepped with that context too; the caller keeps it per SA.
   */
  readonly forPeer?: (peerId: string) => IkeSaContext;
  /** Wall-clock time for certificate validity (a Date or ms since the epoch); required with trustAnchors. */
  readonly now?: Date | number;
}

// --- state ---------------------------------------------------------------------------------------

export type IkeSaStatus =
  /** Nothing sent or received yet. */
  | 'idle'
  /** Initiator: IKE_SA_INIT request outstanding. */
  | 'init-sent'
  /** Responder: IKE_SA_INIT answered, waiting for IKE_AUTH. */
  | 'init-answered'
  /** Initiator: IKE_AUTH request outstanding. */
  | 'auth-sent'
  | 'established'
  | 'deleted';

export interface IkeSuite {
  readonly encryption: ChildSaAlgorithm;
  readonly prf: number;
  /** 0 for AEAD. */
  readonly integrity: number;
  readonly keyExchange: number;
  /** RFC 9370 ADDKE1 method negotiated in IKE_SA_INIT, if any. */
  readonly additionalKeyExchange1?: number;
}

export interface EspSuite {
  readonly encryption: ChildSaAlgorithm;
  /** 0 for AEAD. */
  readonly integrity: number;
}

export interface IkeKeys {
  readonly skD: Uint8Array;
  readonly skAi: Uint8Array;
  readonly skAr: Uint8Array;
  readonly skEi: Uint8Array;
  readonly skEr: Uint8Array;
  readonly skPi: Uint8Array;
  readonly skPr: Uint8Array;
}

/** What our outstanding request was for, so its response can be processed. */
export type IkeTask =
  | { readonly kind: 'ike-auth'; readonly childSpi: Uint8Array }
  | { readonly kind: 'liveness' }
  | { readonly kind: 'delete-child'; readonly spi: Uint8Array }
  | { readonly kind: 'delete-ike' }
  /** DELETE of the IKE SA replaced by a rekey (sent on the old SA). */
  | { readonly kind: 'delete-old-ike' }
  | {
      readonly kind: 'rekey-child';
      readonly oldSpi: Uint8Array;
      readonly newSpi: Uint8Array;
      readonly nonce: Uint8Array;
      readonly keSeed?: Uint8Array;
      readonly keGroup?: number;
    }
  | {
      readonly kind: 'rekey-ike';
      readonly newSpi: Uint8Array;
      readonly nonce: Uint8Array;
      readonly keSeed: Uint8Array;
      readonly keGroup: number;
    }
  /** RFC 9242 IKE_INTERMEDIATE carrying the RFC 9370 additional key exchange. */
  | {
      readonly kind: 'intermediate';
      readonly keSeed: Uint8Array;
      readonly keGroup: number;
      /** IntAuth_i1 (RFC 9242 §3.3.2) over our request, computed when it was sent. */
      readonly intAuthI: Uint8Array;
    }
  /** RFC 6311 sync request (Message ID 0); `nonce` must be echoed in the response. */
  | { readonly kind: 'mid-sync'; readonly nonce: number };

export interface OutstandingRequest {
  readonly messageId: number;
  readonly bytes: Uint8Array;
  readonly task: IkeTask;
  /** RFC 7383: the SKF fragments sent over UDP instead of `bytes`, when the message was split. */
  readonly fragments?: readonly Uint8Array[];
  /** Retransmissions so far. */
  readonly retransmits: number;
  /** When the next retransmission is due (UDP only). */
  readonly nextAt: number;
}

/**
 * One IKE SA's keys and Message ID bookkeeping. `role` is the original initiator/responder of
 * *this* SA (after a rekey, whoever started the rekey is the initiator of the new SA).
 */
export interface IkeSaCore {
  readonly role: 'initiator' | 'responder';
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
  readonly suite: IkeSuite;
  readonly keys: IkeKeys;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  /** Message ID of our next request (RFC 7296 §2.2). */
  readonly nextRequestId: number;
  /** Message ID we expect on the peer's next request. */
  readonly expectedRequestId: number;
  readonly outstanding?: OutstandingRequest;
  /** Our answer to the peer's last request, resent for a duplicate (RFC 7296 §2.1). */
  readonly lastResponse?: {
    readonly messageId: number;
    readonly bytes: Uint8Array;
    /** RFC 7383: the SKF fragments sent over UDP instead of `bytes`. */
    readonly fragments?: readonly Uint8Array[];
  };
  /** RFC 7383: both sides announced IKEV2_FRAGMENTATION_SUPPORTED for this IKE SA. */
  readonly fragmentation?: boolean;
  /** RFC 7383 §2.6: fragments received so far (at most one message per direction). */
  readonly reassembly?: readonly Reassembly[];
}

/** Authenticated, decrypted SKF chunks of one message being reassembled (RFC 7383 §2.6). */
export interface Reassembly {
  /** Whether the message is a response (to our request) or a request (from the peer). */
  readonly response: boolean;
  readonly messageId: number;
  readonly exchangeType: number;
  readonly total: number;
  /** Next Payload of fragment 1's SKF (0 until fragment 1 arrives). */
  readonly firstPayload: number;
  readonly chunks: readonly { readonly number: number; readonly data: Uint8Array }[];
  /** Sum of the chunks' lengths. */
  readonly bytes: number;
}

export interface ChildSaState {
  readonly inboundSpi: Uint8Array;
  readonly outboundSpi: Uint8Array;
  readonly suite: EspSuite;
  readonly tsLocal: readonly TrafficSelector[];
  readonly tsRemote: readonly TrafficSelector[];
  readonly virtualIp?: Uint8Array;
}

/** Data of IKE_SA_INIT kept until IKE_AUTH completes (AUTH signs the IKE_SA_INIT messages). */
export interface IkeInitData {
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
  readonly ni: Uint8Array;
  readonly nr?: Uint8Array;
  readonly keGroup: number;
  readonly keSeed?: Uint8Array;
  readonly cookie?: Uint8Array;
  readonly request?: Uint8Array;
  readonly response?: Uint8Array;
  readonly retries: number;
  /** RFC 9242 §3.3.2: IntAuth_i | IntAuth_r of the IKE_INTERMEDIATE exchange, for AUTH. */
  readonly intAuth?: Uint8Array;
  /** RFC 7427 §4: the hash algorithms the peer announced in SIGNATURE_HASH_ALGORITHMS. */
  readonly peerSignatureHashes?: readonly number[];
  /** UDP retransmission of the IKE_SA_INIT request. */
  readonly retransmits?: number;
  readonly nextAt?: number;
}

export interface IkeSaState {
  readonly status: IkeSaStatus;
  readonly transport: Transport;
  readonly init?: IkeInitData;
  readonly current?: IkeSaCore;
  /** The SA a rekey replaced, until its DELETE exchange is done (RFC 7296 §2.18). */
  readonly previous?: IkeSaCore;
  readonly peerId?: string;
  readonly children: readonly ChildSaState[];
  /** Commands waiting for the window (we keep one request outstanding). */
  readonly queue: readonly IkeSaCommand[];
  /** RFC 7296 §2.23: whether we and the peer appear to be behind NAT. */
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  /** RFC 6311: the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED. */
  readonly peerMessageIdSync: boolean;
  /** A rekey-ike we answered while our own was outstanding (RFC 7296 §2.8.1). */
  readonly collision?: IkeSaCore;
  /** Child rekeys we answered while rekeying the same child ourselves (RFC 7296 §2.8.1). */
  readonly childCollisions?: readonly ChildRekeyCollision[];
}

export interface ChildRekeyCollision {
  /** Our inbound SPI of the child SA both sides rekeyed. */
  readonly oldSpi: Uint8Array;
  /** Nonces of the peer's rekey exchange, whose new child SA we installed. */
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
}

export interface StepResult {
  readonly state: IkeSaState;
  readonly actions: readonly IkeSaAction[];
}
