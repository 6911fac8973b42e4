/**
 * `npm run demo`: plays the ERP against the running engine (`npm start` in another terminal):
 * a company with its provider account, a client, a draft invoice, printed to Final.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { publicUrls } from '../lib/config.js';
import { ROOT } from '../lib/paths.js';

const urls = publicUrls();
const uiUrl = process.env.TEMPORAL_UI_URL ?? `http://127.0.0.1:${process.env.TEMPORAL_UI_PORT ?? 8233}`;
const keyFile = path.join(process.env.BILLFLOW_DATA_DIR ?? path.join(ROOT, 'data'), 'admin-key');
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
const companyId = `demo-${suffix}`;
const step = (msg: string) => process.stdout.write(`\n> ${msg}\n`);

step(`create a provider (sandbox) account for company ${companyId}`);
const account = await call<{ id: string; apiKey: string; webhookSecret: string }>(urls.sandbox, 'POST', '/v1/accounts', {
  name: `Demo Engineering ${suffix}`,
  webhookUrl: `${urls.api}/webhooks/provider/${companyId}`,
});

step('register the company with billflow (operator key)');
const company = await call<{ apiKey: string }>(
  urls.api,
  'POST',
  '/v1/companies',
  {
    id: companyId,
    name: `Demo Engineering ${suffix}`,
    paymentImportSeconds: 300,
    provider: { enabled: true, url: urls.sandbox, accountId: account.id, apiKey: account.apiKey, webhookSecret: account.webhookSecret },
  },
  adminKey,
);

step('register a client and a draft invoice');
await call(urls.api, 'POST', '/v1/clients', { id: 'CL-100', name: 'Riverside Architects', email: 'ap@riverside.example' }, company.apiKey);
const number = `INV-${suffix}`;
await call(
  urls.api,
  'POST',
  '/v1/invoices',
  {
    number,
    clientId: 'CL-100',
    invoiceDate: new Date().toISOString().slice(0, 10),
    dueDate: new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10),
    lines: [
      { description: 'Structural design, 12 h', quantity: 12, unitPrice: 14_500, amount: 174_000 },
      { description: 'Site visit', amount: 9_500 },
    ],
  },
  company.apiKey,
);

step('print it to Final');
const final = await call<{ payNowUrl: string; outstanding: number; workflowId: string }>(
  urls.api,
  'POST',
  `/v1/invoices/${number}/status`,
  { status: 'Final' },
  company.apiKey,
);

process.stdout.write(`
Invoice ${number} is Final; $${(final.outstanding / 100).toFixed(2)} outstanding.

  Pay it (test card 4242 4242 4242 4242):  ${final.payNowUrl}
  Its workflow in the Temporal Web UI:     ${uiUrl}/namespaces/default/workflows/${encodeURIComponent(final.workflowId)}
  Find it by number:                       ${uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(`InvoiceNumber="${number}"`)}
  The invoice PDF:   curl -H 'Authorization: Bearer ${company.apiKey}' ${urls.api}/v1/invoices/${number}/pdf -o ${number}.pdf
  After paying, the ERP's receipts feed:
                     curl -H 'Authorization: Bearer ${company.apiKey}' ${urls.api}/v1/receipts
`);
