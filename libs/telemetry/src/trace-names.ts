/**
 * Every span, attribute and event name ikegate's traces use (STYLE.md rule 13: names live in one
 * file in libs/telemetry, like the metric names in metrics.ts). HTTP server spans follow the
 * OpenTelemetry semantic conventions (`http.request.method`, `http.route`,
 * `http.response.status_code`); the IKE ones use the RFC 7296 words.
 *
 * Attribute values are identifiers a log line already carries (SPIs as hex, peer names and
 * identities, shard numbers), never key material, nonces, PSKs, tokens or message bodies.
 */

/** The instrumentation scope every ikegate span is created under. */
export const TRACER_NAME = 'ikegate';

export const SpanName = {
  /** One IKE SA from its first IKE_SA_INIT to established or failed (the root of a setup trace). */
  ikeSaSetup: 'ike.sa.setup',
  /** One shard leased here with the SAs of its former holder adopted. */
  shardTakeover: 'ike.shard.takeover',
} as const;

/** `ike.exchange IKE_AUTH`: one request and its response (RFC 7296 §1). */
export function exchangeSpanName(exchange: string): string {
  return `ike.exchange ${exchange}`;
}

/** An HTTP server span's name (semantic conventions: `{method} {http.route}`). */
export function httpSpanName(method: string, route: string | undefined): string {
  return route === undefined ? method : `${method} ${route}`;
}

export const Attr = {
  /** Our role in the IKE SA (original initiator or responder, RFC 7296 §2.2): initiator | responder. */
  ikeRole: 'ike.role',
  /** Our role in one exchange (who sent the request): initiator | responder. */
  ikeExchangeRole: 'ike.exchange.role',
  /** IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL, IKE_INTERMEDIATE. */
  ikeExchange: 'ike.exchange.type',
  ikeMessageId: 'ike.message_id',
  /** How often we sent our request again (or, responding, answered a retransmission from cache). */
  ikeRetransmissions: 'ike.retransmissions',
  /** COOKIE or INVALID_KE_PAYLOAD retries of IKE_SA_INIT (a new request with the same Message ID). */
  ikeRetries: 'ike.retries',
  /** CREATE_CHILD_SA: rekey-ike, rekey-child or new-child; INFORMATIONAL: delete when it deleted. */
  ikePurpose: 'ike.exchange.purpose',
  /** ok, or the snake_case reason it failed (notify name, timeout, deletion reason). */
  ikeOutcome: 'ike.outcome',
  /** Who refused it: us or peer. */
  ikeRefusedBy: 'ike.refused_by',
  /** Our newest IKE SPI of the SA (hex), as logs and the API name it. */
  ikeSpi: 'ike.spi',
  ikeSpiInitiator: 'ike.spi.initiator',
  ikeSpiResponder: 'ike.spi.responder',
  /** udp, tcp or tls. */
  ikeTransport: 'ike.transport',
  /** The authenticated peer identity (IDi/IDr). */
  ikePeerId: 'ike.peer.id',
  /** The configured peer it matched. */
  ikePeerName: 'ike.peer.name',
  ikeShard: 'ike.shard',
  /** A child SA that was not created while its IKE SA lives on (RFC 7296 §1.2): its reason. */
  ikeChildFailure: 'ike.child_sa.failure',
  shard: 'ikegate.shard',
  shardEpoch: 'ikegate.shard.epoch',
  /** SAs adopted by a takeover. */
  shardAdopted: 'ikegate.shard.adopted_sas',
  /** SA records found in the store for the shard (adopted or not). */
  shardStored: 'ikegate.shard.stored_sas',
  /** The worker whose live lease was taken (it is no member any more). */
  shardTakenFrom: 'ikegate.shard.taken_from',
  /** The gone member whose SAs these were (its lease live or lapsed). */
  shardFormerHolder: 'ikegate.shard.former_holder',
  /** acquired, not_granted or failed. */
  shardOutcome: 'ikegate.shard.outcome',
  workerId: 'ikegate.worker.id',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
  /** Semantic conventions: set on a server span for a 5xx (the status code as text). */
  errorType: 'error.type',
  /** Resource: the process role (up, worker, edge, control). */
  serviceRole: 'ikegate.role',
} as const;

export const SpanEvent = {
  /** The peer retransmitted a request we had answered; the cached answer went out again. */
  retransmissionAnswered: 'ike.retransmission_answered',
  /** A child SA was installed (attribute: its inbound SPI as hex). */
  childInstalled: 'ike.child_sa.installed',
} as const;

export const Outcome = { ok: 'ok' } as const;
