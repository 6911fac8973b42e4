/**
 * Answers that tell the truth: a create whose workflow started is 201 even when no worker answers
 * (and its retry gets the invoice, not 409); a provider webhook for an invoice whose workflow has
 * closed is 2xx (said so in the body), and the payment still reaches the payment's other invoices.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.js';
import { silentLogger } from '../lib/log.js';
import { signPayload, SIGNATURE_HEADER } from '../lib/signature.js';
import { invoiceWorkflowId, type InvoiceDraft } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

type Invoice = Record<string, unknown> & { number: string; status: string; outstanding: number; providerInvoiceId: string | null; payments: unknown[] };

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
});

const asErp = <T = Invoice>(method: string, path: string, body?: unknown, base = stack.apiUrl) => http<T>(base, method, path, { key: tenant.apiKey, body });

async function newClient(): Promise<string> {
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  expect((await asErp('POST', '/v1/clients', { id: clientId, name: 'Riverside Architects', email: 'ap@riverside.example' })).status).toBe(201);
  return clientId;
}

const invoiceBody = (number: string, clientId: string, amount = 120_000) => ({
  number,
  clientId,
  invoiceDate: '2026-11-20',
  dueDate: '2026-12-20',
  lines: [{ description: 'Structural engineering', amount }],
});

describe('POST /v1/invoices', () => {
  it('answers 201 with the draft once the workflow started, though no worker answers; the same create again gets the invoice, another invoice under the number 409', async () => {
    // An API whose task queue no worker polls: the workflow starts, its Query times out.
    const app = createApp({
      sql: stack.sql,
      temporal: stack.temporal,
      taskQueue: `nobody-${randomUUID()}`,
      adminKey: 'x',
      secrets: stack.secrets,
      publicApiUrl: 'http://x',
      log: silentLogger,
      workerAnswerMs: 1_000,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const number = `INV-${randomUUID().slice(0, 8)}`;
    try {
      const clientId = await newClient();
      const created = await asErp('POST', '/v1/invoices', invoiceBody(number, clientId), base);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.headers.get('location')).toBe(`/v1/invoices/${number}`);
      expect(created.body).toMatchObject({ number, clientId, status: 'Draft', revision: 0, total: 120_000, outstanding: 120_000, workflowId: invoiceWorkflowId(tenant.companyId, number) });
      // It is real: Temporal runs the workflow (waiting for a worker).
      const described = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number)).describe();
      expect(described.status.name).toBe('RUNNING');

      // A read still says plainly that no worker answers.
      const read = await asErp('GET', `/v1/invoices/${number}`, undefined, base);
      expect(read.status).toBe(503);
      expect(read.body).toMatchObject({ type: expect.stringContaining('worker-unavailable'), detail: expect.stringContaining('worker') });

      // The ERP, which never saw the 201, retries: the same create gets the invoice.
      const retry = await asErp('POST', '/v1/invoices', invoiceBody(number, clientId), base);
      expect(retry.status, JSON.stringify(retry.body)).toBe(200);
      expect(retry.body).toMatchObject({ number, clientId, status: 'Draft', total: 120_000 });

      // Another invoice under the same number is still refused.
      const other = await asErp('POST', '/v1/invoices', invoiceBody(number, clientId, 99_000), base);
      expect(other.status).toBe(409);
      expect(other.body).toMatchObject({ type: expect.stringContaining('invoice-exists'), field: 'number' });
    } finally {
      server.close();
      await stack.temporal.workflow
        .getHandle(invoiceWorkflowId(tenant.companyId, number))
        .terminate('test done')
        .catch(() => undefined);
    }
  });

  it("answers a repeated create with the invoice's current state from its workflow", async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    expect((await asErp('POST', '/v1/invoices', invoiceBody(number, clientId))).status).toBe(201);
    const final = await asErp('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    const retry = await asErp('POST', '/v1/invoices', invoiceBody(number, clientId));
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body).toMatchObject({ number, status: 'Final', revision: 1, payNowUrl: final.body.payNowUrl });
    const other = await asErp('POST', '/v1/invoices', { ...invoiceBody(number, clientId), dueDate: '2027-01-20' });
    expect(other.status).toBe(409);
  });

  it('reads an invoice as its workflow last saved it while no worker answers, and says so', async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    expect((await asErp('POST', '/v1/invoices', invoiceBody(number, clientId))).status).toBe(201);
    const final = await asErp('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    // The Final is saved just after it answered.
    await eventually(async () => {
      const [row] = await stack.sql<{ status: string }[]>`SELECT status FROM invoices WHERE company_id = ${tenant.companyId} AND number = ${number}`;
      return row?.status === 'Final' ? true : undefined;
    }, 'the Final saved');
    // An API that gives workers no time at all to answer: every Query misses its deadline.
    const app = createApp({
      sql: stack.sql,
      temporal: stack.temporal,
      taskQueue: stack.taskQueue,
      adminKey: 'x',
      secrets: stack.secrets,
      publicApiUrl: stack.apiUrl,
      log: silentLogger,
      workerAnswerMs: 1,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const read = await asErp('GET', `/v1/invoices/${number}`, undefined, base);
      expect(read.status, JSON.stringify(read.body)).toBe(200);
      expect(read.headers.get('billflow-state')).toBe('saved');
      expect(read.body).toMatchObject({ number, status: 'Final', revision: 1, payNowUrl: final.body.payNowUrl, outstanding: 120_000 });
      // From the workflow itself, no such header.
      expect((await asErp('GET', `/v1/invoices/${number}`)).headers.get('billflow-state')).toBeNull();
    } finally {
      server.close();
    }
  });

  it('recognises the same create after the workflow has continued as new and the draft was revised', async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    const body = invoiceBody(number, clientId);
    // Started as the API starts it, with a low continue-as-new threshold (as test/continue-as-new.test.ts does).
    const draft: InvoiceDraft = { companyId: tenant.companyId, currency: 'USD', prepaymentsApplied: 0, ...body };
    const workflowId = invoiceWorkflowId(tenant.companyId, number);
    const first = await stack.temporal.workflow.start('invoiceWorkflow', { taskQueue: stack.taskQueue, workflowId, args: [{ draft, continueAsNewAfterEvents: 10 }] });
    for (const amount of [130_000, 140_000, 150_000]) {
      const revised = await asErp('POST', `/v1/invoices/${number}/revision`, { lines: [{ description: 'Structural engineering', amount }] });
      expect(revised.status, JSON.stringify(revised.body)).toBe(200);
    }
    await eventually(async () => {
      const d = await stack.temporal.workflow.getHandle(workflowId).describe();
      return d.runId !== first.firstExecutionRunId ? true : undefined;
    }, 'the workflow to continue as new');

    const retry = await asErp('POST', '/v1/invoices', body);
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body).toMatchObject({ number, total: 150_000 });
    expect((await asErp('POST', '/v1/invoices', invoiceBody(number, clientId, 150_000))).status).toBe(409);
  });
});

describe('provider webhooks', () => {
  it('answer 200 for a payment on an invoice whose workflow has closed, and still apply it to its other invoices', async () => {
    const clientId = await newClient();
    const finals: Invoice[] = [];
    for (let i = 0; i < 2; i++) {
      const number = `INV-${randomUUID().slice(0, 8)}`;
      expect((await asErp('POST', '/v1/invoices', invoiceBody(number, clientId, 50_000))).status).toBe(201);
      const final = await asErp('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
      expect(final.status, JSON.stringify(final.body)).toBe(200);
      finals.push(final.body);
    }
    const [gone, open] = finals as [Invoice, Invoice];
    await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, gone.number)).terminate('operator closed it');

    // One payment at the provider covers both invoices; the sandbox delivers its signed webhook.
    const acct = { key: tenant.account.apiKey };
    const customers = await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct);
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      ...acct,
      body: { customerId: customers.body.data[0]!.id, method: 'card', allocations: [gone, open].map((inv) => ({ invoiceId: inv.providerInvoiceId, amount: 50_000 })) },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    const delivery = await eventually(async () => {
      const d = await http<{ data: { deliveredAt: string | null; attempts: number; lastStatus: number | null; body: string }[] }>(
        stack.sandboxUrl,
        'GET',
        `/v1/sandbox/webhook-deliveries?paymentId=${paid.body.id}`,
        acct,
      );
      const first = d.body.data[0];
      return first?.deliveredAt ? first : undefined;
    }, 'the webhook to be marked delivered');
    expect(delivery).toMatchObject({ attempts: 1, lastStatus: 200 });

    // The open invoice got the payment.
    const settled = await eventually(async () => {
      const r = await asErp('GET', `/v1/invoices/${open.number}`);
      return r.body.outstanding === 0 ? r.body : undefined;
    }, 'the open invoice to be paid');
    expect(settled.payments).toEqual([expect.objectContaining({ paymentId: paid.body.id, amount: 50_000 })]);

    // The answer says which invoice did not take the payment (a redelivery, freshly signed).
    const again = await http<{ invoices: string[]; closed: string[]; detail: string }>(stack.apiUrl, 'POST', `/webhooks/provider/${tenant.companyId}`, {
      raw: delivery.body,
      headers: { [SIGNATURE_HEADER]: signPayload(tenant.account.webhookSecret, delivery.body) },
    });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ invoices: [open.number], closed: [gone.number], detail: expect.stringContaining('not applied') });
  });
});
