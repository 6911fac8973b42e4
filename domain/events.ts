/**
 * The events billflow sends the ERP by webhook (Standard Webhooks), named once for the API (which
 * endpoints may subscribe to) and the activities (which write them).
 */
export const EVENT_TYPES = [
  'invoice.created',
  'invoice.finalized',
  'invoice.status_changed',
  'invoice.held',
  'invoice.released',
  'payment.applied',
  'receipt.created',
  'prepayment.created',
  'prepayment.applied',
  'reminder.sent',
  'reconciliation.drift_found',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** What an ERP endpoint is told about each type, for the API description. */
export const EVENT_DESCRIPTIONS: Record<EventType, string> = {
  'invoice.created': 'a draft invoice was created (its workflow wrote it first)',
  'invoice.finalized': 'the invoice became Final (printed), with its Pay Now URL (null while held or not at the provider)',
  'invoice.status_changed': 'any status change (Draft, Final, Reissue): `from` and `to`',
  'invoice.held': 'an exceptional bill was held at Final: nothing goes to the provider or the client until released',
  'invoice.released': 'an operator released a held bill; it carries the Pay Now URL',
  'payment.applied': 'a provider payment (webhook, import or Quick Pay) was applied to the invoice',
  'receipt.created': 'a receipt entered the receipts feed (payment, fee or prepayment), as `GET /v1/receipts` shows it',
  'prepayment.created': 'a payment on an invoice that left Final became a client prepayment',
  'prepayment.applied': 'a client prepayment was applied to an invoice',
  'reminder.sent': 'a due-date reminder email went to the client',
  'reconciliation.drift_found': 'a reconciliation found billflow and the provider out of step: the findings',
};
