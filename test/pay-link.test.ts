/**
 * billflow's stable Pay Now link (`/pay/{token}`), followed by a payer in a real Chromium: the same
 * link from a Final through Reissue -> Final, a provider record re-created by reconciliation and a
 * move to another provider account, always landing on the provider's current page; a clear page
 * when the invoice is paid in full; gone after a change to Draft, with a new link on the next Final.
 * And the invoice's currency travels to the provider: its page and the PDF show it.
 */
import { randomUUID } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, createTenant, eventually, http, invoicePdf, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox } from './mail.js';
import { launchBrowser, payOnPage, pdfText } from './support.js';

type Invoice = Record<string, unknown> & {
  number: string;
  status: string;
  revision: number;
  outstanding: number;
  settlement: string;
  payNowUrl: string | null;
  providerPaymentUrl: string | null;
  providerInvoiceId: string | null;
};
type Report = { id: string; findings: { kind: string; number: string }[]; repairs: { invoiceNumber: string; actions: string[] }[] };

let stack: Stack;
let tenant: Tenant;
let browser: Browser;
const box = mailbox(inject('mailDevUrl'));

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const api = <T = Invoice>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body });
const invoice = async (number: string) => (await api('GET', `/v1/invoices/${number}`)).body;

/** A client whose invoice emails carry the Pay Now link, and a draft for it. */
async function draft(amount: number): Promise<{ number: string; email: string }> {
  const email = freshAddress();
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  expect((await api('POST', '/v1/clients', { id: clientId, name: 'Lakeside Surveyors', email })).status).toBe(201);
  const template = await api('PUT', `/v1/clients/${clientId}/invoice-email-template`, { subject: 'Invoice {{invoice.number}}', body: 'Pay online: {{payNowUrl}}\n' });
  expect(template.status, JSON.stringify(template.body)).toBe(200);
  const number = `PL-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Survey', amount }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return { number, email };
}

async function status(number: string, to: string): Promise<Invoice> {
  const res = await api('POST', `/v1/invoices/${number}/status`, { status: to });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** The text of the PDF the invoice holds now. */
async function pdfOf(number: string): Promise<string> {
  const doc = await invoicePdf(stack, tenant.apiKey, number);
  return pdfText(doc.bytes);
}

/** Opens the link as a payer would; the page is left open for the caller. */
async function follow(url: string): Promise<{ page: Page; status: number; landed: string; text: string }> {
  const page = await browser.newPage();
  const res = await page.goto(url);
  return { page, status: res!.status(), landed: page.url(), text: await page.locator('body').innerText() };
}

/** Pays on the provider's page the link leads to. */
async function payThrough(url: string, amount?: string): Promise<string> {
  const { page } = await follow(url);
  try {
    return await payOnPage(page, 'pat@lakeside.example', amount);
  } finally {
    await page.close();
  }
}

/** Where the link leads, and the outstanding amount the provider's page shows there. */
async function landing(url: string): Promise<{ landed: string; outstanding: string }> {
  const { page, status: code, landed } = await follow(url);
  try {
    expect(code).toBe(200);
    return { landed, outstanding: (await page.locator('#outstanding').textContent())!.trim() };
  } finally {
    await page.close();
  }
}

async function reconcile(number: string): Promise<string> {
  const run = await api<Report>('POST', '/v1/reconciliations');
  expect(run.status, JSON.stringify(run.body)).toBe(201);
  expect(run.body.findings).toContainEqual(expect.objectContaining({ kind: 'missing-at-provider', number }));
  const repaired = await eventually(async () => {
    const r = await api<Report>('GET', `/v1/reconciliations/${run.body.id}`);
    return r.body.repairs.find((x) => x.invoiceNumber === number);
  }, `the repair of ${number}`);
  return repaired.actions.join(' | ');
}

describe("billflow's Pay Now link", () => {
  it('stays the same through Reissue -> Final and a re-created provider record, always leading to the current page, and says when it is paid in full', async () => {
    const { number, email } = await draft(150_000);
    const final = await status(number, 'Final');
    const link = final.payNowUrl!;
    expect(link).toMatch(new RegExp(`^${stack.apiUrl}/pay/[A-Za-z0-9_-]{22}$`));
    expect(final.providerPaymentUrl).toMatch(new RegExp(`^${stack.sandboxUrl}/pay/`));
    // The PDF, the email and the listing carry billflow's link, not the provider's.
    expect(await pdfOf(number)).toContain(link);
    expect(await pdfOf(number)).not.toContain(final.providerPaymentUrl!);
    const first = await box.waitForMessage((m) => m.to.some((t) => t.address === email));
    expect(first.text).toContain(`Pay online: ${link}`);
    const listed = await eventually(async () => {
      const r = await api<{ data: Invoice[] }>('GET', `/v1/invoices?clientId=${encodeURIComponent(String(final.clientId))}`);
      return r.body.data[0]?.status === 'Final' ? r.body.data : undefined;
    }, 'the Final in the read model');
    expect(listed).toEqual([expect.objectContaining({ number, payNowUrl: link, providerPaymentUrl: final.providerPaymentUrl })]);
    expect(await landing(link)).toEqual({ landed: final.providerPaymentUrl, outstanding: '$1,500.00' });

    // Reissue -> Final with new figures: the same link, the new balance.
    await status(number, 'Reissue');
    expect((await api('POST', `/v1/invoices/${number}/revision`, { lines: [{ description: 'Survey (revised)', amount: 120_000 }] })).status).toBe(200);
    const again = await status(number, 'Final');
    expect(again).toMatchObject({ revision: 2, payNowUrl: link, outstanding: 120_000 });
    expect(await pdfOf(number)).toContain(link);
    const second = await box.waitForMessage((m) => m.to.some((t) => t.address === email) && m.id !== first.id);
    expect(second.text).toContain(`Pay online: ${link}`);
    expect((await landing(link)).outstanding).toBe('$1,200.00');

    // The provider loses the record; reconciliation re-creates it with a new page of its own. The link follows.
    const acct = { key: tenant.account.apiKey };
    expect((await http(stack.sandboxUrl, 'DELETE', `/v1/invoices/${again.providerInvoiceId}`, acct)).status).toBe(200);
    const gone = await follow(again.providerPaymentUrl!);
    await gone.page.close();
    expect(gone.status).toBe(410);
    expect(await reconcile(number)).toMatch(/re-created provider record/);
    const recreated = await invoice(number);
    expect(recreated.providerPaymentUrl).not.toBe(again.providerPaymentUrl);
    expect(recreated.payNowUrl).toBe(link);
    expect(await pdfOf(number)).toContain(link);
    expect(await landing(link)).toEqual({ landed: recreated.providerPaymentUrl, outstanding: '$1,200.00' });

    // Paid in full through the link: the link then says so, and no longer sends the payer on.
    await payThrough(link);
    await eventually(async () => ((await invoice(number)).settlement === 'Settled' ? true : undefined), 'the invoice to settle');
    const paid = await follow(link);
    await paid.page.close();
    expect(paid).toMatchObject({ status: 200, landed: link });
    expect(paid.text).toMatch(/paid in full/i);
    expect(paid.text).toContain(number);
  });

  it('stops working after a change to Draft, and the next Final has a new one', async () => {
    const { number } = await draft(80_000);
    const first = (await status(number, 'Final')).payNowUrl!;
    await payThrough(first, '30.00');
    await eventually(async () => ((await invoice(number)).outstanding === 77_000 ? true : undefined), 'the part payment');

    const drafted = await status(number, 'Draft');
    expect(drafted).toMatchObject({ payNowUrl: null, providerPaymentUrl: null });
    const withdrawn = await follow(first);
    await withdrawn.page.close();
    expect(withdrawn).toMatchObject({ status: 410, landed: first });
    expect(withdrawn.text).toMatch(/no longer works/);

    const final = await status(number, 'Final');
    const next = final.payNowUrl!;
    expect(next).toMatch(/\/pay\//);
    expect(next).not.toBe(first);
    expect(await pdfOf(number)).toContain(next);
    expect(await landing(next)).toEqual({ landed: final.providerPaymentUrl, outstanding: '$800.00' });
    // The old one stays gone.
    const still = await follow(first);
    await still.page.close();
    expect(still.status).toBe(410);
  });

  it('says when there is no payment page for a while (a reissue whose record the provider lost), and leads to the new one on the next Final', async () => {
    const { number } = await draft(60_000);
    const final = await status(number, 'Final');
    const link = final.payNowUrl!;
    await status(number, 'Reissue');
    expect((await http(stack.sandboxUrl, 'DELETE', `/v1/invoices/${final.providerInvoiceId}`, { key: tenant.account.apiKey })).status).toBe(200);
    expect(await reconcile(number)).toMatch(/forgot provider record .*the next Final creates one/);
    expect(await invoice(number)).toMatchObject({ status: 'Reissue', payNowUrl: null, providerPaymentUrl: null });
    const waiting = await follow(link);
    await waiting.page.close();
    expect(waiting).toMatchObject({ status: 503, landed: link });
    expect(waiting.text).toMatch(/cannot be paid online right now/);

    const again = await status(number, 'Final');
    expect(again.payNowUrl).toBe(link);
    expect(again.providerPaymentUrl).not.toBe(final.providerPaymentUrl);
    expect(await landing(link)).toEqual({ landed: again.providerPaymentUrl, outstanding: '$600.00' });
  });

  it('follows the company to another provider account, and a link nobody gave out is not found', async () => {
    const { number } = await draft(45_000);
    const final = await status(number, 'Final');
    const link = final.payNowUrl!;

    const moved = await http<{ id: string; apiKey: string; webhookSecret: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', {
      body: { name: 'The new account', webhookUrl: `${stack.apiUrl}/webhooks/provider/${tenant.companyId}` },
    });
    expect(moved.status).toBe(201);
    const patched = await http(stack.apiUrl, 'PATCH', `/v1/companies/${tenant.companyId}`, {
      key: ADMIN_KEY,
      body: { provider: { enabled: true, url: stack.sandboxUrl, accountId: moved.body.id, apiKey: moved.body.apiKey, webhookSecret: moved.body.webhookSecret } },
    });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    // The new account has no record of the invoice yet: reconciliation makes one there.
    expect(await reconcile(number)).toMatch(/re-created provider record/);
    const after = await invoice(number);
    expect(after.payNowUrl).toBe(link);
    const record = await http<{ payNowUrl: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${after.providerInvoiceId}`, { key: moved.body.apiKey });
    expect(record.status).toBe(200);
    expect(record.body.payNowUrl).toBe(after.providerPaymentUrl);
    expect(await landing(link)).toEqual({ landed: after.providerPaymentUrl, outstanding: '$450.00' });

    const unknown = await follow(`${stack.apiUrl}/pay/${'x'.repeat(22)}`);
    await unknown.page.close();
    expect(unknown.status).toBe(404);
  });

  it('follows the company from Bill & Pay to Stripe: reconciliation makes the record there, the same link leads to it, and a payment there settles the invoice', async () => {
    const mover = await createTenant(stack);
    const as = <T = Invoice>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: mover.apiKey, body });
    expect((await as('POST', '/v1/clients', { id: 'CL-MOVE', name: 'Hillside Planners', email: freshAddress() })).status).toBe(201);
    const number = `MV-${randomUUID().slice(0, 8)}`;
    expect((await as('POST', '/v1/invoices', { number, clientId: 'CL-MOVE', invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Planning', amount: 52_000 }] })).status).toBe(
      201,
    );
    const final = await as('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    const link = final.body.payNowUrl!;
    expect(final.body.providerPaymentUrl).toMatch(new RegExp(`^${stack.sandboxUrl}/pay/`));

    // Only the Stripe secret key: billflow makes its webhook endpoint in the new account.
    const stripeAccount = await http<{ apiKey: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', { body: { name: 'Hillside on Stripe' } });
    const moved = await http<{ provider: { kind: string; url: string; accountId: string | null } }>(stack.apiUrl, 'PATCH', `/v1/companies/${mover.companyId}`, {
      key: ADMIN_KEY,
      body: { provider: { kind: 'stripe', url: stack.stripeUrl, apiKey: stripeAccount.body.apiKey } },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.provider).toMatchObject({ kind: 'stripe', url: stack.stripeUrl, accountId: null });
    // The move runs the company's reconciliation at once: it finds the record missing at Stripe and the invoice makes it there.
    const after = await eventually(async () => {
      const inv = (await as('GET', `/v1/invoices/${number}`)).body;
      return inv.providerInvoiceId?.startsWith('in_') ? inv : undefined;
    }, 'the record made at Stripe');
    const repaired = await eventually(async () => {
      const runs = await as<{ data: { id: string }[] }>('GET', '/v1/reconciliations');
      const reports = await Promise.all(runs.body.data.map(async (r) => (await as<Report>('GET', `/v1/reconciliations/${r.id}`)).body));
      const actions = reports.flatMap((r) => r.repairs.filter((x) => x.invoiceNumber === number).flatMap((x) => x.actions));
      return actions.length > 0 ? actions.join(' | ') : undefined;
    }, "the reconciliation's report of the repair");
    expect(repaired).toMatch(/re-created provider record/);
    expect(after.payNowUrl).toBe(link);
    expect(after.providerInvoiceId).toMatch(/^in_/);
    expect(after.providerPaymentUrl).toMatch(new RegExp(`^${stack.stripeUrl}/i/`));
    const there = await follow(link);
    await there.page.close();
    expect([there.status, there.landed]).toEqual([200, after.providerPaymentUrl]);
    expect(there.text).toContain('$520.00');
    const paymentId = await payThrough(link);
    await eventually(async () => ((await as('GET', `/v1/invoices/${number}`)).body.outstanding === 0 ? true : undefined), 'the Stripe payment to settle the invoice');
    const feed = await as<{ data: { kind: string; providerPaymentId: string; amount: number }[] }>('GET', '/v1/receipts?limit=200');
    // 2.9% + 30 of 520.00: what Stripe kept.
    expect(feed.body.data.filter((r) => r.providerPaymentId === paymentId).map((r) => [r.kind, r.amount])).toEqual([
      ['payment', 52_000],
      ['processing-fee', 1_538],
    ]);
  });

  it("carries the invoice's currency to the provider: its page and the PDF show it, and the payment is in it", async () => {
    const euro = await createTenant(stack, { currency: 'EUR' });
    const asEuro = <T = Invoice>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: euro.apiKey, body });
    expect((await asEuro('POST', '/v1/clients', { id: 'CL-EU', name: 'Rive Gauche Architectes' })).status).toBe(201);
    const number = `EU-${randomUUID().slice(0, 8)}`;
    expect((await asEuro('POST', '/v1/invoices', { number, clientId: 'CL-EU', invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Étude', amount: 150_000 }] })).status).toBe(
      201,
    );
    const final = await asEuro('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body).toMatchObject({ currency: 'EUR' });

    const record = await http(stack.sandboxUrl, 'GET', `/v1/invoices/${final.body.providerInvoiceId}`, { key: euro.account.apiKey });
    expect(record.body).toMatchObject({ currency: 'EUR', amount: 150_000 });
    const doc = await invoicePdf(stack, euro.apiKey, number);
    const text = await pdfText(doc.bytes);
    expect(text).toMatch(/Currency\s+EUR/i);
    expect(text).toContain('€1,500.00');
    expect(text).not.toContain('$');

    const { page, landed } = await follow(final.body.payNowUrl!);
    try {
      expect(landed).toBe(final.body.providerPaymentUrl);
      expect((await page.locator('#outstanding').textContent())!.trim()).toBe('€1,500.00');
      await expect(page.getByLabel('Amount to pay (EUR)').inputValue()).resolves.toBe('1500.00');
    } finally {
      await page.close();
    }
    const paymentId = await payThrough(final.body.payNowUrl!, '400.00');
    expect((await http(stack.sandboxUrl, 'GET', `/v1/payments/${paymentId}`, { key: euro.account.apiKey })).body).toMatchObject({ currency: 'EUR', amount: 40_000 });
    const receipt = await eventually(async () => {
      const feed = await asEuro<{ data: { providerPaymentId: string; currency: string; amount: number }[] }>('GET', '/v1/receipts');
      return feed.body.data.find((r) => r.providerPaymentId === paymentId);
    }, 'the receipt');
    expect(receipt).toMatchObject({ currency: 'EUR', amount: 40_000 });
  });
});
