/**
 * The sandbox's money rules, shared by the payments API and the Pay Now page: the convenience fee,
 * how a payment lowers invoice balances, and how removing it restores them. Every function here
 * runs inside the caller's transaction and queues the matching webhook event in it.
 */
import type postgres from 'postgres';
import { newId } from './ids.js';
import { findPayment, paymentJson, type AccountRow, type FeeRule, type PaymentMethod, type PaymentRow } from './model.js';
import { enqueueEvent } from './webhooks.js';

type Tx = postgres.TransactionSql;

/** fixed + percentBps of the amount, rounded half up to the minor unit; BigInt so no product loses precision. */
export function convenienceFee(amount: number, rule: FeeRule): number {
  if (amount <= 0) return 0;
  const percent = (BigInt(amount) * BigInt(rule.percentBps) + 5_000n) / 10_000n;
  return rule.fixed + Number(percent);
}

export interface LockedInvoice {
  id: string;
  customer_id: string;
  number: string;
  outstanding: number;
  status: 'open' | 'paid';
  currency: string;
  form_token: string;
  deleted_at: Date | null;
}

/** Locks the account's invoices with these ids, always in id order so two payments cannot deadlock. */
export async function lockInvoices(tx: Tx, accountId: string, ids: readonly string[]): Promise<Map<string, LockedInvoice>> {
  const rows = await tx<LockedInvoice[]>`
    SELECT id, customer_id, number, outstanding, status, currency, form_token, deleted_at
    FROM invoices WHERE account_id = ${accountId} AND id = ANY(${[...ids]}) ORDER BY id FOR UPDATE`;
  return new Map(rows.map((r) => [r.id, r]));
}

/** A rule broken by one allocation of a payment; callers name the field in their own terms. */
export class AllocationError extends Error {
  constructor(
    readonly index: number,
    readonly field: 'invoiceId' | 'amount',
    message: string,
  ) {
    super(message);
    this.name = 'AllocationError';
  }
}

export interface NewPayment {
  customerId: string;
  allocations: readonly { invoiceId: string; amount: number }[];
  method: PaymentMethod;
  fee: number;
  paidAt?: string | null;
  reference?: string | null;
  payerName?: string | null;
  payerEmail?: string | null;
  cardLast4?: string | null;
  /** The Pay Now form that produced it, so the same form cannot pay twice. */
  formToken?: string | null;
}

/**
 * Records a succeeded payment: each allocation must be > 0 and at most its invoice's outstanding
 * balance; balances drop by the allocated amounts and an invoice at 0 becomes paid.
 */
export async function recordPayment(tx: Tx, account: AccountRow, p: NewPayment): Promise<PaymentRow> {
  const locked = await lockInvoices(
    tx,
    account.id,
    p.allocations.map((a) => a.invoiceId),
  );
  const seen = new Set<string>();
  p.allocations.forEach((a, i) => {
    const inv = locked.get(a.invoiceId);
    if (!inv || inv.deleted_at !== null || inv.customer_id !== p.customerId) {
      throw new AllocationError(i, 'invoiceId', `no invoice ${a.invoiceId} of customer ${p.customerId}`);
    }
    if (seen.has(a.invoiceId)) throw new AllocationError(i, 'invoiceId', `invoice ${inv.number} appears twice in one payment`);
    seen.add(a.invoiceId);
    if (!Number.isSafeInteger(a.amount) || a.amount <= 0) throw new AllocationError(i, 'amount', 'must be a positive amount in minor units');
    if (a.amount > inv.outstanding) {
      throw new AllocationError(i, 'amount', `${a.amount} exceeds the outstanding balance ${inv.outstanding} of invoice ${inv.number}`);
    }
  });
  const currency = locked.get(p.allocations[0]!.invoiceId)!.currency;
  const other = p.allocations.findIndex((a) => locked.get(a.invoiceId)!.currency !== currency);
  if (other >= 0) throw new AllocationError(other, 'invoiceId', `invoice ${locked.get(p.allocations[other]!.invoiceId)!.number} is in another currency than ${currency}`);

  const id = newId('pay');
  const amount = p.allocations.reduce((s, a) => s + a.amount, 0);
  await tx`
    INSERT INTO payments (id, account_id, customer_id, amount, fee, currency, paid_at, method, payer_name, payer_email,
                          card_last4, reference, form_token, status)
    VALUES (${id}, ${account.id}, ${p.customerId}, ${amount}, ${p.fee}, ${currency}, ${p.paidAt ?? new Date()}, ${p.method},
            ${p.payerName ?? null}, ${p.payerEmail ?? null}, ${p.cardLast4 ?? null}, ${p.reference ?? null},
            ${p.formToken ?? null}, 'succeeded')`;
  for (const [position, a] of p.allocations.entries()) {
    const inv = locked.get(a.invoiceId)!;
    await tx`
      INSERT INTO payment_allocations (payment_id, position, invoice_id, invoice_number, amount)
      VALUES (${id}, ${position}, ${a.invoiceId}, ${inv.number}, ${a.amount})`;
    await tx`
      UPDATE invoices SET outstanding = outstanding - ${a.amount},
                          status = CASE WHEN outstanding - ${a.amount} = 0 THEN 'paid' ELSE 'open' END,
                          updated_at = now()
      WHERE id = ${a.invoiceId}`;
  }
  const payment = (await findPayment(tx, account.id, id))!;
  await enqueueEvent(tx, account, 'payment.succeeded', paymentJson(payment));
  return payment;
}

/**
 * Marks a payment removed and gives its amounts back to the invoices it covered (those still
 * live). Removing a removed payment changes nothing and queues no second event.
 */
export async function removePayment(tx: Tx, account: AccountRow, paymentId: string): Promise<PaymentRow | undefined> {
  const [row] = await tx<{ status: string }[]>`
    SELECT status FROM payments WHERE account_id = ${account.id} AND id = ${paymentId} FOR UPDATE`;
  if (!row) return undefined;
  if (row.status === 'succeeded') {
    const allocations = await tx<{ invoice_id: string; amount: number }[]>`
      SELECT invoice_id, amount FROM payment_allocations WHERE payment_id = ${paymentId}`;
    await lockInvoices(
      tx,
      account.id,
      allocations.map((a) => a.invoice_id),
    );
    for (const a of allocations) {
      await tx`
        UPDATE invoices SET outstanding = outstanding + ${a.amount}, status = 'open', updated_at = now()
        WHERE id = ${a.invoice_id} AND deleted_at IS NULL`;
    }
    await tx`UPDATE payments SET status = 'removed', removed_at = now() WHERE id = ${paymentId}`;
  }
  const payment = (await findPayment(tx, account.id, paymentId))!;
  if (row.status === 'succeeded') await enqueueEvent(tx, account, 'payment.removed', paymentJson(payment));
  return payment;
}
