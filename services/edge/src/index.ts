export {
  type BoundPorts,
  Edge,
  edgeBindsFromSettings,
  type EdgeListenSettings,
  type EdgeSettings,
} from './edge.js';
export { ShardRouter, type ShardRouterOptions } from './router.js';
