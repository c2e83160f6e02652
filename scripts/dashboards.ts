/**
 * The Grafana dashboards shipped in helm/ikegate/dashboards/ (issue #13), generated so that every
 * panel follows the same rules: one Prometheus datasource variable, the cluster / namespace /
 * instance variables in every selector, unique panel ids, a unit on every axis.
 *
 *   npx tsx scripts/dashboards.ts          write the JSON files
 *   npx tsx scripts/dashboards.ts --check  exit 1 if a file differs from what would be written
 *
 * test/observability/dashboards.test.ts runs the check, validates the files' structure and asks a
 * real Prometheus, scraping a running cluster, for every panel's query.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export const DASHBOARD_DIR = new URL('../helm/ikegate/dashboards/', import.meta.url).pathname;

/** The label selector every query carries (Grafana substitutes the variables). */
const S = 'cluster="$cluster",namespace="$namespace",instance=~"$instance"';
const R = '$__rate_interval';
/** Rare events (takeovers, failovers) stay visible this long after they happened. */
const RARE = '1h';

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly type?: 'timeseries' | 'stat';
  readonly targets: readonly { readonly expr: string; readonly legend: string }[];
  /** Grid width (of 24); height is 8. */
  readonly w?: number;
}

interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly panels: readonly PanelSpec[];
  /** A variable after cluster / namespace / instance (one value, from `label_values(query)`). */
  readonly extraVariable?: { readonly name: string; readonly label: string; readonly query: string };
}

/** The per-peer dashboard's selector: one configured peer (the `peer` label, a peer entry's name). */
const P = `${S},peer="$peer"`;

const q = (expr: string, legend: string) => ({ expr, legend });

export const DASHBOARDS: readonly DashboardSpec[] = [
  {
    uid: 'ikegate-overview',
    title: 'ikegate / Overview',
    description: 'Tunnels, setups, failures, throughput and drops across the cluster.',
    panels: [
      {
        title: 'Peers online (established IKE SAs)',
        description: 'IKE SAs in the established state, summed over workers.',
        unit: 'none',
        type: 'stat',
        w: 6,
        targets: [q(`sum(ikegate_ike_sas{${S},status="established"})`, 'established')],
      },
      {
        title: 'CHILD SAs',
        description: 'CHILD SAs (ESP) installed, summed over workers.',
        unit: 'none',
        type: 'stat',
        w: 6,
        targets: [q(`sum(ikegate_child_sas{${S}})`, 'child SAs')],
      },
      {
        title: 'IKE SAs by state',
        description: 'IKE SAs held by state: established, or half-open / being set up / deleted (other).',
        unit: 'none',
        w: 12,
        targets: [q(`sum by (status) (ikegate_ike_sas{${S}})`, '{{status}}')],
      },
      {
        title: 'Setups per second by transport',
        description: 'IKE SAs that completed IKE_AUTH per second, by the transport they came over.',
        unit: 'ops',
        targets: [
          q(`sum by (transport) (rate(ikegate_ike_sa_setup_seconds_count{${S}}[${R}]))`, '{{transport}}'),
        ],
      },
      {
        title: 'Setup time (p50, p99)',
        description: 'From the first IKE_SA_INIT to the established IKE_AUTH.',
        unit: 's',
        targets: [
          q(
            `histogram_quantile(0.5, sum by (le) (rate(ikegate_ike_sa_setup_seconds_bucket{${S}}[${R}])))`,
            'p50',
          ),
          q(
            `histogram_quantile(0.99, sum by (le) (rate(ikegate_ike_sa_setup_seconds_bucket{${S}}[${R}])))`,
            'p99',
          ),
        ],
      },
      {
        title: 'Refused exchanges by reason',
        description:
          'IKE exchanges refused by us (reason) or by the peer (peer_ prefix): authentication failures, no proposal chosen, COOKIE demands.',
        unit: 'ops',
        targets: [
          q(
            `sum by (exchange, reason) (rate(ikegate_ike_rejections_total{${S}}[${R}]))`,
            '{{exchange}} {{reason}}',
          ),
        ],
      },
      {
        title: 'Throughput through the tunnels',
        description: 'Inner packet bits per second through ESP, in (decapsulated) and out.',
        unit: 'bps',
        targets: [
          q(`sum by (direction) (rate(ikegate_esp_inner_bytes_total{${S}}[${R}])) * 8`, '{{direction}}'),
        ],
      },
      {
        title: 'Drops by layer and reason',
        description: 'Frames, packets and messages dropped, by where (layer) and why (reason).',
        unit: 'pps',
        w: 24,
        targets: [
          q(`sum by (layer, reason) (rate(ikegate_drops_total{${S}}[${R}]))`, '{{layer}} {{reason}}'),
        ],
      },
    ],
  },
  {
    uid: 'ikegate-ha',
    title: 'ikegate / High availability',
    description: 'Shard ownership, takeovers, adoptions and the store behind them.',
    panels: [
      {
        title: 'Shards owned per worker',
        description: 'Shard leases each worker holds; together they should cover every shard.',
        unit: 'none',
        targets: [q(`sum by (instance) (ikegate_shards_owned{${S}})`, '{{instance}}')],
      },
      {
        title: 'Shards without an owner',
        description:
          'Shards no worker holds a live lease on, as the control process reads them from Redis (seen even when no worker runs): frames for them wait at the edges.',
        unit: 'none',
        type: 'stat',
        targets: [q(`max(ikegate_cluster_shards_without_owner{${S}})`, 'unowned')],
      },
      {
        title: 'Takeovers (last hour)',
        description:
          'Shards taken from a worker that was gone, by how its absence was seen; and leases handed back because the shard could not be taken (list: its SAs were unreadable in the store; the shard is tried again).',
        unit: 'none',
        targets: [
          q(`sum by (reason) (increase(ikegate_shard_takeovers_total{${S}}[${RARE}]))`, '{{reason}}'),
          q(
            `sum by (stage) (increase(ikegate_shard_take_failures_total{${S}}[${RARE}]))`,
            'handed back: {{stage}}',
          ),
        ],
      },
      {
        title: 'SAs adopted (last hour)',
        description: 'IKE SAs taken over from another worker without re-authentication.',
        unit: 'none',
        targets: [
          q(
            `sum by (instance) (increase(ikegate_ike_sa_events_total{${S},event="adopted"}[${RARE}]))`,
            '{{instance}}',
          ),
        ],
      },
      {
        title: 'Failover time (p50, p99, last hour)',
        description:
          'From learning that a shard holder was gone to the shard leased elsewhere with its SAs adopted.',
        unit: 's',
        targets: [
          q(
            `histogram_quantile(0.5, sum by (le) (increase(ikegate_shard_takeover_seconds_bucket{${S}}[${RARE}])))`,
            'p50',
          ),
          q(
            `histogram_quantile(0.99, sum by (le) (increase(ikegate_shard_takeover_seconds_bucket{${S}}[${RARE}])))`,
            'p99',
          ),
        ],
      },
      {
        title: 'SAs lost to the reconnect wait (last hour)',
        description:
          'TCP/TLS peers whose stream closed and that did not come back within failover.waitSeconds: their SAs were deleted (connection-lost).',
        unit: 'none',
        targets: [
          q(
            `sum(increase(ikegate_ike_sa_events_total{${S},event="deleted",reason="connection-lost"}[${RARE}]))`,
            'deleted after the wait',
          ),
        ],
      },
      {
        title: 'Store write latency (p99)',
        description: 'One fenced SA write or removal in Redis.',
        unit: 's',
        targets: [
          q(
            `histogram_quantile(0.99, sum by (le, kind) (rate(ikegate_store_write_seconds_bucket{${S}}[${R}])))`,
            '{{kind}}',
          ),
        ],
      },
      {
        title: 'Pending writes and write failures',
        description:
          'SAs changed but not yet in the store, and failed writes per second (kept for retry, or fenced).',
        unit: 'none',
        targets: [
          q(`sum by (instance) (ikegate_store_pending_writes{${S}})`, 'pending {{instance}}'),
          q(`sum by (reason) (rate(ikegate_store_write_failures_total{${S}}[${R}]))`, 'failed/s {{reason}}'),
        ],
      },
    ],
  },
  {
    uid: 'ikegate-edge',
    title: 'ikegate / Edges and transports',
    description: 'Connections, frames and bytes by transport, closes and drops at the edges.',
    panels: [
      {
        title: 'Open connections by transport',
        description: 'RFC 9329 TCP and TLS streams open at the edges.',
        unit: 'none',
        targets: [q(`sum by (transport) (ikegate_connections{${S}})`, '{{transport}}')],
      },
      {
        title: 'Frames by transport, kind and direction',
        description: 'IKE, ESP and keepalive frames through the edges.',
        unit: 'pps',
        targets: [
          q(
            `sum by (transport, kind, direction) (rate(ikegate_frames_total{${S}}[${R}]))`,
            '{{transport}} {{kind}} {{direction}}',
          ),
        ],
      },
      {
        title: 'Bits by transport and direction',
        description: 'Frame payload through the edges.',
        unit: 'bps',
        targets: [
          q(
            `sum by (transport, direction) (rate(ikegate_frame_bytes_total{${S}}[${R}])) * 8`,
            '{{transport}} {{direction}}',
          ),
        ],
      },
      {
        title: 'IKE messages by exchange',
        description: 'IKE messages in and out by exchange type.',
        unit: 'ops',
        targets: [
          q(
            `sum by (exchange, direction) (rate(ikegate_ike_messages_total{${S}}[${R}]))`,
            '{{exchange}} {{direction}}',
          ),
        ],
      },
      {
        title: 'Connection events by reason (last hour)',
        description: 'Streams opened, closed (by reason) and refused (e.g. connection_limit).',
        unit: 'none',
        targets: [
          q(
            `sum by (transport, event, reason) (increase(ikegate_connection_events_total{${S}}[${RARE}]))`,
            '{{transport}} {{event}} {{reason}}',
          ),
        ],
      },
      {
        title: 'Transport and relay drops',
        description: 'Drops at the edge layers: UDP, RFC 9329 stream framing, TLS, the relay and rerouting.',
        unit: 'pps',
        targets: [
          q(
            `sum by (layer, reason) (rate(ikegate_drops_total{${S},layer=~"udp|iketcp|tls|edge|relay"}[${RARE}]))`,
            '{{layer}} {{reason}}',
          ),
        ],
      },
      {
        title: 'TLS handshakes (last hour)',
        description:
          'Handshakes on the RFC 9329 TLS listener: completed, by TLS version; failed, by reason (protocol: not TLS or nothing in common; timeout; reset: the client went away).',
        unit: 'none',
        targets: [
          q(
            `sum by (result, version, reason) (increase(ikegate_tls_handshakes_total{${S}}[${RARE}]))`,
            '{{result}} {{version}}{{reason}}',
          ),
        ],
      },
    ],
  },
  {
    uid: 'ikegate-worker',
    title: 'ikegate / Workers and data plane',
    description: 'ESP and TUN packets, IKE processing cost, event-loop lag, CPU and memory per SA.',
    panels: [
      {
        title: 'ESP packets by direction',
        description: 'ESP packets encapsulated (out) and decapsulated (in).',
        unit: 'pps',
        targets: [q(`sum by (direction) (rate(ikegate_esp_packets_total{${S}}[${R}]))`, '{{direction}}')],
      },
      {
        title: 'TUN packets by direction',
        description: 'Packets read from (rx) and written to (tx) the workers\u2019 TUN devices.',
        unit: 'pps',
        targets: [q(`sum by (direction) (rate(ikegate_tun_packets_total{${S}}[${R}]))`, '{{direction}}')],
      },
      {
        title: 'IKE message processing time (p99)',
        description: 'Time the state machine spends on one IKE message.',
        unit: 's',
        targets: [
          q(
            `histogram_quantile(0.99, sum by (le) (rate(ikegate_ike_step_seconds_bucket{${S}}[${R}])))`,
            'p99',
          ),
        ],
      },
      {
        title: 'Event-loop lag (p99)',
        description: 'Node.js event-loop delay per process: the latency every packet and message waits.',
        unit: 's',
        targets: [q(`max by (instance) (ikegate_nodejs_eventloop_lag_p99_seconds{${S}})`, '{{instance}}')],
      },
      {
        title: 'CPU per process',
        description: 'CPU seconds per second (1 = one core).',
        unit: 'percentunit',
        targets: [
          q(`sum by (instance) (rate(ikegate_process_cpu_seconds_total{${S}}[${R}]))`, '{{instance}}'),
        ],
      },
      {
        title: 'Memory per process',
        description: 'Resident set size and V8 heap in use.',
        unit: 'bytes',
        targets: [
          q(`sum by (instance) (ikegate_process_resident_memory_bytes{${S}})`, 'RSS {{instance}}'),
          q(`sum by (instance) (ikegate_nodejs_heap_size_used_bytes{${S}})`, 'heap {{instance}}'),
        ],
      },
      {
        title: 'RSS per established IKE SA',
        description:
          'Resident memory divided by the SAs each worker holds (the bar: 2 KiB of heap per IKE+CHILD SA).',
        unit: 'bytes',
        targets: [
          q(
            `sum by (instance) (ikegate_process_resident_memory_bytes{${S}}) / on (instance) clamp_min(sum by (instance) (ikegate_ike_sas{${S},status="established"}), 1)`,
            '{{instance}}',
          ),
        ],
      },
    ],
  },
  {
    uid: 'ikegate-peer',
    title: 'ikegate / Peer',
    description:
      "One configured peer (a peer entry of the configuration): its SAs, rekeys, traffic and last errors. The `peer` label is the entry's name; identities matched by a wildcard entry share it.",
    extraVariable: {
      name: 'peer',
      label: 'Peer',
      query: 'label_values(ikegate_peer_ike_sas{cluster="$cluster",namespace="$namespace"}, peer)',
    },
    panels: [
      {
        title: 'Established IKE SAs',
        description: "The peer's established IKE SAs, summed over workers.",
        unit: 'none',
        type: 'stat',
        w: 6,
        targets: [q(`sum(ikegate_peer_ike_sas{${P}})`, 'IKE SAs')],
      },
      {
        title: 'CHILD SAs',
        description: "The peer's CHILD SAs (ESP), summed over workers.",
        unit: 'none',
        type: 'stat',
        w: 6,
        targets: [q(`sum(ikegate_peer_child_sas{${P}})`, 'CHILD SAs')],
      },
      {
        title: 'Last established',
        description: 'When an IKE SA of this peer was last established (a reconnect or a new identity).',
        unit: 'dateTimeFromNow',
        type: 'stat',
        w: 12,
        targets: [q(`max(ikegate_peer_last_established_timestamp_seconds{${P}}) * 1000`, 'established')],
      },
      {
        title: 'Traffic',
        description: "Inner bits per second through the peer's CHILD SAs, in (from the peer) and out.",
        unit: 'bps',
        targets: [
          q(`sum by (direction) (rate(ikegate_peer_esp_inner_bytes_total{${P}}[${R}])) * 8`, '{{direction}}'),
        ],
      },
      {
        title: 'Packets',
        description: "Inner packets per second through the peer's CHILD SAs.",
        unit: 'pps',
        targets: [
          q(`sum by (direction) (rate(ikegate_peer_esp_packets_total{${P}}[${R}]))`, '{{direction}}'),
        ],
      },
      {
        title: 'SAs over time, by worker',
        description: "Which workers hold the peer's IKE SAs (moves show takeovers and drains).",
        unit: 'none',
        targets: [q(`sum by (instance) (ikegate_peer_ike_sas{${P}})`, '{{instance}}')],
      },
      {
        title: 'Rekeys (last hour)',
        description: 'IKE SA and CHILD SA rekeys of this peer, either side initiating.',
        unit: 'none',
        targets: [q(`sum by (kind) (increase(ikegate_peer_rekeys_total{${P}}[${RARE}]))`, '{{kind}}')],
      },
      {
        title: 'Errors by reason',
        description:
          'Refused exchanges (authentication_failed counts every attempt with an identity of this peer, also guesses), failed CHILD SAs (child_) and IKE SAs ended by a fault (dead_peer, connection_lost).',
        unit: 'none',
        targets: [q(`sum by (reason) (increase(ikegate_peer_errors_total{${P}}[${RARE}]))`, '{{reason}}')],
      },
      {
        title: 'Last errors',
        description: 'When each kind of error last happened for this peer (newest first in the legend).',
        unit: 'dateTimeFromNow',
        type: 'stat',
        w: 24,
        targets: [
          q(`max by (reason) (ikegate_peer_last_error_timestamp_seconds{${P}}) * 1000`, '{{reason}}'),
        ],
      },
    ],
  },
];

function variable(name: string, label: string, query: string, all: boolean) {
  return {
    name,
    label,
    type: 'query',
    datasource: { type: 'prometheus', uid: '${datasource}' },
    definition: query,
    query: { query, refId: `${name}-var` },
    refresh: 2,
    sort: 1,
    includeAll: all,
    multi: all,
    ...(all ? { allValue: '.*' } : {}),
    options: [],
    hide: 0,
  };
}

export function render(d: DashboardSpec): unknown {
  let x = 0;
  let y = 0;
  const panels = d.panels.map((p, i) => {
    const w = p.w ?? 12;
    if (x + w > 24) {
      x = 0;
      y += 8;
    }
    const gridPos = { h: 8, w, x, y };
    x += w;
    return {
      id: i + 1,
      type: p.type ?? 'timeseries',
      title: p.title,
      description: p.description,
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos,
      fieldConfig: { defaults: { unit: p.unit }, overrides: [] },
      // Every option the panel plugin's schema marks required (Grafana's defaults), so the file
      // passes the strict schema check (test/observability/grafana-schema.test.ts).
      options:
        (p.type ?? 'timeseries') === 'stat'
          ? {
              reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
              colorMode: 'value',
              graphMode: 'area',
              justifyMode: 'auto',
              orientation: 'auto',
              textMode: 'auto',
              wideLayout: true,
              showPercentChange: false,
              percentChangeColorMode: 'standard',
            }
          : {
              legend: { displayMode: 'list', placement: 'bottom', showLegend: true, calcs: [] },
              tooltip: { mode: 'multi', sort: 'none' },
            },
      targets: p.targets.map((t, j) => ({
        datasource: { type: 'prometheus', uid: '${datasource}' },
        expr: t.expr,
        legendFormat: t.legend,
        refId: String.fromCharCode(65 + j),
      })),
    };
  });
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['ikegate', 'ipsec', 'vpn'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Prometheus',
          type: 'datasource',
          query: 'prometheus',
          hide: 0,
          options: [],
          refresh: 1,
        },
        variable('cluster', 'Cluster', 'label_values(ikegate_build_info, cluster)', false),
        variable(
          'namespace',
          'Namespace',
          'label_values(ikegate_build_info{cluster="$cluster"}, namespace)',
          false,
        ),
        variable(
          'instance',
          'Instance',
          'label_values(ikegate_build_info{cluster="$cluster",namespace="$namespace"}, instance)',
          true,
        ),
        ...(d.extraVariable
          ? [variable(d.extraVariable.name, d.extraVariable.label, d.extraVariable.query, false)]
          : []),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

export function fileOf(d: DashboardSpec): string {
  return join(DASHBOARD_DIR, `${d.uid}.json`);
}

export function textOf(d: DashboardSpec): string {
  return `${JSON.stringify(render(d), null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  mkdirSync(DASHBOARD_DIR, { recursive: true });
  let stale = 0;
  for (const d of DASHBOARDS) {
    const file = fileOf(d);
    const text = textOf(d);
    let current: string;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = '';
    }
    if (current === text) continue;
    if (check) {
      stale++;
      process.stderr.write(`${file} is stale: run npx tsx scripts/dashboards.ts\n`);
    } else {
      writeFileSync(file, text);
      process.stdout.write(`wrote ${file}\n`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}
