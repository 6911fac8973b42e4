/**
 * What one status change needs from several activities, in one. Every activity costs a round trip
 * through the Temporal server (about 80 ms on the dev server) while its work takes a few
 * milliseconds, so a change pays for its activity count, not its work. Each part is the same
 * idempotent activity as before, run in order inside this one, so a retry of the whole repeats
 * nothing twice.
 */
import { ApplicationFailure } from '@temporalio/activity';
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
  | 'sendInvoiceEmail'
>;

/** A refusal for good (a provider 4xx, an unknown mailbox): retrying cannot help. */
function refusal(e: unknown): { message: string; type: string } | null {
  return e instanceof ApplicationFailure && e.nonRetryable ? { message: e.message, type: e.type ?? 'ChangeFailed' } : null;
}

type LifecycleRecord = Parameters<Parts['recordLifecycleChange']>[0];

export function createCombinedActivities(a: Parts) {
  async function createProviderRecord(input: Omit<Parameters<Parts['createProviderInvoice']>[0], 'customerId'> & { clientId: string }) {
    const { clientId, ...invoice } = input;
    const { customerId } = await a.ensureProviderCustomer({ companyId: input.companyId, clientId, requestId: input.requestId });
    const created = await a.createProviderInvoice({ ...invoice, customerId });
    return { customerId, ...created };
  }

  async function renderAndAttachPdf(input: { invoice: InvoiceState; providerInvoiceId: string | null; attachKey: string; requestId: string }) {
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
  }

  return {
    /** The company's settings, and for a Final the client's email settings and billing limits. */
    async changeContext({ companyId, clientId, to }: { companyId: string; clientId: string; to: string }) {
      const company = await a.getCompanySettings({ companyId });
      if (to !== 'Final') return { company, email: null, limits: null };
      const [email, limits] = await Promise.all([a.getEmailSettings({ companyId, clientId }), a.getBillingLimits({ companyId, clientId })]);
      return { company, email, limits };
    },

    /** The client's customer at the provider (made when missing) and the invoice's record on it. */
    createProviderRecord,

    /** Renders the invoice PDF and, when the invoice has a provider record, attaches it there (keyed by its content). */
    renderAndAttachPdf,

    /**
     * A Final's whole outside work in one round trip: the provider record (customer and invoice),
     * the PDF showing its Pay Now URL rendered and, where the provider takes it, attached, then the
     * email when the plan sends one. Each part is keyed or claimed, so a retry of the whole after
     * a crash or an outage repeats nothing. A refusal for good once the record exists is answered,
     * not thrown, so the workflow knows the record and undoes it; a bounced email is an outcome.
     */
    async finalizeAtProvider(input: {
      record: Omit<Parameters<Parts['createProviderInvoice']>[0], 'customerId'> & { clientId: string };
      /** The invoice as the PDF and the email show it once the change is done. */
      invoice: InvoiceState;
      /** The attach key of this revision, or null where the provider renders its own PDF. */
      attachKey: string | null;
      email: boolean;
      requestId: string;
    }) {
      const made = await createProviderRecord(input.record);
      const invoice = { ...input.invoice, providerInvoiceId: made.providerInvoiceId, payNowUrl: made.payNowUrl };
      let pdf: { documentId: string; sha256: string };
      try {
        pdf = await renderAndAttachPdf({ invoice, providerInvoiceId: input.attachKey ? made.providerInvoiceId : null, attachKey: input.attachKey ?? '', requestId: input.requestId });
      } catch (e) {
        const refused = refusal(e);
        if (!refused) throw e;
        return { ...made, pdf: null, refused, email: null };
      }
      if (!input.email) return { ...made, pdf, refused: null, email: null };
      try {
        const sent = await a.sendInvoiceEmail({ invoice: { ...invoice, pdf }, requestId: input.requestId });
        return { ...made, pdf, refused: null, email: { outcome: sent.outcome ?? ('sent' as const) } };
      } catch (e) {
        const refused = refusal(e);
        if (!refused) throw e;
        return { ...made, pdf, refused: null, email: { failed: refused.message } };
      }
    },

    /** Records life-cycle moves (`lifecycle`, as workflows before record-after-answer pass one, or `lifecycles`, in order) and writes the read model. */
    async recordChange(input: { invoice: InvoiceState; lifecycle: LifecycleRecord | null; lifecycles?: LifecycleRecord[] }): Promise<void> {
      for (const l of [...(input.lifecycle ? [input.lifecycle] : []), ...(input.lifecycles ?? [])]) await a.recordLifecycleChange(l);
      await a.saveInvoice(input.invoice);
    },
  };
}
