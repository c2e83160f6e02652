/**
 * IKEv2 codec speed on a real message: strongSwan 5.9.8's IKE_SA_INIT request (test/vectors) is
 * decoded and re-encoded; a typical IKE_AUTH request's inner payload set (IDi, INITIAL_CONTACT, IDr,
 * AUTH, CP request, ESP SA, TSi, TSr) is decoded and re-encoded; and a protected IKE_AUTH-sized message is built and decrypted with
 * AES-256-GCM. References, same run: a Uint8Array / Buffer.from copy of the same octets (decode+encode), and a
 * raw node:crypto AES-256-GCM seal+open of the same plaintext size (protect+decrypt).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { EncryptionId, nodeProvider } from '@ikegate/crypto';
import {
  decodePayloadChain,
  decodeMessage,
  decryptMessage,
  encodeMessage,
  encodePayloads,
  encodeProtectedMessage,
  PayloadType,
  type Payload,
} from '@ikegate/ikev2';
import { type BenchFigure, compare } from './harness.js';

export async function bench(): Promise<BenchFigure[]> {
  const v = JSON.parse(
    readFileSync(
      new URL('../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
      'utf8',
    ),
  ) as Record<string, string>;
  const init = Uint8Array.from(Buffer.from(v.ikeSaInitRequest ?? '', 'hex'));
  const codec = compare(
    () => {
      const m = decodeMessage(init);
      encodeMessage(m.header, m.payloads);
      return 1;
    },
    () => {
      init.slice();
      return 1;
    },
    3,
    300,
  );

  // A typical road-warrior IKE_AUTH request's inner payloads (RFC 7296 §1.2 + §3.15 CP request).
  const v4 = (a: number, b: number, c: number, d: number) => Uint8Array.of(a, b, c, d);
  const authInner: Payload[] = [
    {
      type: PayloadType.IDi,
      critical: false,
      idType: 2,
      data: new TextEncoder().encode('laptop.example.org'),
    },
    {
      type: PayloadType.NOTIFY,
      critical: false,
      protocolId: 0,
      notifyType: 16384,
      spi: new Uint8Array(0),
      data: new Uint8Array(0),
    },
    { type: PayloadType.IDr, critical: false, idType: 2, data: new TextEncoder().encode('vpn.example.org') },
    { type: PayloadType.AUTH, critical: false, method: 2, data: new Uint8Array(32).fill(1) },
    {
      type: PayloadType.CP,
      critical: false,
      cfgType: 1,
      attributes: [
        { type: 1, value: new Uint8Array(0) },
        { type: 3, value: new Uint8Array(0) },
        { type: 8, value: new Uint8Array(0) },
      ],
    },
    {
      type: PayloadType.SA,
      critical: false,
      proposals: [
        {
          number: 1,
          protocolId: 3,
          spi: Uint8Array.of(0xc1, 2, 3, 4),
          transforms: [
            { type: 1, id: 20, attributes: [{ type: 14, value: 256 }] },
            { type: 5, id: 0, attributes: [] },
          ],
        },
      ],
    },
    {
      type: PayloadType.TSi,
      critical: false,
      selectors: [
        {
          tsType: 7,
          ipProtocol: 0,
          startPort: 0,
          endPort: 65535,
          startAddress: v4(0, 0, 0, 0),
          endAddress: v4(255, 255, 255, 255),
        },
      ],
    },
    {
      type: PayloadType.TSr,
      critical: false,
      selectors: [
        {
          tsType: 7,
          ipProtocol: 0,
          startPort: 0,
          endPort: 65535,
          startAddress: v4(10, 0, 0, 0),
          endAddress: v4(10, 255, 255, 255),
        },
      ],
    },
  ];
  const authChain = encodePayloads(authInner);
  const authInnerCodec = compare(
    () => {
      encodePayloads(decodePayloadChain(authChain.firstPayload, authChain.bytes));
      return 1;
    },
    () => {
      Buffer.from(authChain.bytes);
      return 1;
    },
    3,
    300,
  );

  const key = nodeProvider.aead(EncryptionId.AES_GCM_16, 256)!.create(new Uint8Array(36).fill(7));
  const protection = { kind: 'aead' as const, key, ivLength: 8, icvLength: 16 };
  let counter = 0;
  const random = (n: number) => {
    const iv = new Uint8Array(n);
    new DataView(iv.buffer).setUint32(0, counter++);
    return iv;
  };
  const inner: Payload[] = [
    { type: PayloadType.IDi, critical: false, idType: 2, data: new TextEncoder().encode('peer.example') },
    { type: PayloadType.AUTH, critical: false, method: 2, data: new Uint8Array(32).fill(1) },
    { type: PayloadType.NONCE, critical: false, data: new Uint8Array(32).fill(2) },
  ];
  const header = {
    initiatorSpi: init.subarray(0, 8),
    responderSpi: init.subarray(0, 8),
    exchangeType: 35,
    flags: 8,
    messageId: 1,
  };
  const sample = encodeProtectedMessage(header, inner, protection, random);
  const ptLength = sample.length - 28 - 4 - 8 - 16;
  const pt = new Uint8Array(ptLength);
  const rawKey = new Uint8Array(32).fill(7);
  const nonce = new Uint8Array(12);
  const sk = compare(
    () => {
      const raw = encodeProtectedMessage(header, inner, protection, random);
      decryptMessage(raw, decodeMessage(raw), protection);
      return 1;
    },
    () => {
      const c = createCipheriv('aes-256-gcm', rawKey, nonce);
      c.setAAD(sample.subarray(0, 32));
      const ct = Buffer.concat([c.update(pt), c.final()]);
      const tag = c.getAuthTag();
      const d = createDecipheriv('aes-256-gcm', rawKey, nonce);
      d.setAAD(sample.subarray(0, 32));
      d.setAuthTag(tag);
      d.update(ct);
      d.final();
      return 1;
    },
    3,
    300,
  );
  return [
    {
      name: `IKEv2 decode+encode, strongSwan IKE_SA_INIT (${init.length} B)`,
      value: codec.subject,
      unit: 'msg/s',
      reference: { name: 'copy of the same octets', value: codec.reference },
    },
    {
      name: `IKEv2 decode+encode, IKE_AUTH inner payloads (${authChain.bytes.length} B)`,
      value: authInnerCodec.subject,
      unit: 'msg/s',
      reference: { name: 'Buffer.from copy of the same octets', value: authInnerCodec.reference },
    },
    {
      name: `IKEv2 SK protect+decrypt AES-256-GCM (${sample.length} B)`,
      value: sk.subject,
      unit: 'msg/s',
      reference: { name: 'raw node:crypto GCM seal+open, same size', value: sk.reference },
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { formatFigure } = await import('./harness.js');
  for (const f of await bench()) console.log(formatFigure(f));
}
