/**
 * No secret leaks into what operators read: every log line of the API's and the worker's loggers,
 * and every Temporal history (and schedule) of a run like a user's (an organisation and a company
 * registered, an invoice printed to Final and paid through the provider's webhook, the provider
 * account's secrets changed, a reconciliation, one refused by the provider), is scanned for every
 * API key and secret: the provider API keys and webhook secrets, the company and organisation keys,
 * the operator key and BILLFLOW_SECRET_KEY. None may appear, in plain text, base64 or hex.
 */
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.js';
import { reconcileScheduleId } from '../workflows/reconcile-contract.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { webhookDelivered } from './settled.js';
import { onWorkerLog } from './stack.js';

const logLines: string[] = [];
let stack: Stack;
let stopListening: () => void;

beforeAll(async () => {
  stopListening = onWorkerLog((entry) => logLines.push(JSON.stringify({ level: entry.level, message: entry.message, meta: entry.meta })));
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  stack = await startStack({ log: createLogger('api', out) });
});

afterAll(async () => {
  stopListening?.();
  await stack?.stop();
});

/** Every string and every byte string (decoded) anywhere in a value: payloads are bytes in a history. */
function texts(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (value instanceof Uint8Array) into.push(Buffer.from(value).toString('utf8'), Buffer.from(value).toString('latin1'));
  else if (Array.isArray(value)) for (const v of value) texts(v, into);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) texts(v, into);
  return into;
}

/** A secret in the forms it could be written in. */
const spellings = (secret: string) => [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex')];

describe('a full run', () => {
  let tenant: Tenant;
  const secrets: Record<string, string> = {};

  it('runs like a user would: registration, Final, payment, secret changes, reconciliations', async () => {
    const org = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id: `org-${randomUUID().slice(0, 8)}`, name: 'Scan Group' } });
    expect(org.status).toBe(201);
    tenant = await createTenant(stack);
    Object.assign(secrets, {
      'provider API key': tenant.account.apiKey,
      'provider webhook secret': tenant.account.webhookSecret,
      'company API key': tenant.apiKey,
      'organisation API key': org.body.apiKey,
      'operator key': ADMIN_KEY,
      BILLFLOW_SECRET_KEY: stack.secrets.current.key.toString('base64'),
    });
    const erp = (method: string, path: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, path, { key: tenant.apiKey, body });
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await erp('POST', '/v1/clients', { id: clientId, name: 'Scan Client', email: 'ap@scan.example' })).status).toBe(201);
    const number = `SCAN-${randomUUID().slice(0, 8)}`;
    expect((await erp('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Design', amount: 75_000 }] })).status).toBe(201);
    const final = await erp('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
    expect(final.status, JSON.stringify(final.body)).toBe(200);

    // The payer pays at the provider; its signed webhook reaches billflow.
    const acct = { key: tenant.account.apiKey };
    const customer = (await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct)).body.data[0]!;
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      ...acct,
      body: { customerId: customer.id, method: 'card', allocations: [{ invoiceId: final.body.providerInvoiceId, amount: 75_000 }] },
    });
    expect(paid.status).toBe(201);
    await webhookDelivered(stack, tenant, paid.body.id);
    await eventually(async () => ((await erp('GET', `/v1/invoices/${number}`)).body.outstanding === 0 ? true : undefined), 'the invoice to be paid');

    // Requests that are refused: a wrong key, a forged webhook.
    expect((await http(stack.apiUrl, 'GET', '/v1/invoices', { key: `${tenant.apiKey}x` })).status).toBe(401);
    expect((await http(stack.apiUrl, 'POST', `/webhooks/provider/${tenant.companyId}`, { raw: '{"id":"evt_forged"}', headers: { 'BillPay-Signature': 't=1,v1=00' } })).status).toBe(400);

    // A reconciliation, then a rotated webhook secret and one the provider refuses (a revoked key).
    const reconciled = await erp('POST', '/v1/reconciliations');
    expect(reconciled.status, JSON.stringify(reconciled.body)).toBe(201);
    secrets['rotated webhook secret'] = `whsec_${randomUUID().replaceAll('-', '')}`;
    secrets['revoked provider API key'] = `sk_test_revoked_${randomUUID().replaceAll('-', '')}`;
    const patch = { provider: { webhookSecret: secrets['rotated webhook secret'], apiKey: secrets['revoked provider API key'] } };
    expect((await http(stack.apiUrl, 'PATCH', `/v1/companies/${tenant.companyId}`, { key: ADMIN_KEY, body: patch })).status).toBe(200);
    const refused = await erp('POST', '/v1/reconciliations');
    expect(refused.status).toBe(502);
  });

  it('leaves no secret in a log line, a workflow history or a schedule', async () => {
    expect(Object.keys(secrets)).toHaveLength(8);
    // Every workflow this stack's worker ran: the invoice's, the reconciliations'.
    const listed = await eventually(async () => {
      const ids: { workflowId: string; runId: string; type: string }[] = [];
      for await (const w of stack.temporal.workflow.list({ query: `TaskQueue = '${stack.taskQueue}'` })) ids.push({ workflowId: w.workflowId, runId: w.runId, type: w.type });
      return ids.length >= 3 ? ids : undefined;
    }, "the run's workflows to be listed");
    const histories = await Promise.all(listed.map(async (w) => ({ ...w, history: await stack.temporal.workflow.getHandle(w.workflowId, w.runId).fetchHistory() })));
    const schedule = await stack.temporal.schedule.getHandle(reconcileScheduleId(tenant.companyId)).describe();
    expect(histories.map((h) => h.type)).toEqual(expect.arrayContaining(['invoiceWorkflow']));
    expect(logLines.length).toBeGreaterThan(10);

    const places: [string, string[]][] = [
      ...logLines.map((l, i): [string, string[]] => [`log line ${i}: ${l.slice(0, 200)}`, [l]]),
      ...histories.map((h): [string, string[]] => [`history of ${h.type} ${h.workflowId}`, texts(h.history)]),
      ['the reconciliation schedule', texts(schedule)],
    ];
    const found: string[] = [];
    for (const [what, secret] of Object.entries(secrets)) {
      for (const [where, contents] of places) {
        if (spellings(secret).some((s) => contents.some((c) => c.includes(s)))) found.push(`${what} in ${where}`);
      }
    }
    process.stdout.write(
      `secret scan: ${Object.keys(secrets).length} secrets, ${logLines.length} log lines, ${histories.length} histories (${histories.reduce((n, h) => n + (h.history.events?.length ?? 0), 0)} events), 1 schedule: ${found.length} found\n`,
    );
    expect(found).toEqual([]);
  });

  it("keeps no provider key or webhook secret in plain text in any of billflow's tables", async () => {
    const tables = await stack.sql<{ name: string }[]>`
      SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`;
    const provider = ['provider API key', 'provider webhook secret', 'rotated webhook secret', 'revoked provider API key'];
    const found: string[] = [];
    for (const { name } of tables) {
      for (const what of provider) {
        const [hit] = await stack.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM ${stack.sql(name)} t WHERE strpos(t::text, ${secrets[what]!}) > 0`;
        if (hit!.n > 0) found.push(`${what} in ${name}`);
      }
    }
    process.stdout.write(`secret scan: ${tables.length} tables, ${found.length} plain-text provider secrets\n`);
    expect(found).toEqual([]);
  });
});
