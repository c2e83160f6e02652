/**
 * JSON Schemas (2020-12, the dialect of OpenAPI 3.1) of every request part and response of the
 * control API. Fastify validates requests with them (bodies strictly: no type coercion, no unknown
 * fields) and serializes responses through them (a field not in the response schema, such as a
 * PSK, can never be sent). `/openapi.json` is generated from the same objects.
 *
 * The shapes are checked first (types, ranges, patterns); what needs the current state or the
 * config's parsers (a CIDR's host bits, a proposal's algorithms, a pool that must exist) is checked
 * by libs/config afterwards and reported the same way, field by field.
 */

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const SPI_PATTERN = '^[0-9a-fA-F]{16}$';
const CURSOR_PATTERN = '^[A-Za-z0-9_-]{1,128}$';
/** A traffic selector: `dynamic`, an IPv4/IPv6 address or CIDR (parsed for real by libs/config). */
const SELECTOR_PATTERN =
  '^(dynamic|[0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:.]{2,45}(/[0-9]{1,3})?)$';
const IPV4_PATTERN = '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$';
/** IPv4 pools: /8 to /30 (the gateway and at least one host). */
const IPV4_CIDR_PATTERN = '^[0-9]{1,3}(\\.[0-9]{1,3}){3}/([89]|[12][0-9]|30)$';
const IP_PATTERN = '^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9A-Fa-f:.]{2,45})$';
/** strongSwan proposal syntax: algorithm keywords joined by `-` (parsed by libs/config). */
const PROPOSAL_PATTERN = '^[a-z0-9_]+(-[a-z0-9_]+)*$';
const FILE_PATTERN = '^[^\\u0000]+$';

const name = { type: 'string', pattern: NAME_PATTERN, description: '1-64 of [A-Za-z0-9_.-]' } as const;
const file = { type: 'string', minLength: 1, maxLength: 4096, pattern: FILE_PATTERN } as const;
const seconds = (min: number, max: number, description: string) =>
  ({ type: 'integer', minimum: min, maximum: max, description }) as const;
const selectors = {
  type: 'array',
  minItems: 1,
  maxItems: 64,
  items: { type: 'string', pattern: SELECTOR_PATTERN },
} as const;

const authInput = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  additionalProperties: false,
  description:
    'Exactly one of: `psk` (a string of at least 16 characters, write-only; or `{ file }`, read on each worker), or `ca` (a CA certificate file: certificates chaining to it authenticate this peer).',
  properties: {
    // One schema for both forms (string or { file }) so an error names the one problem there is.
    psk: {
      type: ['string', 'object'],
      minLength: 16,
      maxLength: 1024,
      required: ['file'],
      additionalProperties: false,
      properties: { file },
    },
    ca: file,
  },
} as const;

const lifetimes = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    ikeSeconds: seconds(60, 604800, 'IKE SA lifetime'),
    childSeconds: seconds(60, 604800, 'CHILD SA lifetime'),
    rekeyMarginSeconds: seconds(0, 86400, 'rekey this long before expiry'),
  },
} as const;
const dpd = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: { intervalSeconds: seconds(0, 3600, 'liveness check after this long without traffic; 0: off') },
} as const;
const failoverOverride = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    waitSeconds: seconds(0, 3600, 'wait-for-reconnect time for this peer (overrides the cluster policy)'),
  },
} as const;
const proposals = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {
    esp: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: { type: 'string', pattern: PROPOSAL_PATTERN, maxLength: 256 },
    },
  },
} as const;

const peerFields = {
  name,
  id: {
    type: 'string',
    minLength: 1,
    maxLength: 255,
    pattern: '^(\\*|\\*[^*]+|[^*]+)$',
    description: 'The remote identity: exact, `*suffix`, or `*`',
  },
  auth: authInput,
  pool: { type: ['string', 'null'], pattern: NAME_PATTERN },
  localTs: selectors,
  remoteTs: selectors,
  proposals,
  lifetimes,
  dpd,
  failover: failoverOverride,
} as const;

/** POST /v1/peers. */
export const peerCreate = {
  type: 'object',
  required: ['name', 'id', 'auth'],
  additionalProperties: false,
  properties: peerFields,
} as const;

/** PUT /v1/peers/{name}: the whole document (`name`, if given, must be the path's). */
export const peerReplace = {
  type: 'object',
  required: ['id', 'auth'],
  additionalProperties: false,
  properties: peerFields,
} as const;

/** PATCH /v1/peers/{name}: RFC 7396 merge patch; null resets a field to its default. */
export const peerPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    id: peerFields.id,
    auth: peerFields.auth,
    pool: peerFields.pool,
    localTs: { ...selectors, type: ['array', 'null'] },
    remoteTs: { ...selectors, type: ['array', 'null'] },
    proposals,
    lifetimes,
    dpd,
    failover: failoverOverride,
  },
} as const;

const nullableSeconds = (min: number, max: number) =>
  ({ type: 'integer', minimum: min, maximum: max }) as const;

export const peerOutput = {
  type: 'object',
  required: ['name', 'id', 'auth', 'pool', 'localTs', 'remoteTs'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    id: { type: 'string' },
    auth: {
      type: 'object',
      required: ['kind'],
      additionalProperties: false,
      description: 'How the peer authenticates; a PSK itself is never returned',
      properties: {
        kind: { type: 'string', enum: ['psk', 'psk-file', 'ca'] },
        file: { type: 'string' },
        ca: { type: 'string' },
      },
    },
    pool: { type: ['string', 'null'] },
    localTs: { type: 'array', items: { type: 'string' } },
    remoteTs: { type: 'array', items: { type: 'string' } },
    proposals: {
      type: 'object',
      additionalProperties: false,
      properties: { esp: { type: 'array', items: { type: 'string' } } },
    },
    lifetimes: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ikeSeconds: nullableSeconds(60, 604800),
        childSeconds: nullableSeconds(60, 604800),
        rekeyMarginSeconds: nullableSeconds(0, 86400),
      },
    },
    dpd: {
      type: 'object',
      additionalProperties: false,
      properties: { intervalSeconds: nullableSeconds(0, 3600) },
    },
    failover: {
      type: 'object',
      additionalProperties: false,
      properties: { waitSeconds: nullableSeconds(0, 3600) },
    },
  },
} as const;

export const pageFields = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  cursor: { type: 'string', pattern: CURSOR_PATTERN, description: 'from `next` of the previous page' },
} as const;

export const peerList = {
  type: 'object',
  required: ['items', 'next'],
  additionalProperties: false,
  properties: {
    items: { type: 'array', items: peerOutput },
    next: { type: ['string', 'null'], description: 'cursor of the next page; null on the last' },
  },
} as const;

export const peerQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageFields,
    pool: { type: 'string', pattern: NAME_PATTERN },
    auth: { type: 'string', enum: ['psk', 'psk-file', 'ca'] },
  },
} as const;

export const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: name },
} as const;

export const spiParams = {
  type: 'object',
  required: ['spi'],
  additionalProperties: false,
  properties: { spi: { type: 'string', pattern: SPI_PATTERN, description: 'our IKE SPI, 16 hex digits' } },
} as const;

export const deletePeerQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    keepSas: {
      type: 'boolean',
      default: false,
      description: "true: the peer's SAs stay up until they end by themselves; otherwise each gets a DELETE",
    },
  },
} as const;

export const deletedPeer = {
  type: 'object',
  required: ['name', 'version', 'keepSas'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    version: { type: 'integer' },
    keepSas: { type: 'boolean' },
  },
} as const;

const poolFields = {
  name,
  cidr: { type: 'string', pattern: IPV4_CIDR_PATTERN, description: 'IPv4 network, /8 to /30' },
  dns: { type: 'array', maxItems: 8, items: { type: 'string', pattern: IP_PATTERN } },
} as const;

export const poolCreate = {
  type: 'object',
  required: ['name', 'cidr'],
  additionalProperties: false,
  properties: poolFields,
} as const;

export const poolReplace = {
  type: 'object',
  required: ['cidr'],
  additionalProperties: false,
  properties: poolFields,
} as const;

export const poolPatch = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { cidr: poolFields.cidr, dns: { ...poolFields.dns, type: ['array', 'null'] } },
} as const;

export const poolOutput = {
  type: 'object',
  required: ['name', 'cidr', 'dns', 'gateway', 'size', 'inUse', 'peers'],
  additionalProperties: false,
  properties: {
    name: { type: 'string' },
    cidr: { type: 'string' },
    dns: { type: 'array', items: { type: 'string' } },
    gateway: { type: 'string', description: 'the first host, ours; never handed out' },
    size: { type: 'integer', description: 'addresses that can be handed out' },
    inUse: { type: 'integer', description: 'addresses held by SAs (every reachable worker)' },
    peers: { type: 'array', items: { type: 'string' }, description: 'peers that name this pool' },
    unreachable: {
      type: 'array',
      items: { type: 'string' },
      description: 'workers that did not answer: inUse may be low',
    },
  },
} as const;

export const poolList = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: { items: { type: 'array', items: poolOutput } },
} as const;

export const failoverPolicy = {
  type: 'object',
  required: ['waitSeconds'],
  additionalProperties: false,
  properties: {
    policy: { type: 'string', enum: ['wait-for-reconnect'] },
    waitSeconds: seconds(
      0,
      3600,
      'how long an SA whose TCP/TLS stream closed is held for its peer to come back (RFC 9329 §6)',
    ),
  },
} as const;

export const failoverOutput = {
  type: 'object',
  required: ['policy', 'waitSeconds', 'overrides', 'version'],
  additionalProperties: false,
  properties: {
    policy: { type: 'string', enum: ['wait-for-reconnect'] },
    waitSeconds: { type: 'integer' },
    overrides: {
      type: 'array',
      items: {
        type: 'object',
        required: ['peer', 'waitSeconds'],
        additionalProperties: false,
        properties: { peer: { type: 'string' }, waitSeconds: { type: 'integer' } },
      },
    },
    version: { type: 'integer', description: 'managed configuration version' },
  },
} as const;

export const overrideBody = {
  type: 'object',
  required: ['waitSeconds'],
  additionalProperties: false,
  properties: { waitSeconds: seconds(0, 3600, 'wait-for-reconnect time for this peer') },
} as const;

export const peerParams = {
  type: 'object',
  required: ['peer'],
  additionalProperties: false,
  properties: { peer: name },
} as const;

/** libs/ikev2 IkeSaStatus. */
const SA_STATES = ['idle', 'init-sent', 'init-answered', 'auth-sent', 'established', 'deleted'] as const;

export const saQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...pageFields,
    peer: { type: 'string', pattern: NAME_PATTERN, description: 'configured peer name' },
    identity: {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      description: 'authenticated identity, exact or `*suffix`',
    },
    worker: { type: 'string', pattern: NAME_PATTERN },
    edge: { type: 'string', pattern: NAME_PATTERN },
    transport: { type: 'string', enum: ['udp', 'tcp', 'tls'] },
    state: { type: 'string', enum: SA_STATES },
    virtualIp: { type: 'string', pattern: IPV4_PATTERN },
  },
} as const;

const child = {
  type: 'object',
  required: ['inboundSpi', 'outboundSpi', 'packetsIn', 'packetsOut', 'bytesIn', 'bytesOut'],
  additionalProperties: false,
  properties: {
    inboundSpi: { type: 'string' },
    outboundSpi: { type: 'string' },
    packetsIn: { type: 'integer' },
    packetsOut: { type: 'integer' },
    bytesIn: { type: 'integer' },
    bytesOut: { type: 'integer' },
  },
} as const;

export const saOutput = {
  type: 'object',
  required: ['spi', 'status', 'shard', 'transport', 'remote', 'createdAt', 'children'],
  additionalProperties: false,
  properties: {
    spi: { type: 'string' },
    status: { type: 'string' },
    peerId: { type: 'string' },
    peer: { type: 'string' },
    shard: { type: 'integer' },
    worker: { type: 'string' },
    epoch: { type: 'integer', description: "the owner's lease epoch of the shard" },
    edge: { type: 'string' },
    transport: { type: 'string' },
    remote: { type: 'string' },
    virtualIp: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    establishedAt: { type: 'string', format: 'date-time' },
    lastActivity: { type: 'string', format: 'date-time' },
    children: { type: 'array', items: child },
  },
} as const;

export const saList = {
  type: 'object',
  required: ['items', 'next', 'counts', 'unreachable'],
  additionalProperties: false,
  properties: {
    items: { type: 'array', items: saOutput },
    next: { type: ['string', 'null'] },
    counts: {
      type: 'object',
      additionalProperties: { type: 'integer' },
      description: 'SAs matching the filters (all pages, any state) by state',
    },
    unreachable: {
      type: 'array',
      items: { type: 'string' },
      description: 'workers that did not answer: their SAs are missing from this page',
    },
  },
} as const;

export const rekeyBody = {
  type: 'object',
  additionalProperties: false,
  properties: { what: { type: 'string', enum: ['ike', 'children'], default: 'children' } },
} as const;

export const accepted = {
  type: 'object',
  required: ['status', 'spi'],
  additionalProperties: false,
  properties: { status: { type: 'string' }, spi: { type: 'string' }, what: { type: 'string' } },
} as const;

export const workerList = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'healthy', 'draining', 'shards'],
        additionalProperties: false,
        properties: {
          id: { type: 'string' },
          relay: { type: 'string' },
          admin: { type: 'string' },
          healthy: { type: 'boolean', description: 'its admin endpoint answered now' },
          draining: { type: 'boolean' },
          shards: { type: 'integer', description: 'shard leases held' },
          sas: { type: 'integer' },
          configVersion: { type: 'integer', description: 'managed configuration version applied' },
          pendingWrites: { type: 'integer' },
        },
      },
    },
  },
} as const;

export const edgeList = {
  type: 'object',
  required: ['items'],
  additionalProperties: false,
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'healthy', 'draining'],
        additionalProperties: false,
        properties: {
          id: { type: 'string' },
          admin: { type: 'string' },
          healthy: { type: 'boolean' },
          draining: { type: 'boolean' },
          connections: { type: 'integer', description: 'open TCP/TLS streams' },
          unowned: { type: 'integer', description: 'shards this edge sees without an owner' },
        },
      },
    },
  },
} as const;

export const drainBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    graceSeconds: seconds(0, 3600, 'edges: close the remaining streams spread over this long (default 30)'),
  },
} as const;

export const drainOutput = {
  type: 'object',
  required: ['id', 'draining'],
  additionalProperties: false,
  properties: { id: { type: 'string' }, draining: { type: 'boolean' }, detail: { type: 'string' } },
} as const;

export const shardQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    owner: { type: 'string', pattern: NAME_PATTERN },
    unowned: { type: 'boolean' },
  },
} as const;

export const shardList = {
  type: 'object',
  required: ['count', 'owned', 'byWorker', 'items'],
  additionalProperties: false,
  properties: {
    count: { type: 'integer' },
    owned: { type: 'integer' },
    byWorker: { type: 'object', additionalProperties: { type: 'integer' } },
    items: {
      type: 'array',
      items: {
        type: 'object',
        required: ['shard'],
        additionalProperties: false,
        properties: {
          shard: { type: 'integer' },
          owner: { type: 'string' },
          epoch: { type: 'integer' },
          expiresAt: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
} as const;

/** Documents a member could not apply (e.g. a PSK file it cannot read); they keep their old settings. */
export const invalidDocuments = {
  type: 'array',
  items: {
    type: 'object',
    required: ['kind', 'name', 'error'],
    additionalProperties: false,
    properties: {
      kind: { type: 'string', enum: ['peer', 'pool'] },
      name: { type: 'string' },
      error: { type: 'string' },
    },
  },
} as const;

export const configStatus = {
  type: 'object',
  required: ['version', 'members'],
  additionalProperties: false,
  properties: {
    version: { type: 'integer', description: 'the managed configuration version in the store' },
    members: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'kind'],
        additionalProperties: false,
        properties: {
          id: { type: 'string' },
          kind: { type: 'string', enum: ['worker', 'control'] },
          version: { type: 'integer' },
          invalid: invalidDocuments,
        },
      },
    },
  },
} as const;

export const health = {
  type: 'object',
  required: ['status'],
  additionalProperties: false,
  properties: { status: { type: 'string' } },
} as const;
