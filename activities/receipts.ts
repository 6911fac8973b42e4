/**
 * The one way a receipt enters the ERP's feed. The feed's cursor is `receipts.seq`, and a reader
 * pages with `after` and acknowledges with `upTo`, so a receipt must never become visible with a
 * seq at or below one a reader has already seen.
 */
import type { TransactionSql } from 'postgres';
import { emitEvents, lockEventKeys } from './events.js';

export interface QuickPayDetails {
  paymentType: string;
  paymentMethod: string;
  issuedOn: string;
  category: string;
  receivedByUser: string;
  receivedByUnit: string;
}

export interface NewReceipt {
  companyId: string;
  kind: 'payment' | 'fee' | 'processing-fee' | 'prepayment';
  providerPaymentId: string;
  /** Set for a prepayment (one per payment and invoice); null otherwise. */
  invoiceNumber: string | null;
  amount: number;
  currency: string;
  /** The invoice numbers the payment covered. */
  allocations: string[];
  /** What the receipt applies to, per invoice (a payment's parts; none for a fee or a prepayment); null amount: not known. */
  applications: { invoiceNumber: string; amount: number | null }[];
  /** A Quick Pay's details as the ERP gave them (null for other payments). */
  quickPay?: QuickPayDetails | null;
  paidAt: string;
  requestId: string;
}

/**
 * Adds receipts once each (a repeat is ignored), inside the caller's transaction, and holds the
 * feed's lock until that transaction ends, so receipts of one feed commit in seq order. Each new
 * receipt is also a `receipt.created` event, ordered with the events of `orderingKey` (the
 * invoice that caused it), whose lock is taken before the feed's.
 *
 * The lock is per feed: an organisation's companies share one (its key reads them as one feed), a
 * company outside any organisation has its own. Call this as the last statement of the
 * transaction that takes row locks: the lock is then held only for the insert and the commit, and
 * a transaction holding it never waits for another lock (no deadlock with callers waiting for it).
 * The sequence must keep its default CACHE 1, or sessions would hand out seqs out of order.
 */
export async function insertReceipts(tx: TransactionSql, receipts: NewReceipt[], orderingKey: string): Promise<void> {
  const companies = [...new Set(receipts.map((r) => r.companyId))];
  if (companies.length !== 1) throw new Error(`insertReceipts takes the receipts of one company at a time (got ${companies.length})`);
  await lockEventKeys(tx, [orderingKey]);
  await tx`
    SELECT pg_advisory_xact_lock(hashtext('billflow.receipts'), hashtext(coalesce(organisation_id, id)))
    FROM companies WHERE id = ${companies[0]!}`;
  for (const r of receipts) {
    const [added] = await tx<{ id: string; paidAt: Date }[]>`
      INSERT INTO receipts (company_id, kind, provider_payment_id, invoice_number, amount, currency, allocations, applications, quick_pay, paid_at, request_id)
      VALUES (${r.companyId}, ${r.kind}, ${r.providerPaymentId}, ${r.invoiceNumber}, ${r.amount}, ${r.currency},
        ${tx.json(r.allocations)}, ${tx.json(r.applications)}, ${r.quickPay ? tx.json(r.quickPay as never) : null}, ${r.paidAt}, ${r.requestId})
      ON CONFLICT DO NOTHING RETURNING seq::text AS id, paid_at AS "paidAt"`;
    if (!added) continue;
    // The receipt as the feed (GET /v1/receipts) shows it.
    const { allocations, paidAt: _paidAt, quickPay, ...rest } = r;
    await emitEvents(tx, [
      {
        type: 'receipt.created',
        companyId: r.companyId,
        identity: ['receipt', added.id],
        orderingKey,
        requestId: r.requestId,
        data: { id: added.id, ...rest, invoices: allocations, quickPay: quickPay ?? null, paidAt: added.paidAt.toISOString() },
      },
    ]);
  }
}
