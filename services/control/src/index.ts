export { buildControl, type ControlSettings, type WorkerControl } from './control.js';
