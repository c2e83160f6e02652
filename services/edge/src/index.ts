export { type BoundPorts, Edge, type EdgeListenSettings, type EdgeSettings } from './edge.js';
export { ShardRouter, type ShardRouterOptions } from './router.js';
