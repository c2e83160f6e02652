/**
 * Fast detection of a dead worker (issue #11): every worker holds one idle TCP connection to each
 * other member's relay port. `kill -9` (or any exit) closes the dead process's sockets at once, so
 * the connection ends; the watcher dials again straight away, and a refused dial (the host answers,
 * nothing listens) is the verdict: that member is dead. Only a member this watcher has reached
 * before can be declared dead: a relay port that refuses from the start (a wrong address, a
 * network policy that rejects worker-to-worker traffic) gives no verdict, so a misconfiguration
 * cannot make workers evict each other. A dial that times out or finds no route
 * (a pause, a partition, a vanished pod address) gives no verdict: the lease TTL stays the fallback
 * for those, and the fencing epochs keep a wrong verdict harmless (the member loses its shards at
 * its next renewal; nothing it writes lands).
 *
 * Bounded: one socket per member, one dial at a time per member, a connect timeout, and a back-off
 * between dials that gave no verdict. Idle connections the server closes are simply redialled.
 */
import { connect, type Socket } from 'node:net';
import type { Logger } from '@ikegate/telemetry';

export interface PeerWatchOptions {
  /** This worker's id (never watched). */
  readonly self: string;
  /** A member's relay refused a dial right after its connection ended (or on first dial). */
  readonly onDead: (id: string, relay: string) => void;
  readonly log: Logger;
  /** Default 1000 ms. */
  readonly connectTimeoutMs?: number;
  /** Wait before redialling after a dial that gave no verdict (default 1000 ms). */
  readonly retryMs?: number;
}

interface Watched {
  readonly id: string;
  readonly relay: string;
  socket: Socket | undefined;
  timer: NodeJS.Timeout | undefined;
  /** Verdict given: no more dials until the member list shows it again a while later. */
  dead: boolean;
  deadAt: number;
  closed: boolean;
  /** This watcher has had a connection to it: only then does a refused dial mean it died. */
  reached: boolean;
}

function split(relay: string): { host: string; port: number } | undefined {
  const at = relay.lastIndexOf(':');
  if (at <= 0) return undefined;
  const port = Number(relay.slice(at + 1));
  const host = relay.slice(0, at).replace(/^\[|\]$/g, '');
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : undefined;
}

export class PeerWatch {
  readonly #o: PeerWatchOptions;
  readonly #peers = new Map<string, Watched>();

  constructor(o: PeerWatchOptions) {
    this.#o = o;
  }

  /** Watches exactly these members (by id and relay address); others are let go. */
  update(members: readonly { readonly id: string; readonly relay: string }[]): void {
    const want = new Map(
      members.filter((m) => m.id !== this.#o.self && split(m.relay)).map((m) => [m.id, m.relay] as const),
    );
    const now = Date.now();
    for (const [id, w] of this.#peers) {
      if (want.get(id) !== w.relay) this.#drop(w);
      // Declared dead but still listed a while later (its eviction failed, or it is back): ask again.
      else if (w.dead && now - w.deadAt >= (this.#o.retryMs ?? 1000)) this.revive(id);
    }
    for (const [id, relay] of want) {
      const known = this.#peers.get(id);
      if (known && known.relay === relay) continue;
      const w: Watched = {
        id,
        relay,
        socket: undefined,
        timer: undefined,
        dead: false,
        deadAt: 0,
        closed: false,
        reached: false,
      };
      this.#peers.set(id, w);
      this.#dial(w);
    }
  }

  /** A member we gave a verdict on, still listed: dial it again (it may have come back). */
  revive(id: string): void {
    const w = this.#peers.get(id);
    if (!w || !w.dead) return;
    w.dead = false;
    this.#dial(w);
  }

  /** How many members are watched over a live connection (tests, metrics). */
  get connected(): number {
    let n = 0;
    for (const w of this.#peers.values()) if (w.socket && !w.socket.connecting && !w.socket.destroyed) n++;
    return n;
  }

  stop(): void {
    for (const w of this.#peers.values()) this.#drop(w);
  }

  #drop(w: Watched): void {
    w.closed = true;
    clearTimeout(w.timer);
    w.socket?.destroy();
    this.#peers.delete(w.id);
  }

  #dial(w: Watched): void {
    if (w.closed || w.dead || w.socket) return;
    const target = split(w.relay);
    if (!target) return;
    const s = connect({ host: target.host, port: target.port });
    w.socket = s;
    s.setNoDelay(true);
    s.setKeepAlive(true, 1000);
    const timer = setTimeout(() => s.destroy(new Error('connect timeout')), this.#o.connectTimeoutMs ?? 1000);
    timer.unref();
    let verdict: 'refused' | 'error' | undefined;
    let connectedAt = 0;
    s.once('connect', () => {
      clearTimeout(timer);
      connectedAt = Date.now();
      w.reached = true;
    });
    s.on('data', () => undefined); // nothing is expected; never buffered
    s.on('error', (e: NodeJS.ErrnoException) => {
      // An error on an established connection (a reset) ends it like a close: ask again at once.
      if (connectedAt === 0) verdict = e.code === 'ECONNREFUSED' && w.reached ? 'refused' : 'error';
    });
    s.once('close', () => {
      clearTimeout(timer);
      w.socket = undefined;
      if (w.closed) return;
      if (verdict === 'refused') {
        w.dead = true;
        w.deadAt = Date.now();
        this.#o.log.warn({ worker: w.id, relay: w.relay }, 'worker-dead');
        this.#o.onDead(w.id, w.relay);
        return;
      }
      if (verdict === 'error') {
        // No verdict (timeout, unreachable): the lease TTL decides; dial again later.
        w.timer = setTimeout(() => this.#dial(w), this.#o.retryMs ?? 1000);
        w.timer.unref();
        return;
      }
      // The connection ended: the process died, or the server closed an idle connection. Ask at
      // once; a server that keeps closing young connections is asked at most 5 times a second.
      if (Date.now() - connectedAt >= 1000) return this.#dial(w);
      w.timer = setTimeout(() => this.#dial(w), 200);
      w.timer.unref();
    });
  }
}
