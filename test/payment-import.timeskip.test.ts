/**
 * A lost webhook is caught by the open invoice's import timer. Proven on Temporal's Java
 * time-skipping test server: the hour-long timer fires in seconds, never shortened in the code.
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { ensureSearchAttributes } from '../lib/temporal.js';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { webhookDeliveries, workflowIdle } from './settled.js';
import { timeSkippingEnvironment } from './support.js';

let env: TestWorkflowEnvironment;
let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  env = await timeSkippingEnvironment(inject('testServerPath'));
  await ensureSearchAttributes(env.connection, 'default');
  stack = await startStack({ temporal: { client: env.client, nativeConnection: env.nativeConnection } });
  tenant = await createTenant(stack, { paymentImportSeconds: 3600 });
  // Webhooks go nowhere: the only way billflow can learn of the payment is its import timer.
  await http(stack.sandboxUrl, 'PATCH', `/v1/accounts/${tenant.account.id}`, {
    key: tenant.account.apiKey,
    body: { webhookUrl: 'http://127.0.0.1:9/lost' },
  });
});

afterAll(async () => {
  await stack?.stop();
  await env?.teardown();
});

it('imports a payment whose webhook was lost when the hourly import timer fires', async () => {
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  await api('POST', '/v1/clients', { id: clientId, name: 'Lakeside Surveying' });
  const number = `INV-${randomUUID().slice(0, 8)}`;
  expect((await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-01', dueDate: '2026-12-01', lines: [{ description: 'Survey', amount: 80_000 }] })).status).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  /** How many times billflow listed this invoice's payments at the provider (the sandbox logs every call). */
  const importCalls = async () => {
    const log = await http<{ data: { method: string; path: string; status: number }[] }>(stack.sandboxUrl, 'GET', '/v1/sandbox/requests', { key: tenant.account.apiKey });
    return log.body.data.filter((c) => c.method === 'GET' && c.path.startsWith('/v1/payments') && c.status === 200).length;
  };
  expect(final.status, JSON.stringify(final.body)).toBe(200);

  // The payer pays part of it at the provider.
  const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
    key: tenant.account.apiKey,
    body: {
      customerId: (await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, { key: tenant.account.apiKey })).body.data[0]!.id,
      allocations: [{ invoiceId: final.body.providerInvoiceId, amount: 30_000 }],
      method: 'other',
    },
  });
  expect(paid.status, JSON.stringify(paid.body)).toBe(201);

  // Nothing has told billflow yet: the provider has tried its webhook, which went nowhere.
  await webhookDeliveries(stack, tenant, paid.body.id, (ds) => ds.length > 0 && ds.every((d) => d.attempts > 0 && d.deliveredAt === null), 'the webhook to be tried and lost');
  const before = await api('GET', `/v1/invoices/${number}`);
  expect(before.body).toMatchObject({ outstanding: 80_000, payments: [] });

  // An hour passes: the timer fires and the import activity runs (in real time, so poll for it).
  await env.sleep('61 minutes');
  const after = await eventually(async () => {
    const r = await api('GET', `/v1/invoices/${number}`);
    return r.body.outstanding === 50_000 ? r.body : undefined;
  }, 'the import to apply the payment');
  expect(after).toMatchObject({ settlement: 'Partially settled' });
  expect(after.payments).toEqual([expect.objectContaining({ paymentId: paid.body.id, amount: 30_000, source: 'import' })]);
  expect(await importCalls()).toBe(1);

  // The next hour's import finds the same payment again and applies nothing twice.
  await env.sleep('61 minutes');
  await eventually(async () => ((await importCalls()) === 2 ? true : undefined), 'the second import');
  await workflowIdle(env.client, invoiceWorkflowId(tenant.companyId, number));
  const again = await api('GET', `/v1/invoices/${number}`);
  expect(again.body).toMatchObject({ outstanding: 50_000 });
  expect(again.body.payments).toHaveLength(1);
});
