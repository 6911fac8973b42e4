/**
 * `npm run bench`: prints figures and ratios measured against baselines in the same run.
 *  1. PDF rendering: the worker's renderer vs a bare setContent + pdf loop in one warm browser, each
 *     at 1, 2 and 3 pages at once, best against best; and the per-launch figure beside them.
 *  2. Latency (bench/latency.ts): ERP calls through the API (no-provider changes, print to Final)
 *     vs bare Updates (no-op, one activity, one local activity, ten activities) on the same dev
 *     server, with one Final's history taken apart.
 *  3. Engine overhead: invoices driven draft -> final -> paid through the API vs minimal workflows
 *     that make only the irreducible calls, as local activities like billflow, on the same dev server.
 *  4. A bill sending run of BENCH_BILLS Final bills (email with the PDF, or print) vs rendering the
 *     same bills' PDFs alone on a renderer like the worker's; the run's progress Query is read
 *     throughout and its successes and worst latency printed.
 *  5. Worker memory per cached workflow with 1,000 open invoices.
 *  6. Only with BENCH_ONLY=scale (bench/scale.ts): SCALE_INVOICES (20,000) open Final invoices,
 *     visibility queries, reconciliation runs at checkpoints, throughput by worker count.
 * Sizes: BENCH_PDFS (200), BENCH_INVOICES (40), BENCH_BILLS (1000), BENCH_OPEN (1000), BENCH_CONCURRENCY (8),
 * BENCH_LATENCY_SAMPLES (40).
 * BENCH_ONLY=pdf|latency|engine|bills|memory|scale runs one section (latency runs the engine's throughput too).
 * BILLFLOW_CLUSTER=1 runs it on `npm run cluster`'s Temporal (a cluster on PostgreSQL, one process per
 * service) instead of the CLI's dev server: both sides of every ratio then use the cluster.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { chromium } from 'playwright-core';
import { createMailer } from '../activities/email/mailer.js';
import { createActivities } from '../activities/index.js';
import { pdfConcurrency, smtpConfig } from '../lib/config.js';
import { createWorkerMetrics } from '../lib/metrics.js';
import { invoiceHtml } from '../activities/pdf/invoice-document.js';
import { PDF_OPTIONS, PdfRenderer } from '../activities/pdf/renderer.js';
import { paymentForInvoice } from '../activities/provider/provider.js';
import { ROOT } from '../lib/paths.js';
import { billRunProgressQuery } from '../workflows/bill-run-contract.js';
import { changeStatusUpdate, invoiceWorkflowId, stateQuery, type InvoiceDraft, type InvoiceState } from '../workflows/contract.js';
import { initialState } from '../workflows/state.js';
import { startServers } from '../test/servers.js';
import { createTenant, http, startStack, type Stack } from '../test/stack.js';
import { baselineInvoice, finalUpdate, paidSignal } from './baseline-workflow.js';
import { benchLatency } from './latency.js';
import { benchScale } from './scale.js';
import { cpuDiff, cpuSnap, draftBody, ms, newClients, out, payAtProvider, pool, timed, untilSettled } from './support.js';

const PDFS = Number(process.env.BENCH_PDFS ?? 200);
const INVOICES = Number(process.env.BENCH_INVOICES ?? 40);
const OPEN = Number(process.env.BENCH_OPEN ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const BILLS = Number(process.env.BENCH_BILLS ?? 1000);
const ONLY = process.env.BENCH_ONLY;
const section = (name: string) => !ONLY || ONLY === name;
const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu'];

/** The fastest of three passes: on a shared 2-core machine single passes move by a third. */
async function bestOf(fn: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) best = Math.min(best, await timed(fn));
  return best;
}

function sampleInvoice(i: number): InvoiceState {
  const lines = Array.from({ length: 3 + (i % 5) }, (_, k) => ({ description: `Engineering services, phase ${k + 1}`, quantity: k + 1, unitPrice: 12_500, amount: (k + 1) * 12_500 }));
  const draft: InvoiceDraft = { companyId: 'bench', number: `B-${i}`, clientId: 'CL-1', invoiceDate: '2026-11-24', dueDate: '2026-12-24', currency: 'USD', lines, prepaymentsApplied: 0 };
  return { ...initialState(draft), status: 'Final', revision: 1, payNowUrl: `http://127.0.0.1:4010/pay/tok_${i}` };
}

async function benchPdf(chromiumPath: string): Promise<void> {
  out(`\n## PDF rendering, ${PDFS} one-page invoices (best of 3 passes each)`);
  const htmls = Array.from({ length: PDFS }, (_, i) =>
    invoiceHtml(sampleInvoice(i), { company: { name: 'Bench Engineering' }, client: { id: 'CL-1', name: 'Riverside Architects', email: 'ap@riverside.example' } }),
  );

  const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  const bare: Record<number, number> = {};
  for (const c of [1, 2, 3]) {
    const pages = await Promise.all(Array.from({ length: c }, () => context.newPage()));
    for (const p of pages) {
      await p.setContent(htmls[0]!);
      await p.pdf(PDF_OPTIONS);
    }
    const elapsed = await bestOf(() =>
      pool(PDFS, c, async (i, lane) => {
        const page = pages[lane]!;
        await page.setContent(htmls[i]!);
        await page.pdf(PDF_OPTIONS);
      }),
    );
    bare[c] = PDFS / (elapsed / 1000);
    out(`bare loop, ${c} page(s) at once: ${ms(elapsed / PDFS)} per invoice, ${bare[c]!.toFixed(1)} invoices/s`);
    await Promise.all(pages.map((p) => p.close()));
  }
  await browser.close();
  const best = Math.max(...Object.values(bare));

  // The renderer at the same page concurrencies (PDF_CONCURRENCY), so best is compared with best.
  const ours: Record<number, number> = {};
  for (const c of [1, 2, 3]) {
    const renderer = new PdfRenderer({ executablePath: chromiumPath, concurrency: c });
    await Promise.all(htmls.slice(0, 4).map((h) => renderer.render(h)));
    const elapsed = await bestOf(() => Promise.all(htmls.map((h) => renderer.render(h))));
    await renderer.close();
    ours[c] = PDFS / (elapsed / 1000);
    const configured = c === pdfConcurrency() ? ', the default' : '';
    out(`worker renderer, PDF_CONCURRENCY=${c}${configured}: ${ms(elapsed / PDFS)} per invoice, ${ours[c]!.toFixed(1)} invoices/s (${(ours[c]! / bare[c]!).toFixed(2)}x the bare loop at ${c})`);
  }

  const launches = 10;
  const perLaunch = await timed(async () => {
    for (let i = 0; i < launches; i++) {
      const b = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
      const p = await b.newPage();
      await p.setContent(htmls[i]!);
      await p.pdf(PDF_OPTIONS);
      await b.close();
    }
  });
  out(`a browser launched per invoice: ${ms(perLaunch / launches)} per invoice`);
  out(`RATIO best renderer / best bare loop throughput: ${(Math.max(...Object.values(ours)) / best).toFixed(2)}x (target >= 0.90)`);
}

async function benchEngine(stack: Stack, servers: Awaited<ReturnType<typeof startServers>>): Promise<void> {
  out(`\n## Lifecycle throughput, ${INVOICES} invoices draft -> final -> paid, ${CONCURRENCY} at once`);
  // Baseline: the irreducible calls, as local activities, on their own task queue, driven straight through the client.
  const baseTenant = await createTenant(stack);
  await http(stack.sandboxUrl, 'PATCH', `/v1/accounts/${baseTenant.account.id}`, { key: baseTenant.account.apiKey, body: { webhookUrl: null } });
  const baseClients = await newClients(stack, baseTenant, 5);
  const baseRenderer = new PdfRenderer({ executablePath: servers.chromiumPath, concurrency: 2 });
  const baseMailer = createMailer(smtpConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(servers.smtpPort) }));
  const baseQueue = `bench-baseline-${randomUUID()}`;
  const baseConnection = await NativeConnection.connect({ address: servers.temporalAddress });
  const baseWorker = await Worker.create({
    connection: baseConnection,
    taskQueue: baseQueue,
    activities: createActivities({ sql: stack.sql, renderer: baseRenderer, mailer: baseMailer, secrets: stack.secrets, publicApiUrl: stack.apiUrl, metrics: createWorkerMetrics() }),
    workflowBundle: { codePath: await servers.bundle(path.join(ROOT, 'bench', 'baseline-workflow.ts'), 'baseline') },
  });
  const baseRun = baseWorker.run();
  const baseOne = async (i: number) => {
    const draft: InvoiceDraft = {
      companyId: baseTenant.companyId,
      number: `BASE-${i}`,
      clientId: baseClients[i % 5]!,
      invoiceDate: '2026-11-24',
      dueDate: '2026-12-24',
      currency: 'USD',
      lines: draftBody('', '').lines,
      prepaymentsApplied: 0,
    };
    const handle = await stack.temporal.workflow.start(baselineInvoice, { taskQueue: baseQueue, workflowId: `Baseline:${draft.companyId}:${draft.number}`, args: [draft] });
    const providerInvoiceId = await handle.executeUpdate(finalUpdate);
    const payment = await payAtProvider(stack, baseTenant, providerInvoiceId);
    await handle.signal(paidSignal, paymentForInvoice(payment, providerInvoiceId, 'webhook', 'bench')!);
    await handle.result();
  };

  const engTenant = await createTenant(stack);
  const engClients = await newClients(stack, engTenant, 5);
  const engOne = async (i: number) => {
    const number = `ENG-${i}`;
    const created = await http(stack.apiUrl, 'POST', '/v1/invoices', { key: engTenant.apiKey, body: draftBody(number, engClients[i % 5]!) });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
    const final = await http<{ providerInvoiceId: string }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: engTenant.apiKey, body: { status: 'Final' } });
    if (final.status !== 200) throw new Error(`final: ${final.status} ${JSON.stringify(final.body)}`);
    await payAtProvider(stack, engTenant, final.body.providerInvoiceId);
    await untilSettled(stack, engTenant.companyId, number);
  };

  const warm = 3;
  await pool(warm, warm, (i) => baseOne(INVOICES + i));
  await pool(warm, warm, (i) => engOne(INVOICES + i));
  const baseMs = await timed(() => pool(INVOICES, CONCURRENCY, baseOne));
  const engMs = await timed(() => pool(INVOICES, CONCURRENCY, engOne));
  baseWorker.shutdown();
  await baseRun;
  await baseRenderer.close();
  baseMailer.close();
  await baseConnection.close();
  const baseTput = INVOICES / (baseMs / 1000);
  const engTput = INVOICES / (engMs / 1000);
  out(`minimal workflows (client -> irreducible calls): ${baseTput.toFixed(2)} invoices/s (${ms(baseMs / INVOICES)} each, amortised)`);
  out(`billflow through the API (+ webhook hop):        ${engTput.toFixed(2)} invoices/s (${ms(engMs / INVOICES)} each, amortised)`);
  const ratio = engTput / baseTput;
  out(`RATIO lifecycle throughput, billflow / minimal workflows: ${ratio.toFixed(2)}x (target >= 0.80) ${ratio >= 0.8 ? 'PASS' : 'FAIL'}`);
}

async function benchMemory(stack: Stack): Promise<void> {
  out(`\n## Worker memory with ${OPEN} open invoices cached`);
  const tenant = await createTenant(stack);
  await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: 'CL-1', name: 'Client One' } });
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().rss;
  await pool(OPEN, 32, async (i) => {
    const number = `OPEN-${i}`;
    const draft: InvoiceDraft = {
      companyId: tenant.companyId,
      number,
      clientId: 'CL-1',
      invoiceDate: '2026-11-24',
      dueDate: '2026-12-24',
      currency: 'USD',
      lines: draftBody('', '').lines,
      prepaymentsApplied: 0,
    };
    await stack.temporal.workflow.start('invoiceWorkflow', { taskQueue: stack.taskQueue, workflowId: invoiceWorkflowId(tenant.companyId, number), args: [{ draft }] });
  });
  for (;;) {
    const [row] = await stack.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM invoices WHERE company_id = ${tenant.companyId}`;
    if (row!.n >= OPEN) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  gc?.();
  const after = process.memoryUsage().rss;
  out(`process RSS before ${(before / 2 ** 20).toFixed(0)} MiB, after ${(after / 2 ** 20).toFixed(0)} MiB`);
  out(`FIGURE memory per cached open invoice workflow: ${((after - before) / OPEN / 1024).toFixed(1)} KiB`);
}

async function benchBillRun(stack: Stack, chromiumPath: string): Promise<void> {
  out(`\n## Bill sending run, ${BILLS} bills (4 in 5 emailed with their PDF, 1 in 5 printed) vs rendering their PDFs alone`);
  // Provider disabled: no provider traffic. Clients get their email address after Final, so
  // making the bills Final does not email them; the run is the only sender.
  const tenant = await createTenant(stack, { providerEnabled: false });
  const clients = Array.from({ length: 20 }, (_, i) => `BR-${i}`);
  for (const [i, id] of clients.entries()) {
    await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id, name: `Bill Run Client ${i}` } });
  }
  const setup = await timed(() =>
    pool(BILLS, 16, async (i) => {
      const number = `BR-${String(i).padStart(5, '0')}`;
      const lines = Array.from({ length: 3 + (i % 5) }, (_, k) => ({ description: `Engineering services, phase ${k + 1}`, quantity: k + 1, unitPrice: 12_500, amount: (k + 1) * 12_500 }));
      const draft: InvoiceDraft = {
        companyId: tenant.companyId,
        number,
        clientId: clients[i % clients.length]!,
        invoiceDate: '2026-11-24',
        dueDate: '2026-12-24',
        currency: 'USD',
        lines,
        prepaymentsApplied: 0,
      };
      const handle = await stack.temporal.workflow.start('invoiceWorkflow', { taskQueue: stack.taskQueue, workflowId: invoiceWorkflowId(tenant.companyId, number), args: [{ draft }] });
      await handle.executeUpdate(changeStatusUpdate, { args: [{ to: 'Final', requestId: `bench-${number}` }] });
    }),
  );
  for (const [i, id] of clients.entries()) {
    const body = { email: `${id.toLowerCase()}-${tenant.companyId}@bench.example`, ...(i % 5 === 4 ? { deliveryPreference: 'print' } : {}) };
    await http(stack.apiUrl, 'PATCH', `/v1/clients/${id}`, { key: tenant.apiKey, body });
  }
  out(`setup: ${BILLS} Final bills in ${(setup / 1000).toFixed(1)} s`);

  // Baseline: the same bills' PDFs (their current state, the same template), rendered alone.
  const states = new Array<InvoiceState>(BILLS);
  await pool(BILLS, 16, async (i) => {
    states[i] = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, `BR-${String(i).padStart(5, '0')}`)).query(stateQuery);
  });
  const htmls = states.map((s, i) =>
    invoiceHtml(s, { company: { name: `Company ${tenant.companyId}` }, client: { id: s.clientId, name: `Bill Run Client ${i % clients.length}`, email: `x@bench.example` } }),
  );
  // Measured before and after the run (the mean is the baseline), so drift in the machine's load
  // between the two measurements does not decide the ratio.
  const renderOnly = async (when: string) => {
    const renderer = new PdfRenderer({ executablePath: chromiumPath, concurrency: 2 });
    await Promise.all(htmls.slice(0, 4).map((h) => renderer.render(h)));
    const c0 = cpuSnap();
    const t = await timed(() => Promise.all(htmls.map((h) => renderer.render(h))));
    const cpu = cpuDiff(c0, cpuSnap());
    await renderer.close();
    out(`render only (PDF_CONCURRENCY=2), ${when}: ${(t / 1000).toFixed(2)} s, ${ms(t / BILLS)} per bill (CPU: ${cpu})`);
    return t;
  };
  const renderBefore = await renderOnly('before the run');

  // The run, through the API; its progress Query read 4 times a second while it works (a dashboard
  // would read it once a second or less; every read is a Query the run's workflow answers).
  const c0 = cpuSnap();
  const t0 = performance.now();
  const created = await http<{ id: string; workflowId: string }>(stack.apiUrl, 'POST', '/v1/bill-runs', { key: tenant.apiKey, body: { criteria: {} } });
  if (created.status !== 201) throw new Error(`bill run: ${created.status} ${JSON.stringify(created.body)}`);
  const handle = stack.temporal.workflow.getHandle(created.body.workflowId);
  let finished = false;
  const reads = { ok: 0, failed: 0, maxMs: 0, midway: 0 };
  const reader = (async () => {
    while (!finished) {
      const t = performance.now();
      try {
        const p = await handle.query(billRunProgressQuery);
        reads.ok++;
        if (p.done > 0 && p.done < p.total) reads.midway++;
        reads.maxMs = Math.max(reads.maxMs, performance.now() - t);
      } catch {
        reads.failed++;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const result = await handle.result();
  const runMs = performance.now() - t0;
  const cpu = cpuDiff(c0, cpuSnap());
  finished = true;
  await reader;
  out(
    `sending run: ${(runMs / 1000).toFixed(2)} s, ${ms(runMs / BILLS)} per bill; sent ${result.sent}, printed ${result.printed}, failed ${result.failed}, skipped ${result.skippedHeld} (CPU: ${cpu})`,
  );
  out(`progress Query during the run: ${reads.ok} reads answered (${reads.midway} with the run part done), ${reads.failed} failed, worst ${ms(reads.maxMs)}`);
  const renderMs = (renderBefore + (await renderOnly('after the run'))) / 2;
  out(`RATIO sending run / render only (mean of both): ${(runMs / renderMs).toFixed(2)}x (target <= 1.25)`);
}

// The mail catcher stands in for an SMTP server elsewhere: its own process, not the worker's event loop.
const onCluster = process.env.BILLFLOW_CLUSTER === '1';
const servers = await startServers({ webUi: false, mailCatcherProcess: true, cluster: onCluster });
try {
  out(`billflow benchmark, ${new Date().toISOString()}, node ${process.version}, Temporal: ${onCluster ? 'cluster on PostgreSQL (npm run cluster)' : 'CLI dev server'}`);
  if (section('pdf')) await benchPdf(servers.chromiumPath);
  // The scale section keeps every one of its invoices cached, as a worker with room for them would.
  const cached = OPEN + BILLS + 500 + (ONLY === 'scale' ? Number(process.env.SCALE_INVOICES ?? 20_000) + 1_000 : 0);
  const stack = await startStack({ ...servers, workerOptions: { maxCachedWorkflows: cached } });
  try {
    if (section('latency')) await benchLatency(stack, servers);
    // Lifecycle throughput is one of the latency targets too, so that section prints it as well.
    if (section('engine') || ONLY === 'latency') await benchEngine(stack, servers);
    if (section('bills')) await benchBillRun(stack, servers.chromiumPath);
    if (section('memory')) await benchMemory(stack);
    // Not in a full run: tens of thousands of invoices take the better part of an hour.
    if (ONLY === 'scale') await benchScale(stack, servers);
  } finally {
    await stack.stop();
  }
} finally {
  await servers.stop();
}
