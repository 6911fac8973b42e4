/**
 * What a provider kept from a card payment it collected (`capabilities.fees` is `processing-fee`:
 * Stripe's fee, from the charge's balance transaction), as a `processing-fee` receipt of its own.
 * The payment's activity marks it pending in the payment's own transaction and settles it right
 * after; one the provider could not describe then (an outage, a balance not yet settled) stays
 * pending for the company's next reconciliation, so neither the payment's receipt nor the invoice
 * ever waits for it.
 */
import { log } from '@temporalio/activity';
import type { TransactionSql } from 'postgres';
import { PROVIDER_CAPABILITIES, type ProviderKind } from '../domain/provider.js';
import type { Sql } from '../lib/db.js';
import { invoiceKey } from './events.js';
import { ProviderError, type PaymentProvider } from './provider/provider.js';
import { insertReceipts } from './receipts.js';

interface Pending {
  companyId: string;
  paymentId: string;
  number: string;
  covered: string[];
  paidAt: Date;
  requestId: string;
}

/** Marks a collected card payment's fee as to be read, inside the payment's transaction; only for providers that keep one. */
export async function markProcessingFee(tx: TransactionSql, p: Omit<Pending, 'paidAt'> & { paidAt: string; method: string }): Promise<boolean> {
  if (p.method !== 'card') return false;
  const [company] = await tx<{ kind: ProviderKind }[]>`SELECT provider_kind AS kind FROM companies WHERE id = ${p.companyId}`;
  if (!company || PROVIDER_CAPABILITIES[company.kind].fees !== 'processing-fee') return false;
  await tx`
    INSERT INTO processing_fees_pending (company_id, provider_payment_id, invoice_number, covered, paid_at, request_id)
    SELECT ${p.companyId}, ${p.paymentId}, ${p.number}, ${tx.json(p.covered)}, ${p.paidAt}, ${p.requestId}
    WHERE NOT EXISTS (SELECT 1 FROM receipts WHERE company_id = ${p.companyId} AND provider_payment_id = ${p.paymentId} AND kind = 'processing-fee')
    ON CONFLICT DO NOTHING`;
  return true;
}

/**
 * Reads the company's pending fees (or only `paymentId`'s) from the provider and records each as
 * its receipt. Never throws: what the provider cannot answer now stays pending, with why. Answers
 * how many are still pending.
 */
export async function settleProcessingFees(sql: Sql, providerOf: (companyId: string) => Promise<PaymentProvider>, companyId: string, paymentId?: string): Promise<number> {
  const pending = await sql<Pending[]>`
    SELECT company_id AS "companyId", provider_payment_id AS "paymentId", invoice_number AS number, covered, paid_at AS "paidAt", request_id AS "requestId"
    FROM processing_fees_pending WHERE company_id = ${companyId} ${paymentId ? sql`AND provider_payment_id = ${paymentId}` : sql``}
    ORDER BY created_at`;
  let left = 0;
  // The account is read (and its key opened) once, and only when something is pending.
  let api: PaymentProvider | undefined;
  for (const f of pending) {
    try {
      api ??= await providerOf(companyId);
      const fee = await api.processingFee(f.paymentId, f.requestId);
      if (fee === 'pending') throw new Error('the provider has not settled the charge into its balance yet');
      await sql.begin(async (tx) => {
        if (fee && fee.amount > 0) {
          await insertReceipts(
            tx,
            [
              {
                companyId,
                kind: 'processing-fee',
                providerPaymentId: f.paymentId,
                invoiceNumber: null,
                amount: fee.amount,
                currency: fee.currency,
                allocations: f.covered,
                applications: [],
                paidAt: f.paidAt.toISOString(),
                requestId: f.requestId,
              },
            ],
            invoiceKey(companyId, f.number),
          );
        }
        await tx`DELETE FROM processing_fees_pending WHERE company_id = ${companyId} AND provider_payment_id = ${f.paymentId}`;
      });
      log.info('processing fee recorded', { number: f.number, paymentId: f.paymentId, amount: fee?.amount ?? 0, currency: fee?.currency ?? null, requestId: f.requestId });
    } catch (e) {
      // A provider that no longer has the payment (404) will never describe it: no fee to record.
      if (e instanceof ProviderError && e.status === 404) {
        await sql`DELETE FROM processing_fees_pending WHERE company_id = ${companyId} AND provider_payment_id = ${f.paymentId}`;
        log.warn('no processing fee recorded: the provider has no such payment', { number: f.number, paymentId: f.paymentId, requestId: f.requestId });
        continue;
      }
      left++;
      const why = e instanceof Error ? e.message : String(e);
      await sql`
        UPDATE processing_fees_pending SET tries = tries + 1, last_error = ${why}
        WHERE company_id = ${companyId} AND provider_payment_id = ${f.paymentId}`;
      log.warn('processing fee still pending: the next reconciliation reads it again', { number: f.number, paymentId: f.paymentId, error: why, requestId: f.requestId });
    }
  }
  return left;
}
