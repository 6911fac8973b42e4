/** Helpers shared by the benchmark's sections. */
import { type BillPayPayment } from '../activities/provider/billpay.js';
import { http, type Stack, type Tenant } from '../test/stack.js';

export const out = (s: string) => process.stdout.write(`${s}\n`);
export const ms = (n: number) => `${n.toFixed(1)} ms`;

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** Runs jobs 0..n-1 on `c` lanes; each job learns its lane, so a lane can own a resource (a page). */
export async function pool(n: number, c: number, job: (i: number, lane: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(c, n) }, async (_, lane) => {
      while (next < n) await job(next++, lane);
    }),
  );
}

export async function newClients(stack: Stack, tenant: Tenant, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `CL-${i}`);
  for (const id of ids) await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id, name: `Client ${id}`, email: `${id}@example.com` } });
  return ids;
}

export const draftBody = (number: string, clientId: string) => ({
  number, clientId, invoiceDate: '2026-11-24', dueDate: '2026-12-24',
  lines: [{ description: 'Engineering services', quantity: 8, unitPrice: 12_500, amount: 100_000 }, { description: 'Travel', amount: 4_200 }],
});

/** Pays a provider invoice's whole outstanding amount at the sandbox, as a payer on the Pay Now page would. */
export async function payAtProvider(stack: Stack, tenant: Tenant, providerInvoiceId: string): Promise<BillPayPayment> {
  const inv = await http<{ customerId: string; outstanding: number }>(stack.sandboxUrl, 'GET', `/v1/invoices/${providerInvoiceId}`, { key: tenant.account.apiKey });
  const paid = await http<BillPayPayment>(stack.sandboxUrl, 'POST', '/v1/payments', {
    key: tenant.account.apiKey,
    body: { customerId: inv.body.customerId, allocations: [{ invoiceId: providerInvoiceId, amount: inv.body.outstanding }], method: 'card' },
  });
  if (paid.status !== 201) throw new Error(`payment: ${paid.status} ${JSON.stringify(paid.body)}`);
  return paid.body;
}
