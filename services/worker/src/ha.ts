/**
 * Write-through and takeover (ARCHITECTURE.md "State, leases and HA"): the storable form of an SA
 * (snapshot.ts), adopting one another worker held, and forgetting a shard that moved away.
 *
 * Adoption re-indexes the SA in the IKE endpoint (its deadlines are in its state, so retransmits,
 * rekeys, liveness and expiry resume by themselves), rebuilds its ESP SAs past the old owner's
 * counters, claims its virtual IP, and, when the peer supports it, starts an RFC 6311 Message ID
 * sync so a request the old owner answered but did not write through cannot desynchronize the
 * peer. The peer does not re-authenticate.
 *
 * Inbound anti-replay: the stored checkpoint may lag what the old owner accepted (by at most
 * INBOUND_CHECKPOINT_PACKETS or INBOUND_CHECKPOINT_MS). A peer that announced
 * IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED gets the RFC 6311 §4.3 sync in the same exchange: the new
 * owner's windows restart REPLAY_SYNC_MARGIN past the checkpoint and the peer continues above
 * that, so no packet the old owner saw can be replayed. A peer without it keeps sending where it
 * was; the windows then restart at the checkpoint and only the last interval stays exposed.
 */
import { type ChildSaState, sameSelectors } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { type DataPlane, replaySyncPoint } from './data-plane.js';
import type { IkeDriver } from './ike-driver.js';
import { ipv4ToNumber } from './ipv4.js';
import { type SaRecord, spiOf } from './records.js';
import type { ChildSnapshot, SaSnapshot } from './snapshot.js';
import type { WorkerSettings } from './types.js';

export class Takeover {
  readonly #settings: WorkerSettings;
  readonly #driver: IkeDriver;
  readonly #dataPlane: DataPlane;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  /** The SPI each record was last written under (a rekey changes the key it is stored by). */
  readonly #stored = new WeakMap<SaRecord, string>();

  constructor(
    settings: WorkerSettings,
    driver: IkeDriver,
    dataPlane: DataPlane,
    log: Logger,
    metrics: Metrics,
  ) {
    this.#settings = settings;
    this.#driver = driver;
    this.#dataPlane = dataPlane;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** The SA changed: write it through (under its current SPI; the key of a rekeyed SA moves). */
  dirty(rec: SaRecord): void {
    const p = this.#settings.persistence;
    const spi = spiOf(rec);
    if (!p || spi === '' || rec.entry.status !== 'established') return;
    const before = this.#stored.get(rec);
    if (before !== undefined && before !== spi) p.gone(before, rec.shard);
    this.#stored.set(rec, spi);
    p.dirty(spi, rec.shard);
  }

  /** Resolves once `rec`'s latest state is in the store; undefined when nothing is pending. */
  durable(rec: SaRecord): Promise<void> | undefined {
    const spi = this.#stored.get(rec);
    if (spi === undefined) return undefined;
    return this.#settings.persistence?.durable?.(spi);
  }

  /** The SA is gone: its stored record too. */
  gone(rec: SaRecord): void {
    const spi = this.#stored.get(rec);
    if (spi !== undefined) this.#settings.persistence?.gone(spi, rec.shard);
    this.#stored.delete(rec);
  }

  snapshot(rec: SaRecord): SaSnapshot {
    return {
      version: 2,
      spis: [...rec.entry.spis],
      shard: rec.shard,
      // A copy: a cold SA stays cold (a checkpoint per 250 ms of ESP would otherwise rebuild it).
      state: rec.entry.peekState(),
      path: rec.path,
      ...(rec.peerId !== undefined ? { peerId: rec.peerId } : {}),
      ...(rec.peer ? { peerName: rec.peer.name } : {}),
      ...(rec.expectedPeerId !== undefined ? { expectedPeerId: rec.expectedPeerId } : {}),
      ...(rec.virtualIp ? { virtualIp: rec.virtualIp } : {}),
      ...(rec.poolKey ? { poolKey: rec.poolKey } : {}),
      ...(rec.establishedAt ? { establishedAt: rec.establishedAt } : {}),
      children: rec.children.map((c) => {
        // From the ESP SAs' key objects, or a cold child's slot, which stays cold (issue #14).
        const esp = this.#dataPlane.exportEsp(c);
        return {
          inboundSpi: c.inboundSpi,
          outboundSpi: c.outboundSpi,
          encryption: c.encryption,
          ...(c.integrity ? { integrity: c.integrity } : {}),
          ...(c.esn ? { esn: true } : {}),
          inKeys: esp.inKeys,
          outKeys: esp.outKeys,
          tsLocal: c.tsLocalRaw,
          tsRemote: c.tsRemoteRaw,
          ...(c.virtualIp !== undefined ? { virtualIp: c.virtualIp } : {}),
          seqOut: esp.seqOut,
          seqIn: esp.seqIn,
        };
      }),
    };
  }

  /** Takes over an SA another worker held; false when one of its SPIs is in use here. */
  adopt(snap: SaSnapshot): SaRecord | undefined {
    const rec = this.#driver.newRecord(snap.shard, snap.path);
    if (snap.peerId !== undefined) rec.peerId = snap.peerId;
    if (snap.virtualIp) rec.virtualIp = snap.virtualIp;
    if (snap.poolKey) rec.poolKey = snap.poolKey;
    if (snap.establishedAt) rec.establishedAt = snap.establishedAt;
    if (snap.expectedPeerId !== undefined) rec.expectedPeerId = snap.expectedPeerId;
    const entry = this.#driver.adopt(rec, snap.state);
    if (!entry) return undefined;
    rec.entry = entry;
    if (snap.virtualIp && rec.peer?.pool && rec.poolKey) rec.peer.pool.claim?.(rec.poolKey, snap.virtualIp);
    const s = entry.state;
    // The record holds the engine's array for the address, as a live SA does (worker.ts, install-child).
    const v = s.children.find((c) => c.virtualIp?.length === 4)?.virtualIp;
    if (v && rec.virtualIp?.length === 4 && ipv4ToNumber(v) === ipv4ToNumber(rec.virtualIp))
      rec.virtualIp = v;
    const syncReplay =
      s.status === 'established' &&
      s.peerMessageIdSync &&
      s.peerReplayCounterSync === true &&
      this.#settings.policy.replayCounterSync === true &&
      snap.children.length > 0;
    const replay = syncReplay ? replaySyncPoint(snap.children) : undefined;
    for (const snapped of snap.children) {
      const c = withEngineArrays(snapped, s.children);
      this.#dataPlane.add(rec, replay ? { ...c, seqIn: replay.value } : c, true);
    }
    this.#stored.set(rec, spiOf(rec));
    this.#metrics.ikeSaEvents.inc({ event: 'adopted', reason: '' });
    this.#log.info(
      {
        spi: spiOf(rec),
        peerId: rec.peerId,
        shard: rec.shard,
        children: rec.children.length,
        ...(replay ? { replayCounter: replay.value.toString() } : {}),
      },
      'ike-sa-adopted',
    );
    // An exchange already outstanding is retransmitted from the state; the Message ID sync is not
    // needed then, but a replay counter sync is (the peer must leave the restarted windows): it
    // waits in the queue for that exchange.
    // A request the old owner had outstanding goes out again at once, on the SA's path: its
    // answer may have reached the old owner after its last write, or nobody (a peer that already
    // answered it, e.g. installed a rekeyed child, answers again from its cache). Not while the
    // peer's stream is gone: the wait for it to reconnect stays as it was.
    if ((s.current?.outstanding || s.previous?.outstanding) && s.disconnectedAt === undefined)
      this.#driver.restore(rec, rec.path);
    if (replay) this.#driver.command(rec, { kind: 'mid-sync', replayCounter: replay });
    else if (s.status === 'established' && s.peerMessageIdSync && !s.current?.outstanding)
      this.#driver.command(rec, { kind: 'mid-sync' });
    if (replay) this.dirty(rec);
    return rec;
  }

  /** Forgets `rec` without telling the peer (its shard's lease moved to another worker). */
  forget(rec: SaRecord): void {
    for (const spi of rec.children.map((c) => c.inboundSpi))
      this.#dataPlane.remove(rec, spi, 'shard-moved', true);
    // The address moves with the SA (the new owner claims it); here it is free again, or a shard
    // that comes back later would find it still taken by an SA this worker no longer holds.
    if (rec.virtualIp && rec.peer?.pool && rec.poolKey) rec.peer.pool.release(rec.poolKey);
    this.#driver.forget(rec);
    this.#stored.delete(rec);
  }
}

/**
 * `c` holding the engine child's selectors and encryption object when they are the same values, as
 * a live child's record does (data-plane.ts install): not a second decoded copy (issue #14).
 */
export function withEngineArrays(c: ChildSnapshot, engine: readonly ChildSaState[]): ChildSnapshot {
  const e = engine.find((x) => x.inboundSpi.length === 4 && ipv4ToNumber(x.inboundSpi) === c.inboundSpi);
  if (!e || !sameSelectors(e.tsLocal, c.tsLocal) || !sameSelectors(e.tsRemote, c.tsRemote)) return c;
  const enc = e.suite.encryption;
  const encryption = enc.id === c.encryption.id && enc.keyBits === c.encryption.keyBits ? enc : c.encryption;
  return { ...c, tsLocal: e.tsLocal, tsRemote: e.tsRemote, encryption };
}
