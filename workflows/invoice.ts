/**
 * One workflow per ERP invoice, from draft through final, reissue and payment. The state lives in
 * the workflow; the rules come from domain/; every side effect is an activity with an idempotency
 * key made from business identity (company, invoice, revision, operation).
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import {
  invoiceTotal,
  outstandingAmount,
  sendsToProvider,
  settlementStatus,
  transitionError,
} from '../domain/invoice.js';
import {
  changeStatusUpdate,
  paymentSignal,
  searchAttributes as sa,
  stateQuery,
  type ChangeStatusRequest,
  type InvoiceDraft,
  type InvoiceState,
  type InvoiceWorkflowInput,
  type ProviderPayment,
} from './contract.js';
import { Lock } from './lock.js';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  // Provider outages are waited out here, visibly, as a retrying activity in the Web UI.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

function initialState(draft: InvoiceDraft): InvoiceState {
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
    history: [],
    version: 0,
  };
}

export async function invoiceWorkflow(input: InvoiceWorkflowInput): Promise<void> {
  const state = input.state ?? initialState(input.draft);
  const lock = new Lock();
  const inbox: ProviderPayment[] = [];

  setHandler(stateQuery, () => state);
  setHandler(changeStatusUpdate, (req) => lock.run(() => changeStatus(req)), {
    validator: (req) => {
      const err = transitionError(state.status, req.to);
      if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalTransition');
    },
  });
  setHandler(paymentSignal, (p) => {
    inbox.push(p);
  });

  /** Recomputes every derived figure from the rows, then writes the read model and search attributes. */
  async function publish(): Promise<void> {
    state.total = invoiceTotal(state.lines);
    state.outstanding = outstandingAmount(state.total, state.prepaymentsApplied, state.payments);
    state.paid = state.payments.reduce((s, p) => s + p.amount, 0);
    state.settlement = settlementStatus(state.total, state.prepaymentsApplied, state.payments);
    state.version += 1;
    upsertSearchAttributes([
      { key: sa.status, value: state.status },
      { key: sa.outstanding, value: state.outstanding },
      { key: sa.settlement, value: state.settlement },
    ]);
    await acts.saveInvoice(state);
  }

  async function changeStatus(req: ChangeStatusRequest): Promise<InvoiceState> {
    // Re-check under the lock: another change may have landed while this one waited.
    const err = transitionError(state.status, req.to);
    if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalTransition');
    const from = state.status;
    if (req.to === 'Final') await finalize(req.requestId);
    else throw ApplicationFailure.nonRetryable(`changing a Final invoice to ${req.to} is not supported yet`, 'NotSupported');
    state.history.push({ at: new Date().toISOString(), from, to: req.to, requestId: req.requestId });
    await publish();
    return state;
  }

  /** Print to Final: PDF, and when the integration is on and something is owed, the provider record. */
  async function finalize(requestId: string): Promise<void> {
    const { companyId, number } = state;
    const company = await acts.getCompanySettings({ companyId });
    state.revision += 1;
    const key = (op: string) => `${companyId}:${number}:${state.revision}:${op}`;
    const outstanding = outstandingAmount(invoiceTotal(state.lines), state.prepaymentsApplied, state.payments);
    const send = sendsToProvider(company.providerEnabled, outstanding);
    if (send) {
      state.providerCustomerId = (await acts.ensureProviderCustomer({ companyId, clientId: state.clientId, requestId })).customerId;
      const created = await acts.createProviderInvoice({
        companyId,
        customerId: state.providerCustomerId,
        number,
        invoiceDate: state.invoiceDate,
        amount: state.total,
        outstanding,
        idempotencyKey: key('create-invoice'),
        requestId,
      });
      state.providerInvoiceId = created.providerInvoiceId;
      state.payNowUrl = created.payNowUrl;
    }
    state.pdf = await acts.renderInvoicePdf({ invoice: state, requestId });
    if (send && state.providerInvoiceId) {
      await acts.attachProviderInvoicePdf({
        companyId,
        providerInvoiceId: state.providerInvoiceId,
        documentId: state.pdf.documentId,
        idempotencyKey: key('attach-pdf'),
        requestId,
      });
    }
    state.sentToProvider = send;
    state.paymentImportSeconds = send ? company.paymentImportSeconds : null;
    state.status = 'Final';
  }

  /** Applies each provider payment once, whichever path (webhook or import) brought it first. */
  async function applyPayments(payments: ProviderPayment[]): Promise<void> {
    let changed = false;
    for (const p of payments) {
      if (state.payments.some((x) => x.paymentId === p.paymentId)) continue;
      await acts.recordPayment({ companyId: state.companyId, number: state.number, currency: state.currency, payment: p });
      state.payments.push({ paymentId: p.paymentId, amount: p.amount, fee: p.fee, paidAt: p.paidAt, source: p.source });
      changed = true;
    }
    if (changed) await publish();
  }

  async function importPayments(): Promise<void> {
    if (!state.providerInvoiceId) return;
    const found = await acts.importProviderPayments({
      companyId: state.companyId,
      providerInvoiceId: state.providerInvoiceId,
      requestId: `import-${uuid4()}`,
    });
    await applyPayments(found);
  }

  if (!input.state) await lock.run(publish);

  const importing = () => state.status === 'Final' && state.outstanding > 0 && state.paymentImportSeconds !== null;
  for (;;) {
    // Wake for payments, for continue-as-new, and when a status change starts or stops the import timer.
    const wasImporting = importing();
    const wake = () => inbox.length > 0 || workflowInfo().continueAsNewSuggested || importing() !== wasImporting;
    let importDue = false;
    if (wasImporting) importDue = !(await condition(wake, state.paymentImportSeconds! * 1000));
    else await condition(wake);
    if (inbox.length > 0) await lock.run(() => applyPayments(inbox.splice(0)));
    else if (importDue) await lock.run(importPayments);
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      log.info('continuing as new', { historyLength: workflowInfo().historyLength });
      await continueAsNew<typeof invoiceWorkflow>({ draft: input.draft, state });
    }
  }
}
