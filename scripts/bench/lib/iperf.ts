/**
 * iperf3 (3.12, `-J`) as the benches run it: the client inside a network namespace, bound to a
 * source address, bounded by iperf3's own `-t` plus a 20 s margin after which it is killed.
 */
import { execFile } from 'node:child_process';

export const IPERF3 = '/usr/bin/iperf3';

/** One `end` summary of iperf3's JSON report (UDP runs fill in the datagram fields). */
export interface Iperf3Sum {
  readonly seconds?: number;
  readonly bits_per_second?: number;
  readonly lost_packets?: number;
  readonly packets?: number;
  readonly lost_percent?: number;
}

/** The parts of iperf3's JSON report the benches read (TCP and UDP tests). */
export interface Iperf3Report {
  readonly error?: string;
  readonly end?: {
    /** What the sender sent (UDP: bit/s offered). */
    readonly sum_sent?: Iperf3Sum;
    /** What the receiver got (TCP: bit/s; UDP: datagrams lost of those sent, counted there). */
    readonly sum_received?: Iperf3Sum;
  };
}

/**
 * `iperf3 -c server -B src -p port -t seconds -J ...extra` in `netns`; resolves with the report,
 * rejects with iperf3's error (or its output when it is not JSON), prefixed with `label`.
 */
export function iperf3(o: {
  readonly label: string;
  readonly netns: string;
  readonly server: string;
  readonly src: string;
  readonly port: number;
  readonly seconds: number;
  readonly extra?: readonly string[];
}): Promise<Iperf3Report> {
  const args = ['netns', 'exec', o.netns, IPERF3, '-c', o.server, '-B', o.src, '-p', String(o.port)];
  args.push('-t', String(o.seconds), '-J', ...(o.extra ?? []));
  return new Promise((resolve, reject) => {
    execFile('ip', args, { encoding: 'utf8', timeout: (o.seconds + 20) * 1000 }, (_err, stdout) => {
      try {
        const j = JSON.parse(stdout) as Iperf3Report;
        if (j.error) return reject(new Error(`${o.label}: iperf3: ${j.error}`));
        resolve(j);
      } catch {
        reject(new Error(`${o.label}: iperf3 gave no result: ${stdout.slice(0, 500)}`));
      }
    });
  });
}
