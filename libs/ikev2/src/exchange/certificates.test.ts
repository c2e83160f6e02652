import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadCertificate } from '@ikegate/crypto';
import {
  AuthMethod,
  decodeMessage,
  IdType,
  NotifyStatus,
  type NotifyPayload,
  PayloadType,
} from '../codec/index.js';
import { Pair, type PairOptions } from '../testing/pair.js';
import type { IkeSaContext } from '../sa/types.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../crypto/src/testdata/${name}`, import.meta.url), 'utf8');

const caPem = fixture('ca-ecdsa.pem');
const ca = loadCertificate(caPem)!;
const otherCa = loadCertificate(fixture('other-ca.pem'))!;
const ecdsa = { chainPem: fixture('ee-ecdsa.pem'), privateKey: createPrivateKey(fixture('ee-ecdsa.key')) };
const rsa = { chainPem: fixture('ee-rsa.pem'), privateKey: createPrivateKey(fixture('ee-rsa.key')) };
// Inside the certificates' validity: a day after the CA was issued.
const now = Date.parse(ca.validFrom) + 86_400_000;

function certPair(opts: {
  initiator?: Partial<IkeSaContext>;
  responder?: Partial<IkeSaContext>;
  initiatorId?: string;
  initiatorIdType?: number;
  extra?: PairOptions;
}): Pair {
  return new Pair({
    ...opts.extra,
    psks: {},
    initiatorPolicy: {
      localId: opts.initiatorId ?? 'carol@example.org',
      localIdType: opts.initiatorIdType ?? IdType.ID_RFC822_ADDR,
      ...opts.extra?.initiatorPolicy,
    },
    responderPolicy: { localId: 'gw.example.org', ...opts.extra?.responderPolicy },
    initiatorCtx: { certificate: rsa, trustAnchors: [ca], now, ...opts.initiator },
    responderCtx: { certificate: ecdsa, trustAnchors: [ca], now: new Date(now), ...opts.responder },
  });
}

function sent(p: Pair, side: 'initiator' | 'responder'): Uint8Array[] {
  return p.side(side).log.flatMap((a) => (a.kind === 'send' ? [a.bytes] : []));
}

describe('certificate authentication (RFC 7296 §3.6-3.8, RFC 7427)', () => {
  it('establishes with an RSA certificate (ID_RFC822_ADDR) and an ECDSA certificate (ID_FQDN), AUTH method 14', () => {
    const p = certPair({ extra: { roundTrip: true } });
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.status, 'established');
    assert.equal(p.initiator.state.peerId, 'gw.example.org');
    assert.equal(p.responder.state.peerId, 'carol@example.org');
    assert.equal(p.initiator.children.size, 1);
    // IKE_SA_INIT: SIGNATURE_HASH_ALGORITHMS both ways, CERTREQ from the responder's anchors.
    const initResp = decodeMessage(sent(p, 'responder')[0]!);
    assert.ok(
      initResp.payloads.some(
        (x) =>
          x.type === PayloadType.NOTIFY &&
          (x as NotifyPayload).notifyType === NotifyStatus.SIGNATURE_HASH_ALGORITHMS,
      ),
    );
    assert.ok(initResp.payloads.some((x) => x.type === PayloadType.CERTREQ));
    assert.ok(
      decodeMessage(sent(p, 'initiator')[0]!).payloads.some(
        (x) =>
          x.type === PayloadType.NOTIFY &&
          (x as NotifyPayload).notifyType === NotifyStatus.SIGNATURE_HASH_ALGORITHMS,
      ),
    );
    assert.equal(AuthMethod.DIGITAL_SIGNATURE, 14);
  });

  it('establishes with ECDSA certificates on both sides and fragmented IKE_AUTH (RFC 7427, RFC 7383)', () => {
    const p = certPair({
      initiator: { certificate: ecdsa },
      initiatorId: 'gw.example.org',
      initiatorIdType: IdType.ID_FQDN,
      extra: { initiatorPolicy: { fragmentSize: 576 }, responderPolicy: { fragmentSize: 576 } },
    });
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.status, 'established');
    const skf = (b: Uint8Array) => decodeMessage(b).payloads.at(-1)?.type === PayloadType.SKF;
    assert.ok(sent(p, 'initiator').some(skf), 'IKE_AUTH with CERT was fragmented');
    assert.ok(sent(p, 'responder').some(skf));
  });

  it('fails authentication when the peer certificate does not chain to our anchor (RFC 7296 §3.8)', () => {
    const p = certPair({ responder: { trustAnchors: [otherCa] } });
    p.establish();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.equal(p.initiator.children.size + p.responder.children.size, 0);
  });

  it('fails authentication when the initiator sees an untrusted responder certificate (RFC 7296 §3.8)', () => {
    const p = certPair({ initiator: { trustAnchors: [otherCa] } });
    p.establish();
    assert.notEqual(p.initiator.state.status, 'established');
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
  });

  it('fails authentication when the ID does not match the certificate (RFC 7296 §3.5, RFC 4945 §3.1)', () => {
    const p = certPair({ initiatorId: 'mallory@example.org' });
    p.establish();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
  });

  it('fails authentication outside the certificate validity (RFC 5280 §6.1.3)', () => {
    const p = certPair({ responder: { now: Date.parse(ca.validTo) + 1 } });
    p.establish();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
  });

  it("checks the chain against the claimed identity's own anchors: another peer's CA, or none (a PSK peer), fails (RFC 7296 §2.15)", () => {
    const asked: string[] = [];
    const ok = certPair({
      responder: { trustAnchorsFor: (id) => (asked.push(id), id === 'carol@example.org' ? [ca] : [otherCa]) },
    });
    ok.establish();
    assert.equal(ok.responder.state.status, 'established');
    assert.deepEqual(asked, ['carol@example.org']);
    for (const anchors of [[otherCa], []]) {
      const p = certPair({ responder: { trustAnchors: [ca, otherCa], trustAnchorsFor: () => anchors } });
      p.establish();
      assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
      assert.equal(p.responder.children.size, 0);
    }
  });

  it('fails a signature peer when we have no trust anchors (PSK stays the default)', () => {
    const p = certPair({ responder: { trustAnchors: [] } });
    p.establish();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
  });
});
