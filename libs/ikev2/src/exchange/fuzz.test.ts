import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { step } from './ike-sa.js';
import { Pair } from './testing/pair.js';
import type { IkeSaState } from './types.js';

/** Real messages of a full run (INIT, AUTH, liveness, child rekey, IKE rekey, delete) to mutate. */
function corpus(): { messages: Uint8Array[]; pair: Pair; states: IkeSaState[] } {
  const p = new Pair({ initiatorPolicy: { requestVirtualIp: true } });
  const messages: Uint8Array[] = [];
  const states: IkeSaState[] = [p.responder.state];
  const inner = p.filter;
  p.filter = (f) => {
    messages.push(f.bytes);
    states.push(p.responder.state, p.initiator.state);
    return inner(f);
  };
  p.establish();
  p.command('initiator', { kind: 'liveness' });
  p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
  p.command('initiator', { kind: 'rekey-ike' });
  p.run();
  return { messages, pair: p, states };
}

describe('IKE SA fuzz', () => {
  const { messages, pair, states } = corpus();
  const ctxs = [pair.responder.ctx, pair.initiator.ctx];

  it('answers random and mutated messages with actions only, never an exception (STYLE rule 6, RFC 7296 §2.21)', () => {
    const message = fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc
        .tuple(
          fc.constantFrom(...messages),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        )
        .map(([m, edits]) => {
          const b = m.slice();
          for (const [at, v] of edits) b[at % b.length] = v;
          return b;
        }),
      fc.tuple(fc.constantFrom(...messages), fc.nat()).map(([m, cut]) => m.subarray(0, cut % (m.length + 1))),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...ctxs),
        fc.constantFrom(...states),
        message,
        fc.constantFrom('udp' as const, 'tcp' as const),
        (ctx, state, bytes, transport) => {
          const r = step(state, { kind: 'message', bytes, transport, now: 0 }, ctx);
          assert.ok(Array.isArray(r.actions));
        },
      ),
      { numRuns: 400, seed: 7 },
    );
  });
});

describe('IKE SA pair under loss and duplication', () => {
  it('never throws and, when both sides end established, agrees on SPIs and child SAs (RFC 7296 §2.1, §2.4)', () => {
    const disposition = fc.constantFrom(
      'deliver' as const,
      'deliver' as const,
      'deliver' as const,
      'drop' as const,
      'duplicate' as const,
    );
    const command = fc.constantFrom('liveness', 'rekey-child', 'rekey-ike', 'delete-child');
    fc.assert(
      fc.property(
        fc.array(disposition, { maxLength: 40 }),
        fc.array(fc.tuple(fc.boolean(), command), { maxLength: 4 }),
        (fates, commands) => {
          const p = new Pair({
            initiatorPolicy: { retransmit: { initialMs: 1000, maxRetransmits: 8 } },
            responderPolicy: { retransmit: { initialMs: 1000, maxRetransmits: 8 } },
          });
          p.filter = (f) => fates[f.index] ?? 'deliver';
          p.establish();
          for (const [fromInitiator, c] of commands) {
            const side = fromInitiator ? p.initiator : p.responder;
            if (side.state.status !== 'established') continue;
            const child = [...side.children.values()][0];
            if (c === 'rekey-child' || c === 'delete-child') {
              if (child) p.command(side.name, { kind: c, spi: child.inboundSpi });
            } else p.command(side.name, { kind: c });
            p.run();
          }
          p.run();
          const i = p.initiator.state;
          const r = p.responder.state;
          if (i.status === 'established' && r.status === 'established') {
            assert.equal(
              Buffer.from(i.current!.spiI).toString('hex'),
              Buffer.from(r.current!.spiI).toString('hex'),
            );
            assert.equal(
              Buffer.from(i.current!.spiR).toString('hex'),
              Buffer.from(r.current!.spiR).toString('hex'),
            );
            assert.equal(p.initiator.children.size, p.responder.children.size);
          }
        },
      ),
      { numRuns: 150, seed: 11 },
    );
  });
});
