/** fast-check arbitraries for every payload shape in types.ts (tests only). */
import fc from 'fast-check';
import { CfgType, PayloadType, ProtocolId, TsType } from './constants.js';
import type { Payload, Proposal, TrafficSelector } from './types.js';

const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });

const transform = fc.record({
  type: fc.integer({ min: 1, max: 12 }),
  id: fc.integer({ min: 0, max: 0xffff }),
  attributes: fc.array(
    fc.oneof(
      fc.record({ type: fc.constant(14), value: fc.integer({ min: 0, max: 0xffff }) }),
      fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 8) }),
    ),
    { maxLength: 2 },
  ),
});

const proposals = fc
  .array(
    fc.record({
      protocolId: fc.constantFrom(ProtocolId.IKE, ProtocolId.ESP),
      transforms: fc.array(transform, { minLength: 1, maxLength: 5 }),
    }),
    { minLength: 1, maxLength: 4 },
  )
  .map((ps) =>
    ps.map((p, i): Proposal => ({
      number: i + 1,
      protocolId: p.protocolId,
      spi: new Uint8Array(p.protocolId === ProtocolId.ESP ? 4 : 0).fill(i + 1),
      transforms: p.transforms,
    })),
  );

const selector = fc.oneof(
  fc.record({
    tsType: fc.constant(TsType.TS_IPV4_ADDR_RANGE as number),
    ipProtocol: fc.integer({ min: 0, max: 255 }),
    startPort: fc.integer({ min: 0, max: 0xffff }),
    endPort: fc.integer({ min: 0, max: 0xffff }),
    startAddress: bytes(4, 4),
    endAddress: bytes(4, 4),
  }),
  fc.record({
    tsType: fc.constant(TsType.TS_IPV6_ADDR_RANGE as number),
    ipProtocol: fc.integer({ min: 0, max: 255 }),
    startPort: fc.integer({ min: 0, max: 0xffff }),
    endPort: fc.integer({ min: 0, max: 0xffff }),
    startAddress: bytes(16, 16),
    endAddress: bytes(16, 16),
  }),
) as fc.Arbitrary<TrafficSelector>;

/** Any payload that may appear in a plaintext chain (no SK/SKF, no unknown critical). */
export const innerPayload: fc.Arbitrary<Payload> = fc.oneof(
  proposals.map((p) => ({ type: PayloadType.SA, critical: false, proposals: p })),
  fc
    .record({ group: fc.integer({ min: 0, max: 0xffff }), data: bytes(0, 64) })
    .map((x) => ({ type: PayloadType.KE, critical: false, ...x })),
  fc
    .record({
      t: fc.constantFrom(PayloadType.IDi, PayloadType.IDr),
      idType: fc.integer({ min: 0, max: 255 }),
      data: bytes(0, 32),
    })
    .map(({ t, ...x }) => ({ type: t, critical: false, ...x })),
  fc
    .record({
      t: fc.constantFrom(PayloadType.CERT, PayloadType.CERTREQ),
      encoding: fc.integer({ min: 0, max: 255 }),
      data: bytes(0, 40),
    })
    .map(({ t, ...x }) => ({ type: t, critical: false, ...x })),
  fc
    .record({ method: fc.integer({ min: 0, max: 255 }), data: bytes(0, 64) })
    .map((x) => ({ type: PayloadType.AUTH, critical: false, ...x })),
  bytes(16, 64).map((data) => ({ type: PayloadType.NONCE, critical: false, data })),
  fc
    .record({
      protocolId: fc.integer({ min: 0, max: 3 }),
      notifyType: fc.integer({ min: 0, max: 0xffff }),
      spi: fc.constantFrom(new Uint8Array(0), new Uint8Array(4).fill(9), new Uint8Array(8).fill(7)),
      data: bytes(0, 32),
    })
    .map((x) => ({ type: PayloadType.NOTIFY, critical: false, ...x })),
  fc.oneof(
    fc.constant({
      type: PayloadType.DELETE,
      critical: false,
      protocolId: ProtocolId.IKE,
      spiSize: 0,
      spis: [] as Uint8Array[],
    }),
    fc.array(bytes(4, 4), { minLength: 1, maxLength: 5 }).map((spis) => ({
      type: PayloadType.DELETE,
      critical: false,
      protocolId: ProtocolId.ESP,
      spiSize: 4,
      spis,
    })),
  ),
  bytes(0, 20).map((data) => ({ type: PayloadType.VENDOR_ID, critical: false, data })),
  fc
    .record({
      t: fc.constantFrom(PayloadType.TSi, PayloadType.TSr),
      selectors: fc.array(selector, { minLength: 1, maxLength: 4 }),
    })
    .map(({ t, selectors }) => ({ type: t, critical: false, selectors })),
  fc
    .record({
      cfgType: fc.constantFrom(CfgType.CFG_REQUEST, CfgType.CFG_REPLY),
      attributes: fc.array(fc.record({ type: fc.integer({ min: 0, max: 0x7fff }), value: bytes(0, 17) }), {
        maxLength: 4,
      }),
    })
    .map((x) => ({ type: PayloadType.CP, critical: false, ...x })),
  fc.record({ code: fc.integer({ min: 1, max: 4 }), rest: bytes(0, 20) }).map(({ code, rest }) => {
    const data = new Uint8Array(4 + rest.length);
    data[0] = code;
    data[3] = data.length;
    data.set(rest, 4);
    return { type: PayloadType.EAP, critical: false, data };
  }),
  fc
    .record({ type: fc.integer({ min: 1, max: 32 }), data: bytes(0, 16) })
    .map((x) => ({ type: x.type, critical: false, unknown: true as const, data: x.data })),
) as fc.Arbitrary<Payload>;
