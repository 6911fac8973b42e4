/**
 * `/docs` in a real browser (playwright-core driving Debian's Chromium), offline: every request the
 * page makes to another origin is blocked and recorded, and none may be attempted. The page must
 * show every operation of /openapi.json with its request example, and "Try it out" must send that
 * example to the API for real. Screenshots are kept in test-output/docs.png
 * (the top of the page) and docs-invoice.png (an operation's example).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../api/openapi.js';
import { ROOT } from '../lib/paths.js';
import { createTenant, http, startStack, type Stack } from './harness.js';
import { launchBrowser } from './support.js';

let stack: Stack;
let browser: Browser;
let page: Page;
const OUT = path.join(ROOT, 'test-output');
/** Requests to any origin but the API's (attempted, and blocked). */
const elsewhere: string[] = [];
/** Requests to the API's origin, which the same interception let through (so it saw every request). */
let ours = 0;
/** Console errors and uncaught exceptions of the page (a Content-Security-Policy refusal is one). */
const errors: string[] = [];

beforeAll(async () => {
  stack = await startStack({ worker: false });
  browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const origin = new URL(stack.apiUrl).origin;
  await context.route('**/*', async (route) => {
    if (new URL(route.request().url()).origin === origin) {
      ours++;
      return route.continue();
    }
    elsewhere.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const operations = Object.entries(openapi.paths as unknown as Record<string, Record<string, unknown>>).flatMap(([p, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${p}`));

/** The operation block of "METHOD /path" on the page. */
const block = (method: string, p: string) => page.locator(`.opblock-${method.toLowerCase()}:has(.opblock-summary-path[data-path="${p}"])`);

describe('/docs', () => {
  it('renders every operation of the description from files the API serves itself', async () => {
    const answer = await page.goto(`${stack.apiUrl}/docs`);
    expect(answer?.status()).toBe(200);
    expect(answer?.headers()['content-security-policy']).toContain("default-src 'self'");
    await page.locator('.opblock').first().waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('.opblock').count()).toBe(operations.length);
    const shown = await page.$$eval('.opblock', (blocks) =>
      blocks.map((b) => `${b.querySelector('.opblock-summary-method')?.textContent} ${b.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`),
    );
    expect(shown.sort()).toEqual([...operations].sort());
    expect(await page.locator('.info .title').textContent()).toContain(openapi.info.title);
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'docs.png') });
  });

  it("shows an operation's request example and its problem types", async () => {
    const create = block('POST', '/v1/invoices');
    await create.locator('.opblock-summary').first().click();
    const example = create.locator('.opblock-section-request-body .highlight-code');
    await expect.poll(() => example.textContent()).toContain('"number": "INV-2026-0042"');
    expect(await example.textContent()).toContain('"amount": 735000');
    expect(await create.locator('.responses-table').textContent()).toContain('invoice-exists');
    await create.locator('.opblock-section-request-body').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(OUT, 'docs-invoice.png') });
  });

  it('sends the example with "Try it out" to the API and shows its answer', async () => {
    const tenant = await createTenant(stack);
    await page.locator('.auth-wrapper .authorize').click();
    // The modal has a form per security scheme: the company/organisation key's is `bearer`.
    const bearer = page.locator('.auth-container').filter({ has: page.locator('xpath=.//h4/code[text()="bearer"]') });
    await bearer.locator('input').fill(tenant.apiKey);
    await bearer.getByRole('button', { name: 'Apply credentials' }).click();
    await bearer.locator('.btn-done').click();

    const create = block('POST', '/v1/clients');
    await create.locator('.opblock-summary').first().click();
    await create.getByRole('button', { name: 'Try it out' }).click();
    await create.getByRole('button', { name: 'Execute' }).click();
    const status = create.locator('.live-responses-table tbody .response-col_status').first();
    await expect.poll(() => status.textContent(), { timeout: 15_000 }).toContain('201');
    // The client the page made, read back through the API.
    const client = await http(stack.apiUrl, 'GET', '/v1/clients/CL-ACME', { key: tenant.apiKey });
    expect(client.status).toBe(200);
    expect(client.body).toMatchObject({ id: 'CL-ACME', name: 'Acme Corporation', email: 'ap@acme.example' });
  });

  it('asked for nothing outside the API, and the page reported no error', () => {
    // The page, its stylesheet, two scripts, /openapi.json and the Try-it-out request at least.
    expect(ours).toBeGreaterThanOrEqual(6);
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
  });
});
