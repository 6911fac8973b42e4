/**
 * An ERP call costs the round trips its work needs, not one per small step: every regular
 * activity is a round trip through the Temporal server. A Final reads what it needs from
 * billflow's database, creates the provider record (customer and invoice), renders and attaches
 * the PDF and emails it in one activity; the change and the read model are recorded after it has
 * answered, and its due-date reminders start then too. A life-cycle move answers in its first
 * workflow task, its record written after the answer (RECORD_AFTER_ANSWER in workflows/invoice.ts).
 */
import { randomUUID } from 'node:crypto';
import type { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack, { reminderDays: [0, 7] });
});

afterAll(async () => {
  await stack?.stop();
});

type Event = temporal.api.history.v1.IHistoryEvent;

/** A local activity's type, from its marker (core writes the marker's data as JSON). */
function localActivity(e: Event): string[] {
  const marker = e.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return [];
  const data = JSON.parse(Buffer.from(marker.details!.data!.payloads![0]!.data!).toString('utf8')) as { activity_type?: string; activityType?: string };
  return [data.activity_type ?? data.activityType ?? '?'];
}

/** The regular and local activities between an Update's acceptance and its completion, and what came after. */
function updateSpan(events: Event[], update: string): { activities: string[]; local: string[]; after: Event[] } {
  const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === update);
  expect(accepted, `update ${update} accepted`).toBeGreaterThanOrEqual(0);
  const acceptedId = String(events[accepted]!.eventId);
  const completed = events.findIndex((e) => String(e.workflowExecutionUpdateCompletedEventAttributes?.acceptedEventId ?? '') === acceptedId);
  expect(completed, `update ${update} completed`).toBeGreaterThan(accepted);
  const activities = events.slice(accepted, completed).flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? '?'] : []));
  const local = events.slice(accepted, completed).flatMap(localActivity);
  return { activities, local, after: events.slice(completed) };
}

it('prints to Final in two round trips, recording it and starting its reminders after answering; a life-cycle move makes none', async () => {
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const clientId = `CL-${randomUUID().slice(0, 6)}`;
  expect((await api('POST', '/v1/clients', { id: clientId, name: 'Riverside Architects', email: 'ap@riverside.example' })).status).toBe(201);
  const number = `RT-${randomUUID().slice(0, 8)}`;
  const body = { number, clientId, invoiceDate: '2026-12-01', dueDate: '2026-12-31', lines: [{ description: 'Design', amount: 150_000 }] };
  expect((await api('POST', '/v1/invoices', body)).status).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  expect(final.body.payNowUrl).toEqual(expect.any(String));
  const moved = await api('POST', `/v1/invoices/${number}/lifecycle`, { state: 'Presented', by: 'pm' });
  expect(moved.status, JSON.stringify(moved.body)).toBe(200);

  // Written after the answer, and there: the read model lists the move.
  await eventually(async () => {
    const list = await http<{ data: { number: string; lifecycleState: string | null }[] }>(stack.apiUrl, 'GET', `/v1/invoices?clientId=${clientId}`, { key: tenant.apiKey });
    return list.body.data.find((i) => i.number === number)?.lifecycleState === 'Presented' ? true : undefined;
  }, 'the move in the read model');
  const handle = stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number));
  // The reminders' child workflow is started after the Final answered: wait for it, then read the history.
  const events = await eventually(async () => {
    const all = (await handle.fetchHistory()).events ?? [];
    return all.some((e) => e.childWorkflowExecutionStartedEventAttributes) ? all : undefined;
  }, 'the reminders workflow to start');
  const finalSpan = updateSpan(events, 'changeStatus');
  // Database steps are regular activities (patched('regular-db-steps')): local ones met
  // nondeterminism on replay under worker kills.
  expect(finalSpan.activities).toEqual(['changeContext', 'finalizeAtProvider']);
  expect(finalSpan.local).toEqual([]);
  const scheduledAfter = (after: Event[]) => after.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
  expect(scheduledAfter(finalSpan.after)[0]).toBe('recordChange');
  expect(finalSpan.after.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)).toBe(true);
  const move = updateSpan(events, 'setLifecycleState');
  expect(move.activities).toEqual([]);
  expect(move.local).toEqual([]);
  expect(scheduledAfter(move.after)[0]).toBe('recordChange');
});
