/** The worker process: runs until SIGINT/SIGTERM, then drains and closes Chromium and PostgreSQL. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { createMailer } from '../activities/email/mailer.js';
import { chromiumPath, databaseUrl, pdfConcurrency, providerCircuit, publicUrls, smtpConfig, temporalConfig, webhookDelivery, workerMetrics } from '../lib/config.js';
import { connect } from '../lib/db.js';
import { createLogger } from '../lib/log.js';
import { createWorkerMetrics } from '../lib/metrics.js';
import { keyringFromEnv } from '../lib/secrets.js';
import { freePort } from '../lib/temporal-dev.js';
import { connectWorker } from '../lib/temporal.js';
import { parseInvoiceWorkflowId } from '../workflows/contract.js';
import { cachedWorkflowBundle } from './bundle.js';
import { createWorker } from './create.js';
import { serveWorkerMetrics } from './metrics-server.js';
import { WebhookDispatcher } from './webhooks.js';

const log = createLogger('worker');
const metricsAt = workerMetrics();
// The SDK's exporter on a private loopback port (it cannot bind port 0 and say which it got);
// worker/metrics-server.ts serves it with ours on WORKER_METRICS_PORT.
const sdkMetricsAddress = metricsAt ? `127.0.0.1:${await freePort()}` : null;
// The SDK's and the activities' log lines as JSON on stdout, like every other billflow process.
Runtime.install({
  ...(sdkMetricsAddress ? { telemetryOptions: { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } } : {}),
  // The task token is an opaque blob: it only makes every activity line long.
  logger: new DefaultLogger('INFO', ({ level, message, meta }) => {
    const { taskToken: _token, ...fields } = meta ?? {};
    // An invoice's workflow id names its company and number: every line of it carries both.
    const invoice = typeof fields.workflowId === 'string' ? parseInvoiceWorkflowId(fields.workflowId) : null;
    log(message, { level: level as LogLevel, ...(invoice ? { companyId: invoice.companyId, invoiceNumber: invoice.number } : {}), ...fields });
  }),
});
const cfg = temporalConfig();
const sql = connect(databaseUrl());
const mailer = createMailer(smtpConfig());
const connection = await connectWorker(cfg);
const workflowBundlePath = await cachedWorkflowBundle();
const secrets = keyringFromEnv();
const metrics = createWorkerMetrics();
const { worker, renderer } = await createWorker({
  metrics,
  workflowBundlePath,
  connection,
  namespace: cfg.namespace,
  taskQueue: cfg.taskQueue,
  sql,
  mailer,
  secrets,
  publicApiUrl: publicUrls().api,
  circuit: providerCircuit(),
  chromiumPath: chromiumPath(),
  pdfConcurrency: pdfConcurrency(),
});
// Events to the ERP go out from every worker (each delivery is leased to one at a time).
const webhooks = new WebhookDispatcher(sql, secrets, createLogger('webhooks'), webhookDelivery(), metrics);
await webhooks.start();
const metricsServer = metricsAt && sdkMetricsAddress ? await serveWorkerMetrics({ ...metricsAt, registry: metrics.registry, sdkUrl: `http://${sdkMetricsAddress}/metrics` }) : null;
log('worker started', {
  taskQueue: cfg.taskQueue,
  namespace: cfg.namespace,
  address: cfg.address,
  metrics: metricsServer?.url ?? 'off',
  sdkMetrics: sdkMetricsAddress ? `http://${sdkMetricsAddress}/metrics` : 'off',
});
// Worker.run() resolves once the SDK's own SIGINT/SIGTERM handling has drained the worker.
await worker.run();
await webhooks.stop();
await metricsServer?.close();
await renderer.close();
mailer.close();
await sql.end({ timeout: 5 });
await connection.close();
log('worker stopped');
