/**
 * What a status change does, decided in one pure function. The workflow executes the plan it
 * gets from here, and a dry run returns the same plan unexecuted, so preview and change cannot
 * disagree. Inputs that need I/O (payments found at the provider, which other invoices still hold a
 * shared payment, the company's settings) are gathered first and passed in.
 */
import { outstandingAmount, owedAtProvider, sendsToProvider, type AppliedPayment, type InvoiceStatus } from './invoice.js';
import type { Minor } from './money.js';
import { PROVIDER_CAPABILITIES, type ProviderCapabilities } from './provider.js';

export interface PlanInvoice {
  number: string;
  status: InvoiceStatus;
  total: Minor;
  prepaymentsApplied: Minor;
  payments: readonly AppliedPayment[];
  sentToProvider: boolean;
  providerInvoiceId: string | null;
  payNowUrl: string | null;
  /** Client prepayments applied to the invoice; `providerPaymentId` null: not (or no longer) a payment at the provider. */
  prepaymentApplications?: readonly { prepaymentId: string; amount: Minor; providerPaymentId: string | null }[];
}

/** A provider payment found by the pre-change import that this invoice has not applied yet. */
interface FoundPayment {
  paymentId: string;
  amount: Minor;
  fee: Minor;
  coveredInvoices: string[];
}

export type Step =
  /** Payments made at the provider are imported before the invoice leaves Final. */
  | { kind: 'import-payments' }
  | { kind: 'apply-payment'; paymentId: string; amount: Minor }
  /** A payment on the invoice becomes a client prepayment (credit) the ERP keeps. */
  | { kind: 'convert-to-prepayment'; paymentId: string; amount: Minor }
  /** Every invoice the payment covered has left Final: the provider's payment record is removed. */
  | { kind: 'remove-provider-payment'; paymentId: string }
  /** Other invoices the payment covered are still Final: the record stays until they change too. */
  | { kind: 'hold-provider-payment'; paymentId: string; heldBy: string[] }
  /** The provider keeps payments it collected (capabilities.removePayment false): the record stays, credited when it leaves. */
  | { kind: 'keep-provider-payment'; paymentId: string }
  /** `voids`: the provider keeps the record, voided (or credited when paid), rather than deleting it. */
  | { kind: 'delete-provider-invoice'; providerInvoiceId: string; voids?: true }
  | { kind: 'render-pdf' }
  | { kind: 'create-provider-invoice'; outstanding: Minor }
  | { kind: 'update-provider-invoice'; providerInvoiceId: string; outstanding: Minor }
  | { kind: 'attach-pdf' }
  /** A prepayment applied while the invoice was not Final at the provider becomes a payment on its record, so the provider's books add up. */
  | { kind: 'recreate-prepayment-payment'; prepaymentId: string; amount: Minor; application: number }
  /** Going back to Draft deletes the record: the prepayment's payment on it is removed first (re-created at the next Final). */
  | { kind: 'remove-prepayment-payment'; prepaymentId: string; paymentId: string; application: number }
  /** The final invoice is emailed to the client, PDF attached; with its Pay Now URL when the client's template uses it. */
  | { kind: 'email-invoice'; to: string; withPayNowUrl: boolean }
  | { kind: 'skip-provider'; reason: string }
  /** An exceptional bill: nothing goes to the provider or the client until an operator releases it. */
  | { kind: 'hold-exceptional'; classification: string };

type FeedEntry = { kind: 'payment' | 'fee'; paymentId: string; amount: Minor } | { kind: 'prepayment'; paymentId: string; amount: Minor };

export interface Plan {
  from: InvoiceStatus;
  to: InvoiceStatus;
  steps: Step[];
  /** What happens to the Pay Now URL the client may have. */
  payNowUrl: 'new' | 'same' | 'removed' | 'none' | 'unchanged';
  /** Entries the change adds to the ERP's receipts feed. */
  feed: FeedEntry[];
}

export interface PlanInput {
  invoice: PlanInvoice;
  to: InvoiceStatus;
  providerEnabled: boolean;
  /** Whether the provider's payments were imported before the change (see importsBeforeChange). */
  importedFirst: boolean;
  /** Unapplied payments the pre-change import found (empty when nothing was imported). */
  found: readonly FoundPayment[];
  /** For each payment on the invoice, the other invoices it covered that are still Final. */
  stillHeldBy: Readonly<Record<string, string[]>>;
  /** Where the final invoice is emailed (null: the client has no email address). */
  email: { to: string; usesPayNowUrl: boolean } | null;
  /** The exceptional-bill classification to hold the invoice for (null: not exceptional, or released). */
  hold: string | null;
  /**
   * Applied prepayments are payments at the provider: re-created when the invoice becomes Final,
   * removed when its record is deleted. False only to replay invoices that ran before this rule.
   */
  prepaymentsAtProvider?: boolean;
  /** What the company's provider can do (absent in histories recorded before providers differed: Bill & Pay's). */
  capabilities?: ProviderCapabilities;
}

export function planStatusChange(input: PlanInput): Plan {
  const { invoice, to, providerEnabled, importedFirst, found, stillHeldBy, email, hold, prepaymentsAtProvider = false } = input;
  const can = input.capabilities ?? PROVIDER_CAPABILITIES.billpay;
  const deleteRecord = (providerInvoiceId: string): Step =>
    can.removeInvoice === 'void' ? { kind: 'delete-provider-invoice', providerInvoiceId, voids: true } : { kind: 'delete-provider-invoice', providerInvoiceId };
  const attachPdf: Step[] = can.attachPdf ? [{ kind: 'attach-pdf' }] : [];
  const steps: Step[] = [];
  const feed: FeedEntry[] = [];
  const from = invoice.status;
  let payments = [...invoice.payments];
  let atProvider = invoice.sentToProvider && invoice.providerInvoiceId !== null;
  let payNowUrl: Plan['payNowUrl'] = 'unchanged';

  if (importedFirst) {
    steps.push({ kind: 'import-payments' });
    for (const p of found) {
      steps.push({ kind: 'apply-payment', paymentId: p.paymentId, amount: p.amount });
      feed.push({ kind: 'payment', paymentId: p.paymentId, amount: p.amount });
      if (p.fee > 0) feed.push({ kind: 'fee', paymentId: p.paymentId, amount: p.fee });
      payments.push({ paymentId: p.paymentId, amount: p.amount, fee: p.fee, paidAt: '', source: 'import', coveredInvoices: p.coveredInvoices });
    }
  }
  if (to === 'Reissue' || to === 'Draft') {
    // Payments made while the invoice was Final (or during a reissue) become client prepayments.
    for (const p of payments) {
      steps.push({ kind: 'convert-to-prepayment', paymentId: p.paymentId, amount: p.amount });
      feed.push({ kind: 'prepayment', paymentId: p.paymentId, amount: p.amount });
      const heldBy = stillHeldBy[p.paymentId] ?? [];
      steps.push(
        heldBy.length
          ? { kind: 'hold-provider-payment', paymentId: p.paymentId, heldBy }
          : can.removePayment
            ? { kind: 'remove-provider-payment', paymentId: p.paymentId }
            : { kind: 'keep-provider-payment', paymentId: p.paymentId },
      );
    }
    payments = [];
  }

  const applications = prepaymentsAtProvider ? (invoice.prepaymentApplications ?? []) : [];
  if (to === 'Draft' && atProvider && invoice.providerInvoiceId) {
    applications.forEach((a, application) => {
      if (a.providerPaymentId) steps.push({ kind: 'remove-prepayment-payment', prepaymentId: a.prepaymentId, paymentId: a.providerPaymentId, application });
    });
    steps.push(deleteRecord(invoice.providerInvoiceId));
    atProvider = false;
    payNowUrl = 'removed';
  }

  if (to === 'Final' && hold) {
    steps.push({ kind: 'hold-exceptional', classification: hold }, { kind: 'render-pdf' });
    payNowUrl = atProvider ? 'unchanged' : 'none';
  } else if (to === 'Final') {
    const outstanding = outstandingAmount(invoice.total, invoice.prepaymentsApplied, payments);
    // The record is made to owe these too, then each becomes a payment on it: amount = payments + outstanding.
    const unpaid = applications.flatMap((a, application) => (a.providerPaymentId ? [] : [{ ...a, application }]));
    const pending: Step[] = unpaid.map((a) => ({ kind: 'recreate-prepayment-payment', prepaymentId: a.prepaymentId, amount: a.amount, application: a.application }));
    const pendingSum = unpaid.reduce((s, a) => s + a.amount, 0);
    if (atProvider && invoice.providerInvoiceId && providerEnabled && can.editFinalizedInvoice) {
      // A reissue keeps the provider's record and its Pay Now URL; only the figures change.
      const owed = owedAtProvider(outstanding) + pendingSum;
      steps.push({ kind: 'update-provider-invoice', providerInvoiceId: invoice.providerInvoiceId, outstanding: owed }, ...pending, { kind: 'render-pdf' }, ...attachPdf);
      payNowUrl = 'same';
    } else if (atProvider && invoice.providerInvoiceId && providerEnabled && sendsToProvider(providerEnabled, outstanding)) {
      // A finalized record cannot be edited: it is voided (credited when paid) and replaced, its
      // prepayments' payments moving to the new record with it.
      applications.forEach((a, application) => {
        if (a.providerPaymentId) steps.push({ kind: 'remove-prepayment-payment', prepaymentId: a.prepaymentId, paymentId: a.providerPaymentId, application });
      });
      const moved: Step[] = applications.map((a, application) => ({ kind: 'recreate-prepayment-payment', prepaymentId: a.prepaymentId, amount: a.amount, application }));
      const movedSum = applications.reduce((s, a) => s + a.amount, 0);
      steps.push(deleteRecord(invoice.providerInvoiceId), { kind: 'create-provider-invoice', outstanding: outstanding + movedSum }, ...moved, { kind: 'render-pdf' }, ...attachPdf);
      payNowUrl = 'new';
    } else if (sendsToProvider(providerEnabled, outstanding)) {
      steps.push({ kind: 'create-provider-invoice', outstanding: outstanding + pendingSum }, ...pending, { kind: 'render-pdf' }, ...attachPdf);
      payNowUrl = 'new';
    } else {
      const reason = !providerEnabled ? 'the company does not have the provider integration enabled' : outstanding === 0 ? 'nothing is owed (zero or net-zero invoice)' : 'the invoice is a credit';
      // A record that cannot be set to owe nothing is voided instead.
      const voided = atProvider && invoice.providerInvoiceId !== null && providerEnabled;
      if (voided) steps.push(deleteRecord(invoice.providerInvoiceId!));
      steps.push({ kind: 'skip-provider', reason }, { kind: 'render-pdf' });
      payNowUrl = voided ? 'removed' : 'none';
    }
    if (email) steps.push({ kind: 'email-invoice', to: email.to, withPayNowUrl: email.usesPayNowUrl && payNowUrl !== 'none' && payNowUrl !== 'removed' });
  }
  return { from, to, steps, payNowUrl, feed };
}

/**
 * True when the change needs the provider's payments imported first: the invoice has a provider
 * record a payer can pay on (Final, or Reissue, whose Pay Now page keeps working).
 */
export function importsBeforeChange(invoice: PlanInvoice, to: InvoiceStatus): boolean {
  return invoice.status !== 'Draft' && to !== invoice.status && invoice.sentToProvider && invoice.providerInvoiceId !== null;
}
