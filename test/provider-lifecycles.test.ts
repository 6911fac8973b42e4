/**
 * The end-to-end lifecycles, the same for each provider a company can collect through: Bill & Pay
 * (the sandbox's own API) and Stripe (the sandbox's Stripe-compatible mode, every answer of which
 * is validated against Stripe's OpenAPI description). Final; paid on the provider's own page in a
 * real browser, in full or in part; Reissue -> Final with a payment turned prepayment; Final ->
 * Draft -> Final; Quick Pay; a prepayment applied to another invoice. Each is checked at the
 * provider (its own records, read with its own API) and in billflow (figures, receipts feed).
 * Where the providers differ by design (README, "Payment providers"), the expectation says so.
 */
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRIPE_API_VERSION, STRIPE_WEBHOOK_EVENTS } from '../activities/provider/stripe.js';
import type { StripeAnswer } from '../sandbox/stripe/app.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack } from './harness.js';
import { stripeContract } from './stripe-openapi.js';
import { workflowIdle } from './settled.js';
import { launchBrowser, payOnPage } from './support.js';
import { invoiceWorkflowId } from '../workflows/contract.js';

let stack: Stack;
let browser: Browser;
const stripeAnswers: StripeAnswer[] = [];

beforeAll(async () => {
  stack = await startStack({ onStripeAnswer: (a) => stripeAnswers.push(a) });
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

type Invoice = {
  status: string;
  total: number;
  outstanding: number;
  paid: number;
  settlement: string;
  /** billflow's own Pay Now link (`/pay/{token}`), which leads to the provider's page of the moment. */
  payNowUrl: string | null;
  /** The provider's own payment page. */
  providerPaymentUrl: string | null;
  providerInvoiceId: string | null;
  payments: { paymentId: string; amount: number; source: string }[];
  plan: { payNowUrl: string; steps: { kind: string }[] };
};

/** What a provider holds for one invoice record, in common terms. */
interface Remote {
  /** The record still counts (Bill & Pay: not deleted; Stripe: open or paid, neither void nor credited in full). */
  live: boolean;
  outstanding: number;
  paid: boolean;
}

interface Company {
  companyId: string;
  apiKey: string;
  accountKey: string;
}

interface ProviderUnderTest {
  kind: 'billpay' | 'stripe';
  currencySymbol: string;
  register(): Promise<Company>;
  remote(c: Company, providerInvoiceId: string): Promise<Remote>;
  /** What the page of a record taken out of use says (and answers). */
  withdrawnPage: { status: number; text: RegExp };
  /** The receipts beside a card payment's own for what the provider kept of it. */
  keptOf(amount: number): [string, number][];
}

/** Stripe's fee on the sandbox's card charges (2.9% + 30), worked out by hand for the amounts paid here. */
const STRIPE_FEES: Record<number, number> = { 12_000: 378, 20_000: 610, 40_000: 1_190, 60_000: 1_770, 70_000: 2_060, 125_000: 3_655 };

const stripeOf = (c: Company) => {
  const url = new URL(stack.stripeUrl);
  return new Stripe(c.accountKey, { apiVersion: STRIPE_API_VERSION, host: url.hostname, port: url.port, protocol: 'http', maxNetworkRetries: 0 });
};

const PROVIDERS: ProviderUnderTest[] = [
  {
    kind: 'billpay',
    currencySymbol: '$',
    async register() {
      const t = await createTenant(stack);
      return { companyId: t.companyId, apiKey: t.apiKey, accountKey: t.account.apiKey };
    },
    async remote(c, id) {
      const r = await http<{ outstanding: number; status: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${id}`, { key: c.accountKey });
      return r.status === 404 ? { live: false, outstanding: 0, paid: false } : { live: true, outstanding: r.body.outstanding, paid: r.body.status === 'paid' };
    },
    withdrawnPage: { status: 410, text: /no longer payable/ },
    // The payer's convenience fee would be a `fee` receipt; these accounts charge none.
    keptOf: () => [],
  },
  {
    kind: 'stripe',
    currencySymbol: '€',
    async register() {
      const account = await http<{ apiKey: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Stripe Co' } });
      const companyId = `st-${randomUUID().slice(0, 8)}`;
      // Only the secret key: billflow makes its own webhook endpoint in the account.
      const created = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/companies', {
        key: ADMIN_KEY,
        body: { id: companyId, name: `Company ${companyId}`, currency: 'EUR', provider: { enabled: true, kind: 'stripe', url: stack.stripeUrl, apiKey: account.body.apiKey } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return { companyId, apiKey: created.body.apiKey, accountKey: account.body.apiKey };
    },
    async remote(c, id) {
      const inv = await stripeOf(c).invoices.retrieve(id);
      const credited = inv.pre_payment_credit_notes_amount + inv.post_payment_credit_notes_amount >= inv.total && inv.total > 0;
      return { live: (inv.status === 'open' || inv.status === 'paid') && !credited, outstanding: inv.amount_remaining, paid: inv.status === 'paid' };
    },
    withdrawnPage: { status: 200, text: /This invoice is void/ },
    keptOf: (amount) => [['processing-fee', STRIPE_FEES[amount]!]],
  },
];

describe.each(PROVIDERS)('lifecycles with $kind', (provider) => {
  let company: Company;
  const api = <T = Invoice>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: company.apiKey, body });

  beforeAll(async () => {
    company = await provider.register();
  });

  async function newClient(): Promise<string> {
    const id = `cl-${randomUUID().slice(0, 6)}`;
    expect((await api('POST', '/v1/clients', { id, name: 'Harbor Builders', email: 'ap@harbor.example' })).status).toBe(201);
    return id;
  }

  async function finalInvoice(clientId: string, amount: number): Promise<Invoice & { number: string }> {
    const number = `INV-${randomUUID().slice(0, 8)}`;
    const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2099-12-02', lines: [{ description: 'Engineering', amount }] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body.payNowUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/(pay|i)\//);
    return { ...final.body, number };
  }

  async function status(number: string, to: string): Promise<Invoice> {
    const r = await api('POST', `/v1/invoices/${number}/status`, { status: to });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }

  /** A payer pays on the provider's page in Chromium with the test card; returns the payment id the page shows. */
  async function payInBrowser(url: string, amount?: string): Promise<string> {
    const page = await browser.newPage();
    try {
      await page.goto(url);
      return await payOnPage(page, 'pat@harbor.example', amount);
    } finally {
      await page.close();
    }
  }

  const owing = (number: string, outstanding: number) =>
    eventually(async () => {
      const r = await api('GET', `/v1/invoices/${number}`);
      return r.body.outstanding === outstanding ? r.body : undefined;
    }, `invoice ${number} to owe ${outstanding}`);

  async function receiptsOf(paymentId: string) {
    const feed = await api<{ data: { kind: string; providerPaymentId: string; amount: number }[] }>('GET', '/v1/receipts?limit=200');
    return feed.body.data.filter((r) => r.providerPaymentId === paymentId).map((r) => [r.kind, r.amount]);
  }

  it('Final, paid in full on the provider page in a real browser: settled once by the signed webhook, one receipt', async () => {
    const inv = await finalInvoice(await newClient(), 125_000);
    const page = await fetch(inv.payNowUrl!);
    expect(await page.text()).toContain(`${provider.currencySymbol}1,250.00`);
    const paymentId = await payInBrowser(inv.payNowUrl!);
    const settled = await owing(inv.number, 0);
    expect(settled).toMatchObject({ settlement: 'Settled', paid: 125_000 });
    expect(settled.payments).toEqual([expect.objectContaining({ paymentId, amount: 125_000, source: 'webhook' })]);
    expect(await receiptsOf(paymentId)).toEqual([['payment', 125_000], ...provider.keptOf(125_000)]);
    expect(await provider.remote(company, inv.providerInvoiceId!)).toEqual({ live: true, outstanding: 0, paid: true });
  });

  it('takes a partial payment, then the rest', async () => {
    const inv = await finalInvoice(await newClient(), 100_000);
    const first = await payInBrowser(inv.payNowUrl!, '400.00');
    expect(await owing(inv.number, 60_000)).toMatchObject({ settlement: 'Partially settled', paid: 40_000 });
    expect(await provider.remote(company, inv.providerInvoiceId!)).toEqual({ live: true, outstanding: 60_000, paid: false });
    const second = await payInBrowser(inv.payNowUrl!);
    expect(await owing(inv.number, 0)).toMatchObject({ settlement: 'Settled', paid: 100_000 });
    expect([...(await receiptsOf(first)), ...(await receiptsOf(second))]).toEqual([['payment', 40_000], ...provider.keptOf(40_000), ['payment', 60_000], ...provider.keptOf(60_000)]);
  });

  it('Reissue -> Final: the payment becomes a prepayment, applied again to the corrected invoice', async () => {
    const clientId = await newClient();
    const inv = await finalInvoice(clientId, 120_000);
    const paymentId = await payInBrowser(inv.payNowUrl!, '200.00');
    await owing(inv.number, 100_000);

    const reissued = await status(inv.number, 'Reissue');
    expect(reissued).toMatchObject({ status: 'Reissue', payments: [], outstanding: 120_000 });
    // Bill & Pay removes the payment's record; Stripe keeps money it collected.
    expect(reissued.plan.steps.map((s) => s.kind)).toEqual(['import-payments', 'convert-to-prepayment', provider.kind === 'billpay' ? 'remove-provider-payment' : 'keep-provider-payment']);
    const pre = await api<{ data: { id: string; amount: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
    expect(pre.body.data).toEqual([expect.objectContaining({ amount: 20_000 })]);

    expect((await api('POST', `/v1/invoices/${inv.number}/revision`, { lines: [{ description: 'Engineering (corrected)', amount: 110_000 }] })).status).toBe(200);
    expect((await api('POST', `/v1/invoices/${inv.number}/prepayments`, { prepaymentId: pre.body.data[0]!.id, amount: 20_000 })).status).toBe(200);
    const final = await status(inv.number, 'Final');
    expect(final).toMatchObject({ status: 'Final', total: 110_000, outstanding: 90_000 });
    const remote = await provider.remote(company, final.providerInvoiceId!);
    expect(remote).toEqual({ live: true, outstanding: 90_000, paid: false });
    if (provider.kind === 'billpay') {
      // The same record, edited: the same page shows the new balance.
      expect(final).toMatchObject({ providerPaymentUrl: inv.providerPaymentUrl, providerInvoiceId: inv.providerInvoiceId });
    } else {
      // A finalized Stripe invoice cannot be edited: the old one (money on it) is credited, a new one made.
      expect(final.providerInvoiceId).not.toBe(inv.providerInvoiceId);
      expect(final.providerPaymentUrl).not.toBe(inv.providerPaymentUrl);
      expect(final.plan.payNowUrl).toBe('new');
      expect(await provider.remote(company, inv.providerInvoiceId!)).toMatchObject({ live: false });
    }
    // billflow's link stays the client's link whatever the provider did underneath.
    expect(final.payNowUrl).toBe(inv.payNowUrl);
    expect(await (await fetch(final.payNowUrl!)).text()).toContain(`${provider.currencySymbol}900.00`);
    // The prepayment's money is counted once: paying the rest settles the invoice.
    await payInBrowser(final.payNowUrl!);
    expect(await owing(inv.number, 0)).toMatchObject({ settlement: 'Settled' });
    // What the provider kept stays kept: only the payment becomes the client's prepayment.
    expect(await receiptsOf(paymentId)).toEqual([['payment', 20_000], ...provider.keptOf(20_000), ['prepayment', 20_000]]);
  });

  it('Reissue -> Final refused after the old record was taken out of use: the ERP is told what could not be undone, and the next Final makes a new record behind the same link', async () => {
    const inv = await finalInvoice(await newClient(), 80_000);
    await status(inv.number, 'Reissue');
    expect((await api('POST', `/v1/invoices/${inv.number}/revision`, { lines: [{ description: 'Engineering (corrected)', amount: 75_000 }] })).status).toBe(200);
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: company.accountKey, body });
    // The provider refuses for good to make the new record (Bill & Pay edits its record in place, so it makes none).
    await fault({ mode: 'error', status: 422, count: 1, match: provider.kind === 'stripe' ? 'POST /v1/invoices' : 'PATCH /v1/invoices/*' });
    try {
      const refused = await api<{ type: string; detail: string }>('POST', `/v1/invoices/${inv.number}/status`, { status: 'Final' });
      expect(refused.status, JSON.stringify(refused.body)).toBe(502);
      expect(refused.body.type).toMatch(/provider-rejected$/);
    } finally {
      await fault({ mode: 'none' });
    }
    const after = (await api<Invoice & { lastFailure: { undone: string[] } | null }>('GET', `/v1/invoices/${inv.number}`)).body;
    expect(after.status).toBe('Reissue');
    if (provider.kind === 'stripe') {
      // Stripe's old invoice was voided before the refusal, and a voided invoice stays void.
      expect(after.lastFailure!.undone).toEqual([expect.stringMatching(new RegExp(`could not restore provider record ${inv.providerInvoiceId}`))]);
      expect(after).toMatchObject({ providerInvoiceId: null, providerPaymentUrl: null });
      expect(await provider.remote(company, inv.providerInvoiceId!)).toMatchObject({ live: false });
      const link = await fetch(inv.payNowUrl!, { redirect: 'manual' });
      expect(link.status).toBe(503);
    } else {
      expect(after).toMatchObject({ providerInvoiceId: inv.providerInvoiceId, lastFailure: { undone: [] } });
    }
    const final = await status(inv.number, 'Final');
    expect(final).toMatchObject({ status: 'Final', outstanding: 75_000, payNowUrl: inv.payNowUrl });
    expect(await provider.remote(company, final.providerInvoiceId!)).toEqual({ live: true, outstanding: 75_000, paid: false });
  });

  it('Final -> Draft -> Final: the record is taken out of use, its page says so, and the next Final has a new page', async () => {
    const inv = await finalInvoice(await newClient(), 64_000);
    const draft = await status(inv.number, 'Draft');
    expect(draft).toMatchObject({ status: 'Draft', payNowUrl: null, providerInvoiceId: null });
    expect(await provider.remote(company, inv.providerInvoiceId!).catch(() => ({ live: false }))).toMatchObject({ live: false });
    const gone = await fetch(inv.providerPaymentUrl!);
    expect(gone.status).toBe(provider.withdrawnPage.status);
    expect(await gone.text()).toMatch(provider.withdrawnPage.text);
    // billflow's link says the invoice was withdrawn.
    expect((await fetch(inv.payNowUrl!)).status).toBe(410);

    const again = await status(inv.number, 'Final');
    expect(again.payNowUrl).not.toBe(inv.payNowUrl);
    expect(again.providerPaymentUrl).not.toBe(inv.providerPaymentUrl);
    expect(await provider.remote(company, again.providerInvoiceId!)).toEqual({ live: true, outstanding: 64_000, paid: false });
    expect((await fetch(again.payNowUrl!)).status).toBe(200);
  });

  it('Quick Pay settles the balance, and the provider page shows the invoice paid', async () => {
    const inv = await finalInvoice(await newClient(), 70_000);
    const paid = await api('POST', `/v1/invoices/${inv.number}/quick-pay`, {
      paymentType: 'Receipt',
      paymentMethod: 'Bank transfer',
      issuedOn: '2026-11-20',
      category: 'Customer payment',
      receivedByUser: 'sam',
      receivedByUnit: 'AR Team',
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    expect(paid.body).toMatchObject({ outstanding: 0, settlement: 'Settled' });
    const quick = paid.body.payments.find((p) => p.source === 'quickpay')!;
    expect(await receiptsOf(quick.paymentId)).toEqual([['payment', 70_000]]);
    expect(await provider.remote(company, inv.providerInvoiceId!)).toEqual({ live: true, outstanding: 0, paid: true });
    expect(await (await fetch(inv.providerPaymentUrl!)).text()).toMatch(/id="paid-in-full"/);
  });

  it("imports a payment whose webhook was lost before the invoice leaves Final, by listing the provider's payments", async () => {
    const inv = await finalInvoice(await newClient(), 30_000);
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: company.accountKey, body });
    await fault({ mode: 'none', webhooks: { loseRate: 1 } });
    let paymentId: string;
    try {
      paymentId = await payInBrowser(inv.payNowUrl!, '120.00');
      // The fault is decided when the sandbox first takes the delivery up: cleared only after that.
      await eventually(async () => {
        const d = await http<{ data: { fault: string | null }[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/webhook-deliveries?paymentId=${paymentId}`, { key: company.accountKey });
        return d.body.data.length > 0 && d.body.data.every((x) => x.fault === 'lost') ? true : undefined;
      }, 'the payment webhook lost');
    } finally {
      await fault({ mode: 'none' });
    }
    expect((await api('GET', `/v1/invoices/${inv.number}`)).body).toMatchObject({ outstanding: 30_000, payments: [] });
    const reissued = await status(inv.number, 'Reissue');
    expect(reissued.plan.steps.map((s) => s.kind).slice(0, 3)).toEqual(['import-payments', 'apply-payment', 'convert-to-prepayment']);
    expect(await receiptsOf(paymentId)).toEqual([['payment', 12_000], ...provider.keptOf(12_000), ['prepayment', 12_000]]);
  });

  it.runIf(provider.kind === 'stripe')('keeps a fee Stripe could not describe when its payment came in pending, and reads it at the next reconciliation', async () => {
    const inv = await finalInvoice(await newClient(), 40_000);
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: company.accountKey, body });
    await fault({ mode: 'error', status: 503, match: 'GET /v1/payment_intents/*' });
    let paymentId: string;
    try {
      paymentId = await payInBrowser(inv.payNowUrl!);
      // The payment is applied and in the feed whatever happens to its fee.
      await owing(inv.number, 0);
      expect(await receiptsOf(paymentId)).toEqual([['payment', 40_000]]);
      const [pending] = await stack.sql<{ tries: number; last_error: string }[]>`
        SELECT tries, last_error FROM processing_fees_pending WHERE company_id = ${company.companyId} AND provider_payment_id = ${paymentId}`;
      expect(pending).toMatchObject({ tries: 1, last_error: expect.stringMatching(/503/) });
    } finally {
      await fault({ mode: 'none' });
    }
    const run = await api<{ id: string }>('POST', '/v1/reconciliations');
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    expect(await receiptsOf(paymentId)).toEqual([['payment', 40_000], ...provider.keptOf(40_000)]);
    expect(await stack.sql`SELECT 1 FROM processing_fees_pending WHERE company_id = ${company.companyId}`).toHaveLength(0);
  });

  it('Quick Pay after a partial payment, then Reissue -> Final with both applied again, and Draft', async () => {
    const clientId = await newClient();
    const inv = await finalInvoice(clientId, 90_000);
    await payInBrowser(inv.payNowUrl!, '300.00');
    await owing(inv.number, 60_000);
    const quick = await api('POST', `/v1/invoices/${inv.number}/quick-pay`, {
      paymentType: 'Receipt',
      paymentMethod: 'Check',
      issuedOn: '2026-11-21',
      category: 'Customer payment',
      receivedByUser: 'sam',
      receivedByUnit: 'AR',
    });
    expect(quick.status, JSON.stringify(quick.body)).toBe(200);
    expect(await provider.remote(company, inv.providerInvoiceId!)).toEqual({ live: true, outstanding: 0, paid: true });
    await status(inv.number, 'Reissue');
    const pre = (await api<{ data: { id: string; amount: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`)).body.data;
    expect(pre.map((p) => p.amount).sort()).toEqual([30_000, 60_000]);
    for (const p of pre) expect((await api('POST', `/v1/invoices/${inv.number}/prepayments`, { prepaymentId: p.id, amount: p.amount === 60_000 ? 50_000 : p.amount })).status).toBe(200);
    const final = await status(inv.number, 'Final');
    expect(final).toMatchObject({ outstanding: 10_000 });
    expect(await provider.remote(company, final.providerInvoiceId!)).toEqual({ live: true, outstanding: 10_000, paid: false });
    const draft = await status(inv.number, 'Draft');
    expect(draft).toMatchObject({ status: 'Draft', providerInvoiceId: null });
    expect(await provider.remote(company, final.providerInvoiceId!).catch(() => ({ live: false }))).toMatchObject({ live: false });
  });

  it('applies a prepayment to another Final invoice, lowering what the provider asks for', async () => {
    const clientId = await newClient();
    const donor = await finalInvoice(clientId, 50_000);
    await payInBrowser(donor.payNowUrl!);
    await owing(donor.number, 0);
    await status(donor.number, 'Reissue');
    const [pre] = (await api<{ data: { id: string }[] }>('GET', `/v1/prepayments?clientId=${clientId}`)).body.data;

    const target = await finalInvoice(clientId, 80_000);
    const applied = await api('POST', `/v1/invoices/${target.number}/prepayments`, { prepaymentId: pre!.id, amount: 50_000 });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(applied.body).toMatchObject({ outstanding: 30_000 });
    expect(await provider.remote(company, target.providerInvoiceId!)).toEqual({ live: true, outstanding: 30_000, paid: false });
    expect(await (await fetch(target.payNowUrl!)).text()).toContain(`${provider.currencySymbol}300.00`);
  });

  it('waits out a lost answer during print to Final (the provider committed it), then has one record, and counts a duplicated webhook once', async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2099-12-02', lines: [{ description: 'Design', amount: 70_000 }] });
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: company.accountKey, body });
    const before = (await http<{ errors: number; droppedResponses: number }>(stack.sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: company.accountKey })).body;
    // The record's creation commits and its answer is lost; then three 503s.
    await fault({ mode: 'chaos', dropResponseRate: 1, count: 1, match: 'POST /v1/invoices' });
    const dropped = await http(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: company.apiKey, body: { status: 'Final' }, headers: { prefer: 'wait=1' } });
    expect([200, 202]).toContain(dropped.status);
    const final = await eventually(
      async () => {
        const r = await api('GET', `/v1/invoices/${number}`);
        return r.body.status === 'Final' ? r.body : undefined;
      },
      'the Final to complete after the lost answer',
      60_000,
    );
    const after = (await http<{ errors: number; droppedResponses: number }>(stack.sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: company.accountKey })).body;
    expect(after.droppedResponses - before.droppedResponses).toBe(1);
    // One live record for the number at the provider.
    if (provider.kind === 'billpay') {
      expect((await http<{ data: unknown[] }>(stack.sandboxUrl, 'GET', `/v1/invoices?number=${number}`, { key: company.accountKey })).body.data).toHaveLength(1);
    } else {
      const all = await stripeOf(company).invoices.list({ limit: 100 });
      expect(all.data.filter((i) => i.metadata?.billflow_number === number).map((i) => [i.id, i.status])).toEqual([[final.providerInvoiceId, 'open']]);
    }
    await fault({ mode: 'none', webhooks: { duplicateRate: 1 } });
    try {
      const paymentId = await payInBrowser(final.payNowUrl!);
      await owing(number, 0);
      await eventually(async () => {
        const d = await http<{ data: { fault: string | null; deliveredAt: string | null }[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/webhook-deliveries?paymentId=${paymentId}`, {
          key: company.accountKey,
        });
        return d.body.data.some((x) => x.fault === 'duplicated' && x.deliveredAt) ? true : undefined;
      }, 'the duplicated webhook delivered');
      await workflowIdle(stack.temporal, invoiceWorkflowId(company.companyId, number));
      expect((await api('GET', `/v1/invoices/${number}`)).body.payments).toHaveLength(1);
      expect(await receiptsOf(paymentId)).toEqual([['payment', 70_000], ...provider.keptOf(70_000)]);
    } finally {
      await fault({ mode: 'none' });
    }
  });

  it("carries the ERP's X-Request-Id into every provider call of a change", async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2099-12-02', lines: [{ description: 'Design', amount: 10_000 }] });
    const requestId = `erp-${randomUUID()}`;
    const final = await http<Invoice>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: company.apiKey, body: { status: 'Final' }, headers: { 'x-request-id': requestId } });
    expect(final.status).toBe(200);
    const calls = await http<{ data: { method: string; path: string }[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/requests?requestId=${requestId}`, { key: company.accountKey });
    const seen = calls.body.data.map((c) => `${c.method} ${c.path.split('?')[0]}`);
    const id = final.body.providerInvoiceId!;
    expect(seen).toEqual(
      expect.arrayContaining(
        provider.kind === 'billpay'
          ? ['POST /v1/customers', 'POST /v1/invoices', `PUT /v1/invoices/${id}/pdf`]
          : ['GET /v1/customers/search', 'POST /v1/customers', 'POST /v1/invoices', 'POST /v1/invoiceitems', `POST /v1/invoices/${id}/finalize`],
      ),
    );
  });

  // A step's provider calls retry with backoff (1 s doubling, at most a minute): under these faults a
  // Stripe Reissue -> Final (credit, replace, move the prepayments' credit notes) on the cluster
  // has taken over 90 s. A bound for liveness, not a timing assertion.
  const CHAOS_STEP_MS = 180_000;
  it('goes Final, Reissue with a prepayment, Final and Draft while the provider fails a third of its calls and loses some answers', async () => {
    const clientId = await newClient();
    const inv = await finalInvoice(clientId, 80_000);
    await payInBrowser(inv.payNowUrl!, '100.00');
    await owing(inv.number, 70_000);
    const fault = (body: unknown) => http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: company.accountKey, body });
    const injected = async () => (await http<{ errors: number }>(stack.sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: company.accountKey })).body.errors;
    const errorsBefore = await injected();
    const chaos = { mode: 'chaos', errorRate: 0.3, dropResponseRate: 0.15, status: 503 };
    const until = async (to: string) => {
      const r = await http<Invoice>(stack.apiUrl, 'POST', `/v1/invoices/${inv.number}/status`, {
        key: company.apiKey,
        body: { status: to },
        headers: { 'idempotency-key': `${inv.number}-${to}-${randomUUID()}` },
      });
      // Leaving Final needs the payments imported first: an outage then refuses the change (ask again), anything else completes.
      if (r.status === 503) return false;
      expect([200, 202], JSON.stringify(r.body)).toContain(r.status);
      await eventually(async () => ((await api('GET', `/v1/invoices/${inv.number}`)).body.status === to ? true : undefined), `${inv.number} to become ${to}`, CHAOS_STEP_MS);
      return true;
    };
    try {
      // The Reissue's first provider call fails for certain (a run of ten or so calls can miss a
      // 30% rate); chance decides the rest.
      await fault({ mode: 'error', status: 503, count: 1 });
      const accepted = await until('Reissue');
      await fault(chaos);
      if (!accepted) await eventually(async () => ((await until('Reissue')) ? true : undefined), 'the Reissue to be accepted', CHAOS_STEP_MS);
      const [pre] = (await api<{ data: { id: string }[] }>('GET', `/v1/prepayments?clientId=${clientId}`)).body.data;
      await eventually(
        async () => ((await api('POST', `/v1/invoices/${inv.number}/prepayments`, { prepaymentId: pre!.id, amount: 10_000 })).status === 200 ? true : undefined),
        'the prepayment applied',
        60_000,
      );
      // Leaving a Reissue imports its payments first too: an outage may refuse it (ask again).
      await eventually(async () => ((await until('Final')) ? true : undefined), 'the Final to be accepted', CHAOS_STEP_MS);
      const final = (await api('GET', `/v1/invoices/${inv.number}`)).body;
      expect(final).toMatchObject({ status: 'Final', outstanding: 70_000 });
      await fault({ mode: 'none' });
      expect(await provider.remote(company, final.providerInvoiceId!)).toEqual({ live: true, outstanding: 70_000, paid: false });
      await fault(chaos);
      await eventually(async () => ((await until('Draft')) ? true : undefined), 'the Draft to be accepted', CHAOS_STEP_MS);
    } finally {
      await fault({ mode: 'none' });
    }
    expect(await injected()).toBeGreaterThan(errorsBefore);
    // Nothing of the invoice is live at the provider any more, and nothing was made twice.
    if (provider.kind === 'billpay') {
      expect((await http<{ data: unknown[] }>(stack.sandboxUrl, 'GET', `/v1/invoices?number=${inv.number}`, { key: company.accountKey })).body.data).toEqual([]);
    } else {
      const mine = (await stripeOf(company).invoices.list({ limit: 100 })).data.filter((i) => i.metadata?.billflow_number === inv.number);
      const live = [];
      for (const i of mine) if ((await provider.remote(company, i.id)).live) live.push(i.id);
      expect(live).toEqual([]);
      // The original, the one Reissue -> Final made: no more (a retry never made a second).
      expect(mine.filter((i) => i.status !== 'draft')).toHaveLength(2);
    }
  }, 600_000);

  it("finds the provider's records agreeing with billflow's after all of the above", async () => {
    const run = await api<{ status: string; findings: { kind: string; number: string }[] }>('POST', '/v1/reconciliations');
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    expect(run.body.findings).toEqual([]);
  });
});

describe('a Stripe company registered with its secret key alone', () => {
  it("gets billflow's webhook endpoint in its account, once, even when the registration is retried", async () => {
    const account = await http<{ id: string; apiKey: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Retry Co' } });
    const companyId = `st-${randomUUID().slice(0, 8)}`;
    const body = { id: companyId, name: 'Retry Co', currency: 'EUR', provider: { enabled: true, kind: 'stripe', url: stack.stripeUrl, apiKey: account.body.apiKey } };
    // The first answer of the endpoint's creation is lost after Stripe made it; the package retries with the same key.
    await http(stack.sandboxUrl, 'POST', '/v1/sandbox/faults', { key: account.body.apiKey, body: { mode: 'chaos', dropResponseRate: 1, count: 1, match: 'POST /v1/webhook_endpoints' } });
    const idempotencyKey = `register-${companyId}`;
    const first = await http<{ webhookUrl: string }>(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body, headers: { 'Idempotency-Key': idempotencyKey } });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const again = await http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body, headers: { 'Idempotency-Key': idempotencyKey } });
    expect(again.status).toBe(201);
    expect((await http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body })).status).toBe(409);
    const injected = await http<{ droppedResponses: number }>(stack.sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: account.body.apiKey });
    expect(injected.body.droppedResponses).toBe(1);

    const stripe = stripeOf({ companyId, apiKey: '', accountKey: account.body.apiKey });
    const endpoints = (await stripe.webhookEndpoints.list({ limit: 100 })).data;
    expect(endpoints).toEqual([expect.objectContaining({ url: first.body.webhookUrl, enabled_events: [...STRIPE_WEBHOOK_EVENTS], status: 'enabled', metadata: { billflow_company: companyId } })]);
    // The signing secret is kept encrypted, never in the clear.
    const [row] = await stack.sql<{ secret: string }[]>`SELECT provider_webhook_secret AS secret FROM companies WHERE id = ${companyId}`;
    expect(row!.secret).not.toMatch(/^whsec_/);

    // A new key (another account) gets its own endpoint there, whose secret takes over.
    const moved = await http<{ apiKey: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Retry Co, new account' } });
    const patched = await http(stack.apiUrl, 'PATCH', `/v1/companies/${companyId}`, { key: ADMIN_KEY, body: { provider: { apiKey: moved.body.apiKey } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const there = (await stripeOf({ companyId, apiKey: '', accountKey: moved.body.apiKey }).webhookEndpoints.list()).data;
    expect(there).toEqual([expect.objectContaining({ url: first.body.webhookUrl, metadata: { billflow_company: companyId } })]);
  });

  it('is refused, naming the field, when Stripe refuses its key; nothing is registered', async () => {
    const companyId = `st-${randomUUID().slice(0, 8)}`;
    const refused = await http<{ field: string }>(stack.apiUrl, 'POST', '/v1/companies', {
      key: ADMIN_KEY,
      body: { id: companyId, name: 'Bad Key Co', provider: { enabled: true, kind: 'stripe', url: stack.stripeUrl, apiKey: 'sk_test_unknown' } },
    });
    expect(refused.status).toBe(422);
    expect(refused.body.field).toBe('provider.apiKey');
    expect(await stack.sql`SELECT 1 FROM companies WHERE id = ${companyId}`).toHaveLength(0);
  });
});

describe("the Stripe mode's answers in these lifecycles", () => {
  it("were all ones Stripe's OpenAPI description allows", () => {
    const contract = stripeContract();
    expect(stripeAnswers.length).toBeGreaterThan(0);
    const wrong = stripeAnswers.flatMap((a) =>
      (a.path === null ? (a.status === 200 ? ['answered 200 outside any operation'] : contract.checkError(a.body)) : contract.check(a.method, a.path, a.status, a.body)).map(
        (p) => `${a.method} ${a.path} ${a.status}: ${p}`,
      ),
    );
    expect(wrong).toEqual([]);
  });
});
