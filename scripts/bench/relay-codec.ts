/**
 * The relay hop's per-frame cost (issue #14, cluster path): a batch of 64 ESP frames of 1,400 B
 * over 8 peer paths, as an edge and a worker exchange them, written and read by libs/relay's codec
 * against proto-loader's reflection serializers (what the relay used before) in the same run.
 * Each side's figure includes making the wire frames (frameToWire) and turning read ones back into
 * frames (frameFromWire / outboundFrameFromWire), which is what a relay stream does per frame.
 */
import { randomBytes } from 'node:crypto';
import type { InboundFrame, OutboundFrame, PeerPath } from '@ikegate/cluster';
import {
  decodeEdgeMessage,
  decodeWorkerMessage,
  encodeEdgeMessage,
  encodeWorkerMessage,
  frameFromWire,
  frameToWire,
  outboundFrameFromWire,
  relayDefinition,
} from '@ikegate/relay';
import { type BenchFigure, compare } from './harness.js';

const BATCH = 64;

export async function bench(): Promise<BenchFigure[]> {
  const reference = (
    relayDefinition()['ikegate.v1.FrameRelay'] as unknown as {
      Relay: {
        requestSerialize(m: unknown): Buffer;
        requestDeserialize(b: Buffer): ReturnType<typeof decodeEdgeMessage>;
        responseSerialize(m: unknown): Buffer;
        responseDeserialize(b: Buffer): ReturnType<typeof decodeWorkerMessage>;
      };
    }
  ).Relay;
  const data = randomBytes(1400);
  const paths: PeerPath[] = Array.from({ length: 8 }, (_, i) => ({
    connection: `tcp:5f3a9c:${i + 1}`,
    transport: 'tcp',
    local: { address: '10.77.2.10', port: 4500 },
    remote: { address: '10.77.1.2', port: 40000 + i },
  }));
  const inbound: InboundFrame[] = Array.from({ length: BATCH }, (_, i) => ({
    kind: 'esp',
    path: paths[i % paths.length]!,
    bytes: data,
    shard: i,
  }));
  const outbound: OutboundFrame[] = inbound.map((f) => ({ kind: f.kind, path: f.path, bytes: f.bytes }));

  // Edge -> worker: the edge writes a batch, the worker reads it into frames.
  const edgeToWorker = (
    write: (m: Parameters<typeof encodeEdgeMessage>[0]) => Buffer,
    read: (b: Buffer) => ReturnType<typeof decodeEdgeMessage>,
  ) => {
    const bytes = write({ edgeId: '', frames: inbound.map(frameToWire), closed: [], credit: 64 });
    let n = 0;
    for (const w of read(bytes).frames) if (frameFromWire(w)) n++;
    return n;
  };
  // Worker -> edge: the worker writes a batch, the edge reads it into frames to send.
  const workerToEdge = (
    write: (m: Parameters<typeof encodeWorkerMessage>[0]) => Buffer,
    read: (b: Buffer) => ReturnType<typeof decodeWorkerMessage>,
  ) => {
    const bytes = write({ workerId: '', frames: outbound.map(frameToWire), credit: 64, bounced: [] });
    let n = 0;
    for (const w of read(bytes).frames) if (outboundFrameFromWire(w)) n++;
    return n;
  };
  const inb = compare(
    () => edgeToWorker(encodeEdgeMessage, decodeEdgeMessage),
    () => edgeToWorker(reference.requestSerialize, reference.requestDeserialize),
  );
  const outb = compare(
    () => workerToEdge(encodeWorkerMessage, decodeWorkerMessage),
    () => workerToEdge(reference.responseSerialize, reference.responseDeserialize),
  );
  return [
    {
      name: `relay edge->worker, write+read, ESP 1400B frames in batches of ${BATCH}`,
      value: inb.subject,
      unit: 'frame/s',
      reference: { name: 'proto-loader serializers', value: inb.reference },
    },
    {
      name: `relay worker->edge, write+read, ESP 1400B frames in batches of ${BATCH}`,
      value: outb.subject,
      unit: 'frame/s',
      reference: { name: 'proto-loader serializers', value: outb.reference },
    },
  ];
}
