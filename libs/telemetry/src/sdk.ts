/**
 * The OpenTelemetry SDK setup, loaded only through `startTracing` (tracing.ts) with a dynamic
 * import: nothing else imports this file, so a process without tracing configured never loads
 * the SDK or the exporter.
 *
 * What it registers globally: a tracer provider whose resource names the service (OTEL_SERVICE_NAME
 * or `ikegate`), its version and role plus OTEL_RESOURCE_ATTRIBUTES; the AsyncLocalStorage context
 * manager (a span made active with `context.with` stays active across awaits, which is how log
 * lines get its ids); the W3C trace-context propagator (`traceparent` on API requests). Spans go
 * through a batch processor (OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE) to the
 * OTLP/HTTP (JSON) exporter, which reads its endpoint, headers
 * and TLS files from the standard OTEL_EXPORTER_OTLP_* variables. The sampler follows
 * OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on).
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { IKEGATE_VERSION } from './metrics.js';
import { Attr } from './trace-names.js';
import type { TracingHandle } from './tracing.js';

export interface SdkOptions {
  readonly role: string;
  readonly env: NodeJS.ProcessEnv;
  readonly spanProcessors?: readonly SpanProcessor[];
}

/** OTEL_TRACES_SAMPLER as the specification names them; unknown names fall back to the default. */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  const arg = Number.parseFloat(env.OTEL_TRACES_SAMPLER_ARG ?? '');
  const ratio = Number.isFinite(arg) && arg >= 0 && arg <= 1 ? arg : 1;
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_MAX_QUEUE_SIZE (whole numbers; others are ignored). */
function batchFromEnv(env: NodeJS.ProcessEnv): { scheduledDelayMillis?: number; maxQueueSize?: number } {
  const int = (v: string | undefined) => {
    const n = Number(v);
    return v !== undefined && v.trim() !== '' && Number.isInteger(n) && n > 0 ? n : undefined;
  };
  const delay = int(env.OTEL_BSP_SCHEDULE_DELAY);
  const queue = int(env.OTEL_BSP_MAX_QUEUE_SIZE);
  return { ...(delay ? { scheduledDelayMillis: delay } : {}), ...(queue ? { maxQueueSize: queue } : {}) };
}

export function startSdk(o: SdkOptions): TracingHandle {
  const resource = detectResources({ detectors: [envDetector] }).merge(
    resourceFromAttributes({
      'service.name': o.env.OTEL_SERVICE_NAME?.trim() || 'ikegate',
      'service.version': IKEGATE_VERSION,
      [Attr.serviceRole]: o.role,
    }),
  );
  const provider = new TracerProvider({
    resource,
    sampler: samplerFromEnv(o.env),
    spanProcessors: o.spanProcessors
      ? [...o.spanProcessors]
      : [new BatchSpanProcessor({ exporter: new OTLPTraceExporter(), ...batchFromEnv(o.env) })],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}
