/** The sans-IO IKE endpoint: demultiplexing, half-open state, stateless answers, one deadline heap. */
export { CookieJar, DEFAULT_COOKIE_SECRET_LIFETIME_MS } from './cookie.js';
export { DeadlineHeap, type HeapItem } from './deadline-heap.js';
export {
  DEFAULT_ENDPOINT_LIMITS,
  type EndpointConfig,
  type EndpointLimits,
  type EndpointOutput,
  type EndpointStats,
  IkeEndpoint,
  ourSpis,
  type SaEntry,
} from './endpoint.js';
