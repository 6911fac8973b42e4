/**
 * Every rule of the Ajera / Bill & Pay document, driven through the API as the ERP would, checked
 * against the provider sandbox's own records, the ERP feed and the database.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, invoicePdf, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox } from './mail.js';
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

type Body = Record<string, unknown>;
type Invoice = Body & {
  status: string;
  total: number;
  outstanding: number;
  paid: number;
  prepaymentsApplied: number;
  settlement: string;
  payNowUrl: string | null;
  providerInvoiceId: string | null;
  payments: { paymentId: string; amount: number }[];
  plan: { steps: { kind: string; heldBy?: string[] }[]; payNowUrl: string; feed: { kind: string }[] };
};

const api = <T = Invoice>(method: string, path: string, body?: unknown, headers?: Record<string, string>, t: Tenant = tenant) =>
  http<T>(stack.apiUrl, method, path, { key: t.apiKey, body, ...(headers ? { headers } : {}) });
const provider = <T = Body>(method: string, path: string, body?: unknown, t: Tenant = tenant) => http<T>(stack.sandboxUrl, method, path, { key: t.account.apiKey, body });

async function newClient(t: Tenant = tenant): Promise<string> {
  const id = `cl-${randomUUID().slice(0, 6)}`;
  expect((await api('POST', '/v1/clients', { id, name: 'Harbor Builders', email: 'ap@harbor.example' }, undefined, t)).status).toBe(201);
  return id;
}

async function finalInvoice(clientId: string, amount = 100_000, t: Tenant = tenant): Promise<Invoice & { number: string }> {
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Engineering', amount }] }, undefined, t);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }, undefined, t);
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  return { ...final.body, number };
}

/** A payer pays at the provider; billflow hears of it by webhook. */
async function payAtProvider(allocations: { invoiceId: string; amount: number }[], fee = 0): Promise<string> {
  const inv = await provider<{ customerId: string }>('GET', `/v1/invoices/${allocations[0]!.invoiceId}`);
  const paid = await provider<{ id: string }>('POST', '/v1/payments', { customerId: inv.body.customerId, allocations, method: 'card', fee });
  expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  return paid.body.id;
}

async function settledTo(number: string, outstanding: number): Promise<Invoice> {
  return eventually(async () => {
    const r = await api('GET', `/v1/invoices/${number}`);
    return r.body.outstanding === outstanding ? r.body : undefined;
  }, `invoice ${number} to owe ${outstanding}`);
}

describe('partial payments and convenience fees', () => {
  it('follows each payment and gives one receipt per payment, the fee as its own receipt', async () => {
    const inv = await finalInvoice(await newClient(), 100_000);
    const first = await payAtProvider([{ invoiceId: inv.providerInvoiceId!, amount: 40_000 }], 350);
    expect(await settledTo(inv.number, 60_000)).toMatchObject({ settlement: 'Partially settled', paid: 40_000 });
    const second = await payAtProvider([{ invoiceId: inv.providerInvoiceId!, amount: 60_000 }]);
    expect(await settledTo(inv.number, 0)).toMatchObject({ settlement: 'Settled', paid: 100_000 });

    const feed = await api<{ data: { kind: string; providerPaymentId: string; amount: number }[] }>('GET', '/v1/receipts?limit=200');
    const mine = feed.body.data.filter((r) => [first, second].includes(r.providerPaymentId));
    expect(mine.map((r) => [r.providerPaymentId, r.kind, r.amount])).toEqual([
      [first, 'payment', 40_000],
      [first, 'fee', 350],
      [second, 'payment', 60_000],
    ]);
  });
});

describe('Final -> Reissue -> Final', () => {
  it('turns payments into prepayments, removes them at the provider, and updates the same provider record', async () => {
    const clientId = await newClient();
    const inv = await finalInvoice(clientId, 120_000);
    const paymentId = await payAtProvider([{ invoiceId: inv.providerInvoiceId!, amount: 20_000 }]);
    await settledTo(inv.number, 100_000);

    const reissue = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Reissue' }, { 'x-request-id': `reissue-${inv.number}` });
    expect(reissue.status, JSON.stringify(reissue.body)).toBe(200);
    expect(reissue.body).toMatchObject({ status: 'Reissue', payments: [], outstanding: 120_000, payNowUrl: inv.payNowUrl });
    expect(reissue.body.plan.steps.map((s) => s.kind)).toEqual(['import-payments', 'convert-to-prepayment', 'remove-provider-payment']);

    // The payment is now the client's prepayment, with its origin; at the provider it is removed.
    const pre = await api<{ data: { id: string; amount: number; remaining: number; origin: Body }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
    expect(pre.body.data).toEqual([expect.objectContaining({ amount: 20_000, remaining: 20_000, origin: expect.objectContaining({ invoiceNumber: inv.number, providerPaymentId: paymentId }) })]);
    expect((await provider('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ status: 'removed' });
    expect((await api('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ heldBy: [], removedAtProvider: true });
    // The ERP feed says so too, under the request's correlation id.
    const feed = await api<{ data: { kind: string; providerPaymentId: string; requestId: string }[] }>('GET', '/v1/receipts?limit=200');
    expect(feed.body.data.filter((r) => r.providerPaymentId === paymentId).map((r) => [r.kind, r.requestId])).toEqual([
      ['payment', expect.any(String)],
      ['prepayment', `reissue-${inv.number}`],
    ]);

    // The ERP corrects the invoice, applies the prepayment, and prints it again.
    expect((await api('POST', `/v1/invoices/${inv.number}/revision`, { lines: [{ description: 'Engineering (corrected)', amount: 110_000 }] })).status).toBe(200);
    const applied = await api('POST', `/v1/invoices/${inv.number}/prepayments`, { prepaymentId: pre.body.data[0]!.id, amount: 20_000 });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const final = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body).toMatchObject({ status: 'Final', total: 110_000, prepaymentsApplied: 20_000, outstanding: 90_000, payNowUrl: inv.payNowUrl, providerInvoiceId: inv.providerInvoiceId });
    expect(final.body.plan.payNowUrl).toBe('same');

    // Same provider record, new figures and a new PDF; the original Pay Now page shows the new balance.
    const remote = await provider<{ amount: number; outstanding: number; pdf: { sha256: string } }>('GET', `/v1/invoices/${inv.providerInvoiceId}`);
    expect(remote.body).toMatchObject({ amount: 110_000, outstanding: 90_000 });
    // The applied prepayment is a payment on the record again, so the provider's books add up.
    const live = await provider<{ data: { method: string; amount: number }[] }>('GET', `/v1/payments?invoiceId=${inv.providerInvoiceId}`);
    expect(live.body.data).toEqual([expect.objectContaining({ method: 'prepayment', amount: 20_000 })]);
    const doc = await invoicePdf(stack, tenant.apiKey, inv.number);
    expect(remote.body.pdf.sha256).toBe(doc.sha256);
    const page = await fetch(inv.payNowUrl!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('$900.00');
  });

  it('refuses to leave Final while the provider cannot be reached, and changes nothing', async () => {
    const inv = await finalInvoice(await newClient());
    await provider('POST', '/v1/sandbox/faults', { mode: 'error', status: 503 });
    try {
      const refused = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Reissue' });
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ type: expect.stringContaining('provider-unavailable'), detail: expect.stringContaining('nothing changed') });
    } finally {
      await provider('POST', '/v1/sandbox/faults', { mode: 'none' });
    }
    const after = await api('GET', `/v1/invoices/${inv.number}`);
    expect(after.body).toMatchObject({ status: 'Final', payNowUrl: inv.payNowUrl, pendingChange: null });
    expect((after.body as Body).history).toHaveLength(1);
    // An ERP that was answered 202 (still running) reads the refusal on the invoice.
    expect(after.body.lastFailure).toMatchObject({ to: 'Reissue', reason: expect.stringContaining('nothing changed'), undone: [] });
  });
});

describe('payments made during a reissue', () => {
  it('are imported and become prepayments when the reissued invoice goes to Draft', async () => {
    const clientId = await newClient();
    const inv = await finalInvoice(clientId, 40_000);
    expect((await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Reissue' })).status).toBe(200);
    // The Pay Now page still works during the reissue, and the provider's webhook is lost here.
    await provider('PATCH', `/v1/accounts/${tenant.account.id}`, { webhookUrl: null });
    try {
      const paymentId = await payAtProvider([{ invoiceId: inv.providerInvoiceId!, amount: 5_000 }]);
      const draft = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Draft' });
      expect(draft.status, JSON.stringify(draft.body)).toBe(200);
      expect(draft.body.plan.steps.map((s) => s.kind)).toEqual(['import-payments', 'apply-payment', 'convert-to-prepayment', 'remove-provider-payment', 'delete-provider-invoice']);
      expect(draft.body).toMatchObject({ status: 'Draft', paid: 0, payments: [] });
      const pre = await api<{ data: { origin: { providerPaymentId: string }; amount: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
      expect(pre.body.data).toEqual([expect.objectContaining({ amount: 5_000, origin: expect.objectContaining({ providerPaymentId: paymentId }) })]);
      expect((await provider('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ status: 'removed' });
    } finally {
      await provider('PATCH', `/v1/accounts/${tenant.account.id}`, { webhookUrl: `${stack.apiUrl}/webhooks/provider/${tenant.companyId}` });
    }
  });

  it('refuses to edit a Final invoice or to put its due date before its date', async () => {
    const inv = await finalInvoice(await newClient());
    const final = await api('POST', `/v1/invoices/${inv.number}/revision`, { dueDate: '2026-12-31' });
    expect(final.status).toBe(409);
    expect(final.body).toMatchObject({ type: expect.stringContaining('not-editable') });
    expect((await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Reissue' })).status).toBe(200);
    const dates = await api('POST', `/v1/invoices/${inv.number}/revision`, { dueDate: '2026-01-01' });
    expect(dates.status).toBe(422);
    expect(dates.body).toMatchObject({ detail: 'dueDate 2026-01-01 is before invoiceDate 2026-11-02' });
    expect((await api('GET', `/v1/invoices/${inv.number}`)).body).toMatchObject({ dueDate: '2026-12-02' });
  });
});

describe('to Draft', () => {
  it("deletes the provider's record, its Pay Now URL stops working, and the next Final gets a new one", async () => {
    const inv = await finalInvoice(await newClient());
    const draft = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Draft' });
    expect(draft.status, JSON.stringify(draft.body)).toBe(200);
    expect(draft.body).toMatchObject({ status: 'Draft', payNowUrl: null, providerInvoiceId: null });
    expect(draft.body.plan.payNowUrl).toBe('removed');
    expect((await provider('GET', `/v1/invoices/${inv.providerInvoiceId}`)).status).toBe(404);
    const gone = await fetch(inv.payNowUrl!);
    expect(gone.status).toBe(410);
    expect(await gone.text()).toMatch(/no longer/i);

    const again = await api('POST', `/v1/invoices/${inv.number}/status`, { status: 'Final' });
    expect(again.status).toBe(200);
    expect(again.body.payNowUrl).toMatch(/\/pay\//);
    expect(again.body.payNowUrl).not.toBe(inv.payNowUrl);
    expect((await fetch(again.body.payNowUrl!)).status).toBe(200);
    expect((await fetch(inv.payNowUrl!)).status).toBe(410);
  });
});

describe('a payment covering several invoices', () => {
  it('is removed at the provider only when every invoice it covered has left Final; until then billflow shows which hold it', async () => {
    const clientId = await newClient();
    const a = await finalInvoice(clientId, 30_000);
    const b = await finalInvoice(clientId, 45_000);
    const paymentId = await payAtProvider([
      { invoiceId: a.providerInvoiceId!, amount: 30_000 },
      { invoiceId: b.providerInvoiceId!, amount: 45_000 },
    ]);
    await settledTo(a.number, 0);
    await settledTo(b.number, 0);

    const first = await api('POST', `/v1/invoices/${a.number}/status`, { status: 'Reissue' });
    expect(first.status).toBe(200);
    expect(first.body.plan.steps).toContainEqual({ kind: 'hold-provider-payment', paymentId, heldBy: [b.number] });
    expect((await api('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ coveredInvoices: [a.number, b.number].sort(), heldBy: [b.number], removedAtProvider: false });
    expect((await provider('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ status: 'succeeded' });

    const second = await api('POST', `/v1/invoices/${b.number}/status`, { status: 'Draft' });
    expect(second.status).toBe(200);
    expect(second.body.plan.steps).toContainEqual({ kind: 'remove-provider-payment', paymentId });
    expect((await api('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ heldBy: [], removedAtProvider: true });
    expect((await provider('GET', `/v1/payments/${paymentId}`)).body).toMatchObject({ status: 'removed' });
  });
});

describe('applying a prepayment to a Final invoice', () => {
  it('re-creates the payment at the provider against that invoice, lowering its balance there, counted once', async () => {
    const clientId = await newClient();
    const donor = await finalInvoice(clientId, 50_000);
    await payAtProvider([{ invoiceId: donor.providerInvoiceId!, amount: 50_000 }]);
    await settledTo(donor.number, 0);
    expect((await api('POST', `/v1/invoices/${donor.number}/status`, { status: 'Reissue' })).status).toBe(200);
    const [pre] = (await api<{ data: { id: string }[] }>('GET', `/v1/prepayments?clientId=${clientId}`)).body.data;

    const target = await finalInvoice(clientId, 80_000);
    const applied = await api('POST', `/v1/invoices/${target.number}/prepayments`, { prepaymentId: pre!.id, amount: 50_000 });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(applied.body).toMatchObject({ prepaymentsApplied: 50_000, outstanding: 30_000 });
    const remote = await provider<{ outstanding: number }>('GET', `/v1/invoices/${target.providerInvoiceId}`);
    expect(remote.body.outstanding).toBe(30_000);
    const payments = await provider<{ data: { id: string; method: string; amount: number }[] }>('GET', `/v1/payments?invoiceId=${target.providerInvoiceId}`);
    expect(payments.body.data).toEqual([expect.objectContaining({ method: 'prepayment', amount: 50_000 })]);

    // The provider's webhook for that payment does not count it a second time, once billflow has
    // answered it and the invoice's workflow has handled the signal.
    await webhookDelivered(stack, tenant, payments.body.data[0]!.id);
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, target.number));
    expect((await api('GET', `/v1/invoices/${target.number}`)).body).toMatchObject({ outstanding: 30_000, payments: [] });
    const left = await api<{ data: { remaining: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
    expect(left.body.data[0]!.remaining).toBe(0);
    const more = await api('POST', `/v1/invoices/${target.number}/prepayments`, { prepaymentId: pre!.id, amount: 1 });
    expect(more.status).toBe(422);
  });
});

describe('provider outage during print to Final', () => {
  it('waits and retries inside the workflow, then completes once, without duplicates', async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Design', amount: 70_000 }] });
    const outages = async () => (await provider<{ data: { status: number }[] }>('GET', '/v1/sandbox/requests')).body.data.filter((c) => c.status === 503).length;
    const before = await outages();
    // Six failures: more than one call's quick retries in the client (three tries), so the
    // activity itself fails twice and the workflow waits out its backoff.
    await provider('POST', '/v1/sandbox/faults', { mode: 'error', status: 503, count: 6 });
    const accepted = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }, { prefer: 'wait=2' });
    expect(accepted.status).toBe(202);
    const final = await eventually(
      async () => {
        const r = await api('GET', `/v1/invoices/${number}`);
        return r.body.status === 'Final' ? r.body : undefined;
      },
      'the Final to complete after the outage',
      60_000,
    );
    expect(final.payNowUrl).toMatch(/\/pay\//);
    const remote = await provider<{ data: unknown[] }>('GET', `/v1/invoices?number=${number}`);
    expect(remote.body.data).toHaveLength(1);
    expect((await outages()) - before).toBe(6);
  });
});

describe('preview', () => {
  it('answers every transition with exactly what the real change then does, changing nothing', async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Design', amount: 64_000 }] });
    const walk: string[] = ['Final', 'Reissue', 'Final', 'Draft', 'Final', 'Reissue', 'Draft'];
    for (const [i, to] of walk.entries()) {
      if (i === 1) {
        const inv = await api('GET', `/v1/invoices/${number}`);
        await payAtProvider([{ invoiceId: inv.body.providerInvoiceId!, amount: 4_000 }]);
        await settledTo(number, 60_000);
      }
      const before = await api('GET', `/v1/invoices/${number}`);
      const preview = await api<{ dryRun: boolean; plan: Invoice['plan'] }>('POST', `/v1/invoices/${number}/status`, { status: to, dryRun: true });
      expect(preview.status, JSON.stringify(preview.body)).toBe(200);
      expect(preview.body.dryRun).toBe(true);
      const untouched = await api('GET', `/v1/invoices/${number}`);
      expect(untouched.body).toEqual(before.body);
      const real = await api('POST', `/v1/invoices/${number}/status`, { status: to });
      expect(real.status, JSON.stringify(real.body)).toBe(200);
      expect(real.body.plan, `${before.body.status} -> ${to}`).toEqual(preview.body.plan);
    }
  });
});

describe('correlation id', () => {
  it("follows the ERP's X-Request-Id into the provider calls and the workflow history", async () => {
    const clientId = await newClient();
    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Design', amount: 10_000 }] });
    const requestId = `erp-${randomUUID()}`;
    const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' }, { 'x-request-id': requestId });
    expect(final.headers.get('x-request-id')).toBe(requestId);
    const calls = await provider<{ data: { method: string; path: string }[] }>('GET', `/v1/sandbox/requests?requestId=${requestId}`);
    expect(calls.body.data.map((c) => `${c.method} ${c.path.split('?')[0]}`)).toEqual(
      expect.arrayContaining(['POST /v1/customers', 'POST /v1/invoices', `PUT /v1/invoices/${final.body.providerInvoiceId}/pdf`]),
    );
    expect(final.body.history).toEqual([expect.objectContaining({ to: 'Final', requestId })]);
  });
});

describe('multi-company', () => {
  it("sends each company's invoices to its own provider account, and the two never mix", async () => {
    const other = await createTenant(stack);
    const mine = await finalInvoice(await newClient());
    const theirs = await finalInvoice(await newClient(other), 50_000, other);
    expect((await provider('GET', `/v1/invoices/${mine.providerInvoiceId}`)).status).toBe(200);
    expect((await provider('GET', `/v1/invoices/${theirs.providerInvoiceId}`, undefined, other)).status).toBe(200);
    expect((await provider('GET', `/v1/invoices/${theirs.providerInvoiceId}`)).status).toBe(404);
    expect((await provider('GET', `/v1/invoices/${mine.providerInvoiceId}`, undefined, other)).status).toBe(404);
    expect((await api('GET', `/v1/invoices/${theirs.number}`)).status).toBe(404);
  });
});

describe('integration disabled', () => {
  it('makes invoices Final without sending anything to the provider', async () => {
    const off = await createTenant(stack, { providerEnabled: false });
    const clientId = await newClient(off);
    const inv = await finalInvoice(clientId, 90_000, off);
    expect(inv).toMatchObject({ status: 'Final', sentToProvider: false, payNowUrl: null });
    expect(inv.plan.steps).toEqual([
      { kind: 'skip-provider', reason: expect.stringContaining('not have the provider integration enabled') },
      { kind: 'render-pdf' },
      { kind: 'email-invoice', to: 'ap@harbor.example', withPayNowUrl: false },
    ]);
    expect((await provider<{ data: unknown[] }>('GET', `/v1/customers?externalId=${clientId}`, undefined, off)).body.data).toHaveLength(0);
  });
});

describe('emailing the final invoice', () => {
  it("carries the Pay Now URL when the client's template uses it, with the PDF and backups attached; backups never reach the provider", async () => {
    const email = freshAddress();
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    await api('POST', '/v1/clients', { id: clientId, name: 'Quarry Partners', email });
    const badTemplate = await api('PUT', `/v1/clients/${clientId}/invoice-email-template`, { subject: 'Invoice {{invoice.number}}', body: 'Pay here: {{bill.nonsense}}' });
    expect(badTemplate.status).toBe(422);
    expect(badTemplate.body).toMatchObject({ detail: expect.stringContaining('bill.nonsense') });
    const template = await api('PUT', `/v1/clients/${clientId}/invoice-email-template`, {
      subject: 'Invoice {{invoice.number}} from {{company.name}}',
      body: 'Dear {{client.name}},\n{{invoice.outstanding}} is due on {{invoice.dueDate}}. Pay online: {{payNowUrl}}\n',
    });
    expect(template.body).toMatchObject({ usesPayNowUrl: true });

    const number = `INV-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Survey', amount: 25_000 }] });
    const timesheet = Buffer.from('%PDF-1.4 timesheet backup for the client only');
    const final = await api('POST', `/v1/invoices/${number}/status`, {
      status: 'Final',
      backupAttachments: [{ filename: 'timesheets.pdf', contentType: 'application/pdf', contentBase64: timesheet.toString('base64') }],
    });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body.plan.steps.at(-1)).toEqual({ kind: 'email-invoice', to: email, withPayNowUrl: true });

    const box = mailbox(inject('mailDevUrl'));
    const msg = await box.waitForMessage((m) => m.to.some((t) => t.address === email));
    expect(msg.subject).toBe(`Invoice ${number} from Company ${tenant.companyId}`);
    expect(msg.text).toContain(`Pay online: ${final.body.payNowUrl}`);
    expect(msg.text).toContain('$250.00 is due on 2026-12-02');
    const doc = await invoicePdf(stack, tenant.apiKey, number);
    expect((await box.attachment(msg, `invoice-${number}.pdf`)).equals(doc.bytes)).toBe(true);
    expect((await box.attachment(msg, 'timesheets.pdf')).equals(timesheet)).toBe(true);

    // The provider got the invoice PDF alone.
    const remote = await provider<{ pdf: { sha256: string; bytes: number } }>('GET', `/v1/invoices/${final.body.providerInvoiceId}`);
    expect(remote.body.pdf).toMatchObject({ sha256: doc.sha256, bytes: doc.bytes.length });
  });

  it('leaves the Pay Now URL out with the default template', async () => {
    const email = freshAddress();
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    await api('POST', '/v1/clients', { id: clientId, name: 'Plain Template Co', email });
    const inv = await finalInvoice(clientId, 12_000);
    const msg = await mailbox(inject('mailDevUrl')).waitForMessage((m) => m.to.some((t) => t.address === email));
    expect(msg.subject).toContain(inv.number);
    expect(msg.text).not.toContain('/pay/');
    expect(inv.plan.steps.at(-1)).toEqual({ kind: 'email-invoice', to: email, withPayNowUrl: false });
  });

  it('emails nothing to a client whose delivery preference is print', async () => {
    const email = freshAddress();
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    await api('POST', '/v1/clients', { id: clientId, name: 'Paper Only Ltd', email });
    expect((await api('PATCH', `/v1/clients/${clientId}`, { deliveryPreference: 'print' })).status).toBe(200);
    const inv = await finalInvoice(clientId, 12_000);
    // The Final has answered, so its email step (the last) would have run: there is none.
    expect(inv.plan.steps.map((s: { kind: string }) => s.kind)).not.toContain('email-invoice');
    expect(inv.emailDelivery ?? null).toBeNull();
    expect(await mailbox(inject('mailDevUrl')).to(email)).toEqual([]);
  });
});
