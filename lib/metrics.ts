/**
 * billflow's Prometheus metrics (prom-client). Each API app and each worker has its own registry,
 * so two of them in one process (the tests) never share or collide; labels are bounded (route
 * templates, operations, outcomes), never an id.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from './db.js';

/** Seconds: an ERP call takes milliseconds to a few seconds (a Final renders and calls the provider). */
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20];

export interface ApiMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  statusChanges: Counter<'to' | 'outcome'>;
}

/** The API's: request latency, status changes, and the webhook outbox as PostgreSQL holds it at scrape time (shared by every worker). */
export function createApiMetrics(sql: Sql): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'billflow_http_request_duration_seconds',
    help: 'API request latency by route template and HTTP status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const statusChanges = new Counter({
    name: 'billflow_status_changes_total',
    help: 'Invoice status changes asked for through the API, by target status and outcome: changed, dry-run, in-progress (answered 202), or the problem type it was refused with',
    labelNames: ['to', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'billflow_webhook_deliveries',
    help: 'Deliveries of events to the ERP held in the outbox, by status (pending, delivered, failed: given up after the retry window)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const rows = await sql<{ status: string; n: number }[]>`SELECT status, count(*)::int AS n FROM webhook_deliveries GROUP BY status`;
      for (const status of ['pending', 'delivered', 'failed']) this.set({ status }, rows.find((r) => r.status === status)?.n ?? 0);
    },
  });
  new Gauge({
    name: 'billflow_webhook_endpoints_failing',
    help: 'ERP webhook endpoints whose last attempt failed (disabled ones included)',
    registers: [registry],
    async collect() {
      const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints WHERE failing_since IS NOT NULL OR NOT enabled`;
      this.set(row?.n ?? 0);
    },
  });
  return { registry, httpDuration, statusChanges };
}

export interface WorkerMetrics {
  registry: Registry;
  providerCallSeconds: Histogram<'provider' | 'operation' | 'outcome'>;
  providerCallErrors: Counter<'provider' | 'operation' | 'error'>;
  pdfRenderSeconds: Histogram;
  webhookAttempts: Counter<'result'>;
}

/** The worker's own, served next to the Temporal SDK's (worker/metrics-server.ts). */
export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    providerCallSeconds: new Histogram({
      name: 'billflow_provider_call_duration_seconds',
      help: 'Payment provider calls by provider, operation (the adapter method) and outcome (ok, error)',
      labelNames: ['provider', 'operation', 'outcome'] as const,
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    providerCallErrors: new Counter({
      name: 'billflow_provider_call_errors_total',
      help: 'Failed payment provider calls by operation: rejected (a 4xx, not retried) or unavailable (5xx, timeout, network; retried)',
      labelNames: ['provider', 'operation', 'error'] as const,
      registers: [registry],
    }),
    pdfRenderSeconds: new Histogram({
      name: 'billflow_pdf_render_duration_seconds',
      help: 'Chromium PDF renders (invoices and bills), waiting for a free page included',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhookAttempts: new Counter({
      name: 'billflow_webhook_attempts_total',
      help: "Attempts to deliver an event to an ERP endpoint, by result (delivered, retrying, failed: the delivery's retry window is over)",
      labelNames: ['result'] as const,
      registers: [registry],
    }),
  };
}
