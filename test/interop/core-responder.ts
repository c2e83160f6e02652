/**
 * Interop harness, responder role: answers IKE on UDP 500/4500 with the protocol core and pings
 * through the tunnel (lib/core-peer.ts). Config in env IKEGATE_INTEROP (JSON).
 */
import { listen } from './lib/core-peer.js';

listen();
