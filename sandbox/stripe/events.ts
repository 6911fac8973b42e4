/**
 * Stripe events: each change worth an event stores one (readable at /v1/events) and queues it, in
 * the change's transaction, to every enabled webhook endpoint of the account that takes its type,
 * signed with that endpoint's secret (`Stripe-Signature`). Delivery, retries and injected webhook
 * faults are the sandbox's outbox (sandbox/webhooks.ts).
 */
import type { AccountRow, Db } from '../model.js';
import { insert, now, STRIPE_SANDBOX_API_VERSION, stripeId, type StripeEvent, type StripeObject, type WebhookEndpoint } from './store.js';

const STRIPE_SIGNATURE_HEADER = 'Stripe-Signature';

/** The event types this mode sends. */
export type EventType = 'invoice.finalized' | 'invoice.paid' | 'invoice.voided' | 'invoice.deleted' | 'invoice_payment.paid' | 'credit_note.created' | 'credit_note.voided';

export async function emit(db: Db, account: AccountRow, type: EventType, object: StripeObject, idempotencyKey: string | null): Promise<StripeEvent> {
  const endpoints = (
    await db<{ data: WebhookEndpoint }[]>`
      SELECT data FROM stripe_objects WHERE account_id = ${account.id} AND object = 'webhook_endpoint' ORDER BY seq`
  )
    .map((r) => r.data)
    .filter((e) => e.status === 'enabled' && (e.enabled_events.includes('*') || e.enabled_events.includes(type)));
  const event: StripeEvent = {
    id: stripeId('evt'),
    object: 'event',
    api_version: STRIPE_SANDBOX_API_VERSION,
    created: now(),
    data: { object },
    livemode: false,
    pending_webhooks: endpoints.length,
    request: { id: null, idempotency_key: idempotencyKey },
    type,
  };
  await insert(db, account, event);
  const body = JSON.stringify(event);
  for (const e of endpoints) {
    await db`
      INSERT INTO webhook_deliveries (id, account_id, payment_id, type, url, body, signature_header, secret)
      VALUES (${`${event.id}.${e.id}`}, ${account.id}, ${object.id}, ${type}, ${e.url}, ${body}, ${STRIPE_SIGNATURE_HEADER}, ${e.secret ?? ''})`;
  }
  return event;
}
