/**
 * The circuit breaker per provider account, against the real sandbox and its fault injection:
 * after outages in a row it opens, and the invoices' provider activities then fail fast without
 * reaching the provider while Temporal's backoff retries them (the changes wait as pendingChange,
 * answered 202); after the cool-down one probe call goes through, and once the provider answers the
 * circuit closes and every change completes, once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

type Circuit = { state: string; failures: number; openedAt: string | null; probeAfter: string | null; lastFailure: string | null; refused: number; timesOpened: number };
type Invoice = { number: string; status: string; sentToProvider: boolean; pendingChange: { to: string } | null; providerInvoiceId: string | null };

interface Setup {
  stack: Stack;
  tenant: Tenant;
}

function useStack(circuit: { failures: number; windowMs: number; cooldownMs: number }): Setup {
  const s = {} as Setup;
  beforeAll(async () => {
    s.stack = await startStack({ circuit });
    s.tenant = await createTenant(s.stack);
  });
  afterAll(async () => {
    await s.stack?.stop();
  });
  return s;
}

const api = <T>(s: Setup, method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  http<T>(s.stack.apiUrl, method, path, { key: s.tenant.apiKey, body, ...(headers ? { headers } : {}) });
const sandbox = <T>(s: Setup, method: string, path: string, body?: unknown) => http<T>(s.stack.sandboxUrl, method, path, { key: s.tenant.account.apiKey, body });

async function circuitOf(s: Setup): Promise<Circuit> {
  const listed = await api<{ data: { id: string; provider: { circuit: Circuit } }[] }>(s, 'GET', '/v1/companies');
  return listed.body.data.find((c) => c.id === s.tenant.companyId)!.provider.circuit;
}

const injectedErrors = async (s: Setup) => (await sandbox<{ errors: number }>(s, 'GET', '/v1/sandbox/faults/injected')).body.errors;

/** Drafts for one client, then each asked to become Final while the provider fails: each answered 202, still running. */
async function finalsDuringOutage(s: Setup, count: number): Promise<string[]> {
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  expect((await api(s, 'POST', '/v1/clients', { id: clientId, name: 'Northgate Engineers' })).status).toBe(201);
  const numbers = Array.from({ length: count }, () => `CB-${randomUUID().slice(0, 8)}`);
  for (const number of numbers) {
    const created = await api(s, 'POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Inspection', amount: 50_000 }] });
    expect(created.status).toBe(201);
  }
  expect((await sandbox(s, 'POST', '/v1/sandbox/faults', { mode: 'error', status: 503 })).status).toBe(200);
  const answers = await Promise.all(numbers.map((number) => api(s, 'POST', `/v1/invoices/${number}/status`, { status: 'Final' }, { prefer: 'wait=1' })));
  for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(202);
  return numbers;
}

describe('an open circuit', () => {
  // A cool-down far longer than the test: whatever calls it sees while open, none can be a probe.
  const s = useStack({ failures: 3, windowMs: 60_000, cooldownMs: 3_600_000 });

  it('keeps the provider from being called while the changes keep retrying, and shows it per company and on the invoices', async () => {
    expect(await circuitOf(s)).toMatchObject({ state: 'closed', failures: 0, timesOpened: 0 });
    const numbers = await finalsDuringOutage(s, 4);
    const open = await eventually(async () => {
      const c = await circuitOf(s);
      return c.state === 'open' ? c : undefined;
    }, 'the circuit to open');
    expect(open).toMatchObject({ timesOpened: 1, lastFailure: expect.stringContaining('503'), openedAt: expect.any(String), probeAfter: expect.any(String) });
    expect(open.failures).toBeGreaterThanOrEqual(3);
    // Calls let through before it opened finish their own quick retries: count once every change's
    // attempt since then was refused, so none of those is still on its way to the provider.
    const refusedOnEach = async () => {
      for (const number of numbers) {
        const d = await s.stack.temporal.workflow.getHandle(invoiceWorkflowId(s.tenant.companyId, number)).describe();
        if (!(d.raw.pendingActivities ?? []).some((a) => (a.lastFailure?.message ?? '').includes('provider circuit open'))) return undefined;
      }
      return true;
    };
    await eventually(refusedOnEach, 'a refused attempt on every change', 60_000);
    const reached = await injectedErrors(s);
    expect(reached).toBeGreaterThanOrEqual(3);

    // The activities go on retrying (Temporal's backoff): each retry is refused without a call.
    const later = await eventually(
      async () => {
        const c = await circuitOf(s);
        return c.refused >= 10 ? c : undefined;
      },
      '10 refused calls',
      60_000,
    );
    expect(later).toMatchObject({ state: 'open', timesOpened: 1 });
    expect(await injectedErrors(s)).toBe(reached);
    console.log(`circuit: ${reached} calls reached the failing provider before the circuit opened; then ${later.refused} retries refused without a call, 0 reached it`);

    // The changes wait, visibly: on the invoice, and in the workflow's retrying activity.
    for (const number of numbers) {
      const inv = (await api<Invoice>(s, 'GET', `/v1/invoices/${number}`)).body;
      expect(inv).toMatchObject({ status: 'Draft', pendingChange: { to: 'Final' } });
    }
    const described = await s.stack.temporal.workflow.getHandle(invoiceWorkflowId(s.tenant.companyId, numbers[0]!)).describe();
    const pending = described.raw.pendingActivities ?? [];
    expect(pending.map((a) => a.lastFailure?.message ?? '')).toContainEqual(expect.stringContaining('provider circuit open'));

    await sandbox(s, 'POST', '/v1/sandbox/faults', { mode: 'none' });
    for (const number of numbers) await s.stack.temporal.workflow.getHandle(invoiceWorkflowId(s.tenant.companyId, number)).terminate('test over: its circuit stays open for an hour');
  });
});

describe('a circuit after its cool-down', () => {
  const s = useStack({ failures: 3, windowMs: 60_000, cooldownMs: 2_000 });

  it('probes the provider with one call, opens again while it still fails, and closes when it answers; every change then completes once', async () => {
    const numbers = await finalsDuringOutage(s, 3);
    // The stuck changes are one visibility query away (the runbook's), and leave it when done.
    const waiting = (query: string) =>
      eventually(async () => {
        const found: string[] = [];
        for await (const w of s.stack.temporal.workflow.list({ query: `CompanyId = "${s.tenant.companyId}" AND ${query}` })) found.push(w.workflowId);
        return found.sort().join() ===
          numbers
            .map((n) => invoiceWorkflowId(s.tenant.companyId, n))
            .sort()
            .join()
          ? found
          : undefined;
      }, `every invoice found by ${query}`);
    await waiting('PendingChange = "Final"');
    // A probe that meets the outage opens the circuit again.
    const reopened = await eventually(
      async () => {
        const c = await circuitOf(s);
        return c.timesOpened >= 2 ? c : undefined;
      },
      'a failed probe',
      60_000,
    );
    expect(reopened.state).not.toBe('closed');

    await sandbox(s, 'POST', '/v1/sandbox/faults', { mode: 'none' });
    for (const number of numbers) {
      await eventually(
        async () => {
          const inv = (await api<Invoice>(s, 'GET', `/v1/invoices/${number}`)).body;
          return inv.status === 'Final' && inv.pendingChange === null ? inv : undefined;
        },
        `${number} to become Final`,
        90_000,
      );
    }
    expect(await circuitOf(s)).toMatchObject({ state: 'closed', failures: 0 });
    await waiting('PendingChange IS NULL AND InvoiceStatus = "Final"');
    // One provider record each: the refused and probing retries made nothing twice.
    for (const number of numbers) {
      const records = await sandbox<{ data: unknown[] }>(s, 'GET', `/v1/invoices?number=${number}`);
      expect(records.body.data).toHaveLength(1);
      expect((await api<Invoice>(s, 'GET', `/v1/invoices/${number}`)).body).toMatchObject({ sentToProvider: true, providerInvoiceId: expect.any(String) });
    }
  });
});
