/**
 * Records histories of every workflow type into test/histories/, for test/replay.test.ts:
 *  - invoice-full-life: draft, final, paid in part, reissued, revised, prepayment applied, final
 *    again, Quick Pay;
 *  - invoice-reminders-resync: final with due-date reminders, edited at the provider, repaired by
 *    a reconciliation;
 *  - invoice-continued-first-run / invoice-continued-new-run: an invoice whose history passed a
 *    lowered threshold while payments arrived, and the run it continued as, reissued;
 *  - reminders-paid-after-first and invoice-reminded-then-paid (on the time-skipping server):
 *    the due date's reminder sent, the invoice paid, the next reminder refused as settled;
 *  - reconcile-two-repairs: a reconciliation that finds an edited and a lost provider record;
 *  - bill-run-send: a sending run of an emailed and a printed bill; bill-pdf: one bill's PDF.
 * Only histories whose file is missing are recorded: old files stay, so histories of earlier code
 * keep replaying (use `patched()` in the workflow for changes). `npx tsx test/histories/record.ts`;
 * after a patched change, `npx tsx test/histories/record.ts <tag>` records them all again under
 * `<name>-<tag>.binpb`, so the new code's histories are kept beside the old.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ROOT } from '../../lib/paths.js';
import { ensureSearchAttributes } from '../../lib/temporal.js';
import { billPdfWorkflowId } from '../../workflows/bill-run-contract.js';
import { invoiceWorkflowId, remindersWorkflowId, searchAttributes as sa, type InvoiceDraft } from '../../workflows/contract.js';
import { reconcileWorkflowId } from '../../workflows/reconcile-contract.js';
import { startServers } from '../servers.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack } from '../stack.js';

const tag = process.argv[2];
if (tag !== undefined && !/^[a-z0-9-]+$/.test(tag)) throw new Error(`the tag names files: lower-case letters, digits and dashes only (got ${tag})`);
const fileOf = (name: string) => path.join(ROOT, 'test', 'histories', `${tag ? `${name}-${tag}` : name}.binpb`);
const servers = await startServers({ webUi: false });
const stack = await startStack(servers);

async function save(name: string, workflowId: string, opts: { runId?: string; on?: Stack } = {}): Promise<void> {
  const file = fileOf(name);
  if (existsSync(file)) return; // a recording of earlier code: kept as it is
  const history = await (opts.on ?? stack).temporal.workflow.getHandle(workflowId, opts.runId).fetchHistory();
  // Binary protobuf: the SDK's JSON helpers trip over duplicate protobufjs copies in node_modules.
  writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
  process.stdout.write(`wrote ${file} (${history.events?.length} events)\n`);
}

const must = async (r: Promise<{ status: number; body: unknown }>) => {
  const res = await r;
  if (res.status >= 300) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
  return res.body as Record<string, unknown>;
};

const recordings: Record<string, () => Promise<void>> = {
  'invoice-full-life': fullLife,
  'invoice-reminders-resync': remindersAndResync,
  'invoice-continued': continuedAsNew,
  'reminders-paid-after-first': remindersOnTimeSkipping,
  'reconcile-two-repairs': reconciliation,
  'bill-run-send': billRun,
  'invoice-final-undone': finalUndone,
  'invoice-undo-refused': undoRefused,
};

/** Files each recording writes, when it writes more than the one named after it. */
const outputs: Record<string, string[]> = {
  'invoice-continued': ['invoice-continued-first-run', 'invoice-continued-new-run'],
  'reminders-paid-after-first': ['reminders-paid-after-first', 'invoice-reminded-then-paid'],
  'bill-run-send': ['bill-run-send', 'bill-pdf'],
};

async function fullLife(): Promise<void> {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  await must(api('POST', '/v1/clients', { id: 'CL-1', name: 'Replay Client', email: 'replay@example.test' }));
  const number = `REPLAY-${randomUUID().slice(0, 6)}`;
  await must(api('POST', '/v1/invoices', { number, clientId: 'CL-1', invoiceDate: '2026-11-01', dueDate: '2026-12-01', lines: [{ description: 'Work', amount: 100_000 }] }));
  const final = await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  const inv = await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${String(final.providerInvoiceId)}`, { key: tenant.account.apiKey });
  await http(stack.sandboxUrl, 'POST', '/v1/payments', { key: tenant.account.apiKey, body: { customerId: inv.body.customerId, allocations: [{ invoiceId: final.providerInvoiceId, amount: 25_000 }], method: 'card', fee: 200 } });
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.outstanding === 75_000 ? true : undefined), 'the payment');
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue', dryRun: true }));
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' }));
  await must(api('POST', `/v1/invoices/${number}/revision`, { lines: [{ description: 'Work (corrected)', amount: 90_000 }] }));
  const pre = await must(api('GET', '/v1/prepayments?clientId=CL-1'));
  await must(api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId: (pre.data as { id: string }[])[0]!.id, amount: 25_000 }));
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  await must(api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented', by: 'recorder' }));
  await must(api('POST', `/v1/invoices/${number}/quick-pay`, { paymentType: 'Receipt', paymentMethod: 'Cheque', issuedOn: '2026-11-20', category: 'Customer payment', receivedByUser: 'rec', receivedByUnit: 'AR' }));
  await save('invoice-full-life', invoiceWorkflowId(tenant.companyId, number));
}

async function remindersAndResync(): Promise<void> {
  const tenant = await createTenant(stack, { reminderDays: [0, 7] });
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  await must(api('POST', '/v1/clients', { id: 'CL-2', name: 'Replay Client', email: 'replay@example.test' }));
  const number = `REPLAY-${randomUUID().slice(0, 6)}`;
  await must(api('POST', '/v1/invoices', { number, clientId: 'CL-2', invoiceDate: '2026-11-01', dueDate: '2036-12-01', lines: [{ description: 'Work', amount: 60_000 }] }));
  const final = await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  await must(http(stack.sandboxUrl, 'PATCH', `/v1/invoices/${String(final.providerInvoiceId)}`, { key: tenant.account.apiKey, body: { amount: 65_000, outstanding: 65_000 } }));
  const run = await must(api('POST', '/v1/reconciliations'));
  await eventually(async () => ((await api('GET', `/v1/reconciliations/${String(run.id)}`)).body.repairs as unknown[]).length === 1 || undefined, 'the repair');
  await save('invoice-reminders-resync', invoiceWorkflowId(tenant.companyId, number));
}

async function continuedAsNew(): Promise<void> {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  await must(api('POST', '/v1/clients', { id: 'CL-3', name: 'Replay Client' }));
  const number = `REPLAY-${randomUUID().slice(0, 6)}`;
  const draft: InvoiceDraft = { companyId: tenant.companyId, number, clientId: 'CL-3', invoiceDate: '2026-11-01', dueDate: '2026-12-01', currency: 'USD', lines: [{ description: 'Retainer', amount: 100_000 }], prepaymentsApplied: 0 };
  const workflowId = invoiceWorkflowId(tenant.companyId, number);
  // As test/continue-as-new.test.ts: a lowered threshold, crossed by payments arriving by webhook.
  const first = await stack.temporal.workflow.start('invoiceWorkflow', {
    taskQueue: stack.taskQueue,
    workflowId,
    args: [{ draft, continueAsNewAfterEvents: 40 }],
    typedSearchAttributes: new TypedSearchAttributes([{ key: sa.invoiceNumber, value: number }]),
  });
  const final = await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  const providerInvoiceId = String(final.providerInvoiceId);
  const inv = await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${providerInvoiceId}`, { key: tenant.account.apiKey });
  for (let i = 0; i < 8; i++) {
    await must(http(stack.sandboxUrl, 'POST', '/v1/payments', { key: tenant.account.apiKey, body: { customerId: inv.body.customerId, allocations: [{ invoiceId: providerInvoiceId, amount: 5_000 }], method: 'card' } }));
  }
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.outstanding === 60_000 ? true : undefined), 'the eight payments');
  const now = await stack.temporal.workflow.getHandle(workflowId).describe();
  if (now.runId === first.firstExecutionRunId) throw new Error('the invoice did not continue as new');
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' }));
  await save('invoice-continued-first-run', workflowId, { runId: first.firstExecutionRunId });
  await save('invoice-continued-new-run', workflowId, { runId: now.runId });
}

/** Days of reminders pass in seconds on Temporal's Java time-skipping server (as test/reminders.timeskip.test.ts). */
async function remindersOnTimeSkipping(): Promise<void> {
  if (!servers.testServerPath) throw new Error('the time-skipping test server is not set up: run `node scripts/setup.mjs --for-tests`');
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: servers.testServerPath } } });
  let skipping: Stack | undefined;
  try {
    await ensureSearchAttributes(env.connection, 'default');
    skipping = await startStack({ ...servers, temporal: { client: env.client, nativeConnection: env.nativeConnection } });
    const on = skipping;
    // Payments imported only monthly, so the invoice's history holds the reminders, not hourly imports.
    const tenant = await createTenant(on, { reminderDays: [0, 7], paymentImportSeconds: 30 * 86_400 });
    const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(on.apiUrl, method, p, { key: tenant.apiKey, body });
    await must(api('POST', '/v1/clients', { id: 'CL-4', name: 'Replay Client', email: 'replay@example.test' }));
    const number = `REPLAY-${randomUUID().slice(0, 6)}`;
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    await must(api('POST', '/v1/invoices', { number, clientId: 'CL-4', invoiceDate: day(0), dueDate: day(2), lines: [{ description: 'Survey', amount: 80_000 }] }));
    const final = await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
    await env.sleep('3 days');
    const sent = async () => (await api('GET', `/v1/invoices/${number}/reminders`)).body.sent as unknown[];
    await eventually(async () => ((await sent()).length === 1 || undefined), 'the due date reminder');
    const inv = await http<{ customerId: string }>(on.sandboxUrl, 'GET', `/v1/invoices/${String(final.providerInvoiceId)}`, { key: tenant.account.apiKey });
    await must(http(on.sandboxUrl, 'POST', '/v1/payments', { key: tenant.account.apiKey, body: { customerId: inv.body.customerId, allocations: [{ invoiceId: final.providerInvoiceId, amount: 80_000 }], method: 'card' } }));
    await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.settlement === 'Settled' ? true : undefined), 'the payment');
    await env.sleep('7 days');
    const reminders = remindersWorkflowId(tenant.companyId, number, 1);
    const result = await env.client.workflow.getHandle(reminders).result();
    if (result.ended !== 'settled') throw new Error(`reminders ended ${JSON.stringify(result)}`);
    await save('reminders-paid-after-first', reminders, { on });
    await save('invoice-reminded-then-paid', invoiceWorkflowId(tenant.companyId, number), { on });
  } finally {
    await skipping?.stop();
    await env.teardown();
  }
}

async function reconciliation(): Promise<void> {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  await must(api('POST', '/v1/clients', { id: 'CL-5', name: 'Replay Client' }));
  const finals: Record<string, unknown>[] = [];
  for (const amount of [40_000, 50_000]) {
    const number = `REPLAY-${randomUUID().slice(0, 6)}`;
    await must(api('POST', '/v1/invoices', { number, clientId: 'CL-5', invoiceDate: '2026-11-01', dueDate: '2026-12-01', lines: [{ description: 'Work', amount }] }));
    finals.push(await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' })));
  }
  const [edited, lost] = finals.map((f) => String(f.providerInvoiceId));
  await must(http(stack.sandboxUrl, 'PATCH', `/v1/invoices/${edited}`, { key: tenant.account.apiKey, body: { amount: 45_000, outstanding: 45_000 } }));
  await must(http(stack.sandboxUrl, 'DELETE', `/v1/invoices/${lost}`, { key: tenant.account.apiKey }));
  const run = await must(api('POST', '/v1/reconciliations'));
  await eventually(async () => ((await api('GET', `/v1/reconciliations/${String(run.id)}`)).body.repairs as unknown[]).length === 2 || undefined, 'both repairs');
  await save('reconcile-two-repairs', reconcileWorkflowId(tenant.companyId, String(run.id)));
}

/** A Stripe company's Reissue -> Final refused after the old record was voided: undone as far as it can be, then Final again. */
async function finalUndone(): Promise<void> {
  const account = await must(http(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Replay on Stripe' } }));
  const companyId = `replay-${randomUUID().slice(0, 6)}`;
  const company = await must(
    http(stack.apiUrl, 'POST', '/v1/companies', {
      key: ADMIN_KEY,
      body: { id: companyId, name: 'Replay on Stripe', currency: 'EUR', provider: { enabled: true, kind: 'stripe', url: stack.stripeUrl, apiKey: account.apiKey } },
    }),
  );
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: String(company.apiKey), body });
  await must(api('POST', '/v1/clients', { id: 'CL-8', name: 'Replay Client', email: 'replay@example.test' }));
  const number = `REPLAY-${randomUUID().slice(0, 6)}`;
  await must(api('POST', '/v1/invoices', { number, clientId: 'CL-8', invoiceDate: '2026-11-01', dueDate: '2026-12-01', lines: [{ description: 'Work', amount: 40_000 }] }));
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' }));
  await must(http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: String(account.apiKey), body: { mode: 'error', status: 422, count: 1, match: 'POST /v1/invoices' } }));
  const refused = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  if (refused.status !== 502) throw new Error(`expected the Final refused: ${refused.status} ${JSON.stringify(refused.body)}`);
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  await save('invoice-final-undone', invoiceWorkflowId(companyId, number));
}

/** A Final whose PDF attach and whose undo are both refused by the provider: reported, then Final once reconciliation cleared the record. */
async function undoRefused(): Promise<void> {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  await must(api('POST', '/v1/clients', { id: 'CL-9', name: 'Replay Client', email: 'replay@example.test' }));
  const number = `REPLAY-${randomUUID().slice(0, 6)}`;
  await must(api('POST', '/v1/invoices', { number, clientId: 'CL-9', invoiceDate: '2026-11-01', dueDate: '2026-12-01', lines: [{ description: 'Work', amount: 45_000 }] }));
  await must(http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: tenant.account.apiKey, body: { mode: 'error', status: 422, match: '* /v1/invoices/*' } }));
  const refused = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  if (refused.status !== 502) throw new Error(`expected the Final refused: ${refused.status} ${JSON.stringify(refused.body)}`);
  await must(http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: tenant.account.apiKey, body: { mode: 'none' } }));
  const run = await must(api('POST', '/v1/reconciliations'));
  await eventually(async () => ((await api('GET', `/v1/reconciliations/${String(run.id)}`)).body.repairs as unknown[]).length === 1 || undefined, 'the repair');
  await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
  await save('invoice-undo-refused', invoiceWorkflowId(tenant.companyId, number));
}

async function billRun(): Promise<void> {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown, headers?: Record<string, string>) =>
    http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body, ...(headers ? { headers } : {}) });
  await must(api('POST', '/v1/clients', { id: 'CL-6', name: 'Emailed Client', email: 'replay@example.test' }));
  await must(api('POST', '/v1/clients', { id: 'CL-7', name: 'Printed Client' }));
  await must(api('PATCH', '/v1/clients/CL-7', { deliveryPreference: 'print' }));
  const numbers: string[] = [];
  for (const clientId of ['CL-6', 'CL-7']) {
    const number = `REPLAY-${randomUUID().slice(0, 6)}`;
    await must(api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-05', dueDate: '2026-12-20', lines: [{ description: 'Design review', amount: 30_000 }] }));
    await must(api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }));
    numbers.push(number);
  }
  const run = await must(api('POST', '/v1/bill-runs', { criteria: { invoiceNumbers: numbers } }, { prefer: 'wait=60' }));
  if (run.status !== 'completed' || run.sent !== 1 || run.printed !== 1) throw new Error(`bill run: ${JSON.stringify(run)}`);
  await save('bill-run-send', String(run.workflowId));
  const pdf = await http(stack.apiUrl, 'GET', `/v1/bills/${numbers[0]!}/pdf`, { key: tenant.apiKey });
  if (pdf.status !== 200) throw new Error(`bill PDF: ${pdf.status}`);
  const version = (await api('GET', `/v1/invoices/${numbers[0]!}`)).body.version as number;
  await save('bill-pdf', billPdfWorkflowId(tenant.companyId, numbers[0]!, version));
}

try {
  for (const [name, record] of Object.entries(recordings)) {
    const files = outputs[name] ?? [name];
    if (files.every((f) => existsSync(fileOf(f)))) continue;
    await record();
  }
} finally {
  await stack.stop();
  await servers.stop();
}
