/** Helpers shared by the benchmark's sections. */
import { readdirSync, readFileSync } from 'node:fs';
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
  number,
  clientId,
  invoiceDate: '2026-11-24',
  dueDate: '2026-12-24',
  lines: [
    { description: 'Engineering services', quantity: 8, unitPrice: 12_500, amount: 100_000 },
    { description: 'Travel', amount: 4_200 },
  ],
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

/** Waits until billflow's read model says the invoice is Settled (the payment's webhook applied). */
export async function untilSettled(stack: Stack, companyId: string, number: string): Promise<void> {
  for (;;) {
    const [row] = await stack.sql<{ settlement: string }[]>`SELECT settlement FROM invoices WHERE company_id = ${companyId} AND number = ${number}`;
    if (row?.settlement === 'Settled') return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** CPU time (Linux /proc) of this process and its children (Chromium, the dev server, PostgreSQL), by name. */
export type Snap = Map<number, { comm: string; ppid: number; t: number }>;
export function cpuSnap(): Snap {
  const out: Snap = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const line = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = line.slice(line.indexOf('(') + 1, line.lastIndexOf(')'));
      const f = line.slice(line.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { comm, ppid: Number(f[1]), t: Number(f[11]) + Number(f[12]) });
    } catch {
      // the process has gone
    }
  }
  return out;
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** CPU seconds each kind of process (by name) used between two snapshots. */
export function cpuBy(a: Snap, b: Snap): Record<string, number> {
  const mine = new Set<number>([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of b) {
      if (!mine.has(pid) && mine.has(p.ppid)) {
        mine.add(pid);
        grew = true;
      }
    }
  }
  const by: Record<string, number> = {};
  for (const pid of mine) {
    const x = b.get(pid)!;
    // The mail catcher is a node process too; its share (parsing what billflow sends) is named apart.
    const name = x.comm === 'node' && pid !== process.pid && /maildev|mail-catcher/.test(commandLine(pid)) ? 'mail catcher' : x.comm;
    by[name] = (by[name] ?? 0) + (x.t - (a.get(pid)?.t ?? 0)) / 100;
  }
  return by;
}

export function cpuDiff(a: Snap, b: Snap): string {
  return Object.entries(cpuBy(a, b))
    .filter(([, v]) => v > 0.1)
    .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
    .join(', ');
}
