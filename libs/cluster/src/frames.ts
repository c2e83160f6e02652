/**
 * The edge <-> worker contract (ARCHITECTURE.md): what an edge hands a worker and what a worker
 * asks an edge to send. In `ikegate up` both run in one process and call each other directly; the
 * gRPC transport of issue #5 carries exactly these shapes, so the split into pods is a transport
 * change. Everything here is plain data: addresses as strings, payloads as octets.
 */

/** How the peer reached the edge: UDP 500/4500 (RFC 3948), TCP (RFC 9329) or TLS-wrapped TCP. */
export type PeerTransport = 'udp' | 'tcp' | 'tls';

export interface FrameEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * One path to a peer. For UDP, `connection` names the (local port, remote address, remote port)
 * tuple; for TCP/TLS it names one accepted stream. A worker answers on the path a message came
 * in on (RFC 7296 §2.11, RFC 9329 §6) and sends ESP on the newest path of the IKE SA.
 */
export interface PeerPath {
  readonly connection: string;
  readonly transport: PeerTransport;
  readonly local: FrameEndpoint;
  readonly remote: FrameEndpoint;
}

/**
 * A frame from a peer. `ike` bytes start at the IKE header (no non-ESP marker, no length field);
 * `esp` bytes start at the SPI.
 */
export interface InboundFrame {
  readonly kind: 'ike' | 'esp';
  readonly path: PeerPath;
  readonly bytes: Uint8Array;
  /** Shard chosen by the edge routing rule (libs/cluster routing.ts). */
  readonly shard: number;
  /** Times the edge re-routed this frame after a worker bounced it (0 first). */
  readonly attempt?: number;
}

export interface OutboundFrame {
  readonly kind: 'ike' | 'esp';
  readonly path: PeerPath;
  readonly bytes: Uint8Array;
  /**
   * Close this TCP/TLS connection after writing this frame, with this reason (a metric label,
   * e.g. 'cookie'): RFC 9329 §6.3, after a COOKIE (or PUZZLE) request the responder closes the
   * connection. The frame is written, then the stream ends; later frames for it get
   * 'no-connection'. Ignored for UDP.
   */
  readonly closeAfter?: string;
}

/** Why an outbound frame was not sent; the worker counts these. */
export type SendResult = 'sent' | 'no-connection' | 'congested';

/** The worker side, as an edge sees it. */
export interface WorkerLink {
  deliver(frame: InboundFrame): void;
  /** A TCP/TLS stream closed; the worker stops sending on it and waits for the peer (RFC 9329 §6). */
  connectionClosed(path: PeerPath): void;
  /**
   * Every TCP/TLS stream that ran through edge `edgeId` is gone (the edge died, or restarted as
   * incarnation `except`, whose streams are kept): each SA on one waits for its peer (RFC 9329 §6).
   */
  edgeGone?(edgeId: string, except?: string): void;
}

/** The edge side, as a worker sees it. */
export interface EdgeLink {
  send(frame: OutboundFrame): SendResult;
  /**
   * Whether an ESP packet of `espLength` octets to `path` would be refused as 'congested' right
   * now (a backed-up stream): the worker asks before it encrypts, so congestion costs no
   * encryption and no sequence number. Absent: the link cannot tell before `send`.
   */
  espCongested?(path: PeerPath, espLength: number): boolean;
  /**
   * Whether `send` of an ESP frame to `path` is done with its octets when it returns (an RFC 9329
   * stream copies a frame into its own output chunk): the worker may then encrypt into a buffer it
   * reuses for the next packet. Absent or false: the link may keep the octets past `send` (dgram
   * holds a datagram until it is sent, a relay queues frames), so each packet gets its own.
   */
  espCopied?(path: PeerPath): boolean;
  /** Hands back a frame for a shard we do not own, for the edge to route again (cluster only). */
  bounce?(frame: InboundFrame): void;
}
