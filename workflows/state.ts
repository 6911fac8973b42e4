/** The state an invoice workflow starts from: a Draft with nothing paid or sent. */
import { invoiceTotal, settlementStatus } from '../domain/invoice.js';
import type { InvoiceDraft, InvoiceState } from './contract.js';

export function initialState(draft: InvoiceDraft): InvoiceState {
  const total = invoiceTotal(draft.lines);
  return {
    ...draft,
    status: 'Draft',
    revision: 0,
    total,
    paid: 0,
    outstanding: total - draft.prepaymentsApplied,
    settlement: settlementStatus(total, draft.prepaymentsApplied, []),
    payNowUrl: null,
    providerInvoiceId: null,
    providerCustomerId: null,
    pdf: null,
    sentToProvider: false,
    paymentImportSeconds: null,
    payments: [],
    convertedPayments: [],
    prepaymentApplications: [],
    backupDocumentIds: [],
    history: [],
    pendingChange: null,
    lifecycleState: null,
    lifecycleHistory: [],
    classification: null,
    held: false,
    version: 0,
  };
}
