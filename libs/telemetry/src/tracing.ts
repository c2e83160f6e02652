/**
 * Traces through `@opentelemetry/api`. Code that makes spans asks `tracer()` for them and
 * `tracingActive()` whether anyone records them; with no SDK registered every call goes to the
 * API's no-op implementation and costs a few property reads.
 *
 * The SDK (span processors, the OTLP/HTTP exporter) is in `sdk.ts` and loaded only by
 * `startTracing`, with a dynamic `import()`, when the OpenTelemetry environment asks for an
 * exporter (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or a caller hands
 * in span processors (tests): a process without tracing configured never loads it.
 */
import { ProxyTracerProvider, trace, type Tracer } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace';
import { IKEGATE_VERSION } from './metrics.js';
import { TRACER_NAME } from './trace-names.js';

/** The tracer every ikegate span comes from (its version is the one in package.json). */
export function tracer(): Tracer {
  return trace.getTracer(TRACER_NAME, IKEGATE_VERSION);
}

/**
 * Whether a tracer provider is registered (the SDK was started). While false, callers skip the
 * work of making spans altogether: nothing would record them.
 */
export function tracingActive(): boolean {
  // The API's global is a proxy; its delegate is the no-op provider until an SDK registers one.
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

export interface TracingOptions {
  /** The process role (up, worker, edge, control), a resource attribute. */
  readonly role: string;
  /** Where OTEL_* settings are read (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Span processors to use instead of the OTLP exporter (tests: an in-memory exporter). */
  readonly spanProcessors?: readonly SpanProcessor[];
}

export interface TracingHandle {
  /** Exports what is buffered, then unregisters the provider (the API is a no-op again). */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces (OTLP endpoint set, not disabled). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return false;
  if ((env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

/**
 * Starts the OpenTelemetry SDK when configured (see the file comment); undefined when it is not,
 * and then nothing was loaded. Call once, before any span is made.
 * @throws what the SDK throws for a malformed setting (e.g. OTEL_TRACES_SAMPLER_ARG)
 */
export async function startTracing(o: TracingOptions): Promise<TracingHandle | undefined> {
  const env = o.env ?? process.env;
  if (!o.spanProcessors && !tracingConfigured(env)) return undefined;
  const sdk = await import('./sdk.js');
  return sdk.startSdk({
    role: o.role,
    env,
    ...(o.spanProcessors ? { spanProcessors: o.spanProcessors } : {}),
  });
}
