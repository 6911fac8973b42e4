/**
 * Tenant isolation, swept from the API's own description (/openapi.json): every operation is called
 * on company A's things with credentials that do not cover A (company B's key, B's key naming A, an
 * organisation key of other companies with and without the company header, the operator key where
 * it does not belong, an unknown key, no key), and the same call on ids that exist nowhere. None may
 * succeed on A's things, every answer must equal the unknown-id answer (status, problem type, field,
 * detail), no answer may carry anything of A, and A (read with A's own key, at the provider sandbox
 * and in the mailbox) is the same afterwards. An operation the tables below cannot fill fails the
 * sweep, so a new route cannot slip past it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { signPayload, SIGNATURE_HEADER } from '../lib/signature.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox } from './mail.js';
import { webhookDelivered } from './settled.js';

type Body = Record<string, unknown>;

/** One company's things, as the sweep names them in paths and bodies. */
interface Things {
  companyId: string;
  organisationId: string;
  clientId: string;
  projectId: string;
  draft: string;
  final: string;
  reissue: string;
  /** A provider payment that left Final (so billflow tracks its holds). */
  paymentId: string;
  prepaymentId: string;
  templateId: string;
  templateName: string;
  tagName: string;
  billRunId: string;
  reconciliationId: string;
  receiptId: string;
  webhookEndpointId: string;
  /** A delivery of A's endpoint (nothing sends it here: this stack runs no dispatcher). */
  deliveryId: string;
  /** The Idempotency-Key A printed its Final invoice with. */
  finalKey: string;
}

/** The attacker's own things, where a call needs one to reach the part that could leak. */
interface Own {
  clientId: string;
  templateId: string;
}

interface Variant {
  /** Replaces the path built from the description (a call mixing the attacker's things with A's). */
  path?: string;
  query?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Acts on the caller's own company (its own copy of a name A also uses): may succeed, last. */
  own?: true;
  /** More to assert about an answer that succeeded. */
  check?: (body: Body) => string | null;
}

type Auth = 'erp' | 'operator' | 'public' | 'webhook';
interface Operation {
  auth: Auth;
  /** A listing: answers 200 with the caller's own data, which must hold nothing of A. */
  listing?: true;
  variants?: (t: Things, own: Own, params: Record<string, string>) => Variant[];
}

const MARK = `alpha-${randomUUID().slice(0, 12)}`;
const lines = [{ description: `Structural survey ${MARK}`, amount: 100_000 }];
const quickPay = { paymentType: 'cash', paymentMethod: 'cash', issuedOn: '2026-11-20', category: 'sweep', receivedByUser: 'mallory', receivedByUnit: 'sweep' };
/** A's own Idempotency-Key for printing its Final invoice: replayed by the attackers. */
const A_FINAL_KEY = `a-final-${randomUUID()}`;

/** How each path parameter is filled from a company's things (several values: one call each). */
const PATH_PARAMS: Record<string, (t: Things, path: string) => string[]> = {
  id: (t, path) => {
    const byResource: Record<string, string> = {
      projects: t.projectId,
      companies: t.companyId,
      clients: t.clientId,
      'message-templates': t.templateId,
      'bill-runs': t.billRunId,
      reconciliations: t.reconciliationId,
      'webhook-endpoints': t.webhookEndpointId,
    };
    const v = byResource[path.split('/')[2]!];
    if (!v) throw new Error(`the sweep does not know which thing {id} is in ${path}: add it to PATH_PARAMS`);
    return [v];
  },
  number: (t) => [t.draft, t.final, t.reissue],
  // A Pay Now link is the capability itself (128 random bits): a company's ids lead to none.
  token: (t) => [t.final, t.companyId],
  paymentId: (t) => [t.paymentId],
  deliveryId: (t) => [t.deliveryId],
  name: (t) => [t.tagName],
  companyId: (t) => [t.companyId],
};

/** How each operation of the description is called on a company's things. */
const OPERATIONS: Record<string, Operation> = {
  'GET /healthz': { auth: 'public' },
  'GET /readyz': { auth: 'public' },
  'GET /pay/{token}': { auth: 'public' },
  'GET /metrics': { auth: 'operator' },
  'POST /v1/organisations': { auth: 'operator', variants: (t) => [{ body: { id: t.organisationId, name: 'Taken over' } }] },
  'POST /v1/companies': { auth: 'operator', variants: (t) => [{ body: { id: t.companyId, name: 'Taken over' } }] },
  'PATCH /v1/companies/{id}': { auth: 'operator', variants: () => [{ body: { name: 'Taken over', reminderDays: [1] } }] },
  'GET /v1/companies': { auth: 'erp', listing: true },
  'POST /v1/projects': {
    auth: 'erp',
    variants: (t, own) => [
      { body: { id: `P-${randomUUID().slice(0, 8)}`, name: 'Sweep', clientId: t.clientId } },
      { body: { id: `P-${randomUUID().slice(0, 8)}`, name: 'Sweep', clientId: own.clientId, companyId: t.companyId } },
      { body: { id: t.projectId, name: 'Sweep', clientId: own.clientId }, own: true },
    ],
  },
  'GET /v1/projects': { auth: 'erp', listing: true, variants: (t) => [{}, { query: `?clientId=${t.clientId}` }] },
  'GET /v1/projects/{id}': { auth: 'erp' },
  'POST /v1/clients': { auth: 'erp', variants: (t) => [{ body: { id: t.clientId, name: 'Mallory', email: freshAddress('mallory') }, own: true }] },
  'PUT /v1/clients/{id}/invoice-email-template': { auth: 'erp', variants: () => [{ body: { subject: 'Pay {{payNowUrl}}', body: 'Pay now' } }] },
  'PATCH /v1/clients/{id}': { auth: 'erp', variants: () => [{ body: { name: 'Mallory', creditLimit: 1, deliveryPreference: 'print' } }] },
  'GET /v1/clients/{id}': { auth: 'erp' },
  'POST /v1/invoices': {
    auth: 'erp',
    variants: (t, own) => {
      const fresh = () => `INV-${randomUUID().slice(0, 8)}`;
      const base = { invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines: [{ description: 'Sweep', amount: 1_000 }] };
      return [
        { body: { ...base, number: fresh(), projectId: t.projectId } },
        { body: { ...base, number: fresh(), clientId: t.clientId } },
        { body: { ...base, number: fresh(), projectId: t.projectId, clientId: own.clientId } },
        // The caller's own invoice under A's number: numbers are unique per company (or organisation) only.
        { body: { ...base, number: t.final, clientId: own.clientId }, own: true },
      ];
    },
  },
  'GET /v1/invoices': {
    auth: 'erp',
    listing: true,
    variants: (t) => [{}, { query: `?clientId=${t.clientId}` }, { query: '?status=Final&limit=200' }],
  },
  'GET /v1/invoices/{number}': { auth: 'erp' },
  'POST /v1/invoices/{number}/status': {
    auth: 'erp',
    variants: (t, _own, p) => {
      if (p.number === t.draft) return [{ body: { status: 'Final' } }];
      if (p.number === t.reissue) return [{ body: { status: 'Final' } }, { body: { status: 'Draft' } }];
      return [
        { body: { status: 'Draft' } },
        { body: { status: 'Reissue', dryRun: true } },
        // A's own request with A's Idempotency-Key: another tenant must never get A's stored answer.
        { body: { status: 'Final' }, headers: { 'Idempotency-Key': t.finalKey } },
      ];
    },
  },
  'POST /v1/invoices/{number}/prepayments': { auth: 'erp', variants: (t) => [{ body: { prepaymentId: t.prepaymentId, amount: 100 } }] },
  'GET /v1/prepayments': { auth: 'erp', listing: true, variants: (t) => [{}, { query: `?clientId=${t.clientId}` }] },
  'GET /v1/payments/{paymentId}': { auth: 'erp' },
  'POST /v1/invoices/{number}/revision': { auth: 'erp', variants: () => [{ body: { lines: [{ description: 'Taken over', amount: 1 }] } }] },
  'POST /v1/invoices/{number}/lifecycle': { auth: 'erp', variants: () => [{ body: { state: 'Presented & Rejected', by: 'mallory' } }] },
  'POST /v1/invoices/{number}/release': { auth: 'erp', variants: () => [{ body: { by: 'mallory' } }] },
  'POST /v1/invoices/{number}/quick-pay': { auth: 'erp', variants: () => [{ body: quickPay }] },
  'PUT /v1/billing-run-definition': {
    auth: 'erp',
    variants: () => [{ body: { maxCredited: { kind: 'fixed', amount: 1 }, maxDebited: { kind: 'fixed', amount: 1 } }, own: true }],
  },
  'GET /v1/invoices/{number}/reminders': { auth: 'erp' },
  'GET /v1/invoices/{number}/pdf': { auth: 'erp' },
  'GET /v1/receipts': { auth: 'erp', listing: true, variants: () => [{ query: '?limit=200' }, { query: '?unacknowledged=true' }] },
  'POST /v1/receipts/acknowledge': { auth: 'erp', variants: (t) => [{ body: { upTo: t.receiptId }, own: true }] },
  'POST /v1/reconciliations': {
    auth: 'erp',
    variants: () => [{ own: true, headers: { prefer: 'wait=30' }, check: (b) => (b.checkedRecords === 0 ? null : `compared ${String(b.checkedRecords)} provider records`) }],
  },
  'GET /v1/reconciliations': { auth: 'erp', listing: true },
  'GET /v1/reconciliations/{id}': { auth: 'erp' },
  'POST /webhooks/provider/{companyId}': { auth: 'webhook' },
  'POST /v1/webhook-endpoints': { auth: 'erp', variants: () => [{ body: { url: 'http://127.0.0.1:9/mallory' }, own: true }] },
  'GET /v1/webhook-endpoints': { auth: 'erp', listing: true },
  'GET /v1/webhook-endpoints/{id}': { auth: 'erp' },
  'PATCH /v1/webhook-endpoints/{id}': { auth: 'erp', variants: () => [{ body: { url: 'http://127.0.0.1:9/mallory', enabled: false } }] },
  'DELETE /v1/webhook-endpoints/{id}': { auth: 'erp' },
  'POST /v1/webhook-endpoints/{id}/rotate-secret': { auth: 'erp', variants: () => [{ body: {} }] },
  'GET /v1/webhook-endpoints/{id}/deliveries': { auth: 'erp' },
  'POST /v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver': { auth: 'erp' },
  'GET /v1/message-tags': { auth: 'erp', listing: true },
  'POST /v1/message-templates': {
    auth: 'erp',
    variants: (t) => [
      // Custom tags are the company's own: A's is unknown to everyone else.
      { body: { name: `Sweep-${randomUUID().slice(0, 6)}`, subject: 'Bill #bill.number', body: `Call #custom.${t.tagName}.` } },
      // Template names are unique per company only.
      { body: { name: t.templateName, subject: 'Bill #bill.number', body: 'Pay.' }, own: true },
    ],
  },
  'GET /v1/message-templates': { auth: 'erp', listing: true },
  'GET /v1/message-templates/{id}': { auth: 'erp' },
  'PUT /v1/message-templates/{id}': { auth: 'erp', variants: () => [{ body: { name: 'Taken over', subject: 'Bill #bill.number', body: 'Pay.' } }] },
  'POST /v1/message-templates/{id}/preview': {
    auth: 'erp',
    variants: (t, own) => [{ body: { invoiceNumber: t.final } }, { path: `/v1/message-templates/${own.templateId}/preview`, body: { invoiceNumber: t.final } }],
  },
  'POST /v1/message-templates/{id}/send': {
    auth: 'erp',
    variants: (t, own) => [{ body: { invoiceNumbers: [t.final] } }, { path: `/v1/message-templates/${own.templateId}/send`, body: { invoiceNumbers: [t.final] } }],
  },
  'GET /v1/custom-tags': { auth: 'erp', listing: true },
  'PUT /v1/custom-tags/{name}': { auth: 'erp', variants: () => [{ body: { value: 'mallory' }, own: true }] },
  'DELETE /v1/custom-tags/{name}': { auth: 'erp' },
  'POST /v1/bill-runs': {
    auth: 'erp',
    variants: (t) => [
      { body: { templateId: t.templateId } },
      // The caller's own run naming A's bills selects none of them (and emails nobody of A's).
      {
        body: { criteria: { invoiceNumbers: [t.final, t.draft, t.reissue] } },
        headers: { prefer: 'wait=30' },
        own: true,
        check: (b) => (b.status === 'completed' && b.total === 0 ? null : `the run selected ${String(b.total)} bills (status ${String(b.status)})`),
      },
    ],
  },
  'GET /v1/bill-runs': { auth: 'erp', listing: true, variants: (t) => [{}, { query: `?after=${t.billRunId}` }] },
  'GET /v1/bill-runs/{id}': { auth: 'erp' },
  'GET /v1/bill-runs/{id}/items': { auth: 'erp' },
  'POST /v1/bill-runs/{id}/retry': { auth: 'erp' },
  'GET /v1/bill-runs/{id}/printout': { auth: 'erp' },
  'GET /v1/bills/{number}/pdf': { auth: 'erp' },
};

interface Credential {
  name: string;
  key?: string;
  headers?: (t: Things) => Record<string, string>;
  own: Own;
}

let stack: Stack;
let a: Tenant;
let b: Tenant;
let orgKey: string;
let o1: Tenant;
let A: Things;
let unknown: Things;
let credentials: Credential[];
let aEmail: string;
let webhookBody: string;
let endpointSecret: string;
const box = mailbox(inject('mailDevUrl'));

const asA = <T = Body>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => http<T>(stack.apiUrl, method, path, { key: a.apiKey, body, ...(headers ? { headers } : {}) });
const ok = <T>(r: { status: number; body: T }, what: string): T => {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBeLessThan(300);
  return r.body;
};

/** Every value of A's things in the unknown set's place, so two answers can be compared. */
function normalise(text: string): string {
  // Receipt and delivery ids are small numbers that occur anywhere in a text; every other value is distinctive.
  const pairs = (Object.keys(A) as (keyof Things)[])
    .filter((k) => k !== 'receiptId' && k !== 'deliveryId')
    .map((k) => [A[k], unknown[k]] as const)
    .sort((x, y) => y[0].length - x[0].length);
  return pairs.reduce((s, [from, to]) => s.split(from).join(to), text);
}

/** What an answer reveals of A: its marked texts, its keys and secrets, a record of its company. */
function leaksOfA(body: unknown): string[] {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const secrets: [string, string][] = [
    [MARK, "A's marked text"],
    [a.apiKey, "A's API key"],
    [a.account.apiKey, "A's provider API key"],
    [a.account.webhookSecret, "A's webhook secret"],
    [aEmail, "A's client's email address"],
    [endpointSecret, "A's webhook endpoint's signing secret"],
  ];
  const found = secrets.filter(([s]) => text.includes(s)).map(([, name]) => name);
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'companyId' && x === A.companyId) found.push(`a record of company A (${JSON.stringify(v).slice(0, 120)})`);
        walk(x);
      }
    }
  };
  if (typeof body === 'object') walk(body);
  return found;
}

/** Company A as A itself, the provider sandbox and A's client's mailbox see it. */
async function snapshotOfA(): Promise<Record<string, unknown>> {
  const reads: Record<string, string> = {
    draft: `/v1/invoices/${A.draft}`,
    final: `/v1/invoices/${A.final}`,
    reissue: `/v1/invoices/${A.reissue}`,
    invoices: '/v1/invoices?limit=200',
    reminders: `/v1/invoices/${A.final}/reminders`,
    client: `/v1/clients/${A.clientId}`,
    project: `/v1/projects/${A.projectId}`,
    projects: '/v1/projects',
    prepayments: '/v1/prepayments',
    payment: `/v1/payments/${A.paymentId}`,
    receipts: '/v1/receipts?limit=200',
    companies: '/v1/companies',
    templates: '/v1/message-templates',
    template: `/v1/message-templates/${A.templateId}`,
    tags: '/v1/custom-tags',
    messageTags: '/v1/message-tags',
    billRuns: '/v1/bill-runs',
    billRun: `/v1/bill-runs/${A.billRunId}`,
    billRunItems: `/v1/bill-runs/${A.billRunId}/items`,
    reconciliations: '/v1/reconciliations',
    reconciliation: `/v1/reconciliations/${A.reconciliationId}`,
    webhookEndpoints: '/v1/webhook-endpoints',
    webhookEndpoint: `/v1/webhook-endpoints/${A.webhookEndpointId}`,
    deliveries: `/v1/webhook-endpoints/${A.webhookEndpointId}/deliveries`,
  };
  const snap: Record<string, unknown> = {};
  for (const [name, path] of Object.entries(reads)) snap[name] = ok(await asA('GET', path), `A reads ${path}`);
  const pdf = await asA('GET', `/v1/invoices/${A.final}/pdf`);
  snap.pdf = [pdf.status, pdf.headers.get('etag')];
  // No API reads the billing-run definition back: the company row is what the next bill run uses.
  snap.billingRunDefinition = await stack.sql`SELECT max_credited, max_debited, name, reminder_days FROM companies WHERE id = ${A.companyId}`;
  for (const what of ['invoices', 'payments', 'customers']) {
    snap[`provider ${what}`] = ok(await http(stack.sandboxUrl, 'GET', `/v1/${what}`, { key: a.account.apiKey }), `A's provider ${what}`);
  }
  snap.mail = (await box.to(aEmail)).map((m) => [m.subject, m.time]);
  return snap;
}

beforeAll(async () => {
  stack = await startStack();
  const organisation = async (id: string) => ok(await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id, name: id } }), 'organisation').apiKey;
  // A belongs to an organisation of its own (so its invoice numbers are in the organisation index too).
  const aOrganisation = `org-a-${randomUUID().slice(0, 8)}`;
  await organisation(aOrganisation);
  a = await createTenant(stack, { organisationId: aOrganisation });
  b = await createTenant(stack);
  const otherOrganisation = `org-o-${randomUUID().slice(0, 8)}`;
  orgKey = await organisation(otherOrganisation);
  o1 = await createTenant(stack, { organisationId: otherOrganisation });
  await createTenant(stack, { organisationId: otherOrganisation });

  // The attackers' own things.
  const ownClient = `cl-own-${randomUUID().slice(0, 6)}`;
  const ownTemplate: Record<string, string> = {};
  for (const [name, key, headers] of [
    ['b', b.apiKey, {}],
    ['o1', orgKey, { 'Billflow-Company': o1.companyId }],
  ] as const) {
    ok(await http(stack.apiUrl, 'POST', '/v1/clients', { key, headers, body: { id: ownClient, name: 'Own client' } }), `${name}'s client`);
    const t = ok(await http<{ id: string }>(stack.apiUrl, 'POST', '/v1/message-templates', { key, headers, body: { name: 'Own', subject: 'Bill #bill.number', body: 'Pay.' } }), `${name}'s template`);
    ownTemplate[name] = t.id;
  }
  const ownB = { clientId: ownClient, templateId: ownTemplate.b! };
  const ownO1 = { clientId: ownClient, templateId: ownTemplate.o1! };

  // Company A's real things, made through the API. Its webhook endpoint first, so its events have deliveries.
  const endpoint = ok(await asA<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/alpha', description: `Alpha ERP ${MARK}` }), 'webhook endpoint');
  endpointSecret = endpoint.secret;
  aEmail = freshAddress('alpha');
  const clientId = `cl-${randomUUID().slice(0, 8)}`;
  ok(await asA('POST', '/v1/clients', { id: clientId, name: `Alpha Client ${MARK}`, email: aEmail }), 'client');
  const projectId = `P-${randomUUID().slice(0, 8)}`;
  ok(await asA('POST', '/v1/projects', { id: projectId, name: `Alpha Tower ${MARK}`, clientId }), 'project');
  const invoice = async (number: string) => ok(await asA('POST', '/v1/invoices', { number, projectId, invoiceDate: '2026-11-02', dueDate: '2026-12-02', lines }), `invoice ${number}`);
  const [draft, final, reissue] = ['D', 'F', 'R'].map((x) => `A${x}-${randomUUID().slice(0, 8)}`) as [string, string, string];
  for (const n of [draft, final, reissue]) await invoice(n);
  const printed = ok(await asA<{ providerInvoiceId: string }>('POST', `/v1/invoices/${final}/status`, { status: 'Final' }, { 'Idempotency-Key': A_FINAL_KEY }), 'Final');
  const toReissue = ok(await asA<{ providerInvoiceId: string }>('POST', `/v1/invoices/${reissue}/status`, { status: 'Final' }), 'Final');

  // Payers pay at the provider: part of the Final invoice, and part of the one that is then reissued (a prepayment).
  const pay = async (providerInvoiceId: string, amount: number) => {
    const record = ok(await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${providerInvoiceId}`, { key: a.account.apiKey }), 'provider record');
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      key: a.account.apiKey,
      body: { customerId: record.customerId, allocations: [{ invoiceId: providerInvoiceId, amount }], method: 'card' },
    });
    return ok(paid, 'payment').id;
  };
  const owes = (number: string, outstanding: number) =>
    eventually(async () => ((await asA<{ outstanding: number }>('GET', `/v1/invoices/${number}`)).body.outstanding === outstanding ? true : undefined), `${number} to owe ${outstanding}`);
  const finalPayment = await pay(printed.providerInvoiceId, 30_000);
  const reissuedPayment = await pay(toReissue.providerInvoiceId, 25_000);
  await owes(final, 70_000);
  await owes(reissue, 75_000);
  webhookBody = (await webhookDelivered(stack, a, finalPayment)).find((d) => d.deliveredAt !== null)!.body;
  ok(await asA('POST', `/v1/invoices/${reissue}/status`, { status: 'Reissue' }), 'Reissue');
  const prepayment = ok(await asA<{ data: { id: string }[] }>('GET', '/v1/prepayments'), 'prepayments').data[0]!;
  const receipts = ok(await asA<{ data: { id: string }[] }>('GET', '/v1/receipts?limit=200'), 'receipts').data;
  const delivery = ok(await asA<{ data: { id: string }[] }>('GET', `/v1/webhook-endpoints/${endpoint.id}/deliveries`), 'deliveries').data[0]!;

  const tagName = `hours_${randomUUID().slice(0, 6)}`;
  ok(await asA('PUT', `/v1/custom-tags/${tagName}`, { value: `Alpha office hours ${MARK}` }), 'custom tag');
  const templateName = `Alpha-${randomUUID().slice(0, 6)}`;
  const template = ok(
    await asA<{ id: string }>('POST', '/v1/message-templates', { name: templateName, subject: `Bill #bill.number ${MARK}`, body: `You owe #bill.amount_due. #custom.${tagName}` }),
    'template',
  );
  ok(await asA('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 900_000 } }), 'billing-run definition');
  const run = ok(
    await asA<{ id: string; status: string; sent: number }>('POST', '/v1/bill-runs', { criteria: { invoiceNumbers: [final] }, templateId: template.id }, { prefer: 'wait=30' }),
    'bill run',
  );
  expect(run).toMatchObject({ status: 'completed', sent: 1 });
  await box.waitForMessage((m) => m.to.some((t) => t.address === aEmail));
  const reconciliation = ok(await asA<{ id: string; status: string }>('POST', '/v1/reconciliations', undefined, { prefer: 'wait=30' }), 'reconciliation');
  expect(reconciliation.status).toBe('finished');

  A = {
    companyId: a.companyId,
    organisationId: aOrganisation,
    clientId,
    projectId,
    draft,
    final,
    reissue,
    paymentId: reissuedPayment,
    prepaymentId: prepayment.id,
    templateId: template.id,
    templateName,
    tagName,
    billRunId: run.id,
    reconciliationId: reconciliation.id,
    receiptId: receipts.at(-1)!.id,
    webhookEndpointId: endpoint.id,
    deliveryId: delivery.id,
    finalKey: A_FINAL_KEY,
  };
  // The same shapes, naming nothing that exists: what every answer about A must look like.
  const r = () => randomUUID().replace(/-/g, '');
  unknown = {
    companyId: `co-${r().slice(0, 8)}`,
    organisationId: `org-a-${r().slice(0, 8)}`,
    clientId: `cl-${r().slice(0, 8)}`,
    projectId: `P-${r().slice(0, 8)}`,
    draft: `AD-${r().slice(0, 8)}`,
    final: `AF-${r().slice(0, 8)}`,
    reissue: `AR-${r().slice(0, 8)}`,
    paymentId: `${reissuedPayment.split('_')[0]}_${r().slice(0, 16)}`,
    prepaymentId: randomUUID(),
    templateId: `tpl-${r().slice(0, 12)}`,
    templateName: `Alpha-${r().slice(0, 6)}`,
    tagName: `hours_${r().slice(0, 6)}`,
    billRunId: `run-${r().slice(0, 16)}`,
    reconciliationId: randomUUID(),
    receiptId: String(BigInt(A.receiptId) + 1_000_000_000n),
    webhookEndpointId: `we_${r().slice(0, 24)}`,
    deliveryId: String(BigInt(A.deliveryId) + 1_000_000_000n),
    finalKey: `a-final-${randomUUID()}`,
  };
  credentials = [
    { name: "company B's key", key: b.apiKey, own: ownB },
    { name: "company B's key naming the company", key: b.apiKey, headers: (t) => ({ 'Billflow-Company': t.companyId }), own: ownB },
    { name: 'an organisation key of two other companies', key: orgKey, own: ownO1 },
    { name: 'that organisation key for its company O1', key: orgKey, headers: () => ({ 'Billflow-Company': o1.companyId }), own: ownO1 },
    { name: 'that organisation key naming the company', key: orgKey, headers: (t) => ({ 'Billflow-Company': t.companyId }), own: ownO1 },
    { name: 'the operator key', key: ADMIN_KEY, own: ownB },
    { name: 'an unknown key', key: `bf_${randomUUID().replace(/-/g, '')}`, own: ownB },
    { name: 'no key', own: ownB },
  ];
});

afterAll(async () => {
  await stack?.stop();
});

describe('tenant isolation', () => {
  it("no listing of another company's key, or of an organisation key that does not cover A, shows anything of A", async () => {
    const listings = Object.entries(OPERATIONS).filter(([, op]) => op.listing);
    expect(listings.length).toBeGreaterThan(5);
    for (const [key, op] of listings) {
      const path = key.split(' ')[1]!;
      for (const c of credentials.filter((x) => x.key === b.apiKey || x.key === orgKey)) {
        for (const v of op.variants?.(A, c.own, {}) ?? [{}]) {
          const res = await http(stack.apiUrl, 'GET', `${path}${v.query ?? ''}`, { key: c.key, headers: { ...c.headers?.(A) } });
          expect(leaksOfA(res.body), `${key}${v.query ?? ''} with ${c.name}`).toEqual([]);
        }
      }
    }
    // The listings are not empty by accident: A's own key sees its things in them.
    expect(leaksOfA(ok(await asA('GET', '/v1/invoices?limit=200'), "A's invoices")).length).toBeGreaterThan(0);
    expect(leaksOfA(ok(await asA('GET', '/v1/custom-tags'), "A's custom tags")).length).toBeGreaterThan(0);
  });

  it("sweeps every operation of /openapi.json: nothing succeeds on A's things, nothing tells them from unknown ids, A is unchanged", async () => {
    const description = ok(await http<{ paths: Record<string, Record<string, unknown>> }>(stack.apiUrl, 'GET', '/openapi.json'), 'description');
    const described = Object.entries(description.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    // A new operation must be taught to the sweep; a removed one must leave it.
    expect(
      described.filter((k) => !OPERATIONS[k]),
      'operations of the description the sweep cannot fill',
    ).toEqual([]);
    expect(
      Object.keys(OPERATIONS).filter((k) => !described.includes(k)),
      'sweep entries for operations the description no longer has',
    ).toEqual([]);

    const before = await snapshotOfA();
    const leaks: string[] = [];
    const swept = new Set<string>();
    let calls = 0;
    let ownDone = 0;

    type Answer = { res: Awaited<ReturnType<typeof http>>; v: Variant; path: string };
    /** One call with A's things and the same with unknown ones, compared. */
    async function probe(key: string, c: Credential | null, build: (t: Things) => { path: string; v: Variant }) {
      const [method] = key.split(' ') as [string];
      const answers: Answer[] = [];
      for (const t of [A, unknown]) {
        const { path, v } = build(t);
        const res = await http(stack.apiUrl, method, `${path}${v.query ?? ''}`, {
          ...(c?.key ? { key: c.key } : {}),
          headers: { ...c?.headers?.(t), ...v.headers },
          ...(v.body !== undefined ? { body: v.body } : {}),
        });
        calls++;
        answers.push({ res, v, path });
      }
      swept.add(key);
      const [mine, none] = answers as [Answer, Answer];
      if (mine.v.own && mine.res.status < 300) ownDone++;
      const what = `${method} ${mine.path}${mine.v.query ?? ''}${mine.v.body ? ` ${JSON.stringify(mine.v.body).slice(0, 80)}` : ''} with ${c?.name ?? 'no key'}`;
      const op = OPERATIONS[key]!;
      const mayAnswer = op.listing || mine.v.own || op.auth === 'public';
      if (mine.res.status < 400 && !mayAnswer) leaks.push(`${what}: answered ${mine.res.status} ${JSON.stringify(mine.res.body).slice(0, 200)}`);
      if (mine.res.status >= 500) leaks.push(`${what}: server error ${JSON.stringify(mine.res.body).slice(0, 200)}`);
      for (const l of leaksOfA(mine.res.body)) leaks.push(`${what}: the answer holds ${l}`);
      // Success of one's own (a new id each time) is compared by status; everything else in full.
      const shape = (r: Answer) => {
        if (r.res.status < 300 && r.v.own) return { status: r.res.status };
        const body = r.res.body as Body;
        return { status: r.res.status, body: r.res.status >= 400 ? { type: body.type, field: body.field, detail: body.detail } : body };
      };
      const [x, y] = [normalise(JSON.stringify(shape(mine))), JSON.stringify(shape(none))];
      if (x !== y) leaks.push(`${what}: answers differently for A's things than for unknown ones:\n    A:       ${x.slice(0, 300)}\n    unknown: ${y.slice(0, 300)}`);
      for (const r of [mine, none].filter((r) => r.res.status < 300 && r.v.check)) {
        const why = r.v.check!(r.res.body as Body);
        if (why) leaks.push(`${what}: ${why}`);
      }
    }

    /** The paths of an operation with its parameters filled (one per combination). */
    function fill(path: string, t: Things): { path: string; params: Record<string, string> }[] {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      let out = [{ path, params: {} as Record<string, string> }];
      for (const n of names) {
        const how = PATH_PARAMS[n];
        if (!how) throw new Error(`the sweep does not know how to fill {${n}} in ${path}: add it to PATH_PARAMS`);
        out = out.flatMap((o) => how(t, path).map((value) => ({ path: o.path.replace(`{${n}}`, encodeURIComponent(value)), params: { ...o.params, [n]: value } })));
      }
      return out;
    }

    const ownCalls: (() => Promise<void>)[] = [];
    for (const key of described) {
      const op = OPERATIONS[key]!;
      const path = key.split(' ')[1]!;
      if (op.auth === 'webhook') continue; // below: it is authenticated by signature, not by key
      const creds: (Credential | null)[] = op.auth === 'public' ? [null] : op.auth === 'operator' ? credentials.filter((c) => c.key !== ADMIN_KEY) : credentials;
      for (const c of creds) {
        const own = c?.own ?? { clientId: '', templateId: '' };
        const instances = (t: Things) => fill(path, t).flatMap(({ path: p, params }) => (op.variants?.(t, own, params) ?? [{}]).map((v) => ({ path: v.path ?? p, v })));
        const count = instances(A).length;
        for (let i = 0; i < count; i++) {
          const run = () => probe(key, c, (t) => instances(t)[i]!);
          // The caller's own creations come last, so they cannot stand in for a refusal of A's things.
          if (instances(A)[i]!.v.own) ownCalls.push(run);
          else await run();
        }
      }
    }
    for (const run of ownCalls) await run();

    // The provider's webhook route is authenticated by the account's signature.
    const webhook = 'POST /webhooks/provider/{companyId}';
    const post = async (companyId: string, signature: string | null) => {
      calls++;
      return http(stack.apiUrl, 'POST', `/webhooks/provider/${companyId}`, { raw: webhookBody, headers: signature ? { [SIGNATURE_HEADER]: signature } : {} });
    };
    const forged = await post(A.companyId, signPayload(b.account.webhookSecret, webhookBody));
    if (forged.status !== 400 || !String((forged.body as Body).type).endsWith('/invalid-signature')) {
      leaks.push(`${webhook}: A's payment signed with B's secret on A's route answered ${forged.status} ${JSON.stringify(forged.body)}`);
    }
    const unsigned = await post(A.companyId, null);
    if (unsigned.status !== 400) leaks.push(`${webhook}: an unsigned payment on A's route answered ${unsigned.status}`);
    // Nobody signs for an unknown company either: its route must not tell A's company code from one that does not exist.
    const problemOf = (r: { status: number; body: unknown }) => JSON.stringify({ status: r.status, type: (r.body as Body).type, detail: (r.body as Body).detail });
    for (const [mine, signature] of [
      [forged, signPayload(b.account.webhookSecret, webhookBody)],
      [unsigned, null],
    ] as const) {
      const none = await post(unknown.companyId, signature);
      if (problemOf(mine) !== problemOf(none)) leaks.push(`${webhook}: A's route answers ${problemOf(mine)}, an unknown company's ${problemOf(none)}`);
    }
    // On B's own route, B's signature is good, but A's invoices are not B's to pay.
    const onB = await post(b.companyId, signPayload(b.account.webhookSecret, webhookBody));
    if (onB.status !== 200 || (onB.body as { invoices?: unknown[] }).invoices?.length !== 0) {
      leaks.push(`${webhook}: A's payment signed by B on B's route answered ${onB.status} ${JSON.stringify(onB.body)}`);
    }
    swept.add(webhook);

    // What could have changed A has answered by now: every refusal above came before any workflow
    // of A was asked, and the bill runs and reconciliations the attackers started for themselves
    // have finished (Prefer: wait, checked above).
    const after = await snapshotOfA();
    console.log(
      `tenant sweep: ${swept.size} operations of ${described.length}, ${calls} calls, ${credentials.length} credentials (${ownDone} of ${ownCalls.length} creations of the callers' own done), ${leaks.length} leaks`,
    );
    expect(leaks).toEqual([]);
    expect([...swept].sort()).toEqual([...described].sort());
    expect(after).toEqual(before);
  });

  it("the webhook this sweep forges is one A's route takes when A signs it", async () => {
    // A's own signature on the same payment is accepted (and applied once: the invoice already has it).
    const res = await http(stack.apiUrl, 'POST', `/webhooks/provider/${A.companyId}`, { raw: webhookBody, headers: { [SIGNATURE_HEADER]: signPayload(a.account.webhookSecret, webhookBody) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ invoices: [A.final] });
  });
});
