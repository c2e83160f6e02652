export { type Running, up, type UpOptions } from './up.js';
