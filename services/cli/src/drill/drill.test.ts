/**
 * `ikegate drill` without a cluster: the outage arithmetic, the bars, the summary and HTML report,
 * argument parsing (bad arguments: exit 2 and a message naming the problem), the counters read
 * from /metrics and the probe datagram. The drill against real processes is
 * test/cluster/drill.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DRILL_USAGE, parseDrillArgs, parseDuration } from './args.js';
import { metricSum, readCounters } from './drill.js';
import { drillMain, progressUi } from './main.js';
import { probeDatagram } from './peers.js';
import { escapeHtml, htmlReport } from './report-html.js';
import {
  type DrillResult,
  formatResult,
  judge,
  peerOutage,
  percentile,
  progressBar,
  quantiles,
} from './stats.js';

function sink(tty = false) {
  const chunks: string[] = [];
  return { chunks, isTTY: tty, write: (s: string) => chunks.push(s), text: () => chunks.join('') };
}

const result = (over: Partial<DrillResult> = {}): DrillResult => ({
  fault: 'kill-worker',
  target: 'local cluster',
  topology: { workers: 3, edges: 2, leaseTtlMs: 10_000 },
  peers: { count: 4, established: 4, transport: 'udp', probeIntervalMs: 100 },
  outageMs: { p50: 0, p99: 700, max: 700 },
  affected: { count: 1, outageMs: { p50: 700, p99: 700, max: 700 } },
  sasLost: 0,
  reauths: 0,
  probes: { sent: 100, answered: 99 },
  esp: { sent: 100, received: 98, lost: 2, unsendable: 0 },
  clusterDrops: { 'w1 ike/message_id_out_of_window': 3 },
  drillLoopDelayMs: { p99: 12, max: 30 },
  checks: [{ name: 'SAs of w2 held by the others', ok: true, detail: '1/1' }],
  timeline: [
    { t: 0, source: 'drill', what: 'kill -9 w2 <pid 1>' },
    { t: 350, source: 'cluster', what: 'w1: member-dead w2' },
  ],
  perPeer: [
    {
      n: 1,
      transport: 'udp',
      edge: 'e1',
      workerBefore: 'w2',
      worker: 'w1',
      outageMs: 700,
      recovered: true,
      gaps: [{ from: -10, to: 790 }],
    },
    { n: 2, transport: 'udp', edge: 'e2', worker: 'w1', outageMs: 0, recovered: true, gaps: [] },
  ],
  window: { from: -3000, to: 8000 },
  failures: [],
  ...over,
});

describe('drill arithmetic', () => {
  test('percentile is nearest-rank; quantiles of an empty set are 0', () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2);
    assert.equal(percentile([1, 2, 3, 4], 99), 4);
    assert.equal(percentile([], 99), 0);
    assert.deepEqual(quantiles([5, 1, 3]), { p50: 3, p99: 5, max: 5 });
    assert.deepEqual(quantiles([]), { p50: 0, p99: 0, max: 0 });
  });

  test('a peer answered every interval has no outage; one gap is its length minus one interval', () => {
    const steady = Array.from({ length: 50 }, (_, i) => i * 100);
    assert.deepEqual(peerOutage(steady, 0, 4950, 100), { outageMs: 0, recovered: true, gaps: [] });
    const gap = [...steady.filter((t) => t <= 1000), ...steady.filter((t) => t >= 1800)];
    const o = peerOutage(gap, 0, 4950, 100);
    assert.equal(o.outageMs, 700);
    assert.equal(o.recovered, true);
    assert.deepEqual(o.gaps, [{ from: 1000, to: 1800 }]);
  });

  test('answers outside the window are context only; silence to the end is an outage not recovered', () => {
    const answers = [-200, -100, 0, 100, 200];
    const o = peerOutage(answers, 0, 3000, 100);
    assert.equal(o.recovered, false);
    assert.equal(o.outageMs, 2700);
    assert.deepEqual(o.gaps, [{ from: 200, to: 3000 }]);
    // The last answer before the window counts as its start.
    assert.equal(peerOutage([-50, 500], 0, 550, 100).outageMs, 450);
    // No answer at all: the whole window.
    assert.deepEqual(peerOutage([], 0, 1000, 100), {
      outageMs: 900,
      recovered: false,
      gaps: [{ from: 0, to: 1000 }],
    });
  });

  test('judge: each failed bar in words; none when every bar holds', () => {
    const r = result();
    assert.deepEqual(judge(r, { maxP99Ms: 2000, maxLost: 0, maxReauths: 0 }), []);
    const bad = result({
      outageMs: { p50: 1, p99: 2500, max: 3000 },
      sasLost: 2,
      reauths: 1,
      peers: { count: 4, established: 3, transport: 'udp', probeIntervalMs: 100 },
      checks: [{ name: 'w2 fenced', ok: false, detail: 'holds 1' }],
    });
    assert.deepEqual(judge(bad, { maxP99Ms: 2000, maxLost: 0, maxReauths: 0 }), [
      'only 3 of 4 peers set up',
      'outage p99 2500 ms > 2000 ms',
      '2 SAs lost (at most 0 allowed)',
      '1 re-authentications (at most 0 allowed)',
      'w2 fenced: holds 1',
    ]);
    assert.deepEqual(judge(bad, { maxLost: 5, maxReauths: 5 }).length, 2, 'no p99 bar unless given');
  });

  test('the summary names every figure and the timeline relative to the fault', () => {
    const text = formatResult(result());
    for (const s of [
      'outage        p50 0 ms  p99 700 ms  max 700 ms',
      'SAs lost      0',
      're-auths      0',
      'ESP           100 sent, 98 accepted by the workers, 2 lost',
      'w1 ike/message_id_out_of_window 3',
      '+350 ms  cluster  w1: member-dead w2',
      'PASS',
    ])
      assert.ok(text.includes(s), `${s} in\n${text}`);
    assert.match(formatResult(result({ failures: ['x'] })), /FAIL: x\n$/);
    // A running cluster (--control): what the drill cannot know is said so, not shown as 0 or -1.
    const remote = formatResult(
      result({
        topology: { workers: 3, edges: 2, leaseTtlMs: 0 },
        esp: { sent: 10, received: -1, lost: -1, unsendable: 0 },
      }),
    );
    assert.match(remote, /lease TTL not known/);
    assert.match(remote, /ESP {11}10 sent \(what the workers accepted is not read through the control API\)/);
    assert.doesNotMatch(remote, /-1/);
    assert.match(
      formatResult(
        result({
          perPeer: [
            {
              n: 7,
              transport: 'tcp',
              edge: 'e1',
              workerBefore: 'w2',
              worker: 'w3',
              outageMs: 9,
              recovered: false,
              gaps: [],
            },
          ],
        }),
      ),
      /not answering peer 7 \(tcp, w2 -> w3\)/,
    );
  });

  test('the HTML report is one self-contained page: inline SVG timeline, escaped text, no external asset', () => {
    const html = htmlReport(result());
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.ok(html.includes('kill -9 w2 &#60;pid 1&#62;'), 'event text escaped');
    assert.doesNotMatch(html, /<script|<link|\bsrc=|href=/i);
    assert.doesNotMatch(html.replace('xmlns="http://www.w3.org/2000/svg"', ''), /https?:\/\//);
    assert.match(html, /<rect [^>]*fill="#e53935"><title>peer 1 /, 'the peer gap is plotted');
    assert.equal(escapeHtml(`<a href="x">&'`), '&#60;a href=&#34;x&#34;&#62;&#38;&#39;');
  });

  test('progress bar: bounded, proportional', () => {
    assert.equal(progressBar(5, 10, 10, 'half'), '[#####.....] half');
    assert.equal(progressBar(50, 10, 4, ''), '[####] ');
    assert.equal(progressBar(1, 0, 4, ''), '[....] ');
  });

  test('progress: one rewritten line on a terminal, a line per few seconds otherwise, nothing with --quiet', () => {
    const tty = sink(true);
    const ui = progressUi(tty, false);
    ui.step('traffic');
    ui.progress(1, 2, 'a');
    ui.progress(2, 2, 'b');
    ui.end();
    assert.match(
      tty.text().replaceAll('\x1b', '<ESC>'),
      /^\rtraffic: \[#+\.*\] a<ESC>\[K\rtraffic: \[#+\] b<ESC>\[K\n$/,
    );
    const pipe = sink(false);
    const p = progressUi(pipe, false);
    p.step('traffic');
    p.progress(1, 2, 'a');
    p.progress(2, 2, 'b'); // within 3 s of the last line: not written
    assert.equal(pipe.chunks.length, 2);
    const quiet = sink(true);
    const q = progressUi(quiet, true);
    q.step('x');
    q.progress(1, 1, 'y');
    q.end();
    assert.equal(quiet.text(), '');
  });
});

describe('drill arguments', () => {
  test('defaults: local, 3 workers, 2 edges, 60 mixed peers, a probe every 100 ms, bars 0 lost and 0 re-auths', () => {
    const o = parseDrillArgs(['kill-worker']);
    assert.deepEqual(o.local, { workers: 3, edges: 2, leaseTtlMs: 10_000 });
    assert.equal(o.remote, undefined);
    assert.equal(o.peers, 60);
    assert.equal(o.transport, 'mix');
    assert.equal(o.probeIntervalMs, 100);
    assert.deepEqual(o.bars, { maxLost: 0, maxReauths: 0 });
    const p = parseDrillArgs([
      'stop-worker',
      '--max-p99',
      '2s',
      '--lease-ttl',
      '4',
      '--stop-for',
      '6.5',
      '--json',
    ]);
    assert.equal(p.bars.maxP99Ms, 2000);
    assert.equal(p.local?.leaseTtlMs, 4000);
    assert.equal(p.stopForMs, 6500);
    assert.equal(p.json, true);
  });

  test('durations: 2s, 1.5s, 1500ms, 1500', () => {
    assert.equal(parseDuration('2s', 'x'), 2000);
    assert.equal(parseDuration('1.5s', 'x'), 1500);
    assert.equal(parseDuration('1500ms', 'x'), 1500);
    assert.equal(parseDuration('1500', 'x'), 1500);
    assert.throws(() => parseDuration('2 minutes', '--max-p99'), /--max-p99 must be a duration/);
  });

  for (const [argv, message] of [
    [[], /which fault\?/],
    [['kill-worker', 'kill-edge'], /one fault at a time/],
    [['explode'], /unknown fault explode/],
    [['redis-failover'], /redis-failover is not supported yet: it needs a Redis Sentinel topology/],
    [['partition-worker'], /partition-worker is not supported yet/],
    [['kill-worker', '--peers', '0'], /--peers must be an integer 1-10000, got 0/],
    [['kill-worker', '--peers', '2x'], /--peers must be an integer/],
    [['kill-worker', '--transport', 'sctp'], /--transport must be udp, tcp or mix/],
    [['kill-worker', '--max-p99', 'soon'], /--max-p99 must be a duration/],
    [['kill-worker', '--lease-ttl', '0.5'], /--lease-ttl must be a number of seconds 1-600, got 0.5/],
    [['kill-edge', '--edges', '1'], /kill-edge needs --edges 2 or more/],
    [['kill-worker', '--stop-for', '3'], /--stop-for is for stop-worker/],
    [['kill-worker', '--control', 'http://127.0.0.1:1'], /kill-worker needs the processes \(--local\)/],
    [['drain-worker', '--control', 'http://127.0.0.1:1'], /--control needs --token-file/],
    [['drain-worker', '--control', 'ftp://x', '--token-file', 'f'], /--control must be an http\(s\) URL/],
    [['drain-worker', '--local', '--control', 'http://x'], /--local or --control, not both/],
    [['kill-worker', '--edge', '127.0.0.1:1:2:3'], /go with --control/],
    [['kill-worker', '--bogus'], /Unknown option '--bogus'/],
  ] as const)
    test(`ikegate drill ${argv.join(' ')}: exit 2, ${String(message)}`, async () => {
      const out = sink();
      const err = sink();
      assert.equal(await drillMain(argv, out, err), 2);
      assert.equal(out.text(), '');
      const [first] = err.text().split('\n');
      assert.match(first!, /^ikegate drill: /);
      assert.match(first!, message);
      assert.ok(err.text().endsWith(DRILL_USAGE), 'the usage follows');
    });

  test('--help prints the usage on stdout and exits 0', async () => {
    const out = sink();
    assert.equal(await drillMain(['--help'], out, sink()), 0);
    assert.equal(out.text(), DRILL_USAGE);
  });
});

describe('drill counters and probe packets', () => {
  test('counters from a /metrics page: ESP accepted inbound, drops by layer/reason', () => {
    const page = [
      '# HELP ikegate_esp_packets_total x',
      'ikegate_esp_packets_total{direction="in"} 40',
      'ikegate_esp_packets_total{direction="out"} 7',
      'ikegate_drops_total{layer="ike",reason="message_id_out_of_window"} 3',
      'ikegate_drops_total{layer="esp",reason="no_device"} 40',
      'ikegate_esp_packets_total_other{direction="in"} 99',
    ].join('\n');
    assert.equal(metricSum(page, 'ikegate_esp_packets_total', { direction: 'in' }), 40);
    assert.equal(metricSum(page, 'ikegate_esp_packets_total'), 47);
    assert.deepEqual(readCounters(page), {
      espIn: 40,
      drops: { 'ike/message_id_out_of_window': 3, 'esp/no_device': 40 },
    });
  });

  test('the probe datagram is IPv4/UDP from the peer to 10.0.0.1 with a valid header checksum', () => {
    const p = probeDatagram(new Uint8Array([100, 64, 0, 7]), 42);
    assert.equal(p[0], 0x45);
    assert.equal(p[9], 17);
    assert.deepEqual([...p.subarray(12, 20)], [100, 64, 0, 7, 10, 0, 0, 1]);
    const v = new DataView(p.buffer);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    assert.equal(sum, 0xffff, 'one-complement sum of a valid header');
    assert.equal(v.getUint32(28), 42);
  });
});
