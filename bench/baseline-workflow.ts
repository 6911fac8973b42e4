/**
 * The benchmark's baseline: the least a Temporal workflow can do to take an invoice from draft to
 * paid with billflow's activities, the same ones in the same order (settings, provider customer and
 * invoice, PDF, email, life-cycle record, payment), with none of the engine around it (no API, no
 * entity state machine, no webhook hop). The engine's overhead is measured against this.
 */
import { condition, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { InvoiceDraft, ProviderPayment } from '../workflows/contract.js';
import { initialState } from '../workflows/state.js';

const acts = proxyActivities<Activities>({ startToCloseTimeout: '2 minutes' });

export const finalUpdate = defineUpdate<string, []>('final');
export const paidSignal = defineSignal<[ProviderPayment]>('paid');

export async function baselineInvoice(draft: InvoiceDraft): Promise<void> {
  const state = initialState(draft);
  const total = state.total;
  let payment: ProviderPayment | null = null;
  let finalized = false;
  setHandler(paidSignal, (p) => {
    payment = p;
  });
  setHandler(finalUpdate, async () => {
    const requestId = `bench-${draft.number}`;
    await acts.getCompanySettings({ companyId: draft.companyId });
    const email = await acts.getEmailSettings({ companyId: draft.companyId, clientId: draft.clientId });
    await acts.getBillingLimits({ companyId: draft.companyId, clientId: draft.clientId });
    const { customerId } = await acts.ensureProviderCustomer({ companyId: draft.companyId, clientId: draft.clientId, requestId });
    const created = await acts.createProviderInvoice({
      companyId: draft.companyId,
      customerId,
      number: draft.number,
      invoiceDate: draft.invoiceDate,
      amount: total,
      outstanding: total,
      idempotencyKey: `${draft.companyId}:${draft.number}:1:create-invoice`,
      requestId,
    });
    state.providerInvoiceId = created.providerInvoiceId;
    state.payNowUrl = created.payNowUrl;
    state.revision = 1;
    state.pdf = await acts.renderInvoicePdf({ invoice: state, requestId });
    await acts.attachProviderInvoicePdf({
      companyId: draft.companyId,
      providerInvoiceId: created.providerInvoiceId,
      documentId: state.pdf.documentId,
      idempotencyKey: `${draft.companyId}:${draft.number}:1:attach-pdf`,
      requestId,
    });
    if (email) await acts.sendInvoiceEmail({ invoice: state, requestId });
    await acts.recordLifecycleChange({ companyId: draft.companyId, number: draft.number, from: null, to: 'Posted', by: 'bench', requestId, seq: 1 });
    state.status = 'Final';
    state.version = 2;
    await acts.saveInvoice(state);
    finalized = true;
    return created.providerInvoiceId;
  });
  await acts.saveInvoice(state);
  await condition(() => finalized && payment !== null);
  const p = payment!;
  await acts.recordPayment({ companyId: draft.companyId, number: draft.number, currency: draft.currency, payment: p });
  state.payments.push({ paymentId: p.paymentId, amount: p.amount, fee: p.fee, paidAt: p.paidAt, source: p.source, coveredInvoices: p.coveredInvoices });
  state.paid = p.amount;
  state.outstanding = total - p.amount;
  state.settlement = 'Settled';
  state.version = 3;
  await acts.saveInvoice(state);
}
