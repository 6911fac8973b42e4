/**
 * The invoice lifecycle rules, pure and deterministic: imported by the workflow (so it replays),
 * by the API (to validate early) and by tests. Every rule of the lifecycle lives here once.
 */
import { DomainError, assertMinor, sum, type Minor } from './money.js';

export const INVOICE_STATUSES = ['Draft', 'Final', 'Reissue'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/** Ajera's allowed status changes: Draft -> Final; Final -> Reissue | Draft; Reissue -> Final | Draft. */
const TRANSITIONS: Record<InvoiceStatus, readonly InvoiceStatus[]> = {
  Draft: ['Final'],
  Final: ['Reissue', 'Draft'],
  Reissue: ['Final', 'Draft'],
};

/** Returns why `from -> to` is not allowed, or null when it is. */
export function transitionError(from: InvoiceStatus, to: InvoiceStatus): string | null {
  if (TRANSITIONS[from].includes(to)) return null;
  const allowed = TRANSITIONS[from].join(' or ');
  return `an invoice in status ${from} cannot change to ${to}; from ${from} it can change to ${allowed}`;
}

/** Why the dates are wrong, or null: the due date cannot come before the invoice date. */
export function datesError(invoiceDate: string, dueDate: string): string | null {
  return dueDate < invoiceDate ? `dueDate ${dueDate} is before invoiceDate ${invoiceDate}` : null;
}

/** Why a prepayment of `amount` cannot be applied to an invoice that still owes `owed`, or null. */
/** The moment an unpaid Final invoice becomes overdue: the end of its due date (UTC), the day after it is due. */
export function overdueFrom(dueDate: string): number {
  return Date.parse(`${dueDate}T00:00:00Z`) + 86_400_000;
}

/** Overdue: Final, something still owed, and its due date is over. */
export function isOverdue(inv: { status: InvoiceStatus; outstanding: Minor; dueDate: string }, now: number): boolean {
  return inv.status === 'Final' && inv.outstanding > 0 && now >= overdueFrom(inv.dueDate);
}

export function prepaymentError(number: string, amount: Minor, owed: Minor): string | null {
  if (!Number.isSafeInteger(amount) || amount <= 0) return 'amount must be a positive integer in minor units';
  return amount > owed ? `amount ${amount} is more than the ${owed} still owed on invoice ${number}` : null;
}

/** Only a Draft or a Reissue invoice can be edited; a Final one must be reissued first. */
export function revisionError(status: InvoiceStatus): string | null {
  return status === 'Final' ? 'a Final invoice cannot be edited; change it to Reissue or Draft first' : null;
}

export const SETTLEMENT_STATUSES = ['Unsettled', 'Partially settled', 'Settled'] as const;
export type SettlementStatus = (typeof SETTLEMENT_STATUSES)[number];

export interface InvoiceLine {
  description: string;
  /** Optional display detail; `amount` is what counts. */
  quantity?: number;
  unitPrice?: Minor;
  amount: Minor;
}

export interface AppliedPayment {
  /** The provider's payment id; a payment is applied to an invoice at most once. */
  paymentId: string;
  /** The part of the payment applied to this invoice, fee excluded. */
  amount: Minor;
  /** Convenience fee the payer paid on top; never reduces the outstanding balance. */
  fee: Minor;
  paidAt: string;
  /** How billflow learned of it: the provider's webhook, the periodic import, or its own Quick Pay. */
  source: 'webhook' | 'import' | 'quickpay';
  /** Every invoice number the provider payment covered, this one included. */
  coveredInvoices: string[];
}

export function invoiceTotal(lines: readonly InvoiceLine[]): Minor {
  return sum(lines.map((l) => l.amount));
}

/** What the client still owes: total less applied prepayments less payments received. */
export function outstandingAmount(total: Minor, prepaymentsApplied: Minor, payments: readonly AppliedPayment[]): Minor {
  return total - prepaymentsApplied - sum(payments.map((p) => p.amount));
}

/** What the provider's record shows as owed: the outstanding amount, never below zero (a credit is not owed). */
export function owedAtProvider(outstanding: Minor): Minor {
  return Math.max(outstanding, 0);
}

/**
 * Settlement is recomputed from the payment rows every time, never counted up, so a replayed or
 * duplicated event cannot drift it.
 */
export function settlementStatus(total: Minor, prepaymentsApplied: Minor, payments: readonly AppliedPayment[]): SettlementStatus {
  const due = total - prepaymentsApplied;
  const paid = sum(payments.map((p) => p.amount));
  if (paid >= due) return 'Settled';
  return paid > 0 ? 'Partially settled' : 'Unsettled';
}

/**
 * Zero and net-zero invoices (after applied prepayments) never go to the provider, and neither do
 * credits: there is nothing for a payer to pay.
 */
export function sendsToProvider(integrationEnabled: boolean, outstanding: Minor): boolean {
  return integrationEnabled && outstanding > 0;
}

/** Validates the ERP's draft lines and returns them normalised. */
export function validateLines(lines: unknown): InvoiceLine[] {
  if (!Array.isArray(lines) || lines.length === 0) {
    throw new DomainError('invalid-lines', 'lines must be a non-empty array', 'lines');
  }
  return lines.map((raw: unknown, i) => {
    const field = `lines[${i}]`;
    if (typeof raw !== 'object' || raw === null) throw new DomainError('invalid-lines', `${field} must be an object`, field);
    const line = raw as Record<string, unknown>;
    if (typeof line.description !== 'string' || line.description.trim() === '') {
      throw new DomainError('invalid-lines', `${field}.description must be a non-empty string`, `${field}.description`);
    }
    assertMinor(line.amount, `${field}.amount`);
    const out: InvoiceLine = { description: line.description, amount: line.amount };
    if (line.quantity !== undefined) {
      if (typeof line.quantity !== 'number' || !Number.isFinite(line.quantity)) {
        throw new DomainError('invalid-lines', `${field}.quantity must be a number`, `${field}.quantity`);
      }
      out.quantity = line.quantity;
    }
    if (line.unitPrice !== undefined) {
      assertMinor(line.unitPrice, `${field}.unitPrice`);
      out.unitPrice = line.unitPrice;
    }
    if (out.quantity !== undefined && out.unitPrice !== undefined && Math.round(out.quantity * out.unitPrice) !== out.amount) {
      throw new DomainError('invalid-lines', `${field}.amount ${out.amount} does not equal quantity ${out.quantity} x unitPrice ${out.unitPrice}`, `${field}.amount`);
    }
    return out;
  });
}
