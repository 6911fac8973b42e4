/** Builds a billflow worker: real activities over their dependencies, the invoice workflows. */
import { Worker, type ActivityInterceptorsFactory, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Mailer } from '../activities/email/mailer.js';
import { createActivities } from '../activities/index.js';
import { PdfRenderer } from '../activities/pdf/renderer.js';
import type { CircuitSettings } from '../activities/provider/circuit.js';
import type { Sql } from '../lib/db.js';
import { createWorkerMetrics, type WorkerMetrics } from '../lib/metrics.js';
import type { Keyring } from '../lib/secrets.js';
import { WORKFLOWS_ENTRY } from '../lib/paths.js';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  sql: Sql;
  mailer: Mailer;
  secrets: Keyring;
  /** Where payers reach the API: the base of billflow's Pay Now links. */
  publicApiUrl: string;
  /** The circuit breaker per provider account; without it provider calls are not guarded. */
  circuit?: CircuitSettings;
  chromiumPath: string;
  pdfConcurrency: number;
  /** A pre-built bundle (tests build one per run); otherwise the workflows are bundled at start. */
  workflowBundlePath?: string;
  /** The worker's own metrics (a fresh registry when not given). */
  metrics?: WorkerMetrics;
  /** Extra worker options (tests turn off signal handling, shrink caches). */
  options?: Partial<WorkerOptions>;
}

/**
 * Every log line of an activity (its own and the SDK's about it) carries the correlation id, company
 * and invoice of its input, as billflow's activities all take them by these names.
 */
const correlation: ActivityInterceptorsFactory = () => {
  let fields: Record<string, string> = {};
  return {
    inbound: {
      execute(input, next) {
        const arg = (input.args[0] ?? {}) as Record<string, unknown>;
        // Some take the whole invoice instead of its company and number.
        const invoice = (arg.invoice ?? {}) as Record<string, unknown>;
        const pick = (from: string, to: string) => {
          const v = arg[from] ?? invoice[from];
          return typeof v === 'string' ? { [to]: v } : {};
        };
        fields = { ...pick('requestId', 'requestId'), ...pick('companyId', 'companyId'), ...pick('number', 'invoiceNumber') };
        return next(input);
      },
    },
    outbound: {
      getLogAttributes(input, next) {
        return next({ ...input, ...fields });
      },
    },
  };
};

/**
 * An activity given a heartbeatTimeout heartbeats on its own while it runs, so a worker killed
 * under it is noticed within that timeout (seconds) rather than its startToCloseTimeout. No billflow
 * activity reads its heartbeat details back, so these beats carry none.
 */
const heartbeating: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    async execute(input, next) {
      const timeout = ctx.info.heartbeatTimeoutMs;
      if (!timeout) return next(input);
      // The SDK throttles to 80% of the timeout; ticking at a quarter keeps a beat in every window.
      const timer = setInterval(() => ctx.heartbeat(), Math.max(250, timeout / 4));
      try {
        return await next(input);
      } finally {
        clearInterval(timer);
      }
    },
  },
});

export async function createWorker(deps: WorkerDeps): Promise<{ worker: Worker; renderer: PdfRenderer; metrics: WorkerMetrics }> {
  const metrics = deps.metrics ?? createWorkerMetrics();
  const renderer = new PdfRenderer({ executablePath: deps.chromiumPath, concurrency: deps.pdfConcurrency, metrics });
  const worker = await Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    activities: createActivities({
      sql: deps.sql,
      renderer,
      mailer: deps.mailer,
      secrets: deps.secrets,
      publicApiUrl: deps.publicApiUrl,
      metrics,
      ...(deps.circuit ? { circuit: deps.circuit } : {}),
    }),
    ...(deps.workflowBundlePath ? { workflowBundle: { codePath: deps.workflowBundlePath } } : { workflowsPath: WORKFLOWS_ENTRY }),
    // A dead worker's cached workflows wait this long before another worker takes their next task
    // (the SDK's default is 10 s); a live worker answers its sticky queue in milliseconds.
    stickyQueueScheduleToStartTimeout: '3 seconds',
    interceptors: { activity: [correlation, heartbeating] },
    ...deps.options,
  });
  return { worker, renderer, metrics };
}
