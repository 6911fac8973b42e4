/**
 * A long-lived invoice continues as new before its history grows large, carrying its whole state:
 * the threshold is lowered for the test, payments keep arriving, nothing is lost or applied twice.
 */
import { randomUUID } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { invoiceWorkflowId, searchAttributes as sa, type InvoiceDraft } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { webhookDelivered, workflowIdle } from './settled.js';

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
});

it('continues as new with its state when the history passes the threshold', async () => {
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  await api('POST', '/v1/clients', { id: clientId, name: 'Long Haul Ltd' });
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const draft: InvoiceDraft = {
    companyId: tenant.companyId,
    number,
    clientId,
    invoiceDate: '2026-11-01',
    dueDate: '2026-12-01',
    currency: 'USD',
    lines: [{ description: 'Retainer', amount: 100_000 }],
    prepaymentsApplied: 0,
  };
  const workflowId = invoiceWorkflowId(tenant.companyId, number);
  const first = await stack.temporal.workflow.start('invoiceWorkflow', {
    taskQueue: stack.taskQueue,
    workflowId,
    args: [{ draft, continueAsNewAfterEvents: 40 }],
    typedSearchAttributes: new TypedSearchAttributes([{ key: sa.invoiceNumber, value: number }]),
  });
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);

  // Eight separate payments at the provider, each reaching the workflow by webhook.
  const providerInvoiceId = final.body.providerInvoiceId as string;
  const customer = (await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${providerInvoiceId}`, { key: tenant.account.apiKey })).body.customerId;
  const paymentIds: string[] = [];
  for (let i = 0; i < 8; i++) {
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      key: tenant.account.apiKey,
      body: { customerId: customer, allocations: [{ invoiceId: providerInvoiceId, amount: 5_000 }], method: 'card' },
    });
    expect(paid.status).toBe(201);
    paymentIds.push(paid.body.id);
  }
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.outstanding === 60_000 ? true : undefined), 'all eight payments to be applied');
  // Nothing applied twice, once every webhook was answered and the (latest) run has handled them.
  for (const id of paymentIds) await webhookDelivered(stack, tenant, id);
  await workflowIdle(stack.temporal, workflowId);
  const settled = (await api('GET', `/v1/invoices/${number}`)).body;
  expect(settled.outstanding).toBe(60_000);
  expect(settled.payments).toHaveLength(8);
  expect(settled.payNowUrl).toBe(final.body.payNowUrl);

  // It is a later run of the same workflow, with a short history of its own.
  const now = await stack.temporal.workflow.getHandle(workflowId).describe();
  expect(now.runId).not.toBe(first.firstExecutionRunId);
  // At most the threshold plus the events of the batch of payments that crossed it.
  expect(now.historyLength).toBeLessThan(40 + 40);
  const firstRun = await stack.temporal.workflow.getHandle(workflowId, first.firstExecutionRunId).describe();
  expect(firstRun.status.name).toBe('CONTINUED_AS_NEW');

  // And it keeps working: the change still imports first and converts all eight payments.
  const reissue = await api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' });
  expect(reissue.status, JSON.stringify(reissue.body)).toBe(200);
  expect((reissue.body.plan as { steps: { kind: string }[] }).steps.filter((s) => s.kind === 'convert-to-prepayment')).toHaveLength(8);
});
