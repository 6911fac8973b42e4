/**
 * What one status change needs from several activities, in one. Every activity costs a round trip
 * through the Temporal server (about 80 ms on the dev server) while its work takes a few
 * milliseconds, so a change pays for its activity count, not its work. Each part is the same
 * idempotent activity as before, run in order inside this one, so a retry of the whole repeats
 * nothing twice.
 */
import { contentKey, type InvoiceState } from '../workflows/contract.js';
import type { SingleActivities } from './index.js';

type Parts = Pick<
  SingleActivities,
  | 'getCompanySettings'
  | 'getEmailSettings'
  | 'getBillingLimits'
  | 'ensureProviderCustomer'
  | 'createProviderInvoice'
  | 'renderInvoicePdf'
  | 'attachProviderInvoicePdf'
  | 'recordLifecycleChange'
  | 'saveInvoice'
>;

export function createCombinedActivities(a: Parts) {
  return {
    /** The company's settings, and for a Final the client's email settings and billing limits. */
    async changeContext({ companyId, clientId, to }: { companyId: string; clientId: string; to: string }) {
      const company = await a.getCompanySettings({ companyId });
      if (to !== 'Final') return { company, email: null, limits: null };
      const [email, limits] = await Promise.all([a.getEmailSettings({ companyId, clientId }), a.getBillingLimits({ companyId, clientId })]);
      return { company, email, limits };
    },

    /** The client's customer at the provider (made when missing) and the invoice's record on it. */
    async createProviderRecord(input: Omit<Parameters<Parts['createProviderInvoice']>[0], 'customerId'> & { clientId: string }) {
      const { clientId, ...invoice } = input;
      const { customerId } = await a.ensureProviderCustomer({ companyId: input.companyId, clientId, requestId: input.requestId });
      const created = await a.createProviderInvoice({ ...invoice, customerId });
      return { customerId, ...created };
    },

    /** Renders the invoice PDF and, when the invoice has a provider record, attaches it there (keyed by its content). */
    async renderAndAttachPdf(input: { invoice: InvoiceState; providerInvoiceId: string | null; attachKey: string; requestId: string }) {
      const pdf = await a.renderInvoicePdf({ invoice: input.invoice, requestId: input.requestId });
      if (input.providerInvoiceId) {
        await a.attachProviderInvoicePdf({
          companyId: input.invoice.companyId,
          providerInvoiceId: input.providerInvoiceId,
          documentId: pdf.documentId,
          idempotencyKey: contentKey(input.attachKey, pdf.sha256),
          requestId: input.requestId,
        });
      }
      return pdf;
    },

    /** Records a life-cycle move (when there is one) and writes the read model. */
    async recordChange(input: { invoice: InvoiceState; lifecycle: Parameters<Parts['recordLifecycleChange']>[0] | null }): Promise<void> {
      if (input.lifecycle) await a.recordLifecycleChange(input.lifecycle);
      await a.saveInvoice(input.invoice);
    },
  };
}
