/**
 * Scale (BENCH_ONLY=scale; meant for BILLFLOW_CLUSTER=1, not CI): SCALE_INVOICES (20,000) open
 * Final invoices with live payment-import timers, loaded through the API, and at each checkpoint
 * (SCALE_CHECKPOINTS: 2,000, half and the total): the worker's memory per cached workflow, visibility
 * queries by invoice number and by status, and one reconciliation run of the whole company. Then
 * lifecycle throughput (draft -> final -> paid through the API) with one, two and four workers on
 * the same task queue, and where the time goes (CPU by process).
 */
import { NativeConnection } from '@temporalio/worker';
import { createMailer } from '../activities/email/mailer.js';
import { smtpConfig } from '../lib/config.js';
import { createWorker } from '../worker/create.js';
import type { Servers } from '../test/servers.js';
import { createTenant, http, type Stack, type Tenant } from '../test/stack.js';
import { cpuDiff, cpuSnap, draftBody, ms, newClients, out, payAtProvider, pool, timed, untilSettled } from './support.js';

const TOTAL = Number(process.env.SCALE_INVOICES ?? 20_000);
const CHECKPOINTS = (process.env.SCALE_CHECKPOINTS ?? `2000,${TOTAL / 2},${TOTAL}`)
  .split(',')
  .map(Number)
  .filter((n) => n > 0 && n <= TOTAL);
const LOAD_CONCURRENCY = 16;
const THROUGHPUT_INVOICES = Number(process.env.SCALE_LIFECYCLES ?? 40);

const MiB = 2 ** 20;

/**
 * The invoices a company holds, loaded through the API: created, then printed to Final (provider
 * record, PDF, email). As an ERP does: with an Idempotency-Key, sent again while the answer is a
 * 503 (no worker took it in time) or a 202 (still running); each such retry is counted.
 */
async function load(stack: Stack, tenant: Tenant, clients: string[], from: number, to: number, retries: { n: number }): Promise<void> {
  await pool(to - from, LOAD_CONCURRENCY, async (k) => {
    const number = `SC-${String(from + k).padStart(6, '0')}`;
    const created = await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, body: draftBody(number, clients[(from + k) % clients.length]!) });
    if (created.status !== 201 && created.status !== 409) throw new Error(`create ${number}: ${created.status} ${JSON.stringify(created.body)}`);
    for (let attempt = 0; ; attempt++) {
      const final = await http<{ type?: string }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, {
        key: tenant.apiKey,
        body: { status: 'Final' },
        headers: { 'idempotency-key': `scale-final-${number}` },
      });
      // An illegal transition: an earlier attempt made it Final.
      if (final.status === 200 || (final.status === 409 && final.body.type?.endsWith('illegal-transition'))) return;
      // 409 otherwise: the earlier attempt still holds the key.
      if ((final.status !== 503 && final.status !== 202 && final.status !== 409) || attempt >= 20) throw new Error(`final ${number}: ${final.status} ${JSON.stringify(final.body)}`);
      retries.n++;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  });
}

/** p50 and worst of `n` timed calls. */
async function sample(n: number, fn: (i: number) => Promise<void>): Promise<string> {
  const t: number[] = [];
  for (let i = 0; i < n; i++) t.push(await timed(() => fn(i)));
  t.sort((a, b) => a - b);
  return `p50 ${ms(t[Math.floor(n / 2)]!)}, worst ${ms(t.at(-1)!)}`;
}

async function checkpoint(stack: Stack, tenant: Tenant, n: number, rssBefore: number): Promise<void> {
  out(`\n### ${n} open Final invoices`);
  (globalThis as { gc?: () => void }).gc?.();
  const rss = process.memoryUsage().rss;
  out(`worker process RSS ${(rss / MiB).toFixed(0)} MiB (${(rssBefore / MiB).toFixed(0)} MiB before loading): ${((rss - rssBefore) / n / 1024).toFixed(1)} KiB per cached invoice workflow`);
  const byNumber = await sample(10, async (i) => {
    const number = `SC-${String(Math.floor((i * n) / 10)).padStart(6, '0')}`;
    let found = 0;
    for await (const _ of stack.temporal.workflow.list({ query: `InvoiceNumber = "${number}" AND CompanyId = "${tenant.companyId}"` })) found++;
    if (found !== 1) throw new Error(`visibility: ${found} workflows for invoice ${number}`);
  });
  out(`visibility query by invoice number (10 numbers): ${byNumber}`);
  let count = 0;
  const byStatus = await sample(5, async () => {
    count = (await stack.temporal.workflow.count(`CompanyId = "${tenant.companyId}" AND InvoiceStatus = "Final" AND ExecutionStatus = "Running"`)).count;
  });
  out(`visibility count by status (Final, running): ${count} workflows, ${byStatus}`);
  const c0 = cpuSnap();
  const t0 = performance.now();
  const run = await http<{ id: string }>(stack.apiUrl, 'POST', '/v1/reconciliations', { key: tenant.apiKey });
  if (run.status !== 201) throw new Error(`reconciliation: ${run.status} ${JSON.stringify(run.body)}`);
  for (;;) {
    const r = await http<{ status: string; findings: unknown[] }>(stack.apiUrl, 'GET', `/v1/reconciliations/${run.body.id}`, { key: tenant.apiKey });
    if (r.body.status === 'finished' || r.body.status === 'failed') {
      out(`reconciliation run over ${n} invoices: ${((performance.now() - t0) / 1000).toFixed(2)} s, ${r.body.status}, ${r.body.findings.length} finding(s) (CPU: ${cpuDiff(c0, cpuSnap())})`);
      return;
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** Draft -> final -> paid through the API, `CONCURRENCY` at once, with `extra` more workers polling the stack's task queue. */
async function throughput(stack: Stack, servers: Servers, extra: number): Promise<void> {
  const mailer = createMailer(smtpConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(servers.smtpPort) }));
  // A connection each: the SDK takes one worker per task queue and connection in a process.
  const connections = await Promise.all(Array.from({ length: extra }, () => NativeConnection.connect({ address: servers.temporalAddress })));
  const workers = await Promise.all(
    connections.map((connection) =>
      createWorker({
        connection,
        namespace: 'default',
        taskQueue: stack.taskQueue,
        sql: stack.sql,
        mailer,
        secrets: stack.secrets,
        publicApiUrl: stack.apiUrl,
        chromiumPath: servers.chromiumPath,
        pdfConcurrency: 2,
        workflowBundlePath: servers.workflowBundlePath,
        options: { shutdownGraceTime: '5 seconds' },
      }),
    ),
  );
  const running = workers.map((w) => w.worker.run());
  try {
    const tenant = await createTenant(stack);
    const clients = await newClients(stack, tenant, 5);
    const one = async (i: number) => {
      const number = `TP-${extra}-${i}`;
      await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, body: draftBody(number, clients[i % clients.length]!) });
      const final = await http<{ providerInvoiceId: string }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: tenant.apiKey, body: { status: 'Final' } });
      if (final.status !== 200) throw new Error(`final: ${final.status} ${JSON.stringify(final.body)}`);
      await payAtProvider(stack, tenant, final.body.providerInvoiceId);
      await untilSettled(stack, tenant.companyId, number);
    };
    await pool(4, 4, (i) => one(THROUGHPUT_INVOICES + i));
    const c0 = cpuSnap();
    const t = await timed(() => pool(THROUGHPUT_INVOICES, 8, one));
    out(`${1 + extra} worker(s): ${(THROUGHPUT_INVOICES / (t / 1000)).toFixed(2)} invoices/s (CPU: ${cpuDiff(c0, cpuSnap())})`);
  } finally {
    for (const w of workers) w.worker.shutdown();
    await Promise.all(running);
    await Promise.all(workers.map((w) => w.renderer.close()));
    mailer.close();
    await Promise.all(connections.map((c) => c.close()));
  }
}

export async function benchScale(stack: Stack, servers: Servers): Promise<void> {
  out(`\n## Scale: ${TOTAL} open Final invoices with live timers (checkpoints ${CHECKPOINTS.join(', ')})`);
  const tenant = await createTenant(stack);
  const clients = await newClients(stack, tenant, 50);
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  let loaded = 0;
  for (const n of CHECKPOINTS) {
    const c0 = cpuSnap();
    const retries = { n: 0 };
    const t = await timed(() => load(stack, tenant, clients, loaded, n, retries));
    out(
      `loaded invoices ${loaded + 1}-${n} through the API in ${(t / 1000).toFixed(1)} s, ${((n - loaded) / (t / 1000)).toFixed(1)} Finals/s, ${retries.n} Final(s) sent again after a 503/202 (CPU: ${cpuDiff(c0, cpuSnap())})`,
    );
    loaded = n;
    await checkpoint(stack, tenant, n, rssBefore);
  }
  out(`\n### Lifecycle throughput by workers on one task queue (${THROUGHPUT_INVOICES} invoices, 8 at once; every worker in this process, on the same 2 cores)`);
  for (const extra of [0, 1, 3]) await throughput(stack, servers, extra);
}
