/**
 * Bills on billflow's invoices: the informative life-cycle state, exceptional bills held from
 * sending until released, and Quick Pay, through the API, checked at the provider, in the ERP feed,
 * the database and Temporal's visibility (search attributes).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
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

type Invoice = Record<string, unknown> & {
  status: string;
  outstanding: number;
  settlement: string;
  payNowUrl: string | null;
  providerInvoiceId: string | null;
  lifecycleState: string | null;
  lifecycleHistory: { from: string | null; to: string; by: string; at: string }[];
  classification: string | null;
  held: boolean;
  plan: { steps: { kind: string }[] };
};

const api = <T = Invoice>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body });
const provider = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) => http<T>(stack.sandboxUrl, method, path, { key: tenant.account.apiKey, body });

async function newClient(extra: Record<string, unknown> = {}): Promise<{ id: string; email: string }> {
  const id = `cl-${randomUUID().slice(0, 6)}`;
  const email = freshAddress();
  expect((await api('POST', '/v1/clients', { id, name: 'Delta Civil', email })).status).toBe(201);
  if (Object.keys(extra).length) expect((await api('PATCH', `/v1/clients/${id}`, extra)).status).toBe(200);
  return { id, email };
}

async function draft(clientId: string, amount: number): Promise<string> {
  const number = `BILL-${randomUUID().slice(0, 8)}`;
  const r = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-10', dueDate: '2026-12-10', lines: [{ description: 'Services', amount }] });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return number;
}

async function final(number: string): Promise<Invoice> {
  const r = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

/** Workflow ids Temporal's visibility finds for a query (eventually consistent: polled). */
async function visible(query: string, expected: string): Promise<void> {
  await eventually(async () => {
    const ids: string[] = [];
    for await (const wf of stack.temporal.workflow.list({ query })) ids.push(wf.workflowId);
    return ids.includes(expected) ? true : undefined;
  }, `visibility to find ${expected} with ${query}`);
}

describe('life-cycle state', () => {
  it('is Posted when the invoice becomes Final and changes only by allowed, recorded actions', async () => {
    const { id } = await newClient();
    const number = await draft(id, 10_000);
    const early = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented', by: 'dana' });
    expect(early.status).toBe(409);
    expect(early.body).toMatchObject({ detail: expect.stringContaining('is Draft, not a bill') });

    expect(await final(number)).toMatchObject({ lifecycleState: 'Posted' });
    const confirmed = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented & Confirmed', by: 'dana' });
    expect(confirmed.status).toBe(200);
    const rejected = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented & Rejected', by: 'lee' });
    expect(rejected.status).toBe(200);
    const illegal = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented', by: 'lee' });
    expect(illegal.status).toBe(409);
    expect(illegal.body).toMatchObject({ type: expect.stringContaining('illegal-lifecycle-move'), detail: expect.stringContaining('only from Posted') });
    expect((await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Posted', by: 'lee' })).status).toBe(422);

    const inv = (await api('GET', `/v1/invoices/${number}`)).body;
    expect(inv.lifecycleState).toBe('Presented & Rejected');
    expect(inv.lifecycleHistory.map((h) => [h.from, h.to, h.by])).toEqual([
      [null, 'Posted', 'billflow'],
      ['Posted', 'Presented & Confirmed', 'dana'],
      ['Presented & Confirmed', 'Presented & Rejected', 'lee'],
    ]);
    const rows = await stack.sql<{ to_state: string; changed_by: string }[]>`
      SELECT to_state, changed_by FROM lifecycle_changes WHERE company_id = ${tenant.companyId} AND invoice_number = ${number} ORDER BY id`;
    expect(rows.map((r) => [r.to_state, r.changed_by])).toEqual([
      ['Posted', 'billflow'],
      ['Presented & Confirmed', 'dana'],
      ['Presented & Rejected', 'lee'],
    ]);
    await visible(`LifecycleState = "Presented & Rejected" AND CompanyId = "${tenant.companyId}"`, `Invoice:${tenant.companyId}:${number}`);

    // Leaving Final, it is no bill any more; Final again, it is Posted afresh.
    expect((await api('POST', `/v1/invoices/${number}/status`, { status: 'Draft' })).body).toMatchObject({ status: 'Draft', lifecycleState: null });
    const onDraft = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented', by: 'lee' });
    expect(onDraft.status).toBe(409);
    expect((await final(number)).lifecycleState).toBe('Posted');
  });

  it('makes the settlement status searchable as payments arrive', async () => {
    const { id } = await newClient();
    const number = await draft(id, 20_000);
    const inv = await final(number);
    const customer = (await provider<{ customerId: string }>('GET', `/v1/invoices/${inv.providerInvoiceId}`)).body.customerId;
    await provider('POST', '/v1/payments', { customerId: customer, allocations: [{ invoiceId: inv.providerInvoiceId, amount: 5_000 }], method: 'card' });
    await visible(`SettlementStatus = "Partially settled" AND InvoiceNumber = "${number}"`, `Invoice:${tenant.companyId}:${number}`);
  });
});

describe('exceptional bills', () => {
  it('classifies totals beyond the billing-run limits, holds them from the provider and the client until released', async () => {
    const def = await api('PUT', '/v1/billing-run-definition', { maxCredited: { kind: 'fixed', amount: 10_000 }, maxDebited: { kind: 'credit-limit', percent: 100 } });
    expect(def.status, JSON.stringify(def.body)).toBe(200);
    const client = await newClient({ creditLimit: 50_000 });

    // Above the debit limit (equal to the client's credit limit): held.
    const high = await draft(client.id, 50_100);
    const held = await final(high);
    expect(held).toMatchObject({ status: 'Final', classification: 'Max Credit Limit Amount Reached', held: true, payNowUrl: null, sentToProvider: false });
    expect(held.plan.steps.map((s) => s.kind)).toEqual(['hold-exceptional', 'render-pdf']);
    expect((await provider<{ data: unknown[] }>('GET', `/v1/customers?externalId=${client.id}`)).body.data).toHaveLength(0);
    // The read model is written just after the answer.
    const listedHigh = await eventually(async () => {
      const listed = await api<{ data: { number: string; classification: string | null; held: boolean }[] }>('GET', '/v1/invoices?limit=200');
      const row = listed.body.data.find((i) => i.number === high);
      return row?.held ? row : undefined;
    }, 'the held bill in the read model');
    expect(listedHigh).toMatchObject({ classification: 'Max Credit Limit Amount Reached', held: true });
    await visible(`Classification = "Max Credit Limit Amount Reached" AND CompanyId = "${tenant.companyId}"`, `Invoice:${tenant.companyId}:${high}`);

    // A credit below -max credited is the other classification; credits are valid invoices.
    const credit = await draft(client.id, -10_100);
    expect(await final(credit)).toMatchObject({ classification: 'Max Credit Amount Reached', held: true, total: -10_100 });
    // Within the limits: a normal bill.
    expect(await final(await draft(client.id, 50_000))).toMatchObject({ classification: null, held: false, sentToProvider: true });

    // The operator releases the held bill: provider record, Pay Now URL and email go out now.
    const released = await api('POST', `/v1/invoices/${high}/release`, { by: 'ops-anna' });
    expect(released.status, JSON.stringify(released.body)).toBe(200);
    expect(released.body).toMatchObject({ held: false, classification: 'Max Credit Limit Amount Reached', sentToProvider: true });
    expect(released.body.payNowUrl).toMatch(/\/pay\//);
    expect((await provider('GET', `/v1/invoices/${released.body.providerInvoiceId}`)).body).toMatchObject({ number: high, outstanding: 50_100 });
    await mailbox(inject('mailDevUrl')).waitForMessage((m) => m.to.some((t) => t.address === client.email) && m.subject.includes(high));
    expect((await api('POST', `/v1/invoices/${high}/release`, { by: 'ops-anna' })).status).toBe(409);
  });

  it('sends a corrected and re-finalized bill normally', async () => {
    await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 30_000 } });
    const { id } = await newClient();
    const number = await draft(id, 31_000);
    expect(await final(number)).toMatchObject({ held: true });
    expect((await api('POST', `/v1/invoices/${number}/status`, { status: 'Reissue' })).status).toBe(200);
    expect((await api('POST', `/v1/invoices/${number}/revision`, { lines: [{ description: 'Services (corrected)', amount: 29_000 }] })).status).toBe(200);
    expect(await final(number)).toMatchObject({ held: false, classification: null, sentToProvider: true, outstanding: 29_000 });
  });
});

describe('Quick Pay', () => {
  const details = { paymentType: 'Receipt', paymentMethod: 'Bank transfer', issuedOn: '2026-11-20', category: 'Customer payment', receivedByUser: 'sam', receivedByUnit: 'AR Team' };

  it('settles the whole unsettled balance at the provider and in the ERP feed, and is not offered on settled bills', async () => {
    await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: null });
    const { id } = await newClient();
    const number = await draft(id, 100_000);
    const inv = await final(number);
    const customer = (await provider<{ customerId: string }>('GET', `/v1/invoices/${inv.providerInvoiceId}`)).body.customerId;
    await provider('POST', '/v1/payments', { customerId: customer, allocations: [{ invoiceId: inv.providerInvoiceId, amount: 30_000 }], method: 'card' });
    await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.outstanding === 70_000 ? true : undefined), 'the first payment');

    const withAmount = await api('POST', `/v1/invoices/${number}/quick-pay`, { ...details, amount: 1 });
    expect(withAmount.status).toBe(422);
    expect(withAmount.body).toMatchObject({ field: 'amount' });
    const missing = await api('POST', `/v1/invoices/${number}/quick-pay`, { ...details, category: undefined });
    expect(missing.body).toMatchObject({ field: 'category' });

    const paid = await api('POST', `/v1/invoices/${number}/quick-pay`, details);
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    expect(paid.body).toMatchObject({ outstanding: 0, settlement: 'Settled' });
    const quick = (paid.body.payments as { paymentId: string; amount: number; source: string }[]).find((p) => p.source === 'quickpay')!;
    expect(quick.amount).toBe(70_000);

    // At the provider: a payment for exactly the balance, and the Pay Now page shows the bill paid.
    expect((await provider('GET', `/v1/payments/${quick.paymentId}`)).body).toMatchObject({ method: 'quickpay', amount: 70_000, status: 'succeeded' });
    expect(await (await fetch(inv.payNowUrl!)).text()).toMatch(/Paid in full/i);
    // In the ERP feed, like any other payment; its details are kept.
    const feed = await api<{ data: { providerPaymentId: string; kind: string; amount: number }[] }>('GET', '/v1/receipts?limit=200');
    expect(feed.body.data.filter((r) => r.providerPaymentId === quick.paymentId)).toEqual([expect.objectContaining({ kind: 'payment', amount: 70_000 })]);
    const [row] = await stack.sql`SELECT payment_type, payment_method, issued_on::text, category, received_by_user, received_by_unit FROM quick_payments WHERE payment_id = ${quick.paymentId}`;
    expect(row).toEqual({ payment_type: 'Receipt', payment_method: 'Bank transfer', issued_on: '2026-11-20', category: 'Customer payment', received_by_user: 'sam', received_by_unit: 'AR Team' });

    const again = await api('POST', `/v1/invoices/${number}/quick-pay`, details);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ type: expect.stringContaining('quick-pay-refused'), detail: expect.stringContaining('already settled') });
    // The provider's webhook for the Quick Pay payment does not count it twice, once billflow has
    // answered it and the invoice's workflow has handled the signal.
    await webhookDelivered(stack, tenant, quick.paymentId);
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, number));
    expect((await api('GET', `/v1/invoices/${number}`)).body).toMatchObject({ outstanding: 0, paid: 100_000 });
  });
});
