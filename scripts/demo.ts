/**
 * `npm run demo`: plays the ERP against the running engine (`npm start` in another terminal):
 * an organisation of two companies, each with its own provider account (east collects through the
 * sandbox's Bill & Pay API, west through its Stripe-compatible one); a shared client; a project per
 * company; an invoice per project, printed to Final through its company's account.
 * `npm run demo -- --cluster` does the same against `npm run cluster` (its operator key is in data/cluster).
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { publicUrls } from '../lib/config.js';
import { ROOT } from '../lib/paths.js';

const urls = publicUrls();
const uiUrl = process.env.TEMPORAL_UI_URL ?? `http://127.0.0.1:${process.env.TEMPORAL_UI_PORT ?? 8233}`;
const keyFile = path.join(process.env.BILLFLOW_DATA_DIR ?? path.join(ROOT, 'data', ...(process.argv.includes('--cluster') ? ['cluster'] : [])), 'admin-key');
const adminKey = process.env.BILLFLOW_ADMIN_KEY ?? (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : '');
if (!adminKey) throw new Error('no operator key: start the engine with `npm start` first, or set BILLFLOW_ADMIN_KEY');

async function call<T>(base: string, method: string, p: string, body?: unknown, key?: string): Promise<T> {
  const res = await fetch(`${base}${p}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${p} -> ${res.status}: ${JSON.stringify(json)}`);
  return json;
}

const suffix = randomUUID().slice(0, 6);
const organisationId = `demo-${suffix}`;
const step = (msg: string) => process.stdout.write(`\n> ${msg}\n`);
const today = new Date().toISOString().slice(0, 10);
const in30Days = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);

step(`register organisation ${organisationId}: one ERP connection over two companies (operator key)`);
const organisation = await call<{ apiKey: string }>(urls.api, 'POST', '/v1/organisations', { id: organisationId, name: `Demo Group ${suffix}` }, adminKey);

const companies = [
  { id: `${organisationId}-east`, name: `Demo Engineering East ${suffix}`, kind: 'billpay' as const, currency: 'USD' },
  { id: `${organisationId}-west`, name: `Demo Engineering West ${suffix}`, kind: 'stripe' as const, currency: 'EUR' },
];
for (const c of companies) {
  step(`company ${c.id}: its own ${c.kind === 'stripe' ? 'Stripe' : 'Bill & Pay'} (sandbox) account, then registered with billflow`);
  const account = await call<{ id: string; apiKey: string; webhookSecret: string }>(urls.sandbox, 'POST', '/v1/accounts', {
    name: c.name,
    ...(c.kind === 'billpay' ? { webhookUrl: `${urls.api}/webhooks/provider/${c.id}` } : {}),
  });
  // A Stripe company needs only its secret key: billflow makes its own webhook endpoint in the account.
  const provider =
    c.kind === 'stripe'
      ? { enabled: true, kind: 'stripe', url: urls.stripeSandbox, apiKey: account.apiKey }
      : { enabled: true, url: urls.sandbox, accountId: account.id, apiKey: account.apiKey, webhookSecret: account.webhookSecret };
  await call(urls.api, 'POST', '/v1/companies', { id: c.id, name: c.name, organisationId, currency: c.currency, paymentImportSeconds: 300, provider }, adminKey);
}

const key = organisation.apiKey;
step('the ERP, with the organisation key: a client (shared by both companies) and a project in each company');
await call(urls.api, 'POST', '/v1/clients', { id: 'CL-100', name: 'Riverside Architects', email: 'ap@riverside.example' }, key);
const projects = companies.map((c, i) => ({ id: `P-${suffix}-${i + 1}`, companyId: c.id }));
for (const p of projects) await call(urls.api, 'POST', '/v1/projects', { ...p, name: `Pier ${p.id}`, clientId: 'CL-100' }, key);

step("a draft invoice per project, printed to Final: each goes to its project's company's provider account");
const finals: { number: string; companyId: string; currency: string; payNowUrl: string; outstanding: number; workflowId: string }[] = [];
for (const [i, p] of projects.entries()) {
  const number = `INV-${suffix}-${i + 1}`;
  await call(
    urls.api,
    'POST',
    '/v1/invoices',
    {
      number,
      projectId: p.id,
      invoiceDate: today,
      dueDate: in30Days,
      lines: [
        { description: 'Structural design, 12 h', quantity: 12, unitPrice: 14_500, amount: 174_000 },
        { description: 'Site visit', amount: 9_500 * (i + 1) },
      ],
    },
    key,
  );
  finals.push({ number, ...(await call<Omit<(typeof finals)[number], 'number'>>(urls.api, 'POST', `/v1/invoices/${number}/status`, { status: 'Final' }, key)) });
}

const [first] = finals;
process.stdout.write(`
${finals.map((f) => `Invoice ${f.number} (company ${f.companyId}, ${companies.find((c) => c.id === f.companyId)!.kind}) is Final; ${f.currency} ${(f.outstanding / 100).toFixed(2)} outstanding.\n  Pay it (test card 4242 4242 4242 4242): ${f.payNowUrl}`).join('\n')}

  Its workflow in the Temporal Web UI:     ${uiUrl}/namespaces/default/workflows/${encodeURIComponent(first!.workflowId)}
  Find it by number:                       ${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`InvoiceNumber="${first!.number}"`)}
  The invoice PDF:   curl -H 'Authorization: Bearer ${key}' ${urls.api}/v1/invoices/${first!.number}/pdf -o ${first!.number}.pdf
  After paying, the ERP's receipts feed (both companies):
                     curl -H 'Authorization: Bearer ${key}' ${urls.api}/v1/receipts
`);
