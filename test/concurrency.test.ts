/**
 * Messages that reach one invoice at once run one at a time. Each handler changes the invoice
 * across several activities (a status change, a payment, a reconciliation's repair), so two
 * interleaved would compute from each other's half-written state: a repair once read the
 * outstanding balance before a Quick Pay had been applied and set it back at the provider. The
 * workflow's history shows it: the invoice workflow never has two activities in flight at once.
 */
import { randomUUID } from 'node:crypto';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, http, startStack, type Stack, type Tenant } from './harness.js';

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack, { providerEnabled: false });
});

afterAll(async () => {
  await stack?.stop();
});

/** Activities that were running at the same time (scheduled before an earlier one had finished), by type. */
function overlapping(events: temporal.api.history.v1.IHistoryEvent[]): string[][] {
  const open = new Map<string, string>();
  const overlaps: string[][] = [];
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      if (open.size > 0) overlaps.push([...open.values(), scheduled.activityType?.name ?? '?']);
      open.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    }
    const ended = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (ended) open.delete(String(ended.scheduledEventId));
  }
  return overlaps;
}

it('runs revisions sent at once one after another, each on the invoice the one before left', async () => {
  const number = `CC-${randomUUID().slice(0, 8)}`;
  const clientId = `CL-${number}`;
  expect((await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Harbour Works' } })).status).toBe(201);
  const created = await http(stack.apiUrl, 'POST', '/v1/invoices', {
    key: tenant.apiKey,
    body: { number, clientId, invoiceDate: '2026-12-01', dueDate: '2026-12-31', lines: [{ description: 'Survey', amount: 10_000 }] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);

  const amounts = Array.from({ length: 8 }, (_, i) => 20_000 + i * 100);
  const answers = await Promise.all(
    amounts.map((amount) =>
      http<{ version: number; total: number }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/revision`, {
        key: tenant.apiKey,
        body: { lines: [{ description: `Survey, revised to ${amount}`, amount }] },
      }),
    ),
  );
  for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
  // One at a time: each answer is its own version, and each its own revision's total.
  const versions = answers.map((a) => a.body.version);
  expect(new Set(versions).size).toBe(amounts.length);
  expect(answers.map((a) => a.body.total)).toEqual(amounts);

  const history = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number)).fetchHistory();
  expect(overlapping(history.events ?? [])).toEqual([]);
  const last = answers[versions.indexOf(Math.max(...versions))]!.body;
  const read = await http<{ version: number; total: number }>(stack.apiUrl, 'GET', `/v1/invoices/${number}`, { key: tenant.apiKey });
  expect(read.body).toMatchObject({ version: last.version, total: last.total });
});
