/**
 * The Bill & Pay client's own quick retries, against the real sandbox and its fault injection: a
 * call that is safe to repeat (a read, or a write under its idempotency key) is tried again at
 * once after an outage, so one blip does not fail the whole activity; a refusal is never repeated,
 * and an answer lost after the provider committed comes back from the idempotency key, made once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BillPayClient } from '../activities/provider/billpay.js';
import { ProviderError } from '../activities/provider/provider.js';
import { http, startSandbox } from './stack.js';

let sandbox: { url: string; stop(): Promise<void> };

beforeAll(async () => {
  sandbox = await startSandbox(inject('sandboxDatabaseUrl'));
});

afterAll(async () => {
  await sandbox.stop();
});

async function sandboxCall<T>(key: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await http<T>(sandbox.url, method, path, { key, body });
  expect(res.status, `${method} ${path}: ${res.status}`).toBeLessThan(300);
  return res.body;
}

async function newAccount(): Promise<{ client: BillPayClient; key: string }> {
  const res = await http<{ id: string; apiKey: string }>(sandbox.url, 'POST', '/v1/accounts', { body: { name: `Acme ${randomUUID().slice(0, 8)}` } });
  expect(res.status).toBe(201);
  const { id, apiKey } = res.body;
  return { key: apiKey, client: new BillPayClient({ kind: 'billpay', url: sandbox.url, accountId: id, apiKey }) };
}

const requests = async (key: string, requestId: string) =>
  (await sandboxCall<{ data: { method: string; path: string; status: number }[] }>(key, 'GET', `/v1/sandbox/requests?requestId=${requestId}`)).data.map(
    (r) => `${r.method} ${r.path.split('?')[0]} ${r.status}`,
  );

describe("the Bill & Pay client's quick retries", () => {
  it('repeats a read and a keyed write after an outage, within the one call', async () => {
    const { client, key } = await newAccount();
    await sandboxCall(key, 'POST', '/v1/sandbox/faults', { mode: 'error', status: 503, count: 2 });
    const requestId = `rq-${randomUUID()}`;
    const customer = await client.ensureCustomer({ externalId: 'cl-1', name: 'Riverside Clinic', email: null }, requestId);
    expect(customer.externalId).toBe('cl-1');
    // The lookup failed twice and then answered; the create went through at once.
    expect(await requests(key, requestId)).toEqual(['GET /v1/customers 503', 'GET /v1/customers 503', 'GET /v1/customers 200', 'POST /v1/customers 201']);
  });

  it('gives up after two quick retries, leaving the rest to the activity', async () => {
    const { client, key } = await newAccount();
    await sandboxCall(key, 'POST', '/v1/sandbox/faults', { mode: 'error', status: 503 });
    const requestId = `rq-${randomUUID()}`;
    const failed = await client.findCustomer('cl-1', requestId).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ProviderError);
    expect((failed as ProviderError).retryable).toBe(true);
    expect(await requests(key, requestId)).toHaveLength(3);
  });

  it('never repeats a refusal', async () => {
    const { client, key } = await newAccount();
    const requestId = `rq-${randomUUID()}`;
    const failed = await client
      .createInvoice({ customerId: 'cus_missing', number: 'INV-1', invoiceDate: '2026-11-02', dueDate: '2026-12-02', amount: 100, outstanding: 100 }, `inv:${randomUUID()}`, requestId)
      .catch((e: unknown) => e);
    expect((failed as ProviderError).retryable).toBe(false);
    expect(await requests(key, requestId)).toHaveLength(1);
  });

  it('gets back the answer of a write whose answer was lost after it committed, made once', async () => {
    const { client, key } = await newAccount();
    const customer = await client.ensureCustomer({ externalId: 'cl-1', name: 'Riverside Clinic', email: null }, `rq-${randomUUID()}`);
    await sandboxCall(key, 'POST', '/v1/sandbox/faults', { mode: 'chaos', dropResponseRate: 1, count: 1, match: 'POST /v1/invoices' });
    const requestId = `rq-${randomUUID()}`;
    const invoice = await client.createInvoice(
      { customerId: customer.id, number: 'INV-7', invoiceDate: '2026-11-02', dueDate: '2026-12-02', amount: 100, outstanding: 100 },
      `inv:${randomUUID()}`,
      requestId,
    );
    expect(invoice.number).toBe('INV-7');
    expect((await sandboxCall<{ droppedResponses: number }>(key, 'GET', '/v1/sandbox/faults/injected')).droppedResponses).toBe(1);
    expect((await sandboxCall<{ data: { id: string }[] }>(key, 'GET', '/v1/invoices?number=INV-7')).data.map((i) => i.id)).toEqual([invoice.id]);
  });
});
