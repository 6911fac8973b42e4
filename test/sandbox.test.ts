/**
 * The provider sandbox over real HTTP against the run's real PostgreSQL: the /v1 API as billflow
 * uses it, the Pay Now page as a payer uses it (plain form posts, and once in headless Chromium),
 * webhooks to a real local receiver. Every test makes its own account, so tests share no data.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SIGNATURE_HEADER, verifySignature } from '../lib/signature.js';
import { startSandbox } from './stack.js';
import { launchBrowser } from './support.js';

let sandbox: { url: string; stop(): Promise<void> };
let base = '';
const logs: string[] = [];

beforeAll(async () => {
  sandbox = await startSandbox(inject('sandboxDatabaseUrl'), (m) => logs.push(m));
  base = sandbox.url;
});

afterAll(async () => {
  await sandbox.stop();
  // Errors the handlers did not expect end up here; none should have happened.
  expect(logs.filter((l) => l.startsWith('unhandled') || l.startsWith('pay page'))).toEqual([]);
});

// --- helpers ----------------------------------------------------------------------------------------

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- response bodies are read loosely in tests

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: Json;
}

async function call(method: string, path: string, opts: { key?: string; body?: unknown; headers?: Record<string, string>; raw?: Uint8Array; contentType?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: BodyInit | undefined;
  if (opts.raw) {
    headers['content-type'] = opts.contentType ?? 'application/pdf';
    body = new Uint8Array(opts.raw);
  } else if (opts.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: Json = {};
  if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text) as Json;
  return { status: res.status, headers: res.headers, text, body: parsed };
}

interface Account {
  id: string;
  apiKey: string;
  webhookSecret: string;
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer>;
}

async function newAccount(extra: { webhookUrl?: string; convenienceFee?: { fixed?: number; percentBps?: number } } = {}): Promise<Account> {
  const res = await call('POST', '/v1/accounts', { body: { name: `Acme Engineering ${randomUUID().slice(0, 8)}`, ...extra } });
  expect(res.status).toBe(201);
  const { id, apiKey, webhookSecret } = res.body as { id: string; apiKey: string; webhookSecret: string };
  return { id, apiKey, webhookSecret, api: (method, path, body, headers) => call(method, path, { key: apiKey, body, headers }) };
}

async function newCustomer(acct: Account): Promise<Json> {
  const res = await acct.api('POST', '/v1/customers', { externalId: `C-${randomUUID()}`, name: 'Riverside Clinic', email: 'ap@riverside.test' });
  expect(res.status).toBe(201);
  return res.body;
}

let invoiceCounter = 1000;
async function newInvoice(acct: Account, customerId: string, outstanding: number, extra: Json = {}): Promise<Json> {
  const res = await acct.api('POST', '/v1/invoices', {
    customerId,
    number: `INV-${++invoiceCounter}`,
    invoiceDate: '2025-03-14',
    amount: outstanding,
    outstanding,
    ...extra,
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function getInvoice(acct: Account, id: string): Promise<Json> {
  const res = await acct.api('GET', `/v1/invoices/${id}`);
  expect(res.status).toBe(200);
  return res.body;
}

async function paymentsOf(acct: Account, query = ''): Promise<Json[]> {
  const res = await acct.api('GET', `/v1/payments?limit=100${query}`);
  expect(res.status).toBe(200);
  return res.body.data as Json[];
}

const CARD = { payerName: 'Dana Reyes', payerEmail: 'dana@riverside.test', cardNumber: '4242 4242 4242 4242', expiry: '12/39', cvc: '123' };

/** Opens the Pay Now page like a browser and submits its form with these fields. */
async function submitPayForm(payNowUrl: string, fields: Record<string, string | string[]>): Promise<{ status: number; html: string; form: URLSearchParams }> {
  const page = await fetch(payNowUrl);
  const html = await page.text();
  const formToken = /name="formToken" value="([^"]+)"/.exec(html)?.[1];
  expect(formToken, 'the page has a payment form').toBeDefined();
  const form = new URLSearchParams({ formToken: formToken! });
  for (const [k, v] of Object.entries({ ...CARD, ...fields })) for (const one of [v].flat()) form.append(k, one);
  const res = await postForm(payNowUrl, form);
  return { ...res, form };
}

async function postForm(payNowUrl: string, form: URLSearchParams): Promise<{ status: number; html: string }> {
  const res = await fetch(payNowUrl, { method: 'POST', body: form });
  return { status: res.status, html: await res.text() };
}

const paymentIdIn = (html: string) => /id="payment-id">(pay_[0-9a-f]+)</.exec(html)?.[1];

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A webhook receiver on loopback that answers with the given statuses in turn (then 200). */
async function receiver(statuses: number[] = []): Promise<{ url: string; calls: { headers: IncomingMessage['headers']; body: string }[]; close(): Promise<void> }> {
  const calls: { headers: IncomingMessage['headers']; body: string }[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      calls.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/hooks/billpay`,
    calls,
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

// --- API --------------------------------------------------------------------------------------------

describe('API basics', () => {
  it('serves health and an OpenAPI description of the routes it has', async () => {
    expect((await call('GET', '/healthz')).body).toEqual({ ok: true });
    const spec = (await call('GET', '/openapi.json')).body;
    expect(spec.openapi).toBe('3.1.0');
    for (const p of ['/v1/customers', '/v1/invoices/{id}/pdf', '/v1/payments', '/v1/sandbox/faults', '/pay/{token}']) expect(spec.paths).toHaveProperty([p]);
    expect(spec.components.schemas.InvoiceCreate.required).toContain('outstanding');
  });

  it('refuses missing or unknown API keys and hides other accounts', async () => {
    const a = await newAccount();
    const b = await newAccount();
    const missing = await call('GET', '/v1/customers');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect(missing.body.type).toMatch(/\/unauthenticated$/);
    expect((await call('GET', '/v1/customers', { key: 'sk_test_nope' })).status).toBe(401);

    const customer = await newCustomer(a);
    const invoice = await newInvoice(a, customer.id, 5000);
    expect((await b.api('GET', `/v1/customers/${customer.id}`)).status).toBe(404);
    expect((await b.api('GET', `/v1/invoices/${invoice.id}`)).status).toBe(404);
    expect((await b.api('DELETE', `/v1/invoices/${invoice.id}`)).status).toBe(404);
    expect((await b.api('PATCH', `/v1/accounts/${a.id}`, { webhookUrl: null })).status).toBe(404);
    expect((await b.api('GET', `/v1/customers?externalId=${customer.externalId}`)).body.data).toEqual([]);
    expect((await getInvoice(a, invoice.id)).status).toBe('open');
  });

  it('creates customers once per externalId and finds them by it', async () => {
    const a = await newAccount();
    const created = await a.api('POST', '/v1/customers', { externalId: 'CL-7', name: 'Riverside Clinic', email: null });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/customers/${created.body.id}`);
    expect(created.body).toMatchObject({ externalId: 'CL-7', name: 'Riverside Clinic', email: null });
    expect(created.body.id).toMatch(/^cus_/);

    const again = await a.api('POST', '/v1/customers', { externalId: 'CL-7', name: 'Other name' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ field: 'externalId', customerId: created.body.id });
    expect(again.body.type).toMatch(/\/customer-exists$/);

    expect((await a.api('GET', '/v1/customers?externalId=CL-7')).body.data).toEqual([created.body]);
    expect((await a.api('GET', `/v1/customers/${created.body.id}`)).body).toEqual(created.body);

    const invalid = await a.api('POST', '/v1/customers', { externalId: 'CL-8' });
    expect(invalid.status).toBe(422);
    expect(invalid.body).toMatchObject({ field: 'name', detail: 'name is required' });
    expect((await a.api('POST', '/v1/customers', { externalId: 'CL-9', name: 'X', colour: 'red' })).body.field).toBe('colour');
  });

  it('creates, attaches a PDF to, reissues and deletes invoices', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const created = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-100', invoiceDate: '2025-03-14', amount: 150000, outstanding: 120000 });
    expect(created.status).toBe(201);
    const inv = created.body;
    expect(inv).toMatchObject({ number: 'A-100', invoiceDate: '2025-03-14', amount: 150000, outstanding: 120000, paid: 0, status: 'open', pdf: null });
    expect(inv.payNowUrl).toMatch(new RegExp(`^${base}/pay/[A-Za-z0-9_-]{43}$`));

    const dup = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-100', invoiceDate: '2025-03-15', amount: 1, outstanding: 1 });
    expect(dup.status).toBe(409);
    expect(dup.body.type).toMatch(/\/invoice-number-exists$/);
    const tooMuch = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-101', invoiceDate: '2025-03-15', amount: 100, outstanding: 101 });
    expect(tooMuch.body).toMatchObject({ status: 422, field: 'outstanding' });
    const badDate = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-101', invoiceDate: '2025-02-30', amount: 100, outstanding: 100 });
    expect(badDate.body).toMatchObject({ status: 422, field: 'invoiceDate' });
    const floaty = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-101', invoiceDate: '2025-02-03', amount: 100.5, outstanding: 100 });
    expect(floaty.body).toMatchObject({ status: 422, field: 'amount' });

    // PDF: only real PDFs, stored byte for byte, offered on the Pay Now page.
    const notPdf = await call('PUT', `/v1/invoices/${inv.id}/pdf`, { key: a.apiKey, raw: new TextEncoder().encode('hello') });
    expect(notPdf.body).toMatchObject({ status: 422, field: 'body' });
    const pdf = new TextEncoder().encode('%PDF-1.7\n% a tiny test document\n%%EOF\n');
    const attached = await call('PUT', `/v1/invoices/${inv.id}/pdf`, { key: a.apiKey, raw: pdf });
    expect(attached.status).toBe(200);
    const { createHash } = await import('node:crypto');
    expect(attached.body.pdf).toEqual({ sha256: createHash('sha256').update(pdf).digest('hex'), bytes: pdf.length });
    const back = await fetch(`${base}/v1/invoices/${inv.id}/pdf`, { headers: { authorization: `Bearer ${a.apiKey}` } });
    expect(Buffer.from(await back.arrayBuffer()).equals(Buffer.from(pdf))).toBe(true);
    const page = await (await fetch(inv.payNowUrl)).text();
    expect(page).toContain(`href="${new URL(inv.payNowUrl).pathname}/pdf"`);
    const viaPage = await fetch(`${inv.payNowUrl}/pdf`);
    expect(viaPage.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await viaPage.arrayBuffer()).equals(Buffer.from(pdf))).toBe(true);

    // Reissue: same record, same Pay Now URL, new facts.
    const patched = await a.api('PATCH', `/v1/invoices/${inv.id}`, { number: 'A-100R', invoiceDate: '2025-04-01', amount: 160000, outstanding: 130000 });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ id: inv.id, number: 'A-100R', invoiceDate: '2025-04-01', amount: 160000, outstanding: 130000, payNowUrl: inv.payNowUrl });
    const reissuedPage = await (await fetch(inv.payNowUrl)).text();
    expect(reissuedPage).toContain('A-100R');
    expect(reissuedPage).toContain('$1,300.00');
    expect(reissuedPage).toContain('April 1, 2025');

    // Delete: gone from the API, the page says so, and the number is free again.
    const deleted = await a.api('DELETE', `/v1/invoices/${inv.id}`);
    expect(deleted.body).toEqual({ id: inv.id, deleted: true });
    expect((await a.api('GET', `/v1/invoices/${inv.id}`)).status).toBe(404);
    expect((await a.api('GET', `/v1/invoices?customerId=${customer.id}`)).body.data).toEqual([]);
    const gone = await fetch(inv.payNowUrl);
    expect(gone.status).toBe(410);
    expect(await gone.text()).toContain('no longer payable');
    const next = await a.api('POST', '/v1/invoices', { customerId: customer.id, number: 'A-100R', invoiceDate: '2025-04-02', amount: 5, outstanding: 5 });
    expect(next.status).toBe(201);
    expect(next.body.payNowUrl).not.toBe(inv.payNowUrl);
    expect((await fetch(`${base}/pay/not-a-token`)).status).toBe(404);
  });
});

// --- Pay Now page -----------------------------------------------------------------------------------

describe('Pay Now page', () => {
  it('shows the invoice and takes a full payment', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 123456);
    const page = await (await fetch(inv.payNowUrl)).text();
    const name = (await a.api('GET', `/v1/accounts/${a.id}`)).body.name as string;
    expect(page).toContain(name);
    expect(page).toContain(inv.number);
    expect(page).toContain('March 14, 2025');
    expect(page).toContain('id="outstanding">$1,234.56<');
    expect(page).toMatch(/name="amount" value="1234\.56"/);
    expect(page).not.toContain('invoice-pdf'); // no PDF attached yet

    const res = await submitPayForm(inv.payNowUrl, { amount: '1234.56' });
    expect(res.status).toBe(200);
    const paymentId = paymentIdIn(res.html);
    expect(paymentId).toBeDefined();
    expect(res.html).toContain('id="total-charged">$1,234.56<');

    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 0, paid: 123456, status: 'paid' });
    const payment = (await a.api('GET', `/v1/payments/${paymentId}`)).body;
    expect(payment).toMatchObject({
      customerId: customer.id,
      amount: 123456,
      fee: 0,
      currency: 'USD',
      method: 'card',
      payerName: 'Dana Reyes',
      payerEmail: 'dana@riverside.test',
      cardLast4: '4242',
      status: 'succeeded',
      allocations: [{ invoiceId: inv.id, invoiceNumber: inv.number, amount: 123456 }],
    });
    const paidPage = await (await fetch(inv.payNowUrl)).text();
    expect(paidPage).toContain('Paid in full');
    expect(paidPage).not.toContain('<form');
  });

  it('takes a partial payment and offers the rest next time', async () => {
    const a = await newAccount();
    const inv = await newInvoice(a, (await newCustomer(a)).id, 25000);
    const res = await submitPayForm(inv.payNowUrl, { amount: '100' });
    expect(res.status).toBe(200);
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 15000, paid: 10000, status: 'open' });
    const page = await (await fetch(inv.payNowUrl)).text();
    expect(page).toContain('id="outstanding">$150.00<');
    expect(page).toMatch(/name="amount" value="150\.00"/);
  });

  it('records nothing for a declined card, an unknown card, bad fields or too much', async () => {
    const a = await newAccount();
    const inv = await newInvoice(a, (await newCustomer(a)).id, 5000);

    const declined = await submitPayForm(inv.payNowUrl, { amount: '50.00', cardNumber: '4000 0000 0000 0002' });
    expect(declined.status).toBe(402);
    expect(declined.html).toContain('Your card was declined');
    expect(declined.html).toContain('name="payerName" value="Dana Reyes"'); // the payer's input is kept

    const unknown = await submitPayForm(inv.payNowUrl, { amount: '50.00', cardNumber: '5555 5555 5555 4444' });
    expect(unknown.status).toBe(422);
    expect(unknown.html).toContain('not accepted in the sandbox');

    const bad = await submitPayForm(inv.payNowUrl, { amount: '0.00', payerName: '', payerEmail: 'dana', expiry: '01/20', cvc: '1' });
    expect(bad.status).toBe(422);
    for (const id of ['amount-error', 'payerName-error', 'payerEmail-error', 'expiry-error', 'cvc-error']) expect(bad.html).toContain(`id="${id}"`);
    expect(bad.html).toContain('The card has expired.');

    const tooMuch = await submitPayForm(inv.payNowUrl, { amount: '50.01' });
    expect(tooMuch.status).toBe(422);
    expect(tooMuch.html).toContain('at most $50.00');
    const notANumber = await submitPayForm(inv.payNowUrl, { amount: '50,5' });
    expect(notANumber.status).toBe(422);

    expect(await paymentsOf(a, '&includeRemoved=true')).toEqual([]);
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 5000, status: 'open' });
  });

  it('pays once when the same form is posted twice, even at the same moment', async () => {
    const a = await newAccount();
    const inv = await newInvoice(a, (await newCustomer(a)).id, 9000);
    const first = await submitPayForm(inv.payNowUrl, { amount: '10.00' });
    const again = await postForm(inv.payNowUrl, first.form);
    expect(again.status).toBe(200);
    expect(paymentIdIn(again.html)).toBe(paymentIdIn(first.html));

    const page = await (await fetch(inv.payNowUrl)).text();
    const formToken = /name="formToken" value="([^"]+)"/.exec(page)![1]!;
    const form = new URLSearchParams({ ...CARD, amount: '20.00', formToken });
    const [x, y] = await Promise.all([postForm(inv.payNowUrl, form), postForm(inv.payNowUrl, form)]);
    expect([x.status, y.status]).toEqual([200, 200]);
    expect(paymentIdIn(x.html)).toBe(paymentIdIn(y.html));

    expect((await paymentsOf(a)).map((p) => p.amount)).toEqual([1000, 2000]);
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 6000 });
  });

  it("pays the customer's other open invoices in the same payment", async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const main = await newInvoice(a, customer.id, 10000);
    const second = await newInvoice(a, customer.id, 2500);
    const third = await newInvoice(a, customer.id, 4000);
    const strangers = await newInvoice(a, (await newCustomer(a)).id, 700);

    const page = await (await fetch(main.payNowUrl)).text();
    expect(page).toContain(`value="${second.id}"`);
    expect(page).toContain(`value="${third.id}"`);
    expect(page).not.toContain(strangers.id);
    expect(page).toContain(`<label for="invoice-${second.id}">`);

    const res = await submitPayForm(main.payNowUrl, { amount: '50.00', invoice: [second.id] });
    expect(res.status).toBe(200);
    expect(res.html).toContain('id="total-charged">$75.00<');
    const payment = (await a.api('GET', `/v1/payments/${paymentIdIn(res.html)}`)).body;
    expect(payment.amount).toBe(7500);
    expect(payment.allocations).toEqual([
      { invoiceId: main.id, invoiceNumber: main.number, amount: 5000 },
      { invoiceId: second.id, invoiceNumber: second.number, amount: 2500 },
    ]);
    expect(await getInvoice(a, main.id)).toMatchObject({ outstanding: 5000, status: 'open' });
    expect(await getInvoice(a, second.id)).toMatchObject({ outstanding: 0, status: 'paid' });
    expect(await getInvoice(a, third.id)).toMatchObject({ outstanding: 4000, status: 'open' });

    // Another customer's invoice smuggled into the form is refused and nothing is paid.
    const smuggled = await submitPayForm(main.payNowUrl, { amount: '1.00', invoice: [strangers.id] });
    expect(smuggled.status).toBe(422);
    expect(await getInvoice(a, strangers.id)).toMatchObject({ outstanding: 700 });
    expect(await getInvoice(a, main.id)).toMatchObject({ outstanding: 5000 });
  });

  it("shows and charges the invoice's currency, and never mixes currencies in one payment", async () => {
    const a = await newAccount({ convenienceFee: { fixed: 150 } });
    const customer = await newCustomer(a);
    const euros = await newInvoice(a, customer.id, 123456, { currency: 'EUR' });
    const dollars = await newInvoice(a, customer.id, 5000);
    const moreEuros = await newInvoice(a, customer.id, 2000, { currency: 'EUR' });
    expect(euros).toMatchObject({ currency: 'EUR' });
    expect(dollars).toMatchObject({ currency: 'USD' });
    expect((await a.api('POST', '/v1/invoices', { customerId: customer.id, number: `X-${randomUUID()}`, invoiceDate: '2025-03-14', amount: 100, outstanding: 100, currency: 'JPY' })).status).toBe(422);

    const page = await (await fetch(euros.payNowUrl)).text();
    expect(page).toContain('id="outstanding">€1,234.56<');
    expect(page).toContain('Amount to pay (EUR)');
    expect(page).toContain('Convenience fee: €1.50.');
    // Only the invoices in the same currency are offered alongside.
    expect(page).toContain(`value="${moreEuros.id}"`);
    expect(page).not.toContain(`value="${dollars.id}"`);
    const quote = await (await fetch(`${euros.payNowUrl}/quote?amount=10.00`)).json();
    expect(quote).toEqual({ payment: '€10.00', fee: '€1.50', total: '€11.50' });

    const res = await submitPayForm(euros.payNowUrl, { amount: '€1,000.00', invoice: [moreEuros.id] });
    expect(res.status).toBe(200);
    expect(res.html).toContain('id="total-charged">€1,021.50<');
    const payment = (await a.api('GET', `/v1/payments/${paymentIdIn(res.html)}`)).body;
    expect(payment).toMatchObject({ amount: 102000, fee: 150, currency: 'EUR' });
    // A dollar invoice smuggled into the euro form, or into one API payment, is refused.
    const mixedForm = await submitPayForm(euros.payNowUrl, { amount: '1.00', invoice: [dollars.id] });
    expect(mixedForm.status).toBe(422);
    const mixed = await a.api('POST', '/v1/payments', {
      customerId: customer.id,
      method: 'other',
      allocations: [
        { invoiceId: euros.id, amount: 100 },
        { invoiceId: dollars.id, amount: 100 },
      ],
    });
    expect(mixed.status).toBe(422);
    expect(mixed.body).toMatchObject({ field: 'allocations[1].invoiceId', detail: expect.stringContaining('another currency') });
    expect(await getInvoice(a, dollars.id)).toMatchObject({ outstanding: 5000 });
  });

  it('adds the convenience fee: fixed plus a percentage rounded half up', async () => {
    const a = await newAccount({ convenienceFee: { fixed: 100, percentBps: 250 } });
    const inv = await newInvoice(a, (await newCustomer(a)).id, 10000);
    const page = await (await fetch(inv.payNowUrl)).text();
    // On the full $100.00: $1.00 + 2.5 % = $3.50.
    expect(page).toContain('id="summary-fee">$3.50<');
    expect(page).toContain('id="summary-total">$103.50<');
    expect(page).toContain('$1.00 + 2.5% of the payment');

    // $1.99 x 2.5 % = 4.975 cents, rounded half up to 5.
    const quote = await (await fetch(`${inv.payNowUrl}/quote?amount=1.99`)).json();
    expect(quote).toEqual({ payment: '$1.99', fee: '$1.05', total: '$3.04' });
    const res = await submitPayForm(inv.payNowUrl, { amount: '1.99' });
    expect(res.html).toContain('id="fee-charged">$1.05<');
    expect(res.html).toContain('id="total-charged">$3.04<');
    const [payment] = await paymentsOf(a);
    expect(payment).toMatchObject({ amount: 199, fee: 105 });
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 9801 });
  });

  it('takes a payment through the real page in headless Chromium', async () => {
    const a = await newAccount({ convenienceFee: { fixed: 0, percentBps: 300 } });
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 40000);
    const other = await newInvoice(a, customer.id, 10000);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      const scriptErrors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') scriptErrors.push(m.text());
      });
      await page.goto(inv.payNowUrl);
      expect(await page.textContent('#outstanding')).toBe('$400.00');
      await page.getByLabel('Amount to pay (USD)').fill('150.00');
      await page.getByLabel(new RegExp(`Invoice ${other.number}`)).check();
      // The inline script asks the server for the figures: 3 % of $250.00 is $7.50.
      await page.waitForFunction(() => document.getElementById('summary-fee')?.textContent === '$7.50');
      expect(await page.textContent('#summary-total')).toBe('$257.50');
      await page.getByLabel('Name on card').fill('Dana Reyes');
      await page.getByLabel('Email').fill('dana@riverside.test');
      await page.getByLabel('Card number').fill('4242 4242 4242 4242');
      await page.getByLabel('Expiry (MM/YY)').fill('11/38');
      await page.getByLabel('Security code (CVC)').fill('314');
      await page.getByRole('button', { name: 'Pay' }).click();
      const paymentId = (await page.locator('#payment-id').textContent())!;
      expect(await page.textContent('#total-charged')).toBe('$257.50');
      expect(scriptErrors).toEqual([]); // e.g. no Content-Security-Policy violations

      const payment = (await a.api('GET', `/v1/payments/${paymentId}`)).body;
      expect(payment).toMatchObject({ amount: 25000, fee: 750, cardLast4: '4242', payerName: 'Dana Reyes' });
      expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 25000, status: 'open' });
      expect(await getInvoice(a, other.id)).toMatchObject({ outstanding: 0, status: 'paid' });
    } finally {
      await browser.close();
    }
  });
});

// --- payments API -----------------------------------------------------------------------------------

describe('payments API', () => {
  it('lists payments in creation order, page by page with the cursor', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 100000);
    const other = await newInvoice(a, customer.id, 100000);
    const created: string[] = [];
    for (const [i, target] of [inv, other, inv, inv, other].entries()) {
      const res = await a.api('POST', '/v1/payments', { customerId: customer.id, allocations: [{ invoiceId: target.id, amount: 100 + i }], method: 'quickpay', reference: `QP-${i}` });
      expect(res.status).toBe(201);
      created.push(res.body.id as string);
    }
    const seen: string[] = [];
    let after = '';
    for (let page = 0; page < 3; page++) {
      const res = await a.api('GET', `/v1/payments?limit=2${after ? `&after=${after}` : ''}`);
      seen.push(...(res.body.data as Json[]).map((p) => p.id as string));
      expect(res.body.hasMore).toBe(page < 2);
      after = res.body.nextCursor as string;
    }
    expect(seen).toEqual(created);
    // Polling from the last cursor finds nothing new, and keeps the cursor.
    const tail = await a.api('GET', `/v1/payments?after=${after}`);
    expect(tail.body).toEqual({ data: [], nextCursor: after, hasMore: false });

    expect((await paymentsOf(a, `&invoiceId=${other.id}`)).map((p) => p.id)).toEqual([created[1], created[4]]);
    expect((await a.api('GET', '/v1/payments?limit=101')).body).toMatchObject({ status: 400, field: 'limit' });
    expect((await a.api('GET', '/v1/payments?after=garbage')).body).toMatchObject({ status: 400, field: 'after' });
  });

  it('refuses allocations above the outstanding balance, naming the allocation', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 3000);
    const over = await a.api('POST', '/v1/payments', { customerId: customer.id, allocations: [{ invoiceId: inv.id, amount: 3001 }], method: 'prepayment' });
    expect(over.body).toMatchObject({ status: 422, field: 'allocations[0].amount' });
    const zero = await a.api('POST', '/v1/payments', { customerId: customer.id, allocations: [{ invoiceId: inv.id, amount: 0 }], method: 'prepayment' });
    expect(zero.body).toMatchObject({ status: 422, field: 'allocations[0].amount' });
    const unknown = await a.api('POST', '/v1/payments', {
      customerId: customer.id,
      allocations: [
        { invoiceId: inv.id, amount: 1 },
        { invoiceId: 'inv_000000000000000000000000', amount: 1 },
      ],
      method: 'prepayment',
    });
    expect(unknown.body).toMatchObject({ status: 422, field: 'allocations[1].invoiceId' });
    expect(await paymentsOf(a)).toEqual([]);
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 3000 });

    const exact = await a.api('POST', '/v1/payments', {
      customerId: customer.id,
      allocations: [{ invoiceId: inv.id, amount: 3000 }],
      method: 'prepayment',
      paidAt: '2025-03-20T10:00:00Z',
      reference: 'PP-1',
    });
    expect(exact.status).toBe(201);
    expect(exact.body).toMatchObject({ method: 'prepayment', paidAt: '2025-03-20T10:00:00.000Z', reference: 'PP-1', fee: 0, cardLast4: null });
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 0, status: 'paid' });
  });

  it('removing a payment gives its amounts back to every invoice it covered', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const first = await newInvoice(a, customer.id, 8000);
    const second = await newInvoice(a, customer.id, 2000);
    const paid = await submitPayForm(first.payNowUrl, { amount: '80.00', invoice: [second.id] });
    const paymentId = paymentIdIn(paid.html)!;
    expect(await getInvoice(a, first.id)).toMatchObject({ status: 'paid', outstanding: 0 });

    const removed = await a.api('DELETE', `/v1/payments/${paymentId}`);
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ id: paymentId, status: 'removed' });
    expect(await getInvoice(a, first.id)).toMatchObject({ status: 'open', outstanding: 8000, paid: 0 });
    expect(await getInvoice(a, second.id)).toMatchObject({ status: 'open', outstanding: 2000, paid: 0 });
    expect(await paymentsOf(a)).toEqual([]);
    expect((await paymentsOf(a, '&includeRemoved=true')).map((p) => [p.id, p.status])).toEqual([[paymentId, 'removed']]);

    // Removing it again changes nothing.
    expect((await a.api('DELETE', `/v1/payments/${paymentId}`)).body.status).toBe('removed');
    expect(await getInvoice(a, first.id)).toMatchObject({ outstanding: 8000 });
    // The Pay Now page takes payments again.
    expect(await (await fetch(first.payNowUrl)).text()).toContain('id="outstanding">$80.00<');
  });
});

// --- idempotency, faults, request log ---------------------------------------------------------------

describe('sandbox behaviour for resilience tests', () => {
  it('replays the first answer for a repeated Idempotency-Key and refuses it for another request', async () => {
    const a = await newAccount();
    const key = { 'idempotency-key': `k-${randomUUID()}` };
    const body = { externalId: 'CL-1', name: 'Riverside Clinic' };
    const first = await a.api('POST', '/v1/customers', body, key);
    const second = await a.api('POST', '/v1/customers', body, key);
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect((await a.api('GET', '/v1/customers')).body.data).toHaveLength(1);

    const reused = await a.api('POST', '/v1/customers', { ...body, name: 'Changed' }, key);
    expect(reused.status).toBe(422);
    expect(reused.body.type).toMatch(/\/idempotency-key-reused$/);

    // Concurrent retries of one payment: one payment, one balance change.
    const inv = await newInvoice(a, first.body.id as string, 5000);
    const payKey = { 'idempotency-key': `pay-${randomUUID()}` };
    const pay = { customerId: first.body.id, allocations: [{ invoiceId: inv.id, amount: 1500 }], method: 'quickpay' };
    const answers = await Promise.all([1, 2, 3].map(() => a.api('POST', '/v1/payments', pay, payKey)));
    expect(new Set(answers.map((r) => r.text)).size).toBe(1);
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(await paymentsOf(a)).toHaveLength(1);
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 3500 });

    // Keys belong to one account: another account's identical request is its own.
    const b = await newAccount();
    expect((await b.api('POST', '/v1/customers', body, key)).headers.get('idempotent-replayed')).toBeNull();
  });

  it('injects errors for a number of requests, and until cleared', async () => {
    const a = await newAccount();
    const set = await a.api('POST', '/v1/sandbox/faults', { mode: 'error', status: 503, count: 2 });
    expect(set.body).toEqual({ mode: 'error', status: 503, delayMs: 0, remaining: 2, match: null });
    const failed = [await a.api('GET', '/v1/customers'), await a.api('POST', '/v1/customers', { externalId: 'X', name: 'X' })];
    expect(failed.map((r) => r.status)).toEqual([503, 503]);
    expect(failed[1]!.body.type).toMatch(/\/injected-fault$/);
    expect((await a.api('GET', '/v1/customers')).status).toBe(200);
    expect((await a.api('GET', '/v1/sandbox/faults')).body.mode).toBe('none');
    expect((await a.api('GET', '/v1/customers')).body.data).toEqual([]); // the failed create changed nothing

    // Until cleared; other accounts and the sandbox endpoints are unaffected.
    const b = await newAccount();
    await a.api('POST', '/v1/sandbox/faults', { mode: 'error', status: 500 });
    for (let i = 0; i < 3; i++) expect((await a.api('GET', '/v1/invoices')).status).toBe(500);
    expect((await b.api('GET', '/v1/invoices')).status).toBe(200);
    expect((await a.api('GET', '/v1/sandbox/faults')).body).toMatchObject({ mode: 'error', remaining: null });
    await a.api('POST', '/v1/sandbox/faults', { mode: 'none' });
    expect((await a.api('GET', '/v1/invoices')).status).toBe(200);
  });

  it('delays requests by the injected delay', async () => {
    const a = await newAccount();
    await a.api('POST', '/v1/sandbox/faults', { mode: 'delay', delayMs: 400, count: 1 });
    const t0 = Date.now();
    expect((await a.api('GET', '/v1/customers')).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    const t1 = Date.now();
    await a.api('GET', '/v1/customers');
    expect(Date.now() - t1).toBeLessThan(400);
  });

  it('records every call with its X-Request-Id for tracing', async () => {
    const a = await newAccount();
    const requestId = `erp-${randomUUID()}`;
    const created = await a.api('POST', '/v1/customers', { externalId: 'CL-1', name: 'N' }, { 'x-request-id': requestId });
    expect(created.headers.get('x-request-id')).toBe(requestId);
    await a.api('GET', '/v1/customers/cus_unknown', undefined, { 'x-request-id': requestId });
    await a.api('GET', '/v1/customers', undefined, { 'x-request-id': 'someone-else' });
    const log = await a.api('GET', `/v1/sandbox/requests?requestId=${requestId}`);
    expect((log.body.data as Json[]).map((l) => [l.method, l.path, l.status, l.requestId])).toEqual([
      ['POST', '/v1/customers', 201, requestId],
      ['GET', '/v1/customers/cus_unknown', 404, requestId],
    ]);
    const b = await newAccount();
    expect((await b.api('GET', `/v1/sandbox/requests?requestId=${requestId}`)).body.data).toEqual([]);
  });
});

// --- webhooks ---------------------------------------------------------------------------------------

describe('webhooks', () => {
  it('delivers signed payment events, retrying after a failure', async () => {
    const hook = await receiver([500]);
    try {
      const a = await newAccount({ webhookUrl: hook.url });
      const inv = await newInvoice(a, (await newCustomer(a)).id, 6000);
      const paid = await submitPayForm(inv.payNowUrl, { amount: '60.00' });
      const paymentId = paymentIdIn(paid.html)!;

      const delivery = await eventually(async () => {
        const [d] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${paymentId}`)).body.data as Json[];
        return d?.deliveredAt ? d : undefined;
      }, 'the webhook to be delivered');
      expect(delivery).toMatchObject({ type: 'payment.succeeded', attempts: 2, lastStatus: 200, url: hook.url });
      expect(hook.calls).toHaveLength(2);
      for (const call of hook.calls) {
        expect(call.headers['content-type']).toBe('application/json');
        expect(verifySignature(a.webhookSecret, call.body, call.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBeNull();
        expect(call.body).toBe(delivery.body);
      }
      // The log keeps the last attempt's headers: body and headers replay it exactly.
      expect(delivery.headers).toEqual({ 'content-type': 'application/json', [SIGNATURE_HEADER]: hook.calls[1]!.headers[SIGNATURE_HEADER.toLowerCase()] });
      expect(verifySignature('whsec_wrong', hook.calls[0]!.body, hook.calls[0]!.headers[SIGNATURE_HEADER.toLowerCase()] as string)).not.toBeNull();
      const event = JSON.parse(hook.calls[0]!.body) as Json;
      expect(event).toMatchObject({ id: delivery.eventId, type: 'payment.succeeded', accountId: a.id });
      expect(event.data.payment).toMatchObject({ id: paymentId, amount: 6000, status: 'succeeded' });

      // Removal is announced too.
      await a.api('DELETE', `/v1/payments/${paymentId}`);
      const removedEvent = await eventually(() => Promise.resolve(hook.calls.map((c) => JSON.parse(c.body) as Json).find((e) => e.type === 'payment.removed')), 'payment.removed');
      expect(removedEvent.data.payment).toMatchObject({ id: paymentId, status: 'removed' });
    } finally {
      await hook.close();
    }
  });

  it('keeps retrying an unreachable receiver and delivers once it answers', async () => {
    const hook = await receiver();
    await hook.close(); // nothing listens on this port for now
    const a = await newAccount({ webhookUrl: hook.url });
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 500);
    const res = await a.api('POST', '/v1/payments', { customerId: customer.id, allocations: [{ invoiceId: inv.id, amount: 500 }], method: 'quickpay' });
    const failing = await eventually(async () => {
      const [d] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${res.body.id}`)).body.data as Json[];
      return d && d.attempts >= 1 ? d : undefined;
    }, 'a failed attempt');
    expect(failing).toMatchObject({ deliveredAt: null, lastStatus: null });
    expect(failing.lastError).toBeTruthy();

    // The receiver comes back on the same port.
    const port = Number(new URL(hook.url).port);
    const calls: string[] = [];
    const back = createServer((req, resp) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        calls.push(b);
        resp.writeHead(204).end();
      });
    });
    back.listen(port, '127.0.0.1');
    await once(back, 'listening');
    try {
      const done = await eventually(async () => {
        const [d] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${res.body.id}`)).body.data as Json[];
        return d?.deliveredAt ? d : undefined;
      }, 'delivery after the receiver came back');
      expect(done.lastStatus).toBe(204);
      expect(calls).toEqual([done.body]);
    } finally {
      await new Promise((r) => back.close(r));
    }
  });
});

// --- chaos faults (for npm run chaos) ---------------------------------------------------------------

describe('chaos faults', () => {
  const pay = (a: Account, customerId: string, invoiceId: string, amount: number, headers?: Record<string, string>) =>
    a.api('POST', '/v1/payments', { customerId, allocations: [{ invoiceId, amount }], method: 'other' }, headers);

  it('answers errors at the given rate and counts them', async () => {
    const a = await newAccount();
    const set = await a.api('POST', '/v1/sandbox/faults', { mode: 'chaos', status: 502, errorRate: 1 });
    expect(set.body).toEqual({ mode: 'chaos', status: 502, delayMs: 0, remaining: null, match: null, errorRate: 1, delayRate: 0, dropResponseRate: 0 });
    for (let i = 0; i < 3; i++) expect((await a.api('GET', '/v1/customers')).status).toBe(502);
    await a.api('POST', '/v1/sandbox/faults', { mode: 'chaos', errorRate: 0, delayRate: 0 });
    expect((await a.api('GET', '/v1/customers')).status).toBe(200);
    expect((await a.api('GET', '/v1/sandbox/faults/injected')).body).toEqual({ errors: 3, delays: 0, droppedResponses: 0, webhooks: { duplicated: 0, held: 0, lost: 0 } });
  });

  it('commits a request whose answer it then drops, and replays that answer to the retry', async () => {
    const a = await newAccount();
    const customer = await newCustomer(a);
    const inv = await newInvoice(a, customer.id, 9000);
    await a.api('POST', '/v1/sandbox/faults', { mode: 'chaos', dropResponseRate: 1 });
    const key = { 'idempotency-key': `drop-${randomUUID()}` };
    await expect(pay(a, customer.id, inv.id, 4000, key)).rejects.toThrow(/fetch failed/);
    await a.api('POST', '/v1/sandbox/faults', { mode: 'none' });

    // The payment is there although its creator never heard of it; the retry gets the first answer.
    const [payment] = await paymentsOf(a);
    expect(payment).toMatchObject({ amount: 4000, status: 'succeeded' });
    expect(await getInvoice(a, inv.id)).toMatchObject({ outstanding: 5000 });
    const retry = await pay(a, customer.id, inv.id, 4000, key);
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.id).toBe(payment!.id);
    expect(await paymentsOf(a)).toHaveLength(1);
    expect((await a.api('GET', '/v1/sandbox/faults/injected')).body).toMatchObject({ errors: 0, droppedResponses: 1 });
  });

  it('delivers a duplicated webhook twice with the same event id', async () => {
    const hook = await receiver();
    try {
      const a = await newAccount({ webhookUrl: hook.url });
      const customer = await newCustomer(a);
      const inv = await newInvoice(a, customer.id, 3000);
      const set = await a.api('POST', '/v1/sandbox/faults', { mode: 'none', webhooks: { duplicateRate: 1 } });
      expect(set.body.webhooks).toEqual({ duplicateRate: 1, holdRate: 0, holdMs: 0, loseRate: 0 });
      const paid = await pay(a, customer.id, inv.id, 3000);
      await eventually(() => Promise.resolve(hook.calls.length >= 2 ? true : undefined), 'the event twice');
      const [first, second] = hook.calls.map((c) => JSON.parse(c.body) as Json);
      expect(first!.id).toBe(second!.id);
      expect(first!.data.payment.id).toBe(paid.body.id);
      for (const c of hook.calls) expect(verifySignature(a.webhookSecret, c.body, c.headers[SIGNATURE_HEADER.toLowerCase()] as string)).toBeNull();
      // The receiver can have both calls before the sandbox has recorded the attempt.
      const d = await eventually(async () => {
        const [row] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${paid.body.id}`)).body.data as Json[];
        return row?.deliveredAt ? row : undefined;
      }, 'the delivery recorded');
      expect(d).toMatchObject({ fault: 'duplicated', attempts: 1, eventId: first!.id });
      expect(d!.deliveredAt).not.toBeNull();
    } finally {
      await hook.close();
    }
  });

  it('never sends a lost webhook, and sends a held one after the events that followed it', async () => {
    const hook = await receiver();
    try {
      const a = await newAccount({ webhookUrl: hook.url });
      const customer = await newCustomer(a);
      const inv = await newInvoice(a, customer.id, 9000);
      await a.api('POST', '/v1/sandbox/faults', { mode: 'none', webhooks: { loseRate: 1 } });
      const lost = await pay(a, customer.id, inv.id, 1000);
      await eventually(async () => {
        const [d] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${lost.body.id}`)).body.data as Json[];
        return d?.fault === 'lost' ? d : undefined;
      }, 'the event to be lost');
      await a.api('POST', '/v1/sandbox/faults', { mode: 'none', webhooks: { holdRate: 1, holdMs: 1500 } });
      const held = await pay(a, customer.id, inv.id, 2000);
      await eventually(async () => {
        const [d] = (await a.api('GET', `/v1/sandbox/webhook-deliveries?paymentId=${held.body.id}`)).body.data as Json[];
        return d?.fault === 'held' ? d : undefined;
      }, 'the event to be held back');
      await a.api('POST', '/v1/sandbox/faults', { mode: 'none' });
      const plain = await pay(a, customer.id, inv.id, 3000);

      // Wait for the held event, which comes last; the lost one never comes.
      await eventually(() => Promise.resolve(hook.calls.some((c) => c.body.includes(held.body.id as string)) ? true : undefined), 'the held event');
      expect(hook.calls.map((c) => (JSON.parse(c.body) as Json).data.payment.id)).toEqual([plain.body.id, held.body.id]);
      const deliveries = (await a.api('GET', '/v1/sandbox/webhook-deliveries')).body.data as Json[];
      expect(deliveries.map((d) => [d.paymentId, d.fault, d.attempts])).toEqual([
        [lost.body.id, 'lost', 0],
        [held.body.id, 'held', 1],
        [plain.body.id, null, 1],
      ]);
      expect((await a.api('GET', '/v1/sandbox/faults/injected')).body.webhooks).toEqual({ duplicated: 0, held: 1, lost: 1 });
    } finally {
      await hook.close();
    }
  });
});
