/**
 * The one interface the lifecycle's activities talk to, whichever provider a company collects
 * through (`companies.provider_kind`): customers, invoices, payments, webhooks, and what the
 * provider can do (domain/provider.ts). Each adapter maps its provider's API onto these shapes;
 * every mutating call carries an idempotency key made from business identity and the ERP
 * request's correlation id.
 */
import type { ProviderCapabilities, ProviderKind } from '../../domain/provider.js';
import type { ProviderPayment } from '../../workflows/contract.js';

export interface ProviderAccount {
  kind: ProviderKind;
  url: string;
  accountId: string;
  apiKey: string;
}

export interface ProviderCustomer {
  id: string;
  externalId: string;
}

/** A live invoice record at the provider, in billflow's terms. */
export interface ProviderInvoiceRecord {
  id: string;
  /** billflow's invoice number. */
  number: string;
  customerId: string;
  amount: number;
  outstanding: number;
  status: 'open' | 'paid';
  /** The provider's own payment page for the invoice. */
  payNowUrl: string;
}

/** A payment as the provider has it, with the invoices it covers. */
export interface ProviderPaymentRecord {
  id: string;
  customerId: string;
  amount: number;
  fee: number;
  paidAt: string;
  status: 'succeeded' | 'removed';
  method: 'card' | 'prepayment' | 'quickpay' | 'other';
  reference?: string | null;
  allocations: { invoiceId: string; invoiceNumber: string; amount: number }[];
}

export interface NewProviderInvoice {
  customerId: string;
  number: string;
  invoiceDate: string;
  /** Absent in activities scheduled before providers needed them (Bill & Pay does not). */
  dueDate?: string;
  currency?: string;
  amount: number;
  outstanding: number;
}

export interface ProviderInvoicePatch {
  number: string;
  invoiceDate: string;
  amount: number;
  outstanding: number;
}

export interface NewProviderPayment {
  customerId: string;
  allocations: { invoiceId: string; amount: number }[];
  method: 'prepayment' | 'quickpay' | 'other';
  reference: string;
}

export interface PaymentProvider {
  readonly kind: ProviderKind;
  readonly capabilities: ProviderCapabilities;
  /** Finds the customer by the ERP's client id, creating it when missing; safe to repeat. */
  ensureCustomer(c: { externalId: string; name: string; email: string | null }, requestId: string): Promise<ProviderCustomer>;
  /** Creates the invoice record, ready to be paid on the provider's page. */
  createInvoice(inv: NewProviderInvoice, idempotencyKey: string, requestId: string): Promise<ProviderInvoiceRecord>;
  /** Attaches billflow's PDF (only when `capabilities.attachPdf`). */
  attachPdf(invoiceId: string, pdf: Uint8Array, idempotencyKey: string, requestId: string): Promise<void>;
  /** Changes a finalized record's figures (only when `capabilities.editFinalizedInvoice`). */
  updateInvoice(invoiceId: string, patch: ProviderInvoicePatch, idempotencyKey: string, requestId: string): Promise<ProviderInvoiceRecord>;
  /** Takes the record out of use (deleted or voided, per `capabilities.removeInvoice`); already gone counts as done. */
  removeInvoice(invoiceId: string, idempotencyKey: string, requestId: string): Promise<void>;
  /** The live record, or null when the provider has none (deleted, voided, or never made). */
  getInvoice(invoiceId: string, requestId: string): Promise<ProviderInvoiceRecord | null>;
  /** Every live invoice record of the account. */
  listInvoices(requestId: string): Promise<ProviderInvoiceRecord[]>;
  /** Every payment on one invoice record. */
  listPayments(invoiceId: string, requestId: string): Promise<ProviderPaymentRecord[]>;
  /** Records a payment made outside the provider (Quick Pay, a re-applied prepayment) on its invoice. */
  recordPayment(p: NewProviderPayment, idempotencyKey: string, requestId: string): Promise<ProviderPaymentRecord>;
  /** Removes a payment record billflow no longer counts; already removed counts as done. */
  removePayment(paymentId: string, idempotencyKey: string, requestId: string): Promise<void>;
  /**
   * What the provider kept from a payment it collected (only when `capabilities.fees` is
   * `processing-fee`), in its balance's currency; null for a payment it did not collect (or
   * collected without a fee billflow can read), 'pending' while its balance does not show it yet.
   */
  processingFee(paymentId: string, requestId: string): Promise<ProcessingFee | 'pending' | null>;
}

export interface ProcessingFee {
  amount: number;
  /** The balance's currency (ISO 4217, upper case), which can differ from the invoice's. */
  currency: string;
}

/** A verified provider webhook: its event id (deduplicated) and the payment it brings, if any. */
interface ProviderWebhookEvent {
  id: string;
  type: string;
  payment: ProviderPaymentRecord | null;
}

/** Checks a webhook's signature against the raw body and reads it; `why` says what was wrong. */
export interface WebhookVerifier {
  /** The header that carries the signature. */
  readonly header: string;
  verify(
    secrets: string[],
    raw: string,
    signature: string | undefined,
  ): { event: ProviderWebhookEvent } | { why: string; type: 'invalid-signature' | 'malformed-json' | 'invalid-webhook'; field?: string };
}

/** A provider answer: retryable (5xx, 429, network) or final (any other 4xx). */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
    readonly type: string | null,
    readonly body: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'ProviderError';
  }

  get retryable(): boolean {
    return this.status === null || this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

/** The part of a provider payment that concerns one invoice record, or null if it covers none. */
export function paymentForInvoice(p: ProviderPaymentRecord, providerInvoiceId: string, source: ProviderPayment['source'], requestId: string): ProviderPayment | null {
  const mine = p.allocations.find((a) => a.invoiceId === providerInvoiceId);
  if (!mine || p.status !== 'succeeded') return null;
  return {
    paymentId: p.id,
    amount: mine.amount,
    fee: p.fee,
    paidAt: p.paidAt,
    coveredInvoices: p.allocations.map((a) => a.invoiceNumber),
    applications: p.allocations.map((a) => ({ invoiceNumber: a.invoiceNumber, amount: a.amount })),
    method: p.method,
    ...(p.reference ? { reference: p.reference } : {}),
    totalAmount: p.amount,
    source,
    requestId,
  };
}
