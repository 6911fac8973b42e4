/**
 * Multi-company through one ERP connection: an organisation key covers several companies, each
 * with its own provider account; an invoice goes to its project's company and that account.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, createTenant, eventually, http, invoicePdf, startStack, type Stack, type Tenant } from './harness.js';
import { pdfText } from './support.js';

type Body = Record<string, unknown>;
type Invoice = Body & { companyId: string; projectId?: string; clientId: string; payNowUrl: string | null; providerPaymentUrl: string | null; providerInvoiceId: string | null };

let stack: Stack;
let orgKey: string;
let organisationId: string;
let east: Tenant;
let west: Tenant;
const clientId = `cl-${randomUUID().slice(0, 6)}`;

const asOrg = <T = Body>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => http<T>(stack.apiUrl, method, path, { key: orgKey, body, ...(headers ? { headers } : {}) });
const asCompany = <T = Body>(t: Tenant, method: string, path: string, body?: unknown) => http<T>(stack.apiUrl, method, path, { key: t.apiKey, body });
const atProvider = <T = Body>(t: Tenant, method: string, path: string, body?: unknown) => http<T>(stack.sandboxUrl, method, path, { key: t.account.apiKey, body });

const invoiceBody = (number: string, extra: Body) => ({
  number,
  invoiceDate: '2026-11-02',
  dueDate: '2026-12-02',
  lines: [{ description: 'Structural engineering', amount: 120_000 }],
  ...extra,
});

beforeAll(async () => {
  stack = await startStack();
  organisationId = `org-${randomUUID().slice(0, 8)}`;
  const org = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id: organisationId, name: 'Harbor Group' } });
  expect(org.status, JSON.stringify(org.body)).toBe(201);
  orgKey = org.body.apiKey;
  east = await createTenant(stack, { organisationId });
  west = await createTenant(stack, { organisationId });
  expect((await asOrg('POST', '/v1/clients', { id: clientId, name: 'Riverside Architects', email: 'ap@riverside.example' })).status).toBe(201);
});

afterAll(async () => {
  await stack?.stop();
});

describe('an organisation key', () => {
  it("sends each invoice through its project's company's provider account, whose Pay Now URL it gets; the companies never mix", async () => {
    const eastProject = `P-${randomUUID().slice(0, 6)}`;
    const westProject = `P-${randomUUID().slice(0, 6)}`;
    for (const [id, t] of [
      [eastProject, east],
      [westProject, west],
    ] as const) {
      const p = await asOrg('POST', '/v1/projects', { id, name: 'Pier 4', clientId, companyId: t.companyId });
      expect(p.status, JSON.stringify(p.body)).toBe(201);
      expect(p.body).toMatchObject({ id, companyId: t.companyId, clientId });
    }

    const eastNumber = `INV-${randomUUID().slice(0, 8)}`;
    const westNumber = `INV-${randomUUID().slice(0, 8)}`;
    const created = await asOrg<Invoice>('POST', '/v1/invoices', invoiceBody(eastNumber, { projectId: eastProject }));
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ companyId: east.companyId, projectId: eastProject, clientId });
    expect((await asOrg<Invoice>('POST', '/v1/invoices', invoiceBody(westNumber, { projectId: westProject }))).body.companyId).toBe(west.companyId);

    // The invoice number alone finds the company: print both to Final with the organisation key.
    const finals: Record<string, Invoice> = {};
    for (const n of [eastNumber, westNumber]) {
      const f = await asOrg<Invoice>('POST', `/v1/invoices/${n}/status`, { status: 'Final' });
      expect(f.status, JSON.stringify(f.body)).toBe(200);
      finals[n] = f.body;
    }
    const eastFinal = finals[eastNumber]!;
    const westFinal = finals[westNumber]!;

    // Each provider record lives in its company's account, with that record's Pay Now URL; the other account cannot see it.
    const eastRecord = await atProvider<{ payNowUrl: string; invoiceNumber: string }>(east, 'GET', `/v1/invoices/${eastFinal.providerInvoiceId}`);
    expect(eastRecord.status).toBe(200);
    expect(eastRecord.body.payNowUrl).toBe(eastFinal.providerPaymentUrl);
    const westRecord = await atProvider<{ payNowUrl: string }>(west, 'GET', `/v1/invoices/${westFinal.providerInvoiceId}`);
    expect(westRecord.body.payNowUrl).toBe(westFinal.providerPaymentUrl);
    expect((await atProvider(west, 'GET', `/v1/invoices/${eastFinal.providerInvoiceId}`)).status).toBe(404);
    expect((await atProvider(east, 'GET', `/v1/invoices/${westFinal.providerInvoiceId}`)).status).toBe(404);

    // A company's own key sees only its own invoices; the organisation key lists both.
    expect((await asCompany(east, 'GET', `/v1/invoices/${eastNumber}`)).status).toBe(200);
    expect((await asCompany(east, 'GET', `/v1/invoices/${westNumber}`)).status).toBe(404);
    const listed = await eventually(async () => {
      const r = await asOrg<{ data: { number: string; companyId: string; projectId: string }[] }>('GET', `/v1/invoices?clientId=${clientId}`);
      return r.body.data.length === 2 ? r.body.data : undefined;
    }, 'both invoices in the read model');
    expect(Object.fromEntries(listed.map((i) => [i.number, [i.companyId, i.projectId]]))).toEqual({
      [eastNumber]: [east.companyId, eastProject],
      [westNumber]: [west.companyId, westProject],
    });

    // The printed invoice names its project.
    const doc = await invoicePdf(stack, east.apiKey, eastNumber);
    expect(await pdfText(doc.bytes)).toContain(`Project Pier 4 (${eastProject})`);

    // A payment at one company's account reaches the organisation's receipts feed, marked with that company.
    const record = await atProvider<{ customerId: string }>(west, 'GET', `/v1/invoices/${westFinal.providerInvoiceId}`);
    const paid = await atProvider<{ id: string }>(west, 'POST', '/v1/payments', {
      customerId: record.body.customerId,
      allocations: [{ invoiceId: westFinal.providerInvoiceId, amount: 20_000 }],
      method: 'card',
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
    const receipt = await eventually(async () => {
      const r = await asOrg<{ data: { providerPaymentId: string; companyId: string; invoices: string[] }[] }>('GET', '/v1/receipts');
      return r.body.data.find((x) => x.providerPaymentId === paid.body.id);
    }, 'the receipt in the organisation feed');
    expect(receipt).toMatchObject({ companyId: west.companyId, invoices: [westNumber] });
    const eastFeed = await asCompany<{ data: { providerPaymentId: string }[] }>(east, 'GET', '/v1/receipts');
    expect(eastFeed.body.data.map((x) => x.providerPaymentId)).not.toContain(paid.body.id);
  });

  it('refuses what it cannot route, naming the field', async () => {
    const project = `P-${randomUUID().slice(0, 6)}`;
    // With several companies, a project must name its company.
    const unnamed = await asOrg('POST', '/v1/projects', { id: project, name: 'Dock', clientId });
    expect(unnamed.status).toBe(422);
    expect(unnamed.body).toMatchObject({ type: expect.stringContaining('company-required'), field: 'companyId' });
    expect((await asOrg('POST', '/v1/projects', { id: project, name: 'Dock', clientId, companyId: 'nope' })).body).toMatchObject({ field: 'companyId' });
    expect((await asOrg('POST', '/v1/projects', { id: project, name: 'Dock', clientId, companyId: east.companyId })).status).toBe(201);
    // Project ids are unique across the organisation.
    const again = await asOrg('POST', '/v1/projects', { id: project, name: 'Dock', clientId, companyId: west.companyId });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ detail: `project ${project} already exists in company ${east.companyId}` });

    // An invoice without a project needs its company; one with a project of another company is refused.
    const number = `INV-${randomUUID().slice(0, 8)}`;
    expect((await asOrg('POST', '/v1/invoices', invoiceBody(number, { clientId }))).body).toMatchObject({ type: expect.stringContaining('company-required'), field: 'projectId' });
    const crossed = await asOrg('POST', '/v1/invoices', invoiceBody(number, { projectId: project }), { 'Billflow-Company': west.companyId });
    expect(crossed.status).toBe(422);
    expect(crossed.body).toMatchObject({ field: 'projectId', detail: expect.stringContaining(`belongs to company ${east.companyId}`) });
    expect((await asCompany(west, 'POST', '/v1/invoices', invoiceBody(number, { projectId: project }))).status).toBe(404);
    expect((await asOrg('POST', '/v1/invoices', invoiceBody(number, { projectId: project, clientId: 'someone-else' }))).body).toMatchObject({ field: 'clientId' });

    // Invoice numbers are unique across the organisation: the same number in the other company is 409, and nothing is started.
    expect((await asOrg('POST', '/v1/invoices', invoiceBody(number, { projectId: project }))).status).toBe(201);
    const twin = await asCompany(west, 'POST', '/v1/invoices', invoiceBody(number, { clientId }));
    expect(twin.status).toBe(409);
    expect(twin.body).toMatchObject({ field: 'number', detail: expect.stringContaining(east.companyId) });
    expect((await asCompany(west, 'GET', `/v1/invoices/${number}`)).status).toBe(404);

    // Per-company settings take the company from the header.
    const definition = { maxCredited: null, maxDebited: { kind: 'fixed', amount: 1_000_000 } };
    expect((await asOrg('PUT', '/v1/billing-run-definition', definition)).status).toBe(422);
    expect((await asOrg('PUT', '/v1/billing-run-definition', definition, { 'Billflow-Company': west.companyId })).status).toBe(200);
    expect((await asOrg('PUT', '/v1/billing-run-definition', definition, { 'Billflow-Company': 'nope' })).body).toMatchObject({ field: 'Billflow-Company' });
    // A value given twice is named.
    const twice = await http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body: { id: `co-${project}`, name: 'Twice', reminderDays: [7, 7] } });
    expect(twice.body).toMatchObject({ status: 422, field: 'reminderDays', detail: 'reminderDays has the same value twice (items 0 and 1)' });
    // A company key may name only its own company.
    const foreign = await http(stack.apiUrl, 'PUT', '/v1/custom-tags/region', { key: east.apiKey, body: { value: 'East' }, headers: { 'Billflow-Company': west.companyId } });
    expect(foreign.status).toBe(404);
    expect(foreign.body).toMatchObject({ field: 'Billflow-Company' });

    // One Idempotency-Key reused for another company is another request, refused rather than replayed.
    const tag = (company: string) => asOrg('PUT', '/v1/custom-tags/region', { value: 'North' }, { 'Billflow-Company': company, 'Idempotency-Key': `tag-${project}` });
    expect((await tag(east.companyId)).status).toBe(201);
    const reused = await tag(west.companyId);
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ type: expect.stringContaining('idempotency-key-reused') });
  });

  it('says an organisation has no companies yet, rather than guessing', async () => {
    const id = `org-${randomUUID().slice(0, 8)}`;
    const empty = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id, name: 'Empty' } });
    for (const [path, body] of [
      ['/v1/clients', { id: 'c', name: 'C' }],
      ['/v1/invoices', invoiceBody('INV-1', { clientId: 'c' })],
    ] as const) {
      const r = await http(stack.apiUrl, 'POST', path, { key: empty.body.apiKey, body });
      expect(r.status, path).toBe(422);
      expect(r.body, path).toMatchObject({ type: expect.stringContaining('no-companies') });
    }
  });

  it("shares clients among the organisation's companies, including one that joins later", async () => {
    const patched = await asCompany(east, 'PATCH', `/v1/clients/${clientId}`, { creditLimit: 75_000 });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect((await asCompany(west, 'GET', `/v1/clients/${clientId}`)).body).toMatchObject({ name: 'Riverside Architects', creditLimit: 75_000 });
    const later = await createTenant(stack, { organisationId });
    expect((await asCompany(later, 'GET', `/v1/clients/${clientId}`)).body).toMatchObject({ creditLimit: 75_000 });
    const companies = await asOrg<{ data: { id: string }[] }>('GET', '/v1/companies');
    expect(companies.body.data.map((c) => c.id).sort()).toEqual([east.companyId, west.companyId, later.companyId].sort());
    // Clients written while a company is being registered reach it too (the two serialise on the organisation).
    const ids = Array.from({ length: 30 }, (_, i) => `race-${i}-${randomUUID().slice(0, 4)}`);
    const writes = ids.map((id) => asOrg('POST', '/v1/clients', { id, name: 'Concurrent' }));
    const joining = createTenant(stack, { organisationId });
    const [joined] = await Promise.all([joining, ...writes]);
    const copies = await stack.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM clients WHERE company_id = ${joined.companyId} AND id = ANY(${ids}::text[])`;
    expect(copies[0]!.n).toBe(ids.length);
    // The operator key is not an ERP key, and says so.
    expect((await http(stack.apiUrl, 'GET', '/v1/companies', { key: ADMIN_KEY })).body).toMatchObject({ status: 401, detail: expect.stringContaining('operator key') });
    // A company outside the organisation does not see them.
    const outsider = await createTenant(stack);
    expect((await asCompany(outsider, 'GET', `/v1/clients/${clientId}`)).status).toBe(404);
  });
});
