/**
 * What a failure leaves behind. Each case is one that once broke billflow's books: a change that
 * fails partway is undone or finished, never left half-done; a refused email never fails a Final;
 * prepayments are payments at the provider, so its books add up (amount = live payments +
 * outstanding); a held bill that left Final is not sent out as Final; a money request retried after
 * its workflow continued as new is answered, not applied twice.
 */
import { randomUUID } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoiceWorkflowId, searchAttributes as sa, type InvoiceDraft } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

/** A real SMTP server that refuses one mailbox for good (550), as a company's mail server does for a typo. */
const REFUSED = 'nobody@refused.example';
const accepted: string[] = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  onRcptTo(address, _session, callback) {
    if (address.address === REFUSED) return callback(Object.assign(new Error('5.1.1 mailbox unavailable'), { responseCode: 550 }));
    callback();
  },
  onData(stream, session, callback) {
    stream.resume();
    stream.on('end', () => {
      accepted.push(...session.envelope.rcptTo.map((r) => r.address));
      callback();
    });
  },
});

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  const port = (smtp.server.address() as { port: number }).port;
  stack = await startStack({ smtpPort: port });
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
  await new Promise<void>((r) => smtp.close(() => r()));
});

type Body = Record<string, unknown>;
type Invoice = Body & {
  number: string;
  status: string;
  revision: number;
  total: number;
  outstanding: number;
  prepaymentsApplied: number;
  payNowUrl: string | null;
  providerInvoiceId: string | null;
  pendingChange: unknown;
  held: boolean;
  emailDelivery?: { status: string; detail: string; revision: number } | null;
  lastFailure?: { reason: string; undone: string[] } | null;
  plan: { steps: { kind: string }[] };
};

const api = <T = Invoice>(method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body, ...(headers ? { headers } : {}) });
const provider = <T = Body>(method: string, path: string, body?: unknown) => http<T>(stack.sandboxUrl, method, path, { key: tenant.account.apiKey, body });

async function newClient(email = 'ap@harbor.example'): Promise<string> {
  const id = `cl-${randomUUID().slice(0, 6)}`;
  expect((await api('POST', '/v1/clients', { id, name: 'Harbor Builders', email })).status).toBe(201);
  return id;
}

async function draft(clientId: string, amount: number): Promise<string> {
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Engineering', amount }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return number;
}

async function status(number: string, to: string, headers?: Record<string, string>): Promise<Invoice> {
  const r = await api('POST', `/v1/invoices/${number}/status`, { status: to }, headers);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

async function pay(providerInvoiceId: string, amount: number): Promise<string> {
  const inv = await provider<{ customerId: string }>('GET', `/v1/invoices/${providerInvoiceId}`);
  const paid = await provider<{ id: string }>('POST', '/v1/payments', { customerId: inv.body.customerId, allocations: [{ invoiceId: providerInvoiceId, amount }], method: 'card' });
  expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  return paid.body.id;
}

async function owes(number: string, outstanding: number): Promise<Invoice> {
  return eventually(async () => {
    const r = await api('GET', `/v1/invoices/${number}`);
    return r.body.outstanding === outstanding ? r.body : undefined;
  }, `invoice ${number} to owe ${outstanding}`);
}

/** The provider's own books for one record: its figures and the payments live on it. */
async function books(providerInvoiceId: string) {
  const inv = await provider<{ amount: number; outstanding: number }>('GET', `/v1/invoices/${providerInvoiceId}`);
  const payments = await provider<{ data: { id: string; method: string; allocations: { invoiceId: string; amount: number }[] }[] }>('GET', `/v1/payments?invoiceId=${providerInvoiceId}`);
  const live = payments.body.data.flatMap((p) => p.allocations.filter((a) => a.invoiceId === providerInvoiceId).map((a) => ({ id: p.id, method: p.method, amount: a.amount })));
  return { amount: inv.body.amount, outstanding: inv.body.outstanding, live, paid: live.reduce((s, p) => s + p.amount, 0) };
}

/** A client prepayment made by paying an invoice and reissuing it. */
async function prepaymentOf(clientId: string, amount: number): Promise<string> {
  const number = await draft(clientId, amount);
  const final = await status(number, 'Final');
  await pay(final.providerInvoiceId!, amount);
  await owes(number, 0);
  await status(number, 'Reissue');
  const pre = await api<{ data: { id: string; origin: { invoiceNumber: string } }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
  return pre.body.data.find((p) => p.origin.invoiceNumber === number)!.id;
}

describe('prepayments at the provider', () => {
  it('re-creates a prepayment applied during a reissue as a payment on the record, so the books add up', async () => {
    const clientId = await newClient();
    const number = await draft(clientId, 550_000);
    const final = await status(number, 'Final');
    await pay(final.providerInvoiceId!, 500_000);
    await owes(number, 50_000);
    await status(number, 'Reissue');
    const pre = await api<{ data: { id: string; amount: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
    expect(pre.body.data).toEqual([expect.objectContaining({ amount: 500_000 })]);
    expect((await api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId: pre.body.data[0]!.id, amount: 500_000 })).status).toBe(200);

    const again = await status(number, 'Final');
    expect(again.plan.steps.map((s) => s.kind)).toEqual(['import-payments', 'update-provider-invoice', 'recreate-prepayment-payment', 'render-pdf', 'attach-pdf', 'email-invoice']);
    expect(again).toMatchObject({ outstanding: 50_000, prepaymentsApplied: 500_000, providerInvoiceId: final.providerInvoiceId });
    const b = await books(final.providerInvoiceId!);
    expect(b).toMatchObject({ amount: 550_000, outstanding: 50_000, paid: 500_000 });
    expect(b.live).toEqual([expect.objectContaining({ method: 'prepayment', amount: 500_000 })]);

    // Reissued and printed again with the prepayment still applied: nothing is re-created twice.
    await status(number, 'Reissue');
    const third = await status(number, 'Final');
    expect(third.plan.steps.map((s) => s.kind)).not.toContain('recreate-prepayment-payment');
    expect(await books(final.providerInvoiceId!)).toMatchObject({ amount: 550_000, outstanding: 50_000, paid: 500_000 });
  });

  it('moves the prepayment payment with the record when the invoice goes back to Draft and is printed again', async () => {
    const clientId = await newClient();
    const prepaymentId = await prepaymentOf(clientId, 30_000);
    const number = await draft(clientId, 100_000);
    expect((await api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId, amount: 30_000 })).status).toBe(200);
    const first = await status(number, 'Final');
    expect(await books(first.providerInvoiceId!)).toMatchObject({ amount: 100_000, outstanding: 70_000, paid: 30_000 });

    const toDraft = await status(number, 'Draft');
    expect(toDraft.plan.steps.map((s) => s.kind)).toEqual(['import-payments', 'remove-prepayment-payment', 'delete-provider-invoice']);
    const removed = (await books(first.providerInvoiceId!)).live;
    expect(removed).toEqual([]);

    const second = await status(number, 'Final');
    expect(second.providerInvoiceId).not.toBe(first.providerInvoiceId);
    expect(await books(second.providerInvoiceId!)).toMatchObject({ amount: 100_000, outstanding: 70_000, paid: 30_000 });
    // billflow still counts the prepayment once.
    expect(second).toMatchObject({ prepaymentsApplied: 30_000, outstanding: 70_000 });
  });
});

describe('a change that fails partway', () => {
  it('never fails a Final when the mail server refuses the client for good: the Final stands, the refusal is on the invoice', async () => {
    const number = await draft(await newClient(REFUSED), 40_000);
    const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body).toMatchObject({ status: 'Final', revision: 1, pendingChange: null, lastFailure: null });
    expect(final.body.emailDelivery).toMatchObject({ status: 'failed', revision: 1, detail: expect.stringContaining('550') });
    // Nothing went out, so nothing stays claimed: a later resend is free to try.
    expect(await stack.sql`SELECT 1 FROM invoice_emails WHERE company_id = ${tenant.companyId} AND invoice_number = ${number}`).toHaveLength(0);
    expect(final.body.payNowUrl).toMatch(/\/pay\//);
    // The provider's record is the invoice's, open and payable.
    expect((await provider('GET', `/v1/invoices/${final.body.providerInvoiceId}`)).body).toMatchObject({ number, outstanding: 40_000 });
    // Listed as Final once the read model is written, just after the answer.
    await eventually(
      async () => ((await api<{ data: { number: string }[] }>('GET', `/v1/invoices?status=Final&limit=200`)).body.data.some((i) => i.number === number) ? true : undefined),
      'the Final in the read model',
    );
  });

  it('never emails a revision twice: a send a crash cut off is reported as unconfirmed, not repeated', async () => {
    const to = `ap-${randomUUID().slice(0, 8)}@harbor.example`;
    const number = await draft(await newClient(to), 25_000);
    // What a worker killed between handing the message to SMTP and confirming it leaves behind.
    await stack.sql`
      INSERT INTO invoice_emails (company_id, invoice_number, revision, recipient, message_id, with_pay_now, request_id)
      VALUES (${tenant.companyId}, ${number}, 1, ${to}, ${`<${tenant.companyId}.${number}.r1@billflow>`}, false, 'crashed-attempt')`;
    const final = await status(number, 'Final');
    expect(final.emailDelivery).toMatchObject({ status: 'unconfirmed', revision: 1 });
    expect(accepted).not.toContain(to);
    // The next revision is its own email, sent once.
    await status(number, 'Reissue');
    const again = await status(number, 'Final');
    expect(again.emailDelivery).toMatchObject({ status: 'sent', revision: 2 });
    expect(accepted.filter((a) => a === to)).toHaveLength(1);
  });

  it('undoes what a Final did at the provider when the provider refuses a later step, and the retry then succeeds', async () => {
    const number = await draft(await newClient(), 60_000);
    await provider('POST', '/v1/sandbox/faults', { mode: 'error', status: 422, match: 'PUT /v1/invoices/*/pdf' });
    let created: string | undefined;
    try {
      const refused = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
      expect(refused.status, JSON.stringify(refused.body)).toBe(502);
      expect(refused.body).toMatchObject({ type: expect.stringContaining('provider-rejected'), detail: expect.stringContaining('stays Draft') });
      const after = (await api('GET', `/v1/invoices/${number}`)).body;
      expect(after).toMatchObject({ status: 'Draft', pendingChange: null, providerInvoiceId: null, payNowUrl: null, sentToProvider: false });
      expect(after.lastFailure?.undone).toEqual([expect.stringContaining('deleted provider record')]);
      created = /deleted provider record (\S+)/.exec(after.lastFailure!.undone[0]!)![1];
      // The record it had made is gone at the provider: nobody can pay a Draft.
      expect((await provider('GET', `/v1/invoices/${created}`)).status).toBe(404);
    } finally {
      await provider('POST', '/v1/sandbox/faults', { mode: 'none' });
    }
    const final = await status(number, 'Final');
    expect(final).toMatchObject({ status: 'Final', lastFailure: null, pendingChange: null });
    expect(final.providerInvoiceId).not.toBe(created);
    expect((await provider('GET', `/v1/invoices/${final.providerInvoiceId}`)).body).toMatchObject({ number, outstanding: 60_000 });
  });

  it('reports an undo the provider refuses too, so the failed change still ends and says what is left at the provider', async () => {
    const number = await draft(await newClient(), 61_000);
    // Both the PDF's attach and the undo's delete of the record are refused.
    expect((await provider('POST', '/v1/sandbox/faults', { mode: 'error', status: 422, match: '* /v1/invoices/*' })).status).toBe(200);
    try {
      const refused = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
      expect(refused.status, JSON.stringify(refused.body)).toBe(502);
    } finally {
      await provider('POST', '/v1/sandbox/faults', { mode: 'none' });
    }
    const after = (await api('GET', `/v1/invoices/${number}`)).body;
    expect(after).toMatchObject({ status: 'Draft', pendingChange: null, providerInvoiceId: null, sentToProvider: false });
    expect(after.lastFailure?.undone).toEqual([expect.stringMatching(/^could not delete provider record \S+: .*422/)]);
    const left = /could not delete provider record (\S+):/.exec(after.lastFailure!.undone[0]!)![1];
    expect((await provider('GET', `/v1/invoices/${left}`)).status).toBe(200);
    // The record left behind holds the number at the provider until reconciliation takes it out of use; then the Final goes through.
    const run = await api<{ findings: { kind: string; number: string }[] }>('POST', '/v1/reconciliations');
    expect(run.body.findings).toContainEqual(expect.objectContaining({ number }));
    await eventually(async () => ((await provider('GET', `/v1/invoices/${left}`)).status === 404 ? true : undefined), 'the record left behind deleted by the repair');
    const final = await status(number, 'Final');
    expect(final.providerInvoiceId).not.toBe(left);
  });
});

describe('held bills', () => {
  it('refuses to release a held bill that has left Final, and sends nothing', async () => {
    await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 30_000 } });
    try {
      const number = await draft(await newClient(), 31_000);
      expect(await status(number, 'Final')).toMatchObject({ held: true, providerInvoiceId: null });
      const reissued = await status(number, 'Reissue');
      expect(reissued).toMatchObject({ status: 'Reissue', held: false });
      const release = await api('POST', `/v1/invoices/${number}/release`, { by: 'ops-anna' });
      expect(release.status, JSON.stringify(release.body)).toBe(409);
      expect(release.body).toMatchObject({ type: expect.stringContaining('not-held') });
      const after = (await api('GET', `/v1/invoices/${number}`)).body;
      expect(after).toMatchObject({ status: 'Reissue', providerInvoiceId: null, sentToProvider: false });
    } finally {
      await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: null });
    }
  });
});

describe('retries across continue-as-new', () => {
  /** An invoice whose workflow continues as new after a few events, as a long-lived one does. */
  async function shortLived(clientId: string, amount: number): Promise<{ number: string; firstRunId: string }> {
    const number = `INV-${randomUUID().slice(0, 8)}`;
    const draftState: InvoiceDraft = {
      companyId: tenant.companyId,
      number,
      clientId,
      invoiceDate: '2026-11-01',
      dueDate: '2026-12-01',
      currency: 'USD',
      lines: [{ description: 'Retainer', amount }],
      prepaymentsApplied: 0,
    };
    const started = await stack.temporal.workflow.start('invoiceWorkflow', {
      taskQueue: stack.taskQueue,
      workflowId: invoiceWorkflowId(tenant.companyId, number),
      args: [{ draft: draftState, continueAsNewAfterEvents: 25 }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: sa.invoiceNumber, value: number }]),
    });
    return { number, firstRunId: started.firstExecutionRunId };
  }

  const continued = (number: string, firstRunId: string) =>
    eventually(async () => {
      const d = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number)).describe();
      return d.runId !== firstRunId ? d.runId : undefined;
    }, `invoice ${number} to continue as new`);

  /** The API lost its record of the request (killed mid-way, or its lease ran out): the retry reaches the workflow again. */
  const forgetKey = (key: string) => stack.sql`DELETE FROM idempotency_keys WHERE key = ${key}`;

  it('answers a Quick Pay retried with the same Idempotency-Key after continue-as-new, and pays once', async () => {
    const { number, firstRunId } = await shortLived(await newClient(), 45_000);
    await status(number, 'Final');
    const key = `qp-${randomUUID()}`;
    const body = { paymentType: 'Receipt', paymentMethod: 'Cheque', issuedOn: '2026-11-20', category: 'Customer payment', receivedByUser: 'ana', receivedByUnit: 'AR' };
    const first = await api('POST', `/v1/invoices/${number}/quick-pay`, body, { 'idempotency-key': key });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    await continued(number, firstRunId);
    await forgetKey(key);
    const retry = await api('POST', `/v1/invoices/${number}/quick-pay`, body, { 'idempotency-key': key });
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    // One payment: applied by the Quick Pay, or by its webhook when the first answer was lost.
    expect(retry.body).toMatchObject({ outstanding: 0, payments: [expect.objectContaining({ amount: 45_000 })] });
    const b = await books(first.body.providerInvoiceId!);
    expect(b.live.filter((p) => p.method === 'quickpay')).toHaveLength(1);
  });

  it('applies a prepayment once when its request is retried after continue-as-new', async () => {
    const clientId = await newClient();
    const prepaymentId = await prepaymentOf(clientId, 30_000);
    const { number, firstRunId } = await shortLived(clientId, 100_000);
    const key = `pre-${randomUUID()}`;
    // A few revisions grow the history past the threshold.
    for (let i = 0; i < 3; i++) await api('POST', `/v1/invoices/${number}/revision`, { lines: [{ description: `Retainer v${i}`, amount: 100_000 }] });
    // The whole prepayment: its retry must be answered, not refused as exhausted.
    const first = await api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId, amount: 30_000 }, { 'idempotency-key': key });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    await continued(number, firstRunId);
    await forgetKey(key);
    const retry = await api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId, amount: 30_000 }, { 'idempotency-key': key });
    expect(retry.status, JSON.stringify(retry.body)).toBe(200);
    expect(retry.body).toMatchObject({ prepaymentsApplied: 30_000, outstanding: 70_000 });
    const pre = await api<{ data: { id: string; remaining: number }[] }>('GET', `/v1/prepayments?clientId=${clientId}`);
    expect(pre.body.data.find((p) => p.id === prepaymentId)).toMatchObject({ remaining: 0 });
    // A new request for more than is left is refused by the workflow, naming the prepayment.
    const more = await api('POST', `/v1/invoices/${number}/prepayments`, { prepaymentId, amount: 1_000 }, { 'idempotency-key': `${key}-more` });
    expect(more.status, JSON.stringify(more.body)).toBe(422);
    expect(more.body).toMatchObject({ type: expect.stringContaining('prepayment-exhausted'), detail: expect.stringContaining(prepaymentId) });
  });
});
