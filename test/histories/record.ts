/**
 * Records the history of one invoice's whole life (draft, final, paid in part, reissued, revised,
 * prepayment applied, final again, Quick Pay) into test/histories/, for test/replay.test.ts.
 * Re-record only when a change is meant to alter new workflows, and keep the old file (use
 * `patched()` in the workflow so old histories still replay): `npx tsx test/histories/record.ts`.
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { ROOT } from '../../lib/paths.js';
import { invoiceWorkflowId } from '../../workflows/contract.js';
import { startServers } from '../servers.js';
import { createTenant, eventually, http, startStack } from '../stack.js';

const servers = await startServers({ webUi: false });
const stack = await startStack(servers);
try {
  const tenant = await createTenant(stack);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const must = async (r: Promise<{ status: number; body: unknown }>) => {
    const res = await r;
    if (res.status >= 300) throw new Error(`${res.status} ${JSON.stringify(res.body)}`);
    return res.body as Record<string, unknown>;
  };
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
  const history = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number)).fetchHistory();
  // Binary protobuf: the SDK's JSON helpers trip over duplicate protobufjs copies in node_modules.
  const file = path.join(ROOT, 'test', 'histories', 'invoice-full-life.binpb');
  writeFileSync(file, proto.temporal.api.history.v1.History.encode(history).finish());
  process.stdout.write(`wrote ${file} (${history.events?.length} events)\n`);
} finally {
  await stack.stop();
  await servers.stop();
}
