/**
 * SA payloads for the tasks, on top of negotiation/proposals.ts (the one place proposals are
 * built, selected and checked, RFC 7296 §2.7, §3.3; RFC 9370): ours from the policy, the single
 * chosen proposal we answer with, and a short description of an offer for the log line of a
 * NO_PROPOSAL_CHOSEN rejection.
 */
import { type Proposal, ProtocolId, type SaPayload, TransformType } from '../codec/index.js';
import { buildProposals, type ProposalPolicy } from '../negotiation/index.js';
import { PayloadType } from '../codec/index.js';

/** Our proposals in an SA payload; `keFirst` (the group of our KE payload) is listed first. */
export function ourSaPayload(
  policies: readonly ProposalPolicy[],
  protocolId: number,
  spi: Uint8Array,
  keFirst?: number,
): SaPayload {
  const ordered =
    keFirst === undefined
      ? policies
      : policies.map((p) =>
          p.keyExchange?.includes(keFirst)
            ? { ...p, keyExchange: [keFirst, ...p.keyExchange.filter((g) => g !== keFirst)] }
            : p,
        );
  return { type: PayloadType.SA, critical: false, proposals: buildProposals(ordered, protocolId, spi) };
}

/** The one proposal a responder chose, with its SPI filled in (RFC 7296 §2.7). */
export function chosenSaPayload(proposal: Proposal, spi: Uint8Array): SaPayload {
  return { type: PayloadType.SA, critical: false, proposals: [{ ...proposal, spi }] };
}

/** IKE policies without additional key exchanges (IKE SA rekeys do not run IKE_FOLLOWUP_KE). */
export function withoutAdditionalKe(policies: readonly ProposalPolicy[]): ProposalPolicy[] {
  return policies.map(({ additionalKeyExchanges: _drop, ...p }) => p);
}

/** ESP policies without PFS (IKE_AUTH carries no KE payload, RFC 7296 §1.2). */
export function withoutKe(policies: readonly ProposalPolicy[]): ProposalPolicy[] {
  return policies.map(({ keyExchange: _drop, ...p }) => p);
}

/**
 * RFC 7296 §1.2: the SA payloads of IKE_AUTH cannot carry a key exchange other than NONE; like
 * strongSwan we ignore KE transforms a peer put there rather than refuse the child SA.
 */
export function offersWithoutKe(proposals: readonly Proposal[]): Proposal[] {
  return proposals.map((p) => ({
    ...p,
    transforms: p.transforms.filter((t) => t.type !== TransformType.KE),
  }));
}

const TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'ENCR',
  2: 'PRF',
  3: 'INTEG',
  4: 'KE',
  5: 'ESN',
};

/** "#1 IKE ENCR 20/256 PRF 5 KE 31,19; #2 …" — what a peer offered, bounded in length. */
export function describeProposals(proposals: readonly Proposal[]): string {
  const parts = proposals.slice(0, 8).map((p) => {
    const byType = new Map<string, string[]>();
    for (const t of p.transforms) {
      const name = TYPE_NAMES[t.type] ?? (t.type >= 6 && t.type <= 12 ? `ADDKE${t.type - 5}` : `T${t.type}`);
      const key = t.attributes.find((a) => a.type === 14)?.value;
      const list = byType.get(name) ?? [];
      list.push(typeof key === 'number' ? `${t.id}/${key}` : String(t.id));
      byType.set(name, list);
    }
    const proto =
      p.protocolId === ProtocolId.IKE ? 'IKE' : p.protocolId === ProtocolId.ESP ? 'ESP' : `P${p.protocolId}`;
    return `#${p.number} ${proto} ${[...byType].map(([k, v]) => `${k} ${v.join(',')}`).join(' ')}`;
  });
  const more = proposals.length > 8 ? ` (+${proposals.length - 8} more)` : '';
  return (parts.join('; ') + more).slice(0, 400);
}
