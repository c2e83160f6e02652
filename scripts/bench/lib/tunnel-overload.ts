/**
 * Overload through an established tunnel (issue #14, "2x overload"): iperf3 UDP at a fixed rate,
 * about twice what the tunnel carried in its TCP round, for a bounded few seconds, one way or the
 * other (client -> host, or host -> client with `-R`). While it runs, the resident memory of every
 * `ikegate` process in the client and gateway namespaces is sampled every 250 ms; the gateway's
 * /metrics is read before and after. Reported, not asserted (benches measure):
 *   - RSS per process, first vs last sample: "RSS flat: yes/no (first X MiB, last Y MiB)". The
 *     first sample is the one taken 1 s into the flood (queues have filled by then); flat means the
 *     last is at most max(4 MiB, 10 %) above it: bounded memory under overload.
 *   - the CPU of every process in both namespaces over the flood, and each ikegate process's RSS
 *     2 s after it (memory given back or held);
 *   - the drops ikegate counted (every `ikegate_drops_total{layer,reason}` series that moved), its
 *     TUN and ESP packet counters, and what iperf3 saw lost.
 * `ikegate connect` serves no /metrics, so the client's own drops (e.g. its stream's 'congested'
 * ESP) are not counted here; its RSS is.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { IkegateProcess } from '../../../test/interop/lib/ikegate-process.js';
import { iperf3 } from './iperf.js';
import { cpuPercent, cpuTicks, formatCpu, nsProcesses, rssKiB } from './ns-processes.js';

const SAMPLE_MS = 250;
const SETTLE_MS = 1000;
/** RSS is read once more this long after the flood: memory given back, or held. */
const AFTER_MS = 2000;
/** UDP payload: fits the tunnels' 1400-octet inner MTU with IP and UDP headers (no fragments). */
const DATAGRAM = 1300;
const MiB = 1024;

export interface FloodTarget {
  readonly label: string;
  readonly clientNs: string;
  readonly gatewayNs: string;
  /** The host behind the gateway (iperf3 server) and the client's source (its virtual IP). */
  readonly server: string;
  readonly src: string;
  readonly port: number;
  /** The gateway (`ikegate up`), whose control API serves /metrics. */
  readonly gateway: IkegateProcess;
}

/** Every sample of the Prometheus text whose name is `name`, keyed by its label set as written. */
export function metricSeries(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}

/** The series of `name` that grew between two scrapes, as "labels +delta" (none: "none"). */
function grown(before: string, after: string, name: string): string {
  const b = metricSeries(before, name);
  const rows = [...metricSeries(after, name)]
    .map(([labels, v]) => [labels, v - (b.get(labels) ?? 0)] as const)
    .filter(([, d]) => d > 0)
    .map(([labels, d]) => `${labels.replace(/[{}"]/g, '')} +${d}`);
  return rows.length > 0 ? rows.join(', ') : 'none';
}

function mib(kib: number): string {
  return (kib / MiB).toFixed(1);
}

/**
 * One flood of `seconds` at `bitsPerSecond` (`reverse`: host -> client). Returns the report lines
 * (already indented for the bench's output).
 */
export async function flood(
  t: FloodTarget,
  o: { readonly bitsPerSecond: number; readonly seconds: number; readonly reverse: boolean },
): Promise<string[]> {
  const direction = o.reverse ? 'host -> client' : 'client -> host';
  const metricsBefore = t.gateway.metrics();
  const procs = nsProcesses([t.clientNs, t.gatewayNs]).filter(
    (p) => p.what.startsWith('ikegate-') && !p.what.endsWith('(launcher)'),
  );
  /** Per process: [ms since the flood started, RSS KiB]. */
  const samples = new Map<string, [number, number][]>(procs.map((p) => [p.key, []]));
  const namespaces = [t.clientNs, t.gatewayNs];
  const ticks = cpuTicks(namespaces);
  const start = Date.now();
  let done = false;
  const run = iperf3({
    label: `${t.label} flood`,
    netns: t.clientNs,
    server: t.server,
    src: t.src,
    port: t.port,
    seconds: o.seconds,
    extra: [
      '-u',
      '-b',
      String(Math.round(o.bitsPerSecond)),
      '-l',
      String(DATAGRAM),
      ...(o.reverse ? ['-R'] : []),
    ],
  })
    .catch((e: Error) => ({ error: e.message }) as const)
    .finally(() => (done = true));
  while (!done) {
    for (const p of procs) {
      const kib = rssKiB(p.pid);
      if (kib !== undefined) samples.get(p.key)!.push([Date.now() - start, kib]);
    }
    await sleep(SAMPLE_MS);
  }
  const report = await run;
  const cpu = cpuPercent(ticks, cpuTicks(namespaces), (Date.now() - start) / 1000);
  const metricsAfter = t.gateway.metrics();
  await sleep(AFTER_MS);
  const rssAfter = new Map(procs.map((p) => [p.key, rssKiB(p.pid)]));

  const offered = o.bitsPerSecond / 1e6;
  const took = (Date.now() - start) / 1000;
  const lines = [
    `${t.label}, UDP flood ${direction}: offered ${offered.toFixed(0)} Mbit/s for ${o.seconds} s (iperf3 done after ${took.toFixed(1)} s)`,
  ];
  if ('error' in report && report.error !== undefined) lines.push(`  iperf3: ${report.error}`);
  else {
    const sent = 'end' in report ? report.end?.sum_sent : undefined;
    const got = 'end' in report ? report.end?.sum_received : undefined;
    const packets = got?.packets ?? 0;
    const lost = got?.lost_packets ?? 0;
    const delivered = ((packets - lost) * DATAGRAM * 8) / (got?.seconds ?? o.seconds) / 1e6;
    lines.push(
      `  iperf3: sent ${((sent?.bits_per_second ?? 0) / 1e6).toFixed(0)} Mbit/s, delivered ${delivered.toFixed(0)} Mbit/s (payload), lost ${lost} of ${packets} datagrams (${(got?.lost_percent ?? 0).toFixed(1)}%)`,
    );
  }
  for (const p of procs) {
    const series = samples.get(p.key)!.map(([, kib]) => kib);
    if (series.length === 0) continue;
    const settled = samples.get(p.key)!.findIndex(([ms]) => ms >= SETTLE_MS);
    const first = series[settled >= 0 ? settled : 0]!;
    const last = series.at(-1)!;
    const flat = last - first <= Math.max(4 * MiB, first * 0.1);
    lines.push(
      `  ${p.key}: RSS flat: ${flat ? 'yes' : 'no'} (first ${mib(first)} MiB, last ${mib(last)} MiB; at flood start ${mib(series[0]!)}, max ${mib(Math.max(...series))}, ${series.length} samples; ${AFTER_MS / 1000} s after ${mib(rssAfter.get(p.key) ?? 0)})`,
    );
  }
  lines.push(
    `  CPU during the flood: ${formatCpu(cpu) || '(no process >= 1%)'}`,
    `  gateway drops (ikegate_drops_total, during the flood): ${grown(metricsBefore, metricsAfter, 'ikegate_drops_total')}`,
    `  gateway TUN packets: ${grown(metricsBefore, metricsAfter, 'ikegate_tun_packets_total')}; ESP packets: ${grown(metricsBefore, metricsAfter, 'ikegate_esp_packets_total')}`,
    `  client drops: not counted (ikegate connect serves no /metrics)`,
  );
  return lines;
}
