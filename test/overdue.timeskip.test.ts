/**
 * The DueDate and Overdue search attributes of an invoice workflow, on Temporal's Java
 * time-skipping test server: the due date passes in a moment, not shortened in the code. The
 * company sends no reminders and imports payments only monthly, so what turns Overdue true is the
 * invoice workflow's own wake-up at the end of its due date; paying turns it false.
 */
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ensureSearchAttributes } from '../lib/temporal.js';
import { invoiceWorkflowId, searchAttributes as sa } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { timeSkippingEnvironment } from './support.js';

let env: TestWorkflowEnvironment;
let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  env = await timeSkippingEnvironment(inject('testServerPath'));
  await ensureSearchAttributes(env.connection, 'default');
  stack = await startStack({ temporal: { client: env.client, nativeConnection: env.nativeConnection } });
  tenant = await createTenant(stack, { reminderDays: [], paymentImportSeconds: 30 * 86_400 });
});

afterAll(async () => {
  await stack?.stop();
  await env?.teardown();
});

const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

it('turns Overdue true when the due date is over with money owed, and false once paid', async () => {
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  await api('POST', '/v1/clients', { id: clientId, name: 'Lakeside Surveying' });
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const dueDate = day(2);
  expect((await api('POST', '/v1/invoices', { number, clientId, invoiceDate: day(0), dueDate, lines: [{ description: 'Survey', amount: 80_000 }] })).status).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);

  const handle = env.client.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number));
  const attributes = async () => (await handle.describe()).typedSearchAttributes;
  const shown = await attributes();
  expect(shown.get(sa.dueDate)?.toISOString()).toBe(`${dueDate}T00:00:00.000Z`);
  expect(shown.get(sa.overdue)).toBe(false);

  // The due date itself is not overdue yet; the day after it is.
  await env.sleep('2 days');
  expect((await attributes()).get(sa.overdue)).toBe(false);
  await env.sleep('2 days');
  await eventually(async () => ((await attributes()).get(sa.overdue) === true ? true : undefined), 'Overdue to turn true');

  const inv = await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${final.body.providerInvoiceId}`, { key: tenant.account.apiKey });
  const paid = await http(stack.sandboxUrl, 'POST', '/v1/payments', {
    key: tenant.account.apiKey,
    body: { customerId: inv.body.customerId, allocations: [{ invoiceId: final.body.providerInvoiceId, amount: 80_000 }], method: 'card' },
  });
  expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.settlement === 'Settled' ? true : undefined), 'settled');
  await eventually(async () => ((await attributes()).get(sa.overdue) === false ? true : undefined), 'Overdue to turn false');
  // Settled, nothing turns it overdue again: forty days later its search attributes were not written again.
  const upserts = async () => (await handle.fetchHistory()).events!.filter((e) => e.upsertWorkflowSearchAttributesEventAttributes).length;
  const before = await upserts();
  await env.sleep('40 days');
  expect(await upserts()).toBe(before);
  expect((await attributes()).get(sa.overdue)).toBe(false);
});
