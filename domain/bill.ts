/**
 * Bills: billflow's final invoices as the billing side sees them. Their informative life-cycle
 * state, and the exceptional-bill classification of a company's billing-run definition.
 */
import type { InvoiceStatus, SettlementStatus } from './invoice.js';
import type { Minor } from './money.js';

export type LifecycleState = 'Posted' | 'Presented' | 'Presented & Confirmed' | 'Presented & Rejected';

/**
 * Changed only by explicit actions: Presented and Presented & Confirmed only from Posted;
 * Presented & Rejected from Posted or Presented & Confirmed. Posted is set when the bill is made.
 */
const LIFECYCLE_MOVES: Record<Exclude<LifecycleState, 'Posted'>, readonly LifecycleState[]> = {
  Presented: ['Posted'],
  'Presented & Confirmed': ['Posted'],
  'Presented & Rejected': ['Posted', 'Presented & Confirmed'],
};

/**
 * Why the bill cannot move to `to`, or null when it can. Only a Final invoice is a bill; it loses
 * its life-cycle state when it leaves Final and is Posted again when it becomes Final again.
 */
export function lifecycleMoveError(status: InvoiceStatus, from: LifecycleState | null, to: LifecycleState): string | null {
  if (to === 'Posted') return 'Posted is set when the invoice becomes Final; it is not an action';
  if (status !== 'Final' || from === null) return `the invoice is ${status}, not a bill: it gets a life-cycle state when it becomes Final`;
  const allowed = LIFECYCLE_MOVES[to];
  return allowed.includes(from) ? null : `a bill in life-cycle state ${from} cannot move to ${to}; ${to} is reached only from ${allowed.join(' or ')}`;
}

export type Classification = 'Max Credit Amount Reached' | 'Max Credit Limit Amount Reached';

/** A billing-run limit: a fixed amount, or equal to (100) / a percentage of the client's credit limit. */
export type BillLimit = { kind: 'fixed'; amount: Minor } | { kind: 'credit-limit'; percent: number };

/** The limit in money for one client, or null when it does not apply (no credit limit known). */
export function resolveLimit(limit: BillLimit | null, creditLimit: Minor | null): Minor | null {
  if (!limit) return null;
  if (limit.kind === 'fixed') return limit.amount;
  return creditLimit === null ? null : Math.round((creditLimit * limit.percent) / 100);
}

/**
 * A bill total below -maxCredited is "Max Credit Amount Reached" (too low); above maxDebited it is
 * "Max Credit Limit Amount Reached" (too high). Either makes it exceptional.
 */
export function classifyBill(total: Minor, maxCredited: Minor | null, maxDebited: Minor | null): Classification | null {
  if (maxCredited !== null && total < -maxCredited) return 'Max Credit Amount Reached';
  if (maxDebited !== null && total > maxDebited) return 'Max Credit Limit Amount Reached';
  return null;
}

/** Why Quick Pay is not offered on this bill, or null when it is. */
export function quickPayError(bill: { number: string; status: InvoiceStatus; settlement: SettlementStatus; outstanding: Minor; held: boolean }): string | null {
  if (bill.status !== 'Final') return `Quick Pay settles a Final bill; invoice ${bill.number} is ${bill.status}`;
  if (bill.settlement === 'Settled' || bill.outstanding <= 0) return `invoice ${bill.number} is already settled; Quick Pay is not offered`;
  if (bill.held) return `invoice ${bill.number} is held as an exceptional bill; release it first`;
  return null;
}

/** Why a bill cannot be released now, or null when it can: only a held bill that is still Final goes out. */
export function releaseError(bill: { number: string; status: InvoiceStatus; held: boolean }): string | null {
  if (!bill.held) return `invoice ${bill.number} is not held`;
  if (bill.status !== 'Final') return `invoice ${bill.number} is ${bill.status} now, not Final: it is sent when it becomes Final again`;
  return null;
}
