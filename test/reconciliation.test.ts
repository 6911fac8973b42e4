/**
 * Scheduled per-company reconciliation: billflow and the provider drift apart in every way the
 * comparison knows (a lost payment, a record deleted or edited at the provider, a stale record, a
 * record made by hand); one reconciliation finds each, and the invoices' workflows repair theirs.
 */
import { randomUUID } from 'node:crypto';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcileScheduleId } from '../workflows/reconcile-contract.js';
import { ADMIN_KEY, createTenant, eventually, http, invoicePdf, startStack, type Stack, type Tenant } from './harness.js';
import { pdfText } from './support.js';

type Body = Record<string, unknown>;
type Invoice = Body & { number: string; outstanding: number; payNowUrl: string; providerPaymentUrl: string; providerInvoiceId: string };
type Finding = { kind: string; number: string; providerInvoiceId: string };
type Report = { id: string; status: string; findings: Finding[]; repairsRequested: string[]; repairs: { invoiceNumber: string; actions: string[] }[] };

let stack: Stack;
let tenant: Tenant;

const api = <T = Body>(method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body });
const atProvider = <T = Body>(method: string, path: string, body?: unknown) => http<T>(stack.sandboxUrl, method, path, { key: tenant.account.apiKey, body });

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
});

async function finalInvoice(clientId: string, amount: number): Promise<Invoice> {
  const number = `INV-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Survey', amount }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const final = await api<Invoice>('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  return { ...final.body, number };
}

describe('reconciliation', () => {
  it('has a schedule per company', async () => {
    const described = await stack.temporal.schedule.getHandle(reconcileScheduleId(tenant.companyId)).describe();
    expect(described.spec.intervals).toEqual([expect.objectContaining({ every: 86_400_000 })]);
    expect(described.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reconcileCompanyWorkflow', args: [{ companyId: tenant.companyId }] });
    const listed = await api<{ schedule: { id: string; nextRunAt: string } }>('GET', '/v1/reconciliations');
    expect(listed.body.schedule).toMatchObject({ id: reconcileScheduleId(tenant.companyId), nextRunAt: expect.any(String) });
  });

  it('finds every kind of drift, and each invoice workflow repairs its own records', async () => {
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await api('POST', '/v1/clients', { id: clientId, name: 'Harbor Builders' })).status).toBe(201);
    const paid = await finalInvoice(clientId, 100_000);
    const deleted = await finalInvoice(clientId, 40_000);
    const edited = await finalInvoice(clientId, 70_000);
    const drafted = await finalInvoice(clientId, 25_000);
    const inStep = await finalInvoice(clientId, 10_000);
    const settled = await finalInvoice(clientId, 15_000);
    const paidDraft = await finalInvoice(clientId, 12_000);
    await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 50_000 } });
    const held = await finalInvoice(clientId, 20_000);

    // 1. A payment whose webhook was lost (and whose import timer is an hour away).
    await atProvider('PATCH', `/v1/accounts/${tenant.account.id}`, { webhookUrl: null });
    const customerId = (await atProvider<{ customerId: string }>('GET', `/v1/invoices/${paid.providerInvoiceId}`)).body.customerId;
    const payment = await atProvider<{ id: string }>('POST', '/v1/payments', { customerId, allocations: [{ invoiceId: paid.providerInvoiceId, amount: 30_000 }], method: 'card' });
    expect(payment.status).toBe(201);
    // 2. A record deleted at the provider by hand.
    expect((await atProvider('DELETE', `/v1/invoices/${deleted.providerInvoiceId}`)).status).toBe(200);
    // 3. A record edited at the provider by hand.
    expect((await atProvider('PATCH', `/v1/invoices/${edited.providerInvoiceId}`, { amount: 75_000, outstanding: 75_000 })).status).toBe(200);
    // 4. A record for one of billflow's numbers that billflow does not use (the invoice went back to Draft).
    expect((await api('POST', `/v1/invoices/${drafted.number}/status`, { status: 'Draft' })).status).toBe(200);
    const stale = await atProvider<{ id: string }>('POST', '/v1/invoices', { customerId, number: drafted.number, invoiceDate: '2026-11-02', amount: 25_000, outstanding: 25_000 });
    expect(stale.status).toBe(201);
    // 5. A stale record that holds a payment: reported, left for a person.
    expect((await api('POST', `/v1/invoices/${paidDraft.number}/status`, { status: 'Draft' })).status).toBe(200);
    const staleWithMoney = await atProvider<{ id: string }>('POST', '/v1/invoices', { customerId, number: paidDraft.number, invoiceDate: '2026-11-02', amount: 12_000, outstanding: 12_000 });
    expect((await atProvider('POST', '/v1/payments', { customerId, allocations: [{ invoiceId: staleWithMoney.body.id, amount: 1_000 }], method: 'card' })).status).toBe(201);
    // 6. A paid invoice whose record the provider lost: nothing is owed, so nothing is re-created.
    const quickPay = { paymentType: 'Receipt', paymentMethod: 'Cheque', issuedOn: '2026-11-20', category: 'Customer payment', receivedByUser: 'ap', receivedByUnit: 'AR' };
    expect((await api('POST', `/v1/invoices/${settled.number}/quick-pay`, quickPay)).body).toMatchObject({ settlement: 'Settled' });
    expect((await atProvider('DELETE', `/v1/invoices/${settled.providerInvoiceId}`)).status).toBe(200);
    // 7. A held exceptional bill: reissued above the company's limit, its record keeps the old figures until released.
    await api('POST', `/v1/invoices/${held.number}/status`, { status: 'Reissue' });
    await api('POST', `/v1/invoices/${held.number}/revision`, { lines: [{ description: 'Survey', amount: 90_000 }] });
    expect((await api('POST', `/v1/invoices/${held.number}/status`, { status: 'Final' })).body).toMatchObject({ held: true });
    // 8. A record made at the provider by hand, for a number billflow does not know.
    const foreignNumber = `HAND-${randomUUID().slice(0, 6)}`;
    const foreign = await atProvider<{ id: string }>('POST', '/v1/invoices', { customerId, number: foreignNumber, invoiceDate: '2026-11-02', amount: 5_000, outstanding: 5_000 });
    expect(foreign.status).toBe(201);

    const run = await http<Report>(stack.apiUrl, 'POST', '/v1/reconciliations', { key: tenant.apiKey, headers: { 'x-request-id': 'reconcile-test' } });
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    const kinds = Object.fromEntries(run.body.findings.map((f) => [f.number, f.kind]));
    expect(kinds).toEqual({
      [paid.number]: 'figures-differ',
      [deleted.number]: 'missing-at-provider',
      [edited.number]: 'figures-differ',
      [drafted.number]: 'stale-at-provider',
      [paidDraft.number]: 'stale-at-provider',
      [settled.number]: 'missing-at-provider',
      [foreignNumber]: 'unknown-at-provider',
    });
    expect(run.body.repairsRequested.sort()).toEqual([paid.number, deleted.number, edited.number, drafted.number, paidDraft.number, settled.number].sort());

    // Each invoice's workflow records what it did.
    const report = await eventually(async () => {
      const r = await api<Report>('GET', `/v1/reconciliations/${run.body.id}`);
      return r.body.repairs.length === 6 ? r.body : undefined;
    }, 'the six repairs');
    expect(report.status).toBe('finished');
    const actions = Object.fromEntries(report.repairs.map((r) => [r.invoiceNumber, r.actions.join(' | ')]));
    expect(actions[paid.number]).toMatch(/imported 1 payment/);
    expect(actions[deleted.number]).toMatch(/re-created provider record/);
    expect(actions[edited.number]).toMatch(/set provider amount\/outstanding 75000\/75000 to 70000\/70000/);
    expect(actions[drafted.number]).toMatch(new RegExp(`deleted provider record ${stale.body.id}`));
    expect(actions[paidDraft.number]).toMatch(new RegExp(`left provider record ${staleWithMoney.body.id}: it has 1 payment`));
    expect(actions[settled.number]).toMatch(/nothing is owed, so none is re-created/);

    // The provider and billflow agree again.
    expect((await api<Invoice>('GET', `/v1/invoices/${paid.number}`)).body).toMatchObject({ outstanding: 70_000, settlement: 'Partially settled' });
    const recreated = (await api<Invoice>('GET', `/v1/invoices/${deleted.number}`)).body;
    expect(recreated.providerInvoiceId).not.toBe(deleted.providerInvoiceId);
    // A new page at the provider; billflow's link is the one the client already has.
    expect(recreated.providerPaymentUrl).not.toBe(deleted.providerPaymentUrl);
    expect(recreated.payNowUrl).toBe(deleted.payNowUrl);
    expect((await atProvider('GET', `/v1/invoices/${recreated.providerInvoiceId}`)).body).toMatchObject({ number: deleted.number, amount: 40_000, outstanding: 40_000, pdf: expect.any(Object) });
    expect((await fetch(recreated.payNowUrl)).status).toBe(200);
    expect((await atProvider('GET', `/v1/invoices/${edited.providerInvoiceId}`)).body).toMatchObject({ amount: 70_000, outstanding: 70_000 });
    expect((await atProvider('GET', `/v1/invoices/${stale.body.id}`)).status).toBe(404);
    expect((await atProvider('GET', `/v1/invoices/${staleWithMoney.body.id}`)).status).toBe(200);
    expect((await api<Invoice>('GET', `/v1/invoices/${settled.number}`)).body).toMatchObject({ providerInvoiceId: null, payNowUrl: null, settlement: 'Settled' });
    // The held bill's record kept its old figures: only the operator's release sends the new ones.
    expect((await atProvider('GET', `/v1/invoices/${held.providerInvoiceId}`)).body).toMatchObject({ amount: 20_000 });
    // The re-created record's PDF prints the same link.
    const pdf = await invoicePdf(stack, tenant.apiKey, deleted.number);
    expect(await pdfText(pdf.bytes)).toContain(recreated.payNowUrl);
    // Records billflow does not own are reported and left alone; an invoice in step was not touched.
    expect((await atProvider('GET', `/v1/invoices/${foreign.body.id}`)).status).toBe(200);
    expect(report.repairs.map((r) => r.invoiceNumber)).not.toContain(inStep.number);

    // Every repair call carried the reconciliation's correlation id.
    const calls = await atProvider<{ data: { method: string }[] }>('GET', '/v1/sandbox/requests?requestId=reconcile-test');
    expect(calls.body.data.map((c) => c.method)).toEqual(expect.arrayContaining(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']));

    // A second run finds only what was left for a person.
    const again = await api<Report>('POST', '/v1/reconciliations');
    expect(again.status).toBe(201);
    expect(again.body.findings.map((f) => [f.kind, f.number]).sort()).toEqual(
      [
        ['stale-at-provider', paidDraft.number],
        ['unknown-at-provider', foreignNumber],
      ].sort(),
    );
    await atProvider('PATCH', `/v1/accounts/${tenant.account.id}`, { webhookUrl: `${stack.apiUrl}/webhooks/provider/${tenant.companyId}` });
  });

  it('records a run the provider refuses, and says why', async () => {
    const revoked = await createTenant(stack);
    // The account's key was revoked at the provider since it was registered.
    const stored = await http(stack.apiUrl, 'PATCH', `/v1/companies/${revoked.companyId}`, { key: ADMIN_KEY, body: { provider: { apiKey: 'sk_test_revoked' } } });
    expect(stored.status).toBe(200);
    const r = await http<Body>(stack.apiUrl, 'POST', '/v1/reconciliations', { key: revoked.apiKey });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ type: expect.stringContaining('reconciliation-failed'), detail: expect.stringContaining('401') });
    const listed = await http<{ data: { id: string; status: string; failed: string }[] }>(stack.apiUrl, 'GET', '/v1/reconciliations', { key: revoked.apiKey });
    expect(listed.body.data).toEqual([expect.objectContaining({ status: 'failed', failed: expect.stringContaining('401') })]);
  });

  it('follows the company settings the operator changes', async () => {
    const t = await createTenant(stack);
    const patch = (body: unknown, id = t.companyId) => http<Body>(stack.apiUrl, 'PATCH', `/v1/companies/${id}`, { key: ADMIN_KEY, body });
    const changed = await patch({ reconcileSeconds: 3600, reminderDays: [7, 0] });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body).toMatchObject({ reconcileSeconds: 3600, reminderDays: [0, 7], paymentImportSeconds: 3600, reconcileScheduleId: reconcileScheduleId(t.companyId) });
    const schedule = stack.temporal.schedule.getHandle(reconcileScheduleId(t.companyId));
    expect((await schedule.describe()).spec.intervals).toEqual([expect.objectContaining({ every: 3_600_000 })]);

    // Turning the integration off removes the schedule; a reconciliation is then refused.
    expect((await patch({ provider: { enabled: false } })).body).toMatchObject({ provider: { enabled: false }, reconcileScheduleId: null });
    await expect(schedule.describe()).rejects.toThrow();
    expect((await http(stack.apiUrl, 'POST', '/v1/reconciliations', { key: t.apiKey })).status).toBe(409);
    // On again with the stored account: the schedule is back.
    expect((await patch({ provider: { enabled: true } })).status).toBe(200);
    expect((await schedule.describe()).scheduleId).toBe(reconcileScheduleId(t.companyId));

    const bare = `co-${randomUUID().slice(0, 8)}`;
    expect((await http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body: { id: bare, name: 'No account yet' } })).status).toBe(201);
    const missing = await patch({ provider: { enabled: true, url: stack.sandboxUrl } }, bare);
    expect(missing.body).toMatchObject({ status: 422, field: 'provider.accountId' });
    expect((await patch({ name: 'x' }, 'no-such-company')).status).toBe(404);
    expect((await patch({})).status).toBe(422);
    expect((await http(stack.apiUrl, 'PATCH', `/v1/companies/${t.companyId}`, { key: t.apiKey, body: { name: 'x' } })).status).toBe(401);
  });

  it('is refused for a company without the provider integration', async () => {
    const off = await createTenant(stack, { providerEnabled: false });
    const r = await http(stack.apiUrl, 'POST', '/v1/reconciliations', { key: off.apiKey });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ type: expect.stringContaining('provider-disabled') });
  });
});

describe('a repair a payment overtakes', () => {
  let raced: Stack;
  let t: Tenant;
  // The payer pays right after the repair's last read of the record and before its update: the
  // second `getProviderInvoice` of the run whose correlation id this names.
  let payAfterRead: { requestId: string; reads: number; pay: () => Promise<void> } | null = null;
  const payer: ActivityInterceptorsFactory = (ctx) => ({
    inbound: {
      async execute(input, next) {
        const result = await next(input);
        const race = payAfterRead;
        if (race && ctx.info.activityType === 'getProviderInvoice' && (input.args[0] as { requestId?: string }).requestId === race.requestId && ++race.reads === 2) {
          payAfterRead = null;
          await race.pay();
        }
        return result;
      },
    },
  });

  beforeAll(async () => {
    raced = await startStack({ workerOptions: { interceptors: { activity: [payer] } } });
    t = await createTenant(raced);
  });

  afterAll(async () => {
    await raced?.stop();
  });

  it("imports the payment and sets the provider's figures again, so its books add up", async () => {
    const call = <T = Body>(method: string, path: string, body?: unknown) => http<T>(raced.apiUrl, method, path, { key: t.apiKey, body });
    const provider = <T = Body>(method: string, path: string, body?: unknown) => http<T>(raced.sandboxUrl, method, path, { key: t.account.apiKey, body });
    expect((await call('POST', '/v1/clients', { id: 'CL-RACE', name: 'Race Builders' })).status).toBe(201);
    const number = `INV-${randomUUID().slice(0, 8)}`;
    expect((await call('POST', '/v1/invoices', { number, clientId: 'CL-RACE', invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Survey', amount: 50_000 }] })).status).toBe(
      201,
    );
    const final = await call<Invoice>('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    const recordId = final.body.providerInvoiceId;
    // Edited at the provider by hand: the reconciliation finds the figures differ.
    expect((await provider('PATCH', `/v1/invoices/${recordId}`, { amount: 55_000, outstanding: 55_000 })).status).toBe(200);
    const customerId = (await provider<{ customerId: string }>('GET', `/v1/invoices/${recordId}`)).body.customerId;
    const requestId = `race-${randomUUID().slice(0, 8)}`;
    let paymentId = '';
    payAfterRead = {
      requestId,
      reads: 0,
      pay: async () => {
        const paid = await provider<{ id: string }>('POST', '/v1/payments', { customerId, allocations: [{ invoiceId: recordId, amount: 20_000 }], method: 'card' });
        expect(paid.status).toBe(201);
        paymentId = paid.body.id;
      },
    };

    const run = await http<Report>(raced.apiUrl, 'POST', '/v1/reconciliations', { key: t.apiKey, headers: { 'x-request-id': requestId } });
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    const report = await eventually(async () => {
      const r = await call<Report>('GET', `/v1/reconciliations/${run.body.id}`);
      return r.body.repairs.length === 1 ? r.body : undefined;
    }, 'the repair');
    expect(paymentId, 'the payer paid during the repair').not.toBe('');
    expect(report.repairs[0]!.actions).toEqual([
      'set provider amount/outstanding 55000/55000 to 50000/50000',
      'imported 1 payment(s) made during the repair',
      'set provider amount/outstanding 50000/50000 to 50000/30000',
    ]);
    const invoice = await call<Invoice>('GET', `/v1/invoices/${number}`);
    expect(invoice.body.outstanding).toBe(30_000);
    expect((await provider<{ amount: number; outstanding: number }>('GET', `/v1/invoices/${recordId}`)).body).toMatchObject({ amount: 50_000, outstanding: 30_000 });
  });
});
