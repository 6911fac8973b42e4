/** The worker process: runs until SIGINT/SIGTERM, then drains and closes Chromium and PostgreSQL. */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { createMailer } from '../activities/email/mailer.js';
import { chromiumPath, databaseUrl, pdfConcurrency, providerCircuit, publicUrls, smtpConfig, temporalConfig, webhookDelivery } from '../lib/config.js';
import { connect } from '../lib/db.js';
import { createLogger } from '../lib/log.js';
import { keyringFromEnv } from '../lib/secrets.js';
import { connectWorker } from '../lib/temporal.js';
import { cachedWorkflowBundle } from './bundle.js';
import { createWorker } from './create.js';
import { WebhookDispatcher } from './webhooks.js';

const log = createLogger('worker');
// The SDK's and the activities' log lines as JSON on stdout, like every other billflow process.
Runtime.install({
  // The task token is an opaque blob: it only makes every activity line long.
  logger: new DefaultLogger('INFO', ({ level, message, meta }) => {
    const { taskToken: _token, ...fields } = meta ?? {};
    log(message, { level: level as LogLevel, ...fields });
  }),
});
const cfg = temporalConfig();
const sql = connect(databaseUrl());
const mailer = createMailer(smtpConfig());
const connection = await connectWorker(cfg);
const workflowBundlePath = await cachedWorkflowBundle();
const secrets = keyringFromEnv();
const { worker, renderer } = await createWorker({
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
const webhooks = new WebhookDispatcher(sql, secrets, createLogger('webhooks'), webhookDelivery());
await webhooks.start();
log('worker started', { taskQueue: cfg.taskQueue, namespace: cfg.namespace, address: cfg.address });
// Worker.run() resolves once the SDK's own SIGINT/SIGTERM handling has drained the worker.
await worker.run();
await webhooks.stop();
await renderer.close();
mailer.close();
await sql.end({ timeout: 5 });
await connection.close();
log('worker stopped');
