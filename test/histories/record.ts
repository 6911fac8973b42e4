/**
 * Records invoice histories into test/histories/, for test/replay.test.ts:
 *  - invoice-full-life: draft, final, paid in part, reissued, revised, prepayment applied, final
 *    again, Quick Pay;
 *  - invoice-reminders-resync: final with due-date reminders, edited at the provider, repaired by
 *    a reconciliation.
 * Only histories whose file is missing are recorded: old files stay, so histories of earlier code
 * keep replaying (use `patched()` in the workflow for changes). `npx tsx test/histories/record.ts`.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { ROOT } from '../../lib/paths.js';
import { invoiceWorkflowId } from '../../workflows/contract.js';
import { startServers } from '../servers.js';
import { createTenant, eventually, http, startStack } from '../stack.js';

const servers = await startServers({ webUi: false });
const stack = await startStack(servers);

async function save(name: string, companyId: string, number: string): Promise<void> {
  const history = await stack.temporal.workflow.getHandle(invoiceWorkflowId(companyId, number)).fetchHistory();
  // Binary protobuf: the SDK's JSON helpers trip over duplicate protobufjs copies in node_modules.
  const file = path.join(ROOT, 'test', 'histories', `${name}.binpb`);
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
  await save('invoice-full-life', tenant.companyId, number);
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
  await save('invoice-reminders-resync', tenant.companyId, number);
}

try {
  for (const [name, record] of Object.entries(recordings)) {
    if (existsSync(path.join(ROOT, 'test', 'histories', `${name}.binpb`))) continue;
    await record();
  }
} finally {
  await stack.stop();
  await servers.stop();
}
