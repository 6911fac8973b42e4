/**
 * The provider sandbox's Stripe-compatible mode, driven with the `stripe` package at billflow's
 * pinned API version: a stateful lifecycle of each object billflow uses, Stripe's errors,
 * idempotency keys, signed events to webhook endpoints, and injected faults. Every answer the mode
 * gives in this file is validated against Stripe's published OpenAPI description (test/stripe-openapi.ts),
 * and every operation the adapter uses must have been answered here.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_VERSION } from '../activities/provider/stripe.js';
import type { StripeAnswer } from '../sandbox/stripe/app.js';
import { STRIPE_SANDBOX_API_VERSION } from '../sandbox/stripe/store.js';
import { eventually, http, startStack, type Stack } from './harness.js';
import { stripeContract, type StripeContract } from './stripe-openapi.js';

let stack: Stack;
let contract: StripeContract;
const answers: StripeAnswer[] = [];
let account: { id: string; apiKey: string };
let stripe: Stripe;

/** Events received by a real HTTP endpoint, with their raw body and signature. */
const received: { raw: string; signature: string }[] = [];
let receiver: Server;
let receiverUrl: string;

/** Every operation billflow's adapter and registration use: each must be answered (and validated) here. */
const USED = [
  'GET /v1/customers/search',
  'POST /v1/customers',
  'POST /v1/invoices',
  'POST /v1/invoiceitems',
  'POST /v1/invoices/{invoice}/finalize',
  'DELETE /v1/invoices/{invoice}',
  'GET /v1/invoices/{invoice}',
  'GET /v1/invoices',
  'POST /v1/invoices/{invoice}/void',
  'POST /v1/invoices/{invoice}/pay',
  'POST /v1/invoices/{invoice}/send',
  'POST /v1/credit_notes',
  'POST /v1/credit_notes/{id}/void',
  'GET /v1/invoice_payments',
  'GET /v1/invoice_payments/{invoice_payment}',
  'GET /v1/payment_intents/{intent}',
  'POST /v1/webhook_endpoints',
  'GET /v1/webhook_endpoints',
  'DELETE /v1/webhook_endpoints/{webhook_endpoint}',
];

const client = (key: string, extra: Partial<Stripe.StripeConfig> = {}) => {
  const url = new URL(stack.stripeUrl);
  return new Stripe(key, { apiVersion: STRIPE_API_VERSION, host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0, telemetry: false, ...extra });
};

beforeAll(async () => {
  contract = stripeContract();
  stack = await startStack({ onStripeAnswer: (a) => answers.push(a) });
  const created = await http<{ id: string; apiKey: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Stripe sandbox test' } });
  expect(created.status).toBe(201);
  account = created.body;
  stripe = client(account.apiKey);
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ raw: Buffer.concat(chunks).toString(), signature: String(req.headers['stripe-signature'] ?? '') });
      res.writeHead(200).end('{}');
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  receiver?.close();
  await stack?.stop();
});

/** A finalized invoice of `amount` for a fresh customer. */
async function openInvoice(amount: number, currency = 'eur') {
  const customer = await stripe.customers.create({ name: 'Riverside Architects', metadata: { billflow_client_id: `CL-${amount}-${Math.random()}` } });
  const draft = await stripe.invoices.create({
    customer: customer.id,
    currency,
    collection_method: 'send_invoice',
    days_until_due: 30,
    auto_advance: false,
    pending_invoice_items_behavior: 'exclude',
    metadata: { billflow_number: 'INV-1' },
  });
  await stripe.invoiceItems.create({ customer: customer.id, invoice: draft.id, currency, amount, description: 'Design' });
  return stripe.invoices.finalizeInvoice(draft.id, { auto_advance: false });
}

/** Pays on the hosted invoice page with the Stripe test card, as a payer's browser posts its form. */
async function payOnPage(url: string, amount: string) {
  const page = await (await fetch(url)).text();
  const formToken = /name="formToken" value="([^"]+)"/.exec(page)![1]!;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ formToken, amount, payerName: 'Pat Payer', payerEmail: 'pat@example.com', cardNumber: '4242 4242 4242 4242', expiry: '12/30', cvc: '123' }),
  });
  const text = await res.text();
  return { status: res.status, paymentId: /id="payment-id">([^<]+)</.exec(text)?.[1] ?? null, text };
}

describe("the sandbox's Stripe mode", () => {
  it('speaks the API version the adapter pins, and only that one', async () => {
    expect(STRIPE_SANDBOX_API_VERSION).toBe(STRIPE_API_VERSION);
    await expect(stripe.customers.list({}, { apiVersion: '2025-03-31.basil' })).rejects.toMatchObject({ statusCode: 400, type: 'StripeInvalidRequestError', param: 'Stripe-Version' });
  });

  it('keeps customers and finds them by metadata', async () => {
    const id = `CL-'${Math.random()}`;
    const c = await stripe.customers.create({ name: 'Harbor Builders', email: 'ap@harbor.example', metadata: { billflow_client_id: id } });
    const found = await stripe.customers.search({ query: `metadata['billflow_client_id']:'${id.replaceAll("'", "\\'")}'`, limit: 10 });
    expect(found.data.map((x) => x.id)).toEqual([c.id]);
    expect((await stripe.customers.search({ query: "metadata['billflow_client_id']:'nobody'" })).data).toEqual([]);
    expect(await stripe.customers.retrieve(c.id)).toMatchObject({ id: c.id, email: 'ap@harbor.example' });
  });

  it('runs an invoice from draft to paid: items, finalize, a partial payment on the hosted page, the rest paid there', async () => {
    const inv = await openInvoice(150_000);
    expect(inv).toMatchObject({ status: 'open', currency: 'eur', total: 150_000, amount_due: 150_000, amount_remaining: 150_000, metadata: { billflow_number: 'INV-1' } });
    expect(inv.hosted_invoice_url).toMatch(new RegExp(`^${stack.stripeUrl}/i/`));
    const page = await fetch(inv.hosted_invoice_url!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('€1,500.00');
    expect(await stripe.invoices.sendInvoice(inv.id)).toMatchObject({ id: inv.id, status: 'open' });

    const part = await payOnPage(inv.hosted_invoice_url!, '400.00');
    expect(part.status, part.text).toBe(200);
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ status: 'open', amount_paid: 40_000, amount_remaining: 110_000 });
    const rest = await payOnPage(inv.hosted_invoice_url!, '1100.00');
    expect(rest.status).toBe(200);
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ status: 'paid', amount_paid: 150_000, amount_remaining: 0 });
    expect(await (await fetch(inv.hosted_invoice_url!)).text()).toContain('id="paid-in-full"');

    const payments = await stripe.invoicePayments.list({ invoice: inv.id, status: 'paid', limit: 100 });
    expect(payments.data.map((p) => [p.id, p.amount_paid, p.payment.type]).sort()).toEqual(
      [
        [part.paymentId, 40_000, 'payment_intent'],
        [rest.paymentId, 110_000, 'payment_intent'],
      ].sort(),
    );
    expect((await stripe.invoices.list({ status: 'paid', limit: 100 })).data.map((i) => i.id)).toContain(inv.id);
    // What Stripe kept of each card payment: the charge's balance transaction, read in one call.
    const inpay = await stripe.invoicePayments.retrieve(part.paymentId!);
    const intent = inpay.payment.payment_intent as string;
    expect(intent).toMatch(/^pi_/);
    const plain = await stripe.paymentIntents.retrieve(intent);
    expect(plain).toMatchObject({ status: 'succeeded', amount: 40_000, amount_received: 40_000, currency: 'eur', latest_charge: expect.stringMatching(/^ch_/) });
    const expanded = await stripe.paymentIntents.retrieve(intent, { expand: ['latest_charge.balance_transaction'] });
    const charge = expanded.latest_charge as Stripe.Charge;
    expect(charge).toMatchObject({ id: plain.latest_charge, amount: 40_000, paid: true, payment_intent: intent, billing_details: { name: 'Pat Payer', email: 'pat@example.com' } });
    // 2.9% + 30 of 400.00 EUR: 11.60 + 0.30.
    expect(charge.balance_transaction).toMatchObject({
      type: 'charge',
      source: charge.id,
      amount: 40_000,
      fee: 1_190,
      net: 38_810,
      currency: 'eur',
      fee_details: [{ type: 'stripe_fee', amount: 1_190 }],
    });
    expect((await stripe.paymentIntents.retrieve(intent, { expand: ['latest_charge'] })).latest_charge).toMatchObject({ balance_transaction: expect.stringMatching(/^txn_/) });
    await expect(stripe.paymentIntents.retrieve(intent, { expand: ['customer'] })).rejects.toMatchObject({ statusCode: 400, param: 'expand' });
    await expect(stripe.paymentIntents.retrieve('pi_nothere')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });

    // Paid: it can be neither voided nor deleted.
    await expect(stripe.invoices.voidInvoice(inv.id)).rejects.toMatchObject({ statusCode: 400, type: 'StripeInvalidRequestError' });
    await expect(stripe.invoices.del(inv.id)).rejects.toMatchObject({ statusCode: 400 });
  });

  it('refuses a declined card and an amount over what is due on the hosted page, and never pays one form twice', async () => {
    const inv = await openInvoice(10_000, 'usd');
    const page = await (await fetch(inv.hosted_invoice_url!)).text();
    const formToken = /name="formToken" value="([^"]+)"/.exec(page)![1]!;
    const post = (fields: Record<string, string>) =>
      fetch(inv.hosted_invoice_url!, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ formToken, amount: '100.00', payerName: 'Pat', payerEmail: 'pat@example.com', cardNumber: '4242424242424242', expiry: '12/30', cvc: '123', ...fields }),
      });
    expect((await post({ cardNumber: '4000 0000 0000 0002' })).status).toBe(402);
    const over = await post({ amount: '100.01' });
    expect(over.status).toBe(422);
    expect(await over.text()).toContain('at most $100.00');
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ amount_paid: 0, status: 'open' });
    const first = await post({});
    const again = await post({});
    const id = (r: string) => /id="payment-id">([^<]+)</.exec(r)?.[1];
    const [a, b] = [id(await first.text()), id(await again.text())];
    expect(a).toMatch(/^inpay_/);
    expect(b).toBe(a);
    expect((await stripe.invoicePayments.list({ invoice: inv.id })).data).toHaveLength(1);
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ amount_paid: 10_000, status: 'paid' });
  });

  it('voids an open invoice (its page says so) and deletes a draft', async () => {
    const inv = await openInvoice(20_000);
    expect(await stripe.invoices.voidInvoice(inv.id)).toMatchObject({ status: 'void' });
    expect((await stripe.invoices.list({ status: 'open', limit: 100 })).data.map((i) => i.id)).not.toContain(inv.id);
    expect(await (await fetch(inv.hosted_invoice_url!)).text()).toContain('id="invoice-void"');
    const customer = await stripe.customers.create({ name: 'Draft Co' });
    const draft = await stripe.invoices.create({ customer: customer.id, currency: 'usd', collection_method: 'send_invoice', days_until_due: 0 });
    expect(await stripe.invoices.del(draft.id)).toEqual(expect.objectContaining({ id: draft.id, deleted: true }));
    await expect(stripe.invoices.retrieve(draft.id)).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('pays out of band, credits before and after payment, and voids credit notes', async () => {
    const inv = await openInvoice(90_000);
    const note = await stripe.creditNotes.create({ invoice: inv.id, amount: 30_000, memo: 'prepayment', email_type: 'none' });
    expect(note).toMatchObject({ type: 'pre_payment', pre_payment_amount: 30_000, post_payment_amount: 0, status: 'issued' });
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ amount_remaining: 60_000, pre_payment_credit_notes_amount: 30_000 });
    expect(await stripe.creditNotes.voidCreditNote(note.id)).toMatchObject({ status: 'void' });
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ amount_remaining: 90_000, pre_payment_credit_notes_amount: 0 });
    await expect(stripe.creditNotes.voidCreditNote(note.id)).rejects.toMatchObject({ statusCode: 400 });

    expect(await stripe.invoices.pay(inv.id, { paid_out_of_band: true })).toMatchObject({ status: 'paid', amount_paid: 90_000, amount_paid_off_stripe: 90_000 });
    // Paid: crediting more than is due needs to say where the paid part goes.
    await expect(stripe.creditNotes.create({ invoice: inv.id, amount: 90_000 })).rejects.toMatchObject({ statusCode: 400, param: 'amount' });
    const back = await stripe.creditNotes.create({ invoice: inv.id, amount: 90_000, out_of_band_amount: 90_000, email_type: 'none' });
    expect(back).toMatchObject({ type: 'post_payment', post_payment_amount: 90_000 });
    expect(await stripe.invoices.retrieve(inv.id)).toMatchObject({ status: 'paid', post_payment_credit_notes_amount: 90_000 });
    // Out-of-band money is no invoice payment: only what was collected through Stripe is listed.
    expect((await stripe.invoicePayments.list({ invoice: inv.id })).data).toEqual([]);

    // A credit note for everything still due marks the invoice paid.
    const other = await openInvoice(10_000);
    await stripe.creditNotes.create({ invoice: other.id, amount: 10_000 });
    expect(await stripe.invoices.retrieve(other.id)).toMatchObject({ status: 'paid', amount_remaining: 0 });
  });

  it("answers with Stripe's errors", async () => {
    await expect(stripe.invoices.retrieve('in_nope')).rejects.toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'id', message: "No such invoice: 'in_nope'" });
    await expect(stripe.customers.create({ name: 'x', nickname: 'y' } as never)).rejects.toMatchObject({ statusCode: 400, param: 'nickname', message: 'Received unknown parameter: nickname' });
    await expect(stripe.invoices.create({} as never)).rejects.toMatchObject({ statusCode: 400, param: 'customer' });
    await expect(client('sk_test_not_a_key').customers.list()).rejects.toMatchObject({ statusCode: 401, type: 'StripeAuthenticationError' });
    const unknown = await http<{ error: { type: string } }>(stack.stripeUrl, 'GET', '/v1/charges', { key: account.apiKey });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.type).toBe('invalid_request_error');
  });

  it('honours idempotency keys: the same request answers the same object, another request with the key is refused', async () => {
    const key = `idem-${Math.random()}`;
    const a = await stripe.customers.create({ name: 'Once Ltd' }, { idempotencyKey: key });
    const b = await stripe.customers.create({ name: 'Once Ltd' }, { idempotencyKey: key });
    expect(b.id).toBe(a.id);
    expect(b.lastResponse.headers['idempotent-replayed']).toBe('true');
    await expect(stripe.customers.create({ name: 'Twice Ltd' }, { idempotencyKey: key })).rejects.toMatchObject({ statusCode: 400, type: 'StripeIdempotencyError' });
  });

  it('applies injected faults: 5xx in Stripe shape, and a committed change whose answer is lost is not made twice on retry', async () => {
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: account.apiKey, body });
    await fault({ mode: 'error', status: 503, count: 1 });
    await expect(stripe.customers.list()).rejects.toMatchObject({ statusCode: 503, type: 'StripeAPIError' });
    await fault({ mode: 'chaos', dropResponseRate: 1, count: 1, match: 'POST /v1/customers' });
    const retrying = client(account.apiKey, { maxNetworkRetries: 2 });
    const id = `drop-${Math.random()}`;
    const c = await retrying.customers.create({ name: 'Dropped once', metadata: { billflow_client_id: id } });
    expect((await stripe.customers.search({ query: `metadata['billflow_client_id']:'${id}'` })).data.map((x) => x.id)).toEqual([c.id]);
    const injected = await http<{ errors: number; droppedResponses: number }>(stack.sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: account.apiKey });
    expect(injected.body).toMatchObject({ errors: 1, droppedResponses: 1 });
  });

  it('posts signed events to webhook endpoints that take their type', async () => {
    const endpoint = await stripe.webhookEndpoints.create({ url: receiverUrl, enabled_events: ['invoice_payment.paid', 'invoice.paid'], metadata: { billflow_company: 'co-1' } });
    expect(endpoint.secret).toMatch(/^whsec_/);
    const listed = await stripe.webhookEndpoints.list({ limit: 100 });
    expect(listed.data.find((e) => e.id === endpoint.id)).toMatchObject({ url: receiverUrl, enabled_events: ['invoice_payment.paid', 'invoice.paid'] });
    expect(listed.data.find((e) => e.id === endpoint.id)?.secret).toBeUndefined();

    const inv = await openInvoice(5_000, 'usd');
    const paid = await payOnPage(inv.hosted_invoice_url!, '50.00');
    const events = await eventually(async () => (received.length >= 2 ? received : undefined), 'two events at the endpoint');
    const verified = events.map((e) => Stripe.webhooks.constructEvent(e.raw, e.signature, endpoint.secret!));
    expect(verified.map((e) => e.type).sort()).toEqual(['invoice.paid', 'invoice_payment.paid']);
    const payment = verified.find((e) => e.type === 'invoice_payment.paid')!.data.object as Stripe.InvoicePayment;
    expect(payment).toMatchObject({ id: paid.paymentId, invoice: inv.id, amount_paid: 5_000 });
    for (const e of events) expect(contract.checkEvent(JSON.parse(e.raw) as never), e.raw).toEqual([]);
    // Not enabled for the endpoint: invoice.finalized was never sent to it.
    expect(verified.map((e) => e.type)).not.toContain('invoice.finalized');

    expect(await stripe.webhookEndpoints.del(endpoint.id)).toMatchObject({ id: endpoint.id, deleted: true });
    expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).not.toContain(endpoint.id);
  });

  it("gave only answers Stripe's OpenAPI description allows, for every operation the adapter uses", () => {
    const seen = new Set(answers.map((a) => `${a.method} ${a.path}`));
    expect(USED.filter((op) => !seen.has(op))).toEqual([]);
    for (const op of USED) expect(contract.has(op.split(' ')[0]!, op.split(' ')[1]!), op).toBe(true);
    const wrong = answers.flatMap((a) =>
      (a.path === null ? (a.status === 200 ? ['answered 200 outside any operation'] : contract.checkError(a.body)) : contract.check(a.method, a.path, a.status, a.body)).map(
        (p) => `${a.method} ${a.path} ${a.status}: ${p}`,
      ),
    );
    expect(wrong).toEqual([]);
    // Errors too: each status seen was checked against Stripe's error schema.
    expect(new Set(answers.filter((a) => a.status !== 200).map((a) => a.status))).toEqual(new Set([400, 401, 404, 503]));
  });
});
