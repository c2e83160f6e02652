/**
 * Traces of IKE SAs (docs/observability.md "Tracing"), made by the driver around the sans-IO
 * endpoint: the protocol core knows nothing of them. Everything here is read from what the
 * endpoint already reports (the messages' headers, `transmit` and `sa-action` output).
 *
 * How this works:
 * - A setup is one trace: an `ike.sa.setup` root span from the SA's first IKE_SA_INIT to
 *   `established` (status OK) or its deletion before that (status ERROR, the reason), with one
 *   `ike.exchange <TYPE>` child per exchange (IKE_SA_INIT, IKE_INTERMEDIATE, IKE_AUTH).
 * - Later exchanges of an established SA (rekeys, liveness checks, deletes, Message ID syncs) are
 *   each a trace of their own, linked to the SA's setup span (or, for an SA taken over from
 *   another worker, to the takeover span): an SA lives for days and exchanges every few seconds,
 *   so parenting them under the setup would make traces that never end and grow without bound.
 *   An exchange we start because of an API call or a takeover is a child of that span instead.
 * - An exchange's span starts when its request is sent (we are the exchange's initiator) or
 *   received (responder) and ends with its response: outcome `ok`, or the notify/reason that
 *   failed it (status ERROR). Retransmissions of our request are counted on it.
 * - Input that no SA took (unknown SPI, stateless IKE_SA_INIT answers, COOKIE demands) and input an
 *   SA dropped (bad ICV, a late response) make no span: counted as drops, as before. A peer's
 *   retransmission of a request we answered makes an event on the open setup span, not a span.
 * - The handling of each SA's output runs with its span active (`context.with`), so log lines
 *   written meanwhile carry its trace_id and span_id (libs/telemetry logger).
 *
 * Only used while a tracer provider is registered (`tracingActive()`); otherwise the driver
 * handles output directly and nothing here runs. Nothing is traced per ESP packet.
 */
import {
  type Attributes,
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { EndpointOutput, IkeSaAction } from '@ikegate/ikev2';
import { Attr, exchangeSpanName, Outcome, SpanEvent, SpanName, tracer } from '@ikegate/telemetry';
import { type SaRecord, spiOf } from './records.js';

type SaAction = Exclude<IkeSaAction, { kind: 'send' }>;
type Output = EndpointOutput<SaRecord>;

const IKE_SA_INIT = 34;
const RESPONSE_FLAG = 0x20;
const SKF_PAYLOAD = 53;
/** Deletion reasons that end an SA normally (not a failure of the exchange that caused them). */
const NORMAL_DELETES = new Set(['deleted', 'peer-deleted', 'rekeyed']);
const EXCHANGE_NAMES: Readonly<Record<number, string>> = {
  34: 'IKE_SA_INIT',
  35: 'IKE_AUTH',
  36: 'CREATE_CHILD_SA',
  37: 'INFORMATIONAL',
  43: 'IKE_INTERMEDIATE',
};

interface ExchangeTrace {
  readonly span: Span;
  readonly ctx: Context;
  readonly exchange: number;
  readonly name: string;
  readonly messageId: number;
  /** Our request (we initiated the exchange): a resend of the same octets is a retransmission. */
  request?: Uint8Array;
  retransmissions: number;
  retries: number;
  /** A new request with this Message ID went out in the batch that answered it (COOKIE, INVALID_KE). */
  retried: boolean;
  failure?: { readonly reason: string; readonly by: 'us' | 'peer' };
  purpose?: string;
  childFailure?: string;
}

interface SaTrace {
  setup?: { readonly span: Span; readonly ctx: Context };
  /** What later exchanges link to: the setup span, or the takeover span that adopted the SA. */
  link?: SpanContext;
  /** Our requests waiting for their response (the window, and a rekeyed SA's DELETE). */
  readonly pending: ExchangeTrace[];
  /** `type/messageId` of the peer's request we answered last: its retransmission is no new span. */
  answered?: string;
  established?: boolean;
  deleted?: string;
}

export interface InboundMessage {
  readonly bytes: Uint8Array;
  /** performance.now() when it arrived (the span's start). */
  readonly at: number;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function snake(reason: string): string {
  return reason.replace(/-/g, '_');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** Whether `bytes` is one of our requests worth a span: not a response, not a later SKF fragment. */
function isFirstOfRequest(bytes: Uint8Array): boolean {
  if (bytes.length < 28 || (bytes[19]! & RESPONSE_FLAG) !== 0) return false;
  if (bytes[16] === SKF_PAYLOAD && bytes.length >= 34 && ((bytes[32]! << 8) | bytes[33]!) !== 1) return false;
  return true;
}

function meaningful(o: Output): boolean {
  if (o.kind === 'transmit') return true;
  if (o.kind !== 'sa-action') return false;
  const k = o.action.kind;
  return k !== 'dropped' && k !== 'lenient' && k !== 'persist' && k !== 'path-validated';
}

function recOf(o: Output): SaRecord | undefined {
  return o.kind === 'transmit' ? o.sa?.data : o.kind === 'sa-action' ? o.sa.data : undefined;
}

export class IkeTraces {
  readonly #sas = new WeakMap<SaRecord, SaTrace>();

  /**
   * Handles `out` (the endpoint's answer to one call) through `handle`, one run of consecutive
   * output per SA, each inside its span. `inbound`: the message the call was fed. `fromCaller`:
   * a command from outside (API, takeover): the active span then parents the exchanges it starts.
   */
  run(
    out: readonly Output[],
    handle: (chunk: readonly Output[]) => void,
    o: { readonly inbound?: InboundMessage; readonly fromCaller?: boolean } = {},
  ): void {
    const cause = o.fromCaller ? context.active() : undefined;
    let start = 0;
    while (start < out.length) {
      const rec = recOf(out[start]!);
      let end = start + 1;
      while (end < out.length && recOf(out[end]!) === rec) end++;
      const chunk = start === 0 && end === out.length ? out : out.slice(start, end);
      if (rec) this.#chunk(rec, chunk, handle, o.inbound, cause);
      else handle(chunk);
      start = end;
    }
  }

  /** We start an SA as initiator (RFC 7296 §1.2): its setup trace begins. */
  initiated(rec: SaRecord): void {
    const span = tracer().startSpan(SpanName.ikeSaSetup, { kind: SpanKind.CLIENT, root: true }, ROOT_CONTEXT);
    if (span.isRecording())
      span.setAttributes({
        [Attr.ikeRole]: 'initiator',
        [Attr.ikeTransport]: rec.path.transport,
        [Attr.ikeShard]: rec.shard,
      });
    this.#sas.set(rec, { setup: { span, ctx: trace.setSpan(ROOT_CONTEXT, span) }, pending: [] });
  }

  /** An SA adopted from another worker: its later exchanges link to the active (takeover) span. */
  adopted(rec: SaRecord): void {
    const active = trace.getActiveSpan();
    this.#sas.set(rec, {
      pending: [],
      established: true,
      ...(active?.isRecording() ? { link: active.spanContext() } : {}),
    });
  }

  /** The SA left this worker without being deleted (its shard moved): open spans end here. */
  forgotten(rec: SaRecord): void {
    const st = this.#sas.get(rec);
    if (!st) return;
    for (const ex of st.pending) this.#end(ex.span, 'shard_moved', false);
    if (st.setup) this.#end(st.setup.span, 'shard_moved', false);
    this.#sas.delete(rec);
  }

  // --- one SA's output -----------------------------------------------------------------------------

  #chunk(
    rec: SaRecord,
    chunk: readonly Output[],
    handle: (chunk: readonly Output[]) => void,
    inbound: InboundMessage | undefined,
    cause: Context | undefined,
  ): void {
    let st = this.#sas.get(rec);
    let focus: ExchangeTrace | undefined;
    let answered: ExchangeTrace | undefined;
    if (inbound && chunk.some(meaningful)) {
      const m = inbound.bytes;
      const type = m[18]!;
      const messageId = u32(m, 20);
      const response = (m[19]! & RESPONSE_FLAG) !== 0;
      if (!st) {
        st = { pending: [] };
        if (type === IKE_SA_INIT && !response) st.setup = this.#responderSetup(rec, inbound.at);
        this.#sas.set(rec, st);
      }
      if (response) {
        const i = st.pending.findIndex((p) => p.exchange === type && p.messageId === messageId);
        if (i >= 0) focus = answered = st.pending[i];
      } else {
        const key = `${type}/${messageId}`;
        if (st.answered === key) st.setup?.span.addEvent(SpanEvent.retransmissionAnswered);
        else {
          st.answered = key;
          focus = answered = this.#exchange(rec, st, type, messageId, 'responder', inbound.at, undefined);
        }
      }
    }
    st ??= this.#sas.get(rec);
    if (!st) {
      // An SA from before tracing was on, or output without a message (timers): trace from now.
      st = { pending: [], established: rec.entry.status === 'established' };
      this.#sas.set(rec, st);
    }
    for (const o of chunk) {
      if (o.kind === 'transmit') {
        if (isFirstOfRequest(o.bytes)) {
          const ex = this.#sent(rec, st, o.bytes, cause);
          if (ex) focus ??= ex;
        }
      } else if (o.kind === 'sa-action') this.#note(st, answered, o.action);
    }
    const ctx = focus?.ctx ?? st.setup?.ctx;
    if (ctx) context.with(ctx, handle, undefined, chunk);
    else handle(chunk);
    this.#finish(rec, st, answered);
  }

  #responderSetup(rec: SaRecord, at: number): { span: Span; ctx: Context } {
    const span = tracer().startSpan(
      SpanName.ikeSaSetup,
      { kind: SpanKind.SERVER, root: true, startTime: at },
      ROOT_CONTEXT,
    );
    if (span.isRecording())
      span.setAttributes({
        [Attr.ikeRole]: 'responder',
        [Attr.ikeTransport]: rec.path.transport,
        [Attr.ikeShard]: rec.shard,
      });
    return { span, ctx: trace.setSpan(ROOT_CONTEXT, span) };
  }

  /** A span for one exchange: under the open setup, else under `cause`, else a root linked to the SA. */
  #exchange(
    rec: SaRecord,
    st: SaTrace,
    type: number,
    messageId: number,
    role: 'initiator' | 'responder',
    at: number | undefined,
    cause: Context | undefined,
  ): ExchangeTrace {
    const name = EXCHANGE_NAMES[type] ?? 'other';
    const parent = st.setup?.ctx ?? (cause && trace.getSpan(cause)?.isRecording() ? cause : undefined);
    const span = tracer().startSpan(
      exchangeSpanName(name),
      {
        kind: role === 'initiator' ? SpanKind.CLIENT : SpanKind.SERVER,
        ...(parent ? {} : { root: true }),
        ...(at !== undefined ? { startTime: at } : {}),
        ...(!st.setup && st.link ? { links: [{ context: st.link }] } : {}),
      },
      parent ?? ROOT_CONTEXT,
    );
    if (span.isRecording()) {
      const attrs: Attributes = {
        [Attr.ikeExchange]: name,
        [Attr.ikeMessageId]: messageId,
        [Attr.ikeExchangeRole]: role,
        [Attr.ikeSpi]: spiOf(rec),
      };
      if (rec.peer) attrs[Attr.ikePeerName] = rec.peer.name;
      span.setAttributes(attrs);
    }
    return {
      span,
      ctx: trace.setSpan(parent ?? ROOT_CONTEXT, span),
      exchange: type,
      name,
      messageId,
      retransmissions: 0,
      retries: 0,
      retried: false,
    };
  }

  /** One of our requests went out: a new exchange, or a resend of a pending one. */
  #sent(
    rec: SaRecord,
    st: SaTrace,
    bytes: Uint8Array,
    cause: Context | undefined,
  ): ExchangeTrace | undefined {
    const type = bytes[18]!;
    const messageId = u32(bytes, 20);
    const ex = st.pending.find((p) => p.exchange === type && p.messageId === messageId);
    if (ex) {
      if (ex.request && sameBytes(ex.request, bytes)) ex.retransmissions++;
      else {
        ex.retries++;
        ex.retried = true;
      }
      ex.request = bytes;
      return undefined;
    }
    const created = this.#exchange(rec, st, type, messageId, 'initiator', undefined, cause);
    created.request = bytes;
    st.pending.push(created);
    return created;
  }

  #note(st: SaTrace, answered: ExchangeTrace | undefined, a: SaAction): void {
    const byName = (name: string) =>
      answered?.name === name ? answered : st.pending.find((p) => p.name === name);
    switch (a.kind) {
      case 'rejected': {
        const target = a.by === 'us' ? (answered ?? byName(a.exchange)) : byName(a.exchange);
        if (target) target.failure = { reason: a.reason, by: a.by };
        return;
      }
      case 'child-failed': {
        const target = answered ?? byName('CREATE_CHILD_SA') ?? byName('IKE_AUTH');
        if (target) target.childFailure = snake(a.reason);
        return;
      }
      case 'install-child': {
        const target = answered ?? byName('CREATE_CHILD_SA');
        if (target?.name === 'CREATE_CHILD_SA') target.purpose ??= a.replaces ? 'rekey-child' : 'new-child';
        return;
      }
      case 'rekeyed-ike': {
        const target = answered ?? byName('CREATE_CHILD_SA');
        if (target) target.purpose = 'rekey-ike';
        return;
      }
      case 'established':
        st.established = true;
        return;
      case 'deleted':
        st.deleted = a.reason;
        if (answered?.name === 'INFORMATIONAL') answered.purpose = 'delete';
        return;
      default:
        return;
    }
  }

  #finish(rec: SaRecord, st: SaTrace, answered: ExchangeTrace | undefined): void {
    if (answered && !answered.retried) {
      const i = st.pending.indexOf(answered);
      if (i >= 0) st.pending.splice(i, 1);
      this.#endExchange(answered);
    }
    for (const ex of st.pending) ex.retried = false;
    if (st.setup && st.established) {
      const span = st.setup.span;
      if (span.isRecording()) span.setAttributes(this.#saAttributes(rec));
      this.#end(span, Outcome.ok, false);
      st.link = span.spanContext();
      st.setup = undefined;
    }
    if (st.deleted !== undefined) {
      const reason = snake(st.deleted);
      const failed = !NORMAL_DELETES.has(st.deleted);
      for (const ex of st.pending)
        this.#end(ex.span, ex.failure ? snake(ex.failure.reason) : reason, failed, ex);
      st.pending.length = 0;
      if (st.setup) {
        const span = st.setup.span;
        if (span.isRecording()) span.setAttributes(this.#saAttributes(rec));
        this.#end(span, reason, true);
      }
      this.#sas.delete(rec);
    }
  }

  #endExchange(ex: ExchangeTrace): void {
    if (ex.failure) this.#end(ex.span, snake(ex.failure.reason), true, ex);
    else if (ex.childFailure && ex.name === 'CREATE_CHILD_SA') this.#end(ex.span, ex.childFailure, true, ex);
    else this.#end(ex.span, Outcome.ok, false, ex);
  }

  #end(span: Span, outcome: string, failed: boolean, ex?: ExchangeTrace): void {
    if (span.isRecording()) {
      const attrs: Attributes = { [Attr.ikeOutcome]: outcome };
      if (ex) {
        attrs[Attr.ikeRetransmissions] = ex.retransmissions;
        if (ex.retries > 0) attrs[Attr.ikeRetries] = ex.retries;
        if (ex.purpose) attrs[Attr.ikePurpose] = ex.purpose;
        if (ex.childFailure) attrs[Attr.ikeChildFailure] = ex.childFailure;
        if (ex.failure) attrs[Attr.ikeRefusedBy] = ex.failure.by;
      }
      span.setAttributes(attrs);
      if (failed) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
    }
    span.end();
  }

  #saAttributes(rec: SaRecord): Attributes {
    const s = rec.entry.state;
    const spiI = s.current?.spiI ?? s.init?.spiI;
    const spiR = s.current?.spiR ?? s.init?.spiR;
    const attrs: Attributes = {};
    if (spiI) attrs[Attr.ikeSpiInitiator] = hex(spiI);
    if (spiR) attrs[Attr.ikeSpiResponder] = hex(spiR);
    if (rec.peerId !== undefined) attrs[Attr.ikePeerId] = rec.peerId;
    if (rec.peer) attrs[Attr.ikePeerName] = rec.peer.name;
    return attrs;
  }
}
