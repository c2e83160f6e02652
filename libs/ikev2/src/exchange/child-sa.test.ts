import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type TrafficSelector, TsType } from '../codec/index.js';
import { intersectSelector, narrowSelectors } from './child-sa.js';

/** Selectors over a tiny space (10.0.0.0-15, ports 0-15, protocols 0/6/17) so a naive check is exhaustive. */
const selector = fc
  .tuple(fc.nat(15), fc.nat(15), fc.nat(15), fc.nat(15), fc.constantFrom(0, 6, 17))
  .map(([a, b, p, q, proto]): TrafficSelector => ({
    tsType: TsType.TS_IPV4_ADDR_RANGE,
    ipProtocol: proto,
    startPort: Math.min(p, q),
    endPort: Math.max(p, q),
    startAddress: Uint8Array.of(10, 0, 0, Math.min(a, b)),
    endAddress: Uint8Array.of(10, 0, 0, Math.max(a, b)),
  }));

function contains(ts: TrafficSelector, host: number, port: number, proto: number): boolean {
  return (
    (ts.ipProtocol === 0 || ts.ipProtocol === proto) &&
    ts.startPort <= port &&
    port <= ts.endPort &&
    ts.startAddress[3]! <= host &&
    host <= ts.endAddress[3]!
  );
}

describe('traffic selector narrowing', () => {
  it('intersects exactly like a naive point-by-point check (RFC 7296 §2.9)', () => {
    fc.assert(
      fc.property(selector, selector, (a, b) => {
        const x = intersectSelector(a, b);
        for (let host = 0; host < 16; host++)
          for (let port = 0; port < 16; port++)
            for (const proto of [6, 17]) {
              const naive = contains(a, host, port, proto) && contains(b, host, port, proto);
              assert.equal(x !== undefined && contains(x, host, port, proto), naive);
            }
      }),
      { numRuns: 300, seed: 3 },
    );
  });

  it('narrows lists to the union of pairwise intersections and to nothing when disjoint (RFC 7296 §2.9)', () => {
    fc.assert(
      fc.property(fc.array(selector, { maxLength: 3 }), fc.array(selector, { maxLength: 3 }), (as, bs) => {
        const narrowed = narrowSelectors(as, bs);
        for (let host = 0; host < 16; host++)
          for (let port = 0; port < 16; port++) {
            const naive =
              as.some((a) => contains(a, host, port, 6)) && bs.some((b) => contains(b, host, port, 6));
            const pairwise = as.some((a) =>
              bs.some((b) => contains(a, host, port, 6) && contains(b, host, port, 6)),
            );
            assert.equal(
              narrowed.some((x) => contains(x, host, port, 6)),
              pairwise,
            );
            if (!naive) assert.equal(pairwise, false);
          }
      }),
      { numRuns: 200, seed: 5 },
    );
  });
});
