/**
 * The first vertical slice, end to end on the real stack: the ERP registers a company, a client
 * and a draft; prints it to Final; a payer pays on the Pay Now page in Chromium; the signed
 * webhook settles the invoice once; the ERP reads one receipt.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { signPayload, SIGNATURE_HEADER } from '../lib/signature.js';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, invoicePdf, startStack, type Stack, type Tenant } from './harness.js';
import { workflowIdle } from './settled.js';
import { launchBrowser, payOnPage, pdfText } from './support.js';

let stack: Stack;
let tenant: Tenant;
let browser: Browser;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

type Invoice = Record<string, unknown> & {
  status: string;
  outstanding: number;
  payNowUrl: string | null;
  providerPaymentUrl: string | null;
  providerInvoiceId: string | null;
  settlement: string;
  payments: unknown[];
  workflowId: string;
};

const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  http<Invoice>(stack.apiUrl, method, path, { key: tenant.apiKey, body, ...(headers ? { headers } : {}) });

async function draft(
  lines = [
    { description: 'Design services, 10 h', quantity: 10, unitPrice: 15_000, amount: 150_000 },
    { description: 'Site visit', amount: 4_550 },
  ],
) {
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  expect((await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Riverside Architects', email: 'ap@riverside.example' } })).status).toBe(201);
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const res = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { number, clientId, created: res.body };
}

async function pay(url: string, amount?: string): Promise<string> {
  const page = await browser.newPage();
  try {
    await page.goto(url);
    return await payOnPage(page, 'pat@riverside.example', amount);
  } finally {
    await page.close();
  }
}

describe('draft -> final -> paid', () => {
  it('prints to Final, sends the invoice and its PDF to the provider, and settles once when paid', async () => {
    const { number, clientId, created } = await draft();
    expect(created).toMatchObject({ status: 'Draft', total: 154_550, outstanding: 154_550, workflowId: `Invoice:${tenant.companyId}:${number}` });

    const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }, { 'x-request-id': `erp-${number}` });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body).toMatchObject({ status: 'Final', sentToProvider: true, outstanding: 154_550 });
    // billflow's own link, which leads to the provider's page.
    expect(final.body.payNowUrl).toMatch(new RegExp(`^${stack.apiUrl}/pay/`));
    expect(final.body.providerPaymentUrl).toMatch(new RegExp(`^${stack.sandboxUrl}/pay/`));

    // The provider's own record: customer from the ERP client, the invoice, and the same PDF.
    const acct = { key: tenant.account.apiKey };
    const customers = await http<{ data: { id: string; name: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct);
    expect(customers.body.data).toHaveLength(1);
    expect(customers.body.data[0]!.name).toBe('Riverside Architects');
    const remote = await http(stack.sandboxUrl, 'GET', `/v1/invoices/${final.body.providerInvoiceId}`, acct);
    expect(remote.body).toMatchObject({ number, invoiceDate: '2026-11-20', outstanding: 154_550, customerId: customers.body.data[0]!.id, payNowUrl: final.body.providerPaymentUrl });
    const doc = await invoicePdf(stack, tenant.apiKey, number);
    expect((remote.body as { pdf: { sha256: string } }).pdf.sha256).toBe(doc.sha256);

    // The PDF says what the client should read.
    const text = await pdfText(doc.bytes);
    expect(text).toContain(number);
    expect(text).toContain('Riverside Architects');
    expect(text).toContain('$1,545.50');
    expect(text).toContain(final.body.payNowUrl!);

    // A payer pays in a real browser; the signed webhook settles the invoice.
    const paymentId = await pay(final.body.payNowUrl!);
    const settled = await eventually(async () => {
      const r = await api('GET', `/v1/invoices/${number}`);
      return r.body.settlement === 'Settled' ? r.body : undefined;
    }, 'the invoice to settle');
    expect(settled).toMatchObject({ outstanding: 0, paid: 154_550 });
    expect(settled.payments).toEqual([expect.objectContaining({ paymentId, amount: 154_550, source: 'webhook' })]);

    // The ERP's feed: exactly one receipt for the payment.
    const feed = await api('GET', '/v1/receipts');
    const receipts = (feed.body as unknown as { data: { providerPaymentId: string; amount: number; kind: string; invoices: string[] }[] }).data;
    expect(receipts.filter((r) => r.providerPaymentId === paymentId)).toEqual([expect.objectContaining({ kind: 'payment', amount: 154_550, invoices: [number] })]);

    // Replaying the webhook (freshly signed, as a provider retry would be) changes nothing.
    const deliveries = await http<{ data: { body: string }[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/webhook-deliveries?paymentId=${paymentId}`, acct);
    const body = deliveries.body.data[0]!.body;
    const replay = await http(stack.apiUrl, 'POST', `/webhooks/provider/${tenant.companyId}`, {
      raw: body,
      headers: { [SIGNATURE_HEADER]: signPayload(tenant.account.webhookSecret, body) },
    });
    // Answered once the invoice's workflow has the signal; asserted once the workflow has handled it.
    expect(replay.status).toBe(200);
    expect(replay.body).toMatchObject({ invoices: [number] });
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, number));
    const after = await api('GET', `/v1/invoices/${number}`);
    expect(after.body.payments).toHaveLength(1);
    const [count] = await stack.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM receipts WHERE company_id = ${tenant.companyId} AND provider_payment_id = ${paymentId}`;
    expect(count!.n).toBe(1);
  });

  it('makes a zero-total invoice Final without touching the provider', async () => {
    const { number, clientId } = await draft([{ description: 'Courtesy adjustment', amount: 0 }]);
    const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status).toBe(200);
    expect(final.body).toMatchObject({ status: 'Final', sentToProvider: false, payNowUrl: null, providerInvoiceId: null });
    const customers = await http<{ data: unknown[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, { key: tenant.account.apiKey });
    expect(customers.body.data).toHaveLength(0);
  });
});

describe('service endpoints', () => {
  it('serves health, readiness, the OpenAPI description and its docs', async () => {
    expect((await http(stack.apiUrl, 'GET', '/healthz')).body).toEqual({ ok: true });
    expect((await http(stack.apiUrl, 'GET', '/readyz')).body).toMatchObject({ ok: true, postgres: 'up', temporal: 'up' });
    const spec = await http<{ openapi: string; paths: Record<string, unknown> }>(stack.apiUrl, 'GET', '/openapi.json');
    expect(spec.body.openapi).toBe('3.1.0');
    expect(Object.keys(spec.body.paths)).toEqual(expect.arrayContaining(['/v1/invoices', '/v1/invoices/{number}/status', '/v1/receipts']));
    const docs = await fetch(`${stack.apiUrl}/docs`);
    expect(docs.headers.get('content-type')).toContain('text/html');
    // Swagger UI, from this server (test/docs-page.test.ts renders it in Chromium).
    expect(await docs.text()).toContain('/docs/assets/swagger-ui-bundle.js');
  });
});

describe('operators', () => {
  it('find the invoice in the Temporal Web UI by its number', async () => {
    const { number } = await draft();
    const query = encodeURIComponent(`InvoiceNumber="${number}"`);
    const page = await browser.newPage();
    try {
      await eventually(async () => {
        await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${query}`);
        const row = page.getByRole('link', { name: `Invoice:${tenant.companyId}:${number}` });
        return (
          (await row.waitFor({ state: 'visible', timeout: 5_000 }).then(
            () => true,
            () => false,
          )) || undefined
        );
      }, 'the workflow to show in the Web UI search');
      // The search is a real filter: another number finds nothing of ours.
      await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${encodeURIComponent('InvoiceNumber="no-such-invoice"')}`);
      await page.getByRole('heading', { name: '0 Workflows' }).waitFor({ timeout: 10_000 });
      expect(await page.getByRole('link', { name: `Invoice:${tenant.companyId}:${number}` }).count()).toBe(0);
    } finally {
      await page.close();
    }
  });
});

describe('bad input gets a clear problem and changes nothing', () => {
  it('refuses malformed JSON, unknown ids, wrong keys and illegal transitions', async () => {
    const malformed = await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, raw: '{"number": ' });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ type: expect.stringContaining('malformed-json'), status: 400 });

    const missingField = await api('POST', '/v1/invoices', { number: 'X-1', invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Survey', amount: 100 }] });
    expect(missingField.status).toBe(422);
    expect(missingField.body).toMatchObject({ field: 'clientId' });

    const badLine = await api('POST', '/v1/invoices', { number: 'X-2', clientId: 'nobody', invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'x', amount: 10.5 }] });
    expect(badLine.status).toBe(422);
    expect(badLine.body).toMatchObject({ field: 'lines[0].amount' });

    expect((await api('GET', '/v1/invoices/NOPE-404')).status).toBe(404);
    expect((await http(stack.apiUrl, 'GET', '/v1/invoices/NOPE', {})).status).toBe(401);
    expect((await http(stack.apiUrl, 'GET', '/v1/invoices/NOPE', { key: 'bf_wrong' })).status).toBe(401);

    const { number } = await draft();
    // Another company's key cannot see or touch this invoice.
    const other = await createTenant(stack);
    expect((await http(stack.apiUrl, 'GET', `/v1/invoices/${number}`, { key: other.apiKey })).status).toBe(404);
    expect((await http(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: other.apiKey, body: { status: 'Final' } })).status).toBe(404);

    // Draft -> Reissue is not a lifecycle move: refused by the Update's validator, nothing changes.
    const illegal = await api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' });
    expect(illegal.status).toBe(409);
    expect(illegal.body).toMatchObject({ type: expect.stringContaining('illegal-transition'), detail: expect.stringContaining('Draft cannot change to Reissue') });
    const unchanged = await api('GET', `/v1/invoices/${number}`);
    expect(unchanged.body).toMatchObject({ status: 'Draft', revision: 0, history: [] });

    // A duplicate invoice number is refused.
    const dup = await api('POST', '/v1/invoices', { number, clientId: unchanged.body.clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'x', amount: 1 }] });
    expect(dup.status).toBe(409);
  });

  it('rejects webhooks with a bad or stale signature', async () => {
    const body = JSON.stringify({ id: 'evt_x', type: 'payment.succeeded', data: { payment: { allocations: [] } } });
    const url = `/webhooks/provider/${tenant.companyId}`;
    const unsigned = await http(stack.apiUrl, 'POST', url, { raw: body });
    expect(unsigned.status).toBe(400);
    const wrong = await http(stack.apiUrl, 'POST', url, { raw: body, headers: { [SIGNATURE_HEADER]: signPayload('whsec_wrong', body) } });
    expect(wrong.status).toBe(400);
    expect(wrong.body).toMatchObject({ detail: 'signature does not match the payload' });
    const stale = await http(stack.apiUrl, 'POST', url, { raw: body, headers: { [SIGNATURE_HEADER]: signPayload(tenant.account.webhookSecret, body, Date.now() - 3_600_000) } });
    expect(stale.status).toBe(400);
    expect(stale.body).toMatchObject({ detail: expect.stringContaining('stale signature') });
    // Correctly signed but not a payment event billflow can read: refused, naming what is missing.
    const odd = JSON.stringify({ id: 'evt_y', type: 'payment.succeeded', data: {} });
    const malformed = await http(stack.apiUrl, 'POST', url, { raw: odd, headers: { [SIGNATURE_HEADER]: signPayload(tenant.account.webhookSecret, odd) } });
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ type: expect.stringContaining('invalid-webhook'), field: 'data.payment' });
  });

  it('replays the first answer to a retried request with the same Idempotency-Key', async () => {
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    const key = randomUUID();
    const first = await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Once Ltd' }, headers: { 'idempotency-key': key } });
    const again = await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Once Ltd' }, headers: { 'idempotency-key': key } });
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    const reused = await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: `${clientId}-2`, name: 'Other' }, headers: { 'idempotency-key': key } });
    expect(reused.status).toBe(422);
    const [count] = await stack.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM clients WHERE company_id = ${tenant.companyId} AND id LIKE ${`${clientId}%`}`;
    expect(count!.n).toBe(1);
  });
});
