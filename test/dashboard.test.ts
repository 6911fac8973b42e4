/**
 * The operator dashboard in a real browser (playwright-core driving Debian's Chromium): signed in
 * with a company key it shows that company's invoices only, with an organisation key its companies', with
 * the operator key every company's.
 * The rows are made for real: invoices printed to Final with past due dates (overdue, aged into
 * every bucket), one held above the billing-run limit, drift at the provider found by a
 * reconciliation, and an ERP webhook endpoint that refuses connections. The stack has a database of
 * its own, so its webhook loop and the page see this file's rows only. A screenshot is kept in
 * test-output/dashboard.png.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { ROOT } from '../lib/paths.js';
import { ADMIN_KEY, createTenant, eventually, http, privateDatabase, startStack, type Stack, type Tenant } from './harness.js';
import { launchBrowser } from './support.js';

let stack: Stack;
let database: Awaited<ReturnType<typeof privateDatabase>>;
let browser: Browser;
const OUT = path.join(ROOT, 'test-output');

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  database = await privateDatabase();
  stack = await startStack({ databaseUrl: database.url, webhooks: { retryFirstMs: 60_000, pollMs: 200 } });
  browser = await launchBrowser();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
  await database?.drop();
});

/** Days before today, as an ISO date. */
function daysAgo(n: number): string {
  return new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${stack.apiUrl}/dashboard`);
  await page.fill('#key', key);
  await Promise.all([page.waitForURL(`${stack.apiUrl}/dashboard`), page.click('button[type=submit]')]);
}

/** The rows of one section as the reader sees them: each cell's text. */
async function rows(page: Page, section: string): Promise<string[][]> {
  return page.$$eval(`#${section} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())));
}

describe('the operator dashboard', () => {
  let acme: Tenant;
  let other: Tenant;
  const numbers: Record<string, string> = {};

  it('is made of real rows: overdue, aged, held, drift, a failing endpoint', async () => {
    acme = await createTenant(stack);
    other = await createTenant(stack);
    const as = (t: Tenant) => (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: t.apiKey, body });
    const a = as(acme);
    const b = as(other);
    expect((await a('POST', '/v1/clients', { id: 'riverside', name: 'Riverside Architects' })).status).toBe(201);
    expect((await b('POST', '/v1/clients', { id: 'harbor', name: 'Harbor Builders' })).status).toBe(201);
    const final = async (erp: typeof a, key: string, clientId: string, dueDaysAgo: number, amount: number) => {
      const number = `${key.toUpperCase()}-${randomUUID().slice(0, 6)}`;
      numbers[key] = number;
      const created = await erp('POST', '/v1/invoices', { number, clientId, invoiceDate: daysAgo(dueDaysAgo + 30), dueDate: daysAgo(dueDaysAgo), lines: [{ description: 'Design', amount }] });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const done = await erp('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
      expect(done.status, JSON.stringify(done.body)).toBe(200);
      return done.body;
    };
    await final(a, 'current', 'riverside', -20, 10_000);
    await final(a, 'recent', 'riverside', 12, 20_000);
    const drifting = await final(a, 'aged', 'riverside', 45, 30_000);
    await final(a, 'late', 'riverside', 75, 40_000);
    await final(a, 'ancient', 'riverside', 120, 50_000);
    await final(b, 'elsewhere', 'harbor', 10, 7_000);
    // Above the company's debit limit: held as exceptional.
    expect((await a('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 60_000 } })).status).toBe(200);
    const held = await final(a, 'held', 'riverside', -10, 90_000);
    expect(held).toMatchObject({ held: true, classification: 'Max Credit Limit Amount Reached' });

    // Drift: the provider's record edited by hand, then a reconciliation.
    expect((await http(stack.sandboxUrl, 'PATCH', `/v1/invoices/${drifting.providerInvoiceId}`, { key: acme.account.apiKey, body: { amount: 31_000, outstanding: 31_000 } })).status).toBe(200);
    const run = await a('POST', '/v1/reconciliations');
    expect(run.status, JSON.stringify(run.body)).toBe(201);

    // An ERP endpoint nobody listens on: its first attempt fails.
    const endpoint = await a('POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${await deadPort()}/erp`, description: 'Ajera' });
    expect(endpoint.status).toBe(201);
    await final(a, 'notify', 'riverside', -30, 1_000);
    await eventually(async () => {
      const [e] = await stack.sql<{ failing_since: Date | null }[]>`SELECT failing_since FROM webhook_endpoints WHERE id = ${endpoint.body.id as string}`;
      return e?.failing_since ? true : undefined;
    }, 'the endpoint to fail once');
  });

  it('asks the same of the Temporal UI: Overdue and DueDate search attributes find the overdue invoices', async () => {
    const overdue = [numbers.ancient, numbers.late, numbers.aged, numbers.recent].map((n) => `Invoice:${acme.companyId}:${n}`).sort();
    const find = (query: string) =>
      eventually(async () => {
        const ids: string[] = [];
        for await (const w of stack.temporal.workflow.list({ query })) ids.push(w.workflowId);
        ids.sort();
        return JSON.stringify(ids) === JSON.stringify(overdue) ? ids : undefined;
      }, `visibility to answer ${query}`);
    await find(`Overdue = true AND CompanyId = "${acme.companyId}"`);
    await find(`DueDate < "${daysAgo(0)}T00:00:00Z" AND CompanyId = "${acme.companyId}" AND WorkflowType = "invoiceWorkflow" AND OutstandingAmount > 0`);
  });

  it('asks for a key, and refuses a wrong one', async () => {
    const anonymous = await http(stack.apiUrl, 'GET', '/dashboard');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toContain('name="key"');
    const page = await browser.newPage();
    try {
      await page.goto(`${stack.apiUrl}/dashboard`);
      await page.fill('#key', 'bf_not_a_key');
      await page.click('button[type=submit]');
      await expect.poll(() => page.textContent('[role=alert]')).toContain('not the operator key');
      expect(await page.context().cookies()).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it("shows a company key its own company's invoices, aged, overdue, held, drifting, with its failing endpoint", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    try {
      await signIn(page, acme.apiKey);
      const [cookie] = await context.cookies();
      expect(cookie).toMatchObject({ name: 'billflow_dashboard', httpOnly: true, sameSite: 'Strict', path: '/dashboard' });
      // The cookie holds who signed in, not the key.
      expect(decodeURIComponent(cookie!.value)).not.toContain(acme.apiKey);

      const overdue = await rows(page, 'overdue');
      expect(overdue.map((r) => r[0])).toEqual([numbers.ancient, numbers.late, numbers.aged, numbers.recent]);
      expect(overdue[0]).toEqual([numbers.ancient, 'Riverside Architects', `Company ${acme.companyId}`, daysAgo(120), '120', '$500.00']);
      expect(overdue.flat()).not.toContain(numbers.elsewhere);

      const held = await rows(page, 'held');
      expect(held).toEqual([[numbers.held, 'Riverside Architects', `Company ${acme.companyId}`, 'Max Credit Limit Amount Reached', '$900.00']]);
      const drift = await rows(page, 'drift');
      expect(drift.map((r) => r.slice(0, 3))).toEqual([[numbers.aged, `Company ${acme.companyId}`, 'amount or balance differs at the provider']]);
      const endpoints = await rows(page, 'endpoints');
      expect(endpoints).toHaveLength(1);
      expect(endpoints[0]![0]).toContain('Ajera');
      expect(endpoints[0]!.slice(1, 3)).toEqual([`Company ${acme.companyId}`, 'failing']);
      expect(await rows(page, 'runs')).toEqual([]);
      expect(await page.textContent('#runs')).toContain('No sending run is in progress.');

      // The chart: one bar per bucket with what is owed in it (the held invoice is not yet owed at the provider).
      const buckets = await page.$$eval('#aging g.bucket', (gs) => gs.map((g) => [g.getAttribute('data-bucket'), g.querySelector('title')?.textContent ?? '']));
      expect(buckets).toEqual([
        ['current', 'current: $110.00'],
        ['1-30 days', '1-30 days: $200.00'],
        ['31-60 days', '31-60 days: $300.00'],
        ['61-90 days', '61-90 days: $400.00'],
        ['over 90 days', 'over 90 days: $500.00'],
      ]);

      // Each invoice links to its workflow in the Temporal UI, which opens it.
      const href = await page.getAttribute(`#overdue a:text("${numbers.late}")`, 'href');
      expect(href).toBe(`${inject('temporalUiUrl')}/namespaces/default/workflows/${encodeURIComponent(`Invoice:${acme.companyId}:${numbers.late}`)}`);
      mkdirSync(OUT, { recursive: true });
      await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
      const ui = await context.newPage();
      await ui.goto(href!);
      await expect.poll(() => ui.textContent('body'), { timeout: 20_000 }).toContain(numbers.late!);
      await ui.close();

      // Signing out forgets the session.
      await Promise.all([page.waitForURL(`${stack.apiUrl}/dashboard`), page.click('header button')]);
      expect(await page.$('#key')).not.toBeNull();
    } finally {
      await context.close();
    }
  });

  it("shows an organisation key its own companies' invoices only", async () => {
    const org = await http<{ id: string; apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id: `org-${randomUUID().slice(0, 8)}`, name: 'Delta Group' } });
    expect(org.status).toBe(201);
    const member = await createTenant(stack, { organisationId: org.body.id });
    const erp = (method: string, p: string, body?: unknown) =>
      http<Record<string, unknown>>(stack.apiUrl, method, p, { key: org.body.apiKey, body, headers: { 'Billflow-Company': member.companyId } });
    expect((await erp('POST', '/v1/clients', { id: 'delta-client', name: 'Delta Client' })).status).toBe(201);
    const number = `ORG-${randomUUID().slice(0, 6)}`;
    expect((await erp('POST', '/v1/invoices', { number, clientId: 'delta-client', invoiceDate: daysAgo(40), dueDate: daysAgo(5), lines: [{ description: 'Design', amount: 5_000 }] })).status).toBe(
      201,
    );
    expect((await erp('POST', `/v1/invoices/${number}/status`, { status: 'Final' })).status).toBe(200);
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, org.body.apiKey);
      expect((await rows(page, 'overdue')).map((r) => r[0])).toEqual([number]);
      expect(await page.textContent('header')).toContain(`Company ${member.companyId}`);
    } finally {
      await context.close();
    }
  });

  it("shows the operator every company's", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      await signIn(page, ADMIN_KEY);
      const overdue = (await rows(page, 'overdue')).map((r) => r[0]);
      expect(overdue).toEqual(expect.arrayContaining([numbers.ancient, numbers.elsewhere]));
      expect(overdue.some((n) => n?.startsWith('ORG-'))).toBe(true);
      expect(await page.textContent('header')).toContain('all companies');
    } finally {
      await context.close();
    }
  });
});
