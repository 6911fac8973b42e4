/**
 * What each payment provider can and cannot do. Pure data: the plan of a status change
 * (domain/plan.ts) reads it, so a difference between providers is decided in one place, and the
 * adapters (activities/provider/) declare theirs from here.
 */

export const PROVIDER_KINDS = ['billpay', 'stripe'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

export interface ProviderCapabilities {
  /** A finalized invoice's amount, number and date can be changed in place; otherwise a Reissue -> Final replaces the record. */
  editFinalizedInvoice: boolean;
  /** How a record leaves: deleted (its page stops answering) or voided (kept, marked void; a paid one is credited). */
  removeInvoice: 'delete' | 'void';
  /** A payment taken through the provider can be removed from its books when the invoice leaves Final. */
  removePayment: boolean;
  /** Payments made outside the provider (Quick Pay, a re-applied prepayment) can be recorded on its invoice. */
  recordOfflinePayment: boolean;
  /** billflow's own PDF can be attached to the provider's record (Stripe renders its own). */
  attachPdf: boolean;
  /**
   * The fee a card payment carries: a convenience fee the payer paid on top (money billflow's
   * client receives, a `fee` receipt), or the provider's processing fee kept from the payment
   * (the client's cost, a `processing-fee` receipt read from the provider's balance).
   */
  fees: 'payer-convenience-fee' | 'processing-fee';
}

export const PROVIDER_CAPABILITIES: Readonly<Record<ProviderKind, ProviderCapabilities>> = {
  billpay: { editFinalizedInvoice: true, removeInvoice: 'delete', removePayment: true, recordOfflinePayment: true, attachPdf: true, fees: 'payer-convenience-fee' },
  // Stripe keeps a collected payment (its invoice is credited out of band when it leaves), and
  // keeps its processing fee from each card payment.
  stripe: { editFinalizedInvoice: false, removeInvoice: 'void', removePayment: false, recordOfflinePayment: true, attachPdf: false, fees: 'processing-fee' },
};
