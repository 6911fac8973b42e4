/**
 * The outbox of events to the ERP. Each event is written inside the transaction that writes the
 * row causing it (an invoice's read model, a payment, a receipt, ...), so a committed change always
 * has its event and a rolled-back one never has. Deliveries (one per subscribed endpoint) are made
 * with it; worker/webhooks.ts sends them.
 */
import type { TransactionSql } from 'postgres';
import type { EventType } from '../domain/events.js';
import { stableUuid } from '../lib/ids.js';
import type { InvoiceState } from '../workflows/contract.js';
import type { LinkedInvoice } from './pay-links.js';

export interface NewEvent {
  type: EventType;
  companyId: string;
  /** What happened, as business identity: the same identity never makes a second event (its id is made from it). */
  identity: string[];
  /** Deliveries of one key go out in the order their events committed. */
  orderingKey: string;
  requestId: string;
  data: Record<string, unknown>;
}

/** The NOTIFY channel the dispatcher listens on, so a new event goes out at once. */
export const EVENTS_CHANNEL = 'billflow_webhooks';

export function invoiceKey(companyId: string, number: string): string {
  return `invoice:${companyId}:${number}`;
}

/** The event's webhook-id: the same on every attempt and every endpoint. */
function eventId(e: Pick<NewEvent, 'type' | 'companyId' | 'identity'>): string {
  return `msg_${stableUuid(e.type, e.companyId, ...e.identity).replaceAll('-', '')}`;
}

/**
 * Takes the ordering keys' locks until the transaction ends, so events of one key commit in `seq`
 * order (a delivery loop never sends a later event before an earlier one is visible). Sorted, so
 * two transactions never wait for each other in a cycle; take them before any other lock the
 * transaction waits for. Taking one again in the same transaction returns at once.
 */
export async function lockEventKeys(tx: TransactionSql, keys: string[]): Promise<void> {
  for (const key of [...new Set(keys)].sort()) await tx`SELECT pg_advisory_xact_lock(hashtext('billflow.events'), hashtext(${key}))`;
}

/** Writes events and their deliveries in the caller's transaction; an event no endpoint takes is not kept. */
export async function emitEvents(tx: TransactionSql, events: NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  await lockEventKeys(
    tx,
    events.map((e) => e.orderingKey),
  );
  // One look at the companies' endpoints first: most writes are for companies without any.
  const endpoints = await tx<{ id: string; company_id: string; events: string[] | null }[]>`
    SELECT id, company_id, events FROM webhook_endpoints WHERE company_id IN ${tx([...new Set(events.map((e) => e.companyId))])}`;
  let written = 0;
  for (const e of events) {
    const takers = endpoints.filter((x) => x.company_id === e.companyId && (x.events === null || x.events.includes(e.type))).map((x) => x.id);
    if (takers.length === 0) continue;
    const id = eventId(e);
    const payload = JSON.stringify({ id, type: e.type, timestamp: new Date().toISOString(), companyId: e.companyId, requestId: e.requestId, data: e.data });
    // An endpoint removed meanwhile simply gets no delivery (the join finds it gone).
    const rows = await tx`
      WITH event AS (
        INSERT INTO webhook_events (id, company_id, type, ordering_key, request_id, payload)
        VALUES (${id}, ${e.companyId}, ${e.type}, ${e.orderingKey}, ${e.requestId}, ${payload})
        ON CONFLICT (id) DO NOTHING RETURNING seq
      )
      INSERT INTO webhook_deliveries (endpoint_id, event_seq, ordering_key)
      SELECT w.id, event.seq, ${e.orderingKey} FROM event, webhook_endpoints w WHERE w.id IN ${tx(takers)} RETURNING id`;
    written += rows.length;
  }
  if (written > 0) await tx`SELECT pg_notify(${EVENTS_CHANNEL}, '')`;
}

/** The invoice as every invoice event shows it: `payNowUrl` is billflow's link, `providerPaymentUrl` the provider's page. */
function invoiceSummary(s: LinkedInvoice) {
  return {
    number: s.number,
    companyId: s.companyId,
    clientId: s.clientId,
    projectId: s.projectId ?? null,
    status: s.status,
    revision: s.revision,
    currency: s.currency,
    invoiceDate: s.invoiceDate,
    dueDate: s.dueDate,
    total: s.total,
    prepaymentsApplied: s.prepaymentsApplied,
    paid: s.paid,
    outstanding: s.outstanding,
    settlement: s.settlement,
    payNowUrl: s.payNowUrl,
    providerPaymentUrl: s.providerPaymentUrl,
    held: s.held,
    classification: s.classification,
  };
}

/**
 * The events of one read-model write, from what changed between the state stored before it
 * (`before`; undefined when the invoice had no row yet) and the state written. A repeat of the
 * same write changes nothing and so has no events.
 */
export function invoiceEvents(before: InvoiceState | undefined, after: LinkedInvoice, createdBy: string): NewEvent[] {
  const { companyId, number } = after;
  const invoice = invoiceSummary(after);
  const event = (type: EventType, identity: string[], requestId: string, data: Record<string, unknown> = {}): NewEvent => ({
    type,
    companyId,
    identity: [number, ...identity],
    orderingKey: invoiceKey(companyId, number),
    requestId,
    data: { invoice, ...data },
  });
  const out: NewEvent[] = [];
  if (!before) out.push(event('invoice.created', ['created'], createdBy));
  const seen = before?.history.length ?? 0;
  after.history.slice(seen).forEach((change, i) => {
    const at = String(seen + i);
    if (change.releasedBy !== undefined) {
      out.push(event('invoice.released', ['history', at], change.requestId, { releasedBy: change.releasedBy, payNowUrl: after.payNowUrl }));
      return;
    }
    out.push(event('invoice.status_changed', ['history', at], change.requestId, { from: change.from, to: change.to }));
    if (change.to === 'Final') out.push(event('invoice.finalized', ['history', at], change.requestId, { payNowUrl: after.payNowUrl }));
  });
  if (after.held && !before?.held) {
    out.push(event('invoice.held', ['held', String(after.revision)], after.history.at(-1)?.requestId ?? createdBy, { classification: after.classification }));
  }
  return out;
}
