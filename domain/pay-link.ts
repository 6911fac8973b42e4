/**
 * billflow's own Pay Now link (`/pay/{token}`): one per invoice from a Final until the invoice next
 * goes back to Draft (a "series"), whatever the provider does underneath (its record updated,
 * replaced on a Stripe reissue, re-created by reconciliation, moved to another account). The link
 * answers with the provider's payment page of the moment.
 */
import type { InvoiceStatus } from './invoice.js';

/**
 * Which series the invoice is in: the number of changes to Draft so far. It does not move while a
 * change to Final runs (the history entry is written after it), so the PDF, the email and the
 * read model of one Final all name the same link.
 */
export function paySeries(history: readonly { to: InvoiceStatus }[]): number {
  return history.filter((h) => h.to === 'Draft').length;
}

/** What of an invoice the link needs to decide where it goes. */
export interface PayLinkFacts {
  status: InvoiceStatus;
  history: readonly { to: InvoiceStatus }[];
  pendingChange: { to: InvoiceStatus } | null;
  /** The provider's payment page, null when the invoice has none right now. */
  payNowUrl: string | null;
  outstanding: number;
}

export type PayLinkPage =
  /** 303 to the provider's current payment page. */
  | { kind: 'redirect'; url: string }
  /** The invoice owes nothing: there is nothing left to pay. */
  | { kind: 'paid' }
  /** The invoice went back to Draft after this link was given out: it never works again. */
  | { kind: 'withdrawn' }
  /** In its series, but without a payment page right now (being replaced, or the provider has lost it). */
  | { kind: 'unavailable' };

export function payLinkPage(invoice: PayLinkFacts, series: number): PayLinkPage {
  if (paySeries(invoice.history) !== series) return { kind: 'withdrawn' };
  // A Draft whose first Final is still under way (its PDF already carries the link) is not withdrawn.
  if (invoice.status === 'Draft' && invoice.pendingChange?.to !== 'Final') return { kind: 'withdrawn' };
  if (invoice.outstanding <= 0) return { kind: 'paid' };
  return invoice.payNowUrl ? { kind: 'redirect', url: invoice.payNowUrl } : { kind: 'unavailable' };
}

export function payLinkUrl(base: string, token: string): string {
  return `${base.replace(/\/+$/, '')}/pay/${token}`;
}
