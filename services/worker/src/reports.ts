/**
 * What a worker reports of IKE input it refused: every drop and every rejected exchange is
 * counted (`ikegate_drops_total{layer="ike"}`, `ikegate_ike_rejections_total{exchange,reason}`),
 * and every rejection is logged with its reason and detail, rate-limited per reason (an
 * unauthenticated peer can cause them at will).
 */
import type { PeerPath } from '@ikegate/cluster';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { LogLimiter } from './log-limit.js';
import { type SaRecord, spiOf } from './records.js';

const labels = new Map<string, string>();

/** A drop reason as a metric label: snake_case, error codes without their prefix (bounded set). */
export function label(reason: string): string {
  let l = labels.get(reason);
  if (l === undefined) {
    l = reason
      .replace(/^IKEGATE_ERR_IKEV2_/, '')
      .toLowerCase()
      .replace(/-/g, '_');
    if (labels.size < 256) labels.set(reason, l);
  }
  return l;
}

export class IkeReports {
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #clock: () => number;
  readonly #limit = new LogLimiter();
  #lenientLogged = false;

  constructor(log: Logger, metrics: Metrics, clock: () => number) {
    this.#log = log;
    this.#metrics = metrics;
    this.#clock = clock;
  }

  drop(reason: string): void {
    this.#metrics.hot(this.#metrics.drops, 'ike', label(reason)).inc();
  }

  /** An exchange refused by us or (reason prefixed `peer_` in the metric) by the peer. */
  rejected(
    exchange: string,
    reason: string,
    by: 'us' | 'peer',
    detail: string | undefined,
    rec?: SaRecord,
    path?: PeerPath,
  ): void {
    const name = by === 'peer' ? `peer_${reason}` : reason;
    this.#metrics.hot(this.#metrics.ikeRejections, exchange, name).inc();
    const p = rec?.path ?? path;
    const remote = p ? `${p.remote.address}:${p.remote.port}` : undefined;
    const allowed = this.#limit.allow(`${exchange}/${name}`, this.#clock(), (suppressed) =>
      this.#log.info({ exchange, reason: name, suppressed }, 'ike-rejections-suppressed'),
    );
    if (!allowed) return;
    this.#log.info(
      { exchange, reason: name, by, detail, spi: rec ? spiOf(rec) : undefined, peerId: rec?.peerId, remote },
      'ike-rejected',
    );
  }

  /** The negotiation leniency (AEAD from a mixed proposal with integrity) was used: said once. */
  lenient(exchange: string): void {
    if (this.#lenientLogged) return;
    this.#lenientLogged = true;
    this.#log.info(
      { exchange },
      'accepted an AEAD cipher from a proposal that also carried integrity algorithms (mixed AEAD/non-AEAD proposal, as strongSwan accepts); logged once',
    );
  }
}
