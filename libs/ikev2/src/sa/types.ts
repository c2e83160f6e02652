/**
 * The public shapes of one IKE SA (see ike-sa.ts for how it works): the events a driver feeds in,
 * the actions it carries out, the injected context, and the serializable state.
 *
 * The state is plain data (Uint8Array, number, string, boolean, arrays and objects of those): a
 * service may JSON-encode it (with Uint8Array as hex) or keep it in Redis between events, and
 * another process can resume it. Nothing in it is a class instance or a closure; crypto keys are
 * raw octets and a key exchange ephemeral is the seed it was drawn from. Every deadline is an
 * absolute time on the driver's clock; `nextTimeout(state)` says when to come back.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { CryptoProvider, IkeSaKeys, RandomBytes } from '@ikegate/crypto';
import type { TrafficSelector } from '../codec/index.js';
import type { NegotiatedSuite, ProposalPolicy } from '../negotiation/index.js';

// --- paths ---------------------------------------------------------------------------------------

export type Transport = 'udp' | 'tcp';

export interface Endpoint {
  /** 4 or 16 octets. */
  readonly address: Uint8Array;
  readonly port: number;
}

/**
 * One way to the peer, as the service sees it. `id` is opaque and names the connection: one TCP
 * or TLS stream, or one UDP (local port, remote address, remote port) tuple. A new stream after a
 * reconnect (RFC 9329 §6) or a NAT rebinding gives a new id.
 */
export interface IkePath {
  readonly id: string;
  readonly transport: Transport;
  /** Our address and port as the peer reached them (RFC 7296 §2.23 NAT detection). */
  readonly local: Endpoint;
  readonly remote: Endpoint;
}

// --- events --------------------------------------------------------------------------------------

export type IkeSaCommand =
  /** Initiator: start IKE_SA_INIT on `path`. */
  | { readonly kind: 'initiate'; readonly path: IkePath }
  | { readonly kind: 'rekey-child'; readonly spi: Uint8Array }
  /** `keGroup` overrides the current SA's group (the INVALID_KE_PAYLOAD retry, RFC 7296 §1.3). */
  | { readonly kind: 'rekey-ike'; readonly keGroup?: number }
  | { readonly kind: 'delete-child'; readonly spi: Uint8Array }
  | { readonly kind: 'delete-ike' }
  | { readonly kind: 'liveness' }
  /**
   * The original initiator re-established its stream on `path` (RFC 9329 §6): the SA moves there
   * and every outstanding request is sent again on it.
   */
  | { readonly kind: 'connection-restored'; readonly path: IkePath }
  /**
   * RFC 6311 §4: push our Message ID counters to the peer (e.g. after a cluster takeover). Only
   * valid once established and when the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED.
   * `replayCounter` (§4.3): also tell the peer where our inbound replay windows now start, so it
   * moves the sequence counters of every outbound Child SA past it; sent only when the peer
   * announced IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED. `esn`: the 8-octet form (the Child SAs use
   * extended sequence numbers).
   */
  | {
      readonly kind: 'mid-sync';
      readonly replayCounter?: { readonly value: bigint; readonly esn: boolean };
    };

/** `now` is milliseconds on the driver's monotonic clock; the machine never reads a clock. */
export type IkeSaEvent =
  | {
      readonly kind: 'message';
      readonly bytes: Uint8Array;
      /** Where it came from; a response to it goes back there (RFC 7296 §2.11). */
      readonly path: IkePath;
      readonly now: number;
    }
  /**
   * The driver's timer fired. It may fire early or late: whatever is due at `now` is done, nothing
   * else; then ask `nextTimeout` again. `espActivityAt` is when the data plane last received an
   * authenticated ESP packet of this SA (it counts as liveness, RFC 7296 §2.4).
   */
  | { readonly kind: 'timeout'; readonly now: number; readonly espActivityAt?: number }
  | { readonly kind: 'command'; readonly command: IkeSaCommand; readonly now: number }
  /**
   * An authenticated ESP packet of this SA (ICV checked, not a replay) arrived on `path`: the SA
   * sends there from now on, as after an authenticated IKE message (RFC 9329 §6, RFC 7296 §2.23).
   */
  | { readonly kind: 'esp-path'; readonly path: IkePath; readonly now: number }
  /** The stream with this path id closed (TCP/TLS). The SA waits for the peer to come back. */
  | { readonly kind: 'connection-lost'; readonly pathId: string; readonly now: number };

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
  readonly esn: boolean;
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
  /** The inbound SPI of the child SA this one replaces (a rekey), if any. */
  readonly replaces?: Uint8Array;
}

/** Why an exchange was refused; `by` says which side refused it. */
export interface Rejection {
  readonly kind: 'rejected';
  /** Exchange type name: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL, IKE_INTERMEDIATE. */
  readonly exchange: string;
  /** snake_case, bounded set (a metric label): no_proposal_chosen, authentication_failed, ... */
  readonly reason: string;
  readonly by: 'us' | 'peer';
  /** A short human summary for the log line (e.g. what a peer offered); never secrets. */
  readonly detail?: string;
  /**
   * IKE_AUTH refused: the identity the peer claimed in IDi. NOT authenticated (anyone can claim
   * any identity): for attributing failures to a configured peer in metrics and logs only.
   */
  readonly claimedId?: string;
}

export type IkeSaAction =
  /** Put `bytes` on `path`; over TCP close the stream after it when `closeAfter` is set. */
  | {
      readonly kind: 'send';
      readonly bytes: Uint8Array;
      readonly path: IkePath;
      readonly closeAfter?: string;
    }
  | InstallChildAction
  | { readonly kind: 'remove-child'; readonly inboundSpi: Uint8Array; readonly reason: string }
  /**
   * A child SA we asked for was not created; the IKE SA lives on (RFC 7296 §1.2). `notify` is the
   * peer's error notify type when it sent one (e.g. INTERNAL_ADDRESS_FAILURE, §3.15.4).
   */
  | { readonly kind: 'child-failed'; readonly reason: string; readonly notify?: number }
  | {
      readonly kind: 'established';
      readonly initiatorSpi: Uint8Array;
      readonly responderSpi: Uint8Array;
      readonly peerId: string;
    }
  /**
   * An authenticated, new (not retransmitted) message arrived on `path` and the SA now sends there
   * (RFC 7296 §2.23, RFC 9329 §6): ESP follows it too.
   */
  | { readonly kind: 'path-validated'; readonly path: IkePath }
  | {
      readonly kind: 'rekeyed-ike';
      readonly newInitiatorSpi: Uint8Array;
      readonly newResponderSpi: Uint8Array;
    }
  | { readonly kind: 'deleted'; readonly reason: DeleteReason }
  /** The state changed in a way another worker must see after a takeover: write it through. */
  | { readonly kind: 'persist' }
  | Rejection
  /**
   * A peer's proposal was accepted through the one deliberate leniency of negotiation (AEAD chosen
   * from a proposal mixing AEAD and non-AEAD ciphers with integrity): log it (once) at info.
   */
  | { readonly kind: 'lenient'; readonly what: 'aead-with-integrity'; readonly exchange: string }
  /**
   * RFC 6311 §4.3: the peer's cluster (authenticated, in its sync exchange) restarted its inbound
   * replay windows at `counter`: every outbound Child SA of this IKE SA continues above it.
   */
  | { readonly kind: 'replay-counter-sync'; readonly counter: bigint }
  /** A message was dropped without an answer (STYLE.md rule 7: count it with this reason). */
  | { readonly kind: 'dropped'; readonly reason: string };

export type DeleteReason =
  | 'deleted'
  | 'peer-deleted'
  | 'dead-peer'
  | 'no-proposal-chosen'
  | 'authentication-failed'
  | 'wrong-peer-id'
  | 'ts-unacceptable'
  | 'error-notify'
  | 'invalid-syntax'
  | 'rekeyed'
  | 'expired'
  | 'connection-lost'
  | 'half-open-expired';

// --- context -------------------------------------------------------------------------------------

/** One proposal policy of ours (negotiation/proposals.ts), in preference order. */
export type IkeProposalPolicy = ProposalPolicy;
/** ESP: `keyExchange` lists PFS groups for CREATE_CHILD_SA (0 = NONE makes PFS optional). */
export type EspProposalPolicy = ProposalPolicy;

export interface RetransmitPolicy {
  /** First retransmission after this many ms; doubles each time (RFC 7296 §2.4). */
  readonly initialMs: number;
  /** After this many retransmissions without an answer the peer is dead. */
  readonly maxRetransmits: number;
}

export interface LifetimePolicy {
  /** IKE SA lifetime: hard expiry after this long without a rekey. */
  readonly ikeMs: number;
  /** Child SA lifetime. */
  readonly childMs: number;
  /**
   * Rekey before expiry by a random part (50-100%) of this margin (RFC 7296 §2.8: random so both
   * ends do not rekey at once). Capped at half the lifetime.
   */
  readonly marginMs: number;
  /** After a failed rekey, try again this much later (default 30 s, bounded by the expiry). */
  readonly retryMs?: number;
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
  /** RFC 6311 §4.3: announce IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED in IKE_AUTH and honour it. */
  readonly replayCounterSync?: boolean;
  readonly retransmit?: RetransmitPolicy;
  /**
   * Over TCP no request is retransmitted on a live stream (RFC 9329 §2); the peer is dead when no
   * answer came this long after the request (default: the whole UDP retransmission schedule).
   */
  readonly requestTimeoutMs?: number;
  /**
   * Over TCP, after the SA's stream closed, how long to wait for the peer to come back on a new
   * one (ARCHITECTURE.md wait-for-reconnect) before the SA is deleted as `connection-lost`.
   */
  readonly reconnectWaitMs?: number;
  /** Lifetimes; without them the SA is never rekeyed nor expired by the machine. */
  readonly lifetimes?: LifetimePolicy;
  /** Liveness check (RFC 7296 §2.4) after this long without authenticated inbound traffic. */
  readonly dpdMs?: number;
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
 * Everything one SA needs from outside; not part of the state, passed with every step.
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
  /**
   * Authenticate ourselves with this certificate (RFC 7296 §3.6, RFC 7427 method 14) instead of
   * a PSK. `chainPem` holds our certificate first, then any intermediates.
   */
  readonly certificate?: { readonly chainPem: string; readonly privateKey: KeyObject };
  /** Accept peers that authenticate with a certificate chaining to one of these (RFC 7427). */
  readonly trustAnchors?: readonly X509Certificate[];
  /**
   * The anchors a peer claiming `peerId` (its ID payload) must chain to, instead of all of
   * `trustAnchors`: a certificate from one peer's CA then never authenticates an identity that
   * belongs to a peer with another CA, or to a PSK peer (an empty list refuses certificates).
   */
  readonly trustAnchorsFor?: (peerId: string) => readonly X509Certificate[];
  /**
   * Responder: once IKE_AUTH has authenticated the peer as `peerId`, the context to use for the
   * rest of that exchange and every later event (its selectors, proposals and address pool).
   */
  readonly forPeer?: (peerId: string) => IkeSaContext;
  /** Initiator: the identity the responder must prove (RFC 7296 §2.15); anyone when absent. */
  readonly expectedPeerId?: string;
  /** Wall-clock time for certificate validity (a Date or ms since the epoch); required with trustAnchors. */
  readonly now?: Date | number;
}

// --- state ---------------------------------------------------------------------------------------

export type IkeSaStatus =
  /** Nothing sent or received yet (an initiator before `initiate`). */
  | 'idle'
  /** Initiator: IKE_SA_INIT (or IKE_INTERMEDIATE) outstanding. */
  | 'init-sent'
  /** Responder: IKE_SA_INIT answered, waiting for IKE_AUTH (half-open). */
  | 'init-answered'
  /** Initiator: IKE_AUTH request outstanding. */
  | 'auth-sent'
  | 'established'
  | 'deleted';

/** What one of our requests is for, so its response can be processed. */
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
  /**
   * When the next retransmission is due (over TCP: the next silent check of the same schedule).
   * Absent while the stream is gone: the request waits for the peer to reconnect.
   */
  readonly retransmitAt?: number;
}

/** The peer address a request came from, for the rule "a retransmission is answered only there". */
export interface RequestSource {
  readonly transport: Transport;
  readonly pathId: string;
  readonly address: Uint8Array;
}

/** Our answer to the peer's last request, resent for a retransmission of it (RFC 7296 §2.1). */
export interface CachedResponse {
  readonly messageId: number;
  readonly bytes: Uint8Array;
  /** RFC 7383: the SKF fragments sent over UDP instead of `bytes`. */
  readonly fragments?: readonly Uint8Array[];
  /** Digest of the request's octets (its fragment 1 when fragmented): a retransmission is identical. */
  readonly requestDigest: Uint8Array;
  readonly source: RequestSource;
}

/**
 * One IKE SA's keys and Message ID bookkeeping. `role` is the original initiator/responder of
 * *this* SA (after a rekey, whoever started the rekey is the initiator of the new SA).
 */
export interface IkeSaCore {
  readonly role: 'initiator' | 'responder';
  readonly spiI: Uint8Array;
  readonly spiR: Uint8Array;
  readonly suite: NegotiatedSuite;
  readonly keys: IkeSaKeys;
  readonly ni: Uint8Array;
  readonly nr: Uint8Array;
  /** Message ID of our next request (RFC 7296 §2.2). */
  readonly nextRequestId: number;
  /** Message ID we expect on the peer's next request. */
  readonly expectedRequestId: number;
  readonly outstanding?: OutstandingRequest;
  readonly lastResponse?: CachedResponse;
  /** RFC 7383: both sides announced IKEV2_FRAGMENTATION_SUPPORTED for this IKE SA. */
  readonly fragmentation?: boolean;
  /** RFC 7383 §2.6: fragments received so far (at most one message per direction). */
  readonly reassembly?: readonly Reassembly[];
  /**
   * RFC 6311: nonces of the sync requests already processed (newest last, bounded): each is
   * processed once; the last one's retransmission gets `lastSyncResponse` again.
   */
  readonly syncNonces?: readonly number[];
  readonly lastSyncResponse?: CachedResponse;
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
  /** Digest of fragment 1's octets, once it arrived (what a retransmission is recognised by). */
  readonly firstDigest?: Uint8Array;
}

export interface ChildSaState {
  readonly inboundSpi: Uint8Array;
  readonly outboundSpi: Uint8Array;
  readonly suite: NegotiatedSuite;
  readonly tsLocal: readonly TrafficSelector[];
  readonly tsRemote: readonly TrafficSelector[];
  readonly virtualIp?: Uint8Array;
  /**
   * Our inbound SPI of the child SA we created answering the peer's rekey of this one. If the peer
   * rekeys this one again, it never got that answer: the replacement is an orphan and goes.
   */
  readonly replacedBy?: Uint8Array;
  /** When to rekey it, and when it expires without a rekey (absent: never). */
  readonly rekeyAt?: number;
  readonly expireAt?: number;
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
  /** Responder: digest of the request, to recognise its retransmission. */
  readonly requestDigest?: Uint8Array;
  readonly retries: number;
  /** RFC 9242 §3.3.2: IntAuth_i | IntAuth_r of the IKE_INTERMEDIATE exchange, for AUTH. */
  readonly intAuth?: Uint8Array;
  /** RFC 7427 §4: the hash algorithms the peer announced in SIGNATURE_HASH_ALGORITHMS. */
  readonly peerSignatureHashes?: readonly number[];
  /**
   * Initiator: an error notify an IKE_SA_INIT response carried (unauthenticated, RFC 7296
   * §2.21.1): acted on at the next retransmission deadline unless a real response came first.
   */
  readonly peerError?: number;
  /** Initiator: retransmission schedule of the IKE_SA_INIT request (as OutstandingRequest). */
  readonly retransmits?: number;
  readonly retransmitAt?: number;
}

/** A queued command waiting for the window (one request of ours outstanding at a time). */
export type QueuedRequest = Exclude<IkeSaCommand, { kind: 'initiate' } | { kind: 'connection-restored' }>;

export interface IkeSaState {
  readonly status: IkeSaStatus;
  /** The path our requests and ESP go to: the last one an authenticated, new message came on. */
  readonly path?: IkePath;
  /** TCP: when the SA's stream closed and no new one has been validated since. */
  readonly disconnectedAt?: number;
  /** Then: deleted as `connection-lost` at this time unless the peer came back (reconnectWaitMs). */
  readonly reconnectBy?: number;
  readonly init?: IkeInitData;
  readonly current?: IkeSaCore;
  /** The SA a rekey replaced, until its DELETE exchange is done (RFC 7296 §2.18). */
  readonly previous?: IkeSaCore;
  /**
   * When a rekey's leftovers (`previous`, and a redundant `collision` SA) are dropped if their
   * DELETE exchange is still not done. The peer deletes the SA it replaced or made redundantly, but
   * one that gave its DELETE up (an outage longer than its retransmissions) never will: a kept
   * `previous` refused every later IKE SA rekey until the SA expired, and a kept `collision` was
   * taken for a live one by our next rekey.
   */
  readonly previousUntil?: number;
  readonly peerId?: string;
  readonly children: readonly ChildSaState[];
  /** Commands waiting for the window, de-duplicated and bounded (MAX_QUEUED). */
  readonly queue: readonly QueuedRequest[];
  /** RFC 7296 §2.23: whether we and the peer appear to be behind NAT. */
  readonly natLocal: boolean;
  readonly natRemote: boolean;
  /** RFC 6311: the peer announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED. */
  readonly peerMessageIdSync: boolean;
  /** RFC 6311 §4.3: the peer announced IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED (absent: no). */
  readonly peerReplayCounterSync?: boolean;
  /** A rekey-ike we answered while our own was outstanding (RFC 7296 §2.8.1). */
  readonly collision?: IkeSaCore;
  /** Child rekeys we answered while rekeying the same child ourselves (RFC 7296 §2.8.1). */
  readonly childCollisions?: readonly ChildRekeyCollision[];
  /** Responder before IKE_AUTH: the half-open SA is dropped at this time (RFC 7296 §2.6). */
  readonly halfOpenExpiresAt?: number;
  /** Last authenticated inbound IKE message (liveness, RFC 7296 §2.4). */
  readonly lastInboundAt: number;
  /** IKE SA lifetime deadlines (absent: none). */
  readonly rekeyAt?: number;
  readonly expireAt?: number;
  /** Next liveness check time when `dpdMs` is set. */
  readonly livenessAt?: number;
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
