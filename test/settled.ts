/**
 * What a test waits for before it asserts that something did NOT happen (a payment not counted
 * twice, nothing imported yet): the event that could have made it happen, never a fixed sleep.
 */
import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { eventually, http, type Stack, type Tenant } from './stack.js';

export interface WebhookDelivery {
  eventId: string;
  type: string;
  paymentId: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  deliveredAt: string | null;
  body: string;
}

/** The provider sandbox's webhooks for one payment, once `done` holds for them. */
export function webhookDeliveries(stack: Stack, tenant: Tenant, paymentId: string, done: (ds: WebhookDelivery[]) => boolean, what: string): Promise<WebhookDelivery[]> {
  return eventually(async () => {
    const res = await http<{ data: WebhookDelivery[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/webhook-deliveries?paymentId=${paymentId}`, { key: tenant.account.apiKey });
    return done(res.body.data) ? res.body.data : undefined;
  }, what);
}

/** Billflow answered the provider's webhook for this payment (it answers once it has signalled every invoice the payment covers). */
export function webhookDelivered(stack: Stack, tenant: Tenant, paymentId: string): Promise<WebhookDelivery[]> {
  return webhookDeliveries(stack, tenant, paymentId, (ds) => ds.some((d) => d.deliveredAt !== null), `the webhook for ${paymentId} to be delivered`);
}

/**
 * The workflow has handled everything already in its history: its last workflow task completed
 * with no new one scheduled, and every activity it scheduled has closed. (An activity's completion
 * schedules the next workflow task in the same write, so work in progress always shows one of
 * them.) Read from the history itself, so it holds on the time-skipping server too. Call it once
 * the signal or activity that matters is known to be in the history.
 */
export function workflowIdle(client: Client, workflowId: string): Promise<true> {
  const T = proto.temporal.api.enums.v1.EventType;
  return eventually(async () => {
    const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const last = (type: number) => events.reduce((at, e, i) => (e.eventType === type ? i : at), -1);
    const lastScheduled = last(T.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED);
    const lastCompleted = last(T.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
    const closed = new Set(
      events.map((e) => {
        const a = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
        return a ? String(a.scheduledEventId) : null;
      }),
    );
    const open = events.filter((e) => e.eventType === T.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED && !closed.has(String(e.eventId)));
    return lastCompleted > lastScheduled && open.length === 0 ? true : undefined;
  }, `workflow ${workflowId} to finish what it was given`);
}
