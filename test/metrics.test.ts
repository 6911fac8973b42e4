/**
 * Metrics and logs as an operator reads them. Metrics as Prometheus scrapes them, after a lifecycle (draft, Final, paid at the
 * provider, an event delivered to the ERP's endpoint): the API's /metrics (operator key) and the
 * worker's, from worker/main.ts run as its own process so the Temporal SDK's exporter is installed
 * as in production. The stack has a database of its own: that worker's webhook loop must not take
 * other test files' deliveries. Then the log lines of both carry the invoice's company, number
 * and correlation id.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createLogger } from '../lib/log.js';
import { ROOT } from '../lib/paths.js';
import { freePort } from '../lib/temporal-dev.js';
import { ADMIN_KEY, createTenant, eventually, http, privateDatabase, startStack, type Stack, type Tenant } from './harness.js';
import { webhookDelivered } from './settled.js';

let stack: Stack;
let worker: ChildProcess;
let workerOutput = '';
let workerMetricsUrl: string;
let sdkMetricsUrl: string;
let erp: Server;
let erpUrl: string;
const erpReceived: string[] = [];
let database: Awaited<ReturnType<typeof privateDatabase>>;
const apiLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  database = await privateDatabase();
  const databaseUrl = database.url;
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) apiLines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  stack = await startStack({ databaseUrl, worker: false, log: createLogger('api', out) });
  erp = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      erpReceived.push(body);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => erp.listen(0, '127.0.0.1', r));
  erpUrl = `http://127.0.0.1:${(erp.address() as AddressInfo).port}/erp`;

  const port = await freePort();
  worker = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker/main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      TEMPORAL_TASK_QUEUE: stack.taskQueue,
      BILLFLOW_SECRET_KEY: stack.secrets.current.key.toString('base64'),
      CHROMIUM_PATH: inject('chromiumPath'),
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(inject('smtpPort')),
      WORKER_METRICS_PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (b: Buffer) => (workerOutput += b.toString('utf8')));
  worker.stderr!.on('data', (b: Buffer) => (workerOutput += b.toString('utf8')));
  const started = await eventually(async () => workerOutput.split('\n').find((l) => l.includes('"worker started"')), `worker/main.ts to start; output so far:\n${workerOutput}`, 120_000);
  const line = JSON.parse(started) as { metrics: string; sdkMetrics: string };
  workerMetricsUrl = line.metrics;
  sdkMetricsUrl = line.sdkMetrics;
}, 180_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGINT');
    await exited;
  }
  await stack?.stop();
  await new Promise((r) => erp?.close(r));
  await database?.drop();
});

/** The value of one sample: `name` with every label given (others may be present). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ?? '';
    if (Object.entries(labels).every(([k, v]) => have.includes(`${k}="${v}"`))) return Number(m[4]);
  }
  return undefined;
}

async function scrape(url: string, key?: string): Promise<string> {
  const res = await fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  expect(res.status, url).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return res.text();
}

describe('metrics and logs after a lifecycle', () => {
  let tenant: Tenant;
  let number: string;
  let finalRequestId: string;

  it('runs a lifecycle through the worker process: Final, paid, an event delivered to the ERP', async () => {
    tenant = await createTenant(stack);
    const as = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
    expect((await as('POST', '/v1/webhook-endpoints', { url: erpUrl, events: ['invoice.finalized'] })).status).toBe(201);
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await as('POST', '/v1/clients', { id: clientId, name: 'Metrics Client', email: 'ap@metrics.example' })).status).toBe(201);
    number = `MET-${randomUUID().slice(0, 8)}`;
    expect((await as('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Design', amount: 40_000 }] })).status).toBe(201);
    expect((await as('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' })).status).toBe(409);
    const final = await as('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    finalRequestId = final.headers.get('x-request-id')!;

    const acct = { key: tenant.account.apiKey };
    const customer = (await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct)).body.data[0]!;
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      ...acct,
      body: { customerId: customer.id, method: 'card', allocations: [{ invoiceId: final.body.providerInvoiceId, amount: 40_000 }] },
    });
    expect(paid.status).toBe(201);
    await webhookDelivered(stack, tenant, paid.body.id);
    await eventually(async () => ((await as('GET', `/v1/invoices/${number}`)).body.settlement === 'Settled' ? true : undefined), 'the invoice to be settled');
    await eventually(async () => (erpReceived.some((b) => b.includes(number)) ? true : undefined), 'the ERP to receive invoice.finalized');
  });

  it("serves the API's metrics to the operator key only", async () => {
    expect((await http(stack.apiUrl, 'GET', '/metrics')).status).toBe(401);
    expect((await http(stack.apiUrl, 'GET', '/metrics', { key: tenant.apiKey })).status).toBe(401);
    // The delivery is marked delivered just after the ERP answered.
    const text = await eventually(async () => {
      const t = await scrape(`${stack.apiUrl}/metrics`, ADMIN_KEY);
      return (sample(t, 'billflow_webhook_deliveries', { status: 'delivered' }) ?? 0) >= 1 ? t : undefined;
    }, 'the delivery to be counted');
    const status = { method: 'POST', route: '/v1/invoices/:number/status' };
    expect(sample(text, 'billflow_http_request_duration_seconds_count', { ...status, status: '200' })).toBe(1);
    expect(sample(text, 'billflow_http_request_duration_seconds_count', { ...status, status: '409' })).toBe(1);
    expect(sample(text, 'billflow_http_request_duration_seconds_count', { method: 'POST', route: '/v1/invoices', status: '201' })).toBe(1);
    // Ids never become labels.
    expect(text).not.toContain(number);
    expect(sample(text, 'billflow_status_changes_total', { to: 'Final', outcome: 'changed' })).toBe(1);
    expect(sample(text, 'billflow_status_changes_total', { to: 'Reissue', outcome: 'illegal-transition' })).toBe(1);
    expect(sample(text, 'billflow_webhook_deliveries', { status: 'failed' })).toBe(0);
    expect(sample(text, 'billflow_webhook_endpoints_failing')).toBe(0);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  it("serves the worker's metrics: the Temporal SDK's and billflow's on one port", async () => {
    expect(new URL(workerMetricsUrl).hostname).toBe('127.0.0.1');
    const text = await scrape(workerMetricsUrl);
    // The SDK's own (its Runtime's Prometheus exporter), for this worker's task queue.
    expect(sample(text, 'temporal_workflow_task_execution_latency_count', { task_queue: stack.taskQueue })).toBeGreaterThan(0);
    expect(sample(text, 'temporal_activity_execution_latency_count', { task_queue: stack.taskQueue, activity_type: 'finalizeAtProvider' })).toBeGreaterThan(0);
    // billflow's: each provider operation of the Final, once; the PDF; the event to the ERP.
    for (const operation of ['ensureCustomer', 'createInvoice', 'attachPdf']) {
      expect(sample(text, 'billflow_provider_call_duration_seconds_count', { provider: 'billpay', operation, outcome: 'ok' }), operation).toBe(1);
    }
    expect(sample(text, 'billflow_provider_call_errors_total')).toBeUndefined();
    expect(sample(text, 'billflow_pdf_render_duration_seconds_count')).toBe(1);
    expect(sample(text, 'billflow_webhook_attempts_total', { result: 'delivered' })).toBe(1);
    // One family per name: the two sources never clash.
    const families = text
      .split('\n')
      .filter((l) => l.startsWith('# TYPE '))
      .map((l) => l.split(' ')[2]);
    expect(families.length).toBe(new Set(families).size);

    // What the merge costs a scrape: the SDK's exporter alone against the merged endpoint (printed, not asserted).
    const time = async (url: string) => {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await (await fetch(url)).text();
        ms.push(performance.now() - t0);
      }
      return ms.sort((a, b) => a - b)[10]!;
    };
    const direct = await time(sdkMetricsUrl);
    const merged = await time(workerMetricsUrl);
    process.stdout.write(`worker metrics scrape p50: SDK exporter alone ${direct.toFixed(1)} ms, merged ${merged.toFixed(1)} ms (${text.length} bytes)\n`);
  });

  it("logs the API request and the worker process's activities with company, invoice and correlation id", () => {
    const request = apiLines.find((l) => l.msg === 'request' && l.requestId === finalRequestId);
    expect(request).toMatchObject({ component: 'api', level: 'INFO', companyId: tenant.companyId, invoiceNumber: number, method: 'POST', route: '/v1/invoices/:number/status', status: 200 });
    const worker = workerOutput
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const attached = worker.find((l) => l.msg === 'invoice PDF sent to provider');
    expect(attached).toMatchObject({ component: 'worker', companyId: tenant.companyId, invoiceNumber: number, requestId: finalRequestId, activityType: 'finalizeAtProvider' });
    expect(JSON.stringify([...apiLines, ...worker])).not.toContain(tenant.apiKey);
  });
});
