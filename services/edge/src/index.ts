export { type BoundPorts, Edge, type EdgeListenSettings, type EdgeSettings } from './edge.js';
