/**
 * The benchmark's baseline: the least a Temporal workflow can do to take an invoice from draft to
 * paid, making only the irreducible calls (provider customer and invoice, PDF render and attach,
 * email, payment record) with billflow's own activities, the way billflow makes them: as regular
 * activities. None of the engine around it: no settings reads, no read model, no life-cycle
 * record, no search attributes, no reminders, no API, no webhook hop.
 */
import { condition, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import type { InvoiceDraft, ProviderPayment } from '../workflows/contract.js';
import { initialState } from '../workflows/state.js';

// billflow's activity options (workflows/invoice.ts), so both sides pay the same per call.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '20 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

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
    state.status = 'Final';
    await acts.sendInvoiceEmail({ invoice: state, requestId });
    finalized = true;
    return created.providerInvoiceId;
  });
  await condition(() => finalized && payment !== null);
  await acts.recordPayment({ companyId: draft.companyId, number: draft.number, currency: draft.currency, payment: payment! });
}
