/**
 * billflow's activities, built from their dependencies so tests and the worker wire real ones.
 * Workflows import this module as a type only.
 */
import { createHash } from 'node:crypto';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { resolveLimit, type BillLimit } from '../domain/bill.js';
import { PROVIDER_CAPABILITIES, type ProviderCapabilities, type ProviderKind } from '../domain/provider.js';
import type { Sql } from '../lib/db.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { Keyring } from '../lib/secrets.js';
import { stableUuid } from '../lib/ids.js';
import { quickPayReference, type InvoiceState, type ProviderPayment } from '../workflows/contract.js';
import { renderInvoiceEmail, templateUsesPayNowUrl, type EmailTemplate } from './email/invoice-email.js';
import { MailError, type Mailer, type OutgoingMail } from './email/mailer.js';
import { reminderRefusal, type ReminderRefusal } from '../domain/reminders.js';
import { renderReminderEmail } from './email/reminder-email.js';
import { invoiceHtml } from './pdf/invoice-document.js';
import type { PdfRenderer } from './pdf/renderer.js';
import { companyProvider, provider } from './provider/calls.js';
import type { CircuitSettings } from './provider/circuit.js';
import { paymentForInvoice } from './provider/provider.js';
import { markProcessingFee, settleProcessingFees } from './processing-fees.js';
import { createBillActivities } from './bills.js';
import { createCombinedActivities } from './combined.js';
import { emitEvents, invoiceEvents, invoiceKey, lockEventKeys } from './events.js';
import { insertReceipts, type QuickPayDetails } from './receipts.js';
import { paySeries, payLinkUrl } from '../domain/pay-link.js';
import { linked, payLinkToken, type LinkedInvoice } from './pay-links.js';
import { createReconcileActivities } from './reconcile.js';

export interface ActivityDeps {
  sql: Sql;
  renderer: PdfRenderer;
  mailer: Mailer;
  /** Opens the provider API keys stored encrypted. */
  secrets: Keyring;
  /** Where payers reach billflow's API: the base of its Pay Now links (`API_PUBLIC_URL`). */
  publicApiUrl: string;
  /** The circuit breaker per provider account (`PROVIDER_CIRCUIT_*`); without it calls go straight to the provider. */
  circuit?: CircuitSettings;
  /** Provider call latency and errors are counted here. */
  metrics: WorkerMetrics;
}

/** How a send that must happen at most once ended: 'unconfirmed' when a crash cut an earlier attempt off mid-send. */
export type SendOutcome = 'sent' | 'already-sent' | 'unconfirmed';

type Query = () => Promise<readonly unknown[]>;

interface CompanySettings {
  providerEnabled: boolean;
  paymentImportSeconds: number;
  /** Days relative to the due date on which a Final invoice that owes something is reminded (absent in histories recorded before reminders). */
  reminderDays?: number[];
  /** What the company's provider can do, recorded with the result so a plan replays as it was made (absent in older histories: Bill & Pay's). */
  capabilities?: ProviderCapabilities;
}

/** Each activity doing one thing; `createActivities` adds those that do several of them in one. */
function createSingleActivities({ sql, renderer, mailer, secrets, publicApiUrl, circuit, metrics }: ActivityDeps) {
  const providerOf = (companyId: string) => companyProvider(sql, secrets, companyId, metrics, circuit);
  const withLink = (s: InvoiceState) => linked(sql, publicApiUrl, s);

  /** Sends one message; a refusal for good (SMTP 5xx) stops the activity's retries. */
  async function deliver(mail: OutgoingMail): Promise<void> {
    try {
      await mailer.send(mail);
    } catch (e) {
      if (e instanceof MailError && e.permanent) throw ApplicationFailure.nonRetryable(e.message, 'MailRejected');
      throw e;
    }
  }

  /**
   * At most once: the message is claimed in the database first, sent, then confirmed. A refused
   * send gives the claim back (nothing went out, so a retry may send); a claim an earlier attempt
   * left unconfirmed (cut off between sending and confirming) is reported, never sent again.
   */
  async function sendOnce(claim: Query, release: Query, confirm: Query, mail: OutgoingMail): Promise<SendOutcome> {
    if ((await claim()).length === 0) return 'unconfirmed';
    try {
      await deliver(mail);
    } catch (e) {
      await release();
      throw e;
    }
    await confirm();
    return 'sent';
  }

  return {
    ...createBillActivities({ sql, renderer, mailer, secrets, publicApiUrl, metrics }),
    ...createReconcileActivities({ sql, secrets, metrics, ...(circuit ? { circuit } : {}) }),
    async getCompanySettings({ companyId }: { companyId: string }): Promise<CompanySettings> {
      const [row] = await sql<{ provider_enabled: boolean; provider_kind: ProviderKind; payment_import_seconds: number; reminder_days: number[] }[]>`
        SELECT provider_enabled, provider_kind, payment_import_seconds, reminder_days FROM companies WHERE id = ${companyId}`;
      if (!row) throw ApplicationFailure.nonRetryable(`unknown company ${companyId}`, 'UnknownCompany');
      return {
        providerEnabled: row.provider_enabled,
        paymentImportSeconds: row.payment_import_seconds,
        reminderDays: row.reminder_days,
        capabilities: PROVIDER_CAPABILITIES[row.provider_kind],
      };
    },

    async ensureProviderCustomer({ companyId, clientId, requestId }: { companyId: string; clientId: string; requestId: string }) {
      const [client] = await sql<{ name: string; email: string | null }[]>`
        SELECT name, email FROM clients WHERE company_id = ${companyId} AND id = ${clientId}`;
      if (!client) throw ApplicationFailure.nonRetryable(`unknown client ${clientId}`, 'UnknownClient');
      const api = await providerOf(companyId);
      const customer = await provider('ensure customer', () => api.ensureCustomer({ externalId: clientId, name: client.name, email: client.email }, requestId));
      log.info('provider customer ready', { companyId, clientId, customerId: customer.id, requestId });
      return { customerId: customer.id };
    },

    async createProviderInvoice(input: {
      companyId: string;
      customerId: string;
      number: string;
      invoiceDate: string;
      /** Absent in activities scheduled before providers needed them. */
      dueDate?: string;
      currency?: string;
      amount: number;
      outstanding: number;
      idempotencyKey: string;
      requestId: string;
    }) {
      const api = await providerOf(input.companyId);
      const inv = await provider('create provider invoice', () =>
        api.createInvoice(
          {
            customerId: input.customerId,
            number: input.number,
            invoiceDate: input.invoiceDate,
            ...(input.dueDate ? { dueDate: input.dueDate } : {}),
            ...(input.currency ? { currency: input.currency } : {}),
            amount: input.amount,
            outstanding: input.outstanding,
          },
          input.idempotencyKey,
          input.requestId,
        ),
      );
      await sql`
        INSERT INTO provider_invoice_refs (company_id, provider_invoice_id, invoice_number)
        VALUES (${input.companyId}, ${inv.id}, ${input.number}) ON CONFLICT DO NOTHING`;
      log.info('provider invoice created', { number: input.number, providerInvoiceId: inv.id, requestId: input.requestId });
      return { providerInvoiceId: inv.id, payNowUrl: inv.payNowUrl };
    },

    async attachProviderInvoicePdf(input: { companyId: string; providerInvoiceId: string; documentId: string; idempotencyKey: string; requestId: string }): Promise<void> {
      const [doc] = await sql<{ bytes: Buffer }[]>`SELECT bytes FROM documents WHERE id = ${input.documentId}`;
      if (!doc) throw ApplicationFailure.nonRetryable(`document ${input.documentId} not found`, 'MissingDocument');
      const api = await providerOf(input.companyId);
      await provider('attach PDF', () => api.attachPdf(input.providerInvoiceId, doc.bytes, input.idempotencyKey, input.requestId));
      log.info('invoice PDF sent to provider', { providerInvoiceId: input.providerInvoiceId, requestId: input.requestId });
    },

    async importProviderPayments(input: { companyId: string; providerInvoiceId: string; requestId: string }): Promise<ProviderPayment[]> {
      const api = await providerOf(input.companyId);
      const payments = await provider('list payments', () => api.listPayments(input.providerInvoiceId, input.requestId));
      return payments.flatMap((p) => paymentForInvoice(p, input.providerInvoiceId, 'import', input.requestId) ?? []);
    },

    /** For each payment, the other invoices it covered that still hold it (have not left Final). */
    async paymentHolds(input: { companyId: string; number: string; paymentIds: string[] }): Promise<Record<string, string[]>> {
      if (input.paymentIds.length === 0) return {};
      const rows = await sql<{ provider_payment_id: string; invoice_number: string }[]>`
        SELECT provider_payment_id, invoice_number FROM payment_holds
        WHERE company_id = ${input.companyId} AND provider_payment_id IN ${sql(input.paymentIds)}
          AND invoice_number <> ${input.number} AND released_at IS NULL
        ORDER BY invoice_number`;
      const out: Record<string, string[]> = Object.fromEntries(input.paymentIds.map((id) => [id, []]));
      for (const r of rows) out[r.provider_payment_id]!.push(r.invoice_number);
      return out;
    },

    /**
     * Turns the part of a payment applied to this invoice into a client prepayment, releases the
     * invoice's hold on the provider payment, and answers which invoices still hold it. Once.
     */
    async convertToPrepayment(input: {
      companyId: string;
      clientId: string;
      number: string;
      currency: string;
      payment: { paymentId: string; amount: number; paidAt: string; coveredInvoices: string[] };
      requestId: string;
    }): Promise<{ prepaymentId: string; stillHeldBy: string[] }> {
      const p = input.payment;
      const prepaymentId = stableUuid(input.companyId, p.paymentId, input.number, 'prepayment');
      const key = invoiceKey(input.companyId, input.number);
      return sql.begin(async (tx) => {
        await lockEventKeys(tx, [key]);
        // Lock the payment's holds so two invoices releasing at once agree on who is last.
        await tx`SELECT 1 FROM payment_holds WHERE company_id = ${input.companyId} AND provider_payment_id = ${p.paymentId} FOR UPDATE`;
        const paidAt = p.paidAt || new Date().toISOString();
        const created = await tx`
          INSERT INTO prepayments (company_id, id, client_id, amount, remaining, origin_invoice, origin_payment_id, paid_at, request_id)
          VALUES (${input.companyId}, ${prepaymentId}, ${input.clientId}, ${p.amount}, ${p.amount}, ${input.number}, ${p.paymentId},
            ${paidAt}, ${input.requestId})
          ON CONFLICT DO NOTHING RETURNING id`;
        if (created.length > 0) {
          await emitEvents(tx, [
            {
              type: 'prepayment.created',
              companyId: input.companyId,
              identity: [prepaymentId],
              orderingKey: key,
              requestId: input.requestId,
              data: { prepaymentId, clientId: input.clientId, amount: p.amount, currency: input.currency, originInvoice: input.number, originPaymentId: p.paymentId, paidAt },
            },
          ]);
        }
        await tx`
          INSERT INTO payment_holds (company_id, provider_payment_id, invoice_number, released_at)
          VALUES (${input.companyId}, ${p.paymentId}, ${input.number}, now())
          ON CONFLICT (company_id, provider_payment_id, invoice_number) DO UPDATE SET released_at = coalesce(payment_holds.released_at, now())`;
        const held = await tx<{ invoice_number: string }[]>`
          SELECT invoice_number FROM payment_holds
          WHERE company_id = ${input.companyId} AND provider_payment_id = ${p.paymentId} AND released_at IS NULL
          ORDER BY invoice_number`;
        // Last, so the feed's lock is held only for the insert and the commit.
        await insertReceipts(
          tx,
          [
            {
              companyId: input.companyId,
              kind: 'prepayment',
              providerPaymentId: p.paymentId,
              invoiceNumber: input.number,
              amount: p.amount,
              currency: input.currency,
              allocations: p.coveredInvoices,
              // A credit for the client: it applies to no invoice until the ERP applies it.
              applications: [],
              paidAt: p.paidAt || new Date().toISOString(),
              requestId: input.requestId,
            },
          ],
          key,
        );
        log.info('payment converted to prepayment', { number: input.number, paymentId: p.paymentId, prepaymentId, requestId: input.requestId });
        return { prepaymentId, stillHeldBy: held.map((h) => h.invoice_number) };
      });
    },

    async removeProviderPayment(input: { companyId: string; paymentId: string; number: string; requestId: string }): Promise<void> {
      const api = await providerOf(input.companyId);
      await provider('remove provider payment', () => api.removePayment(input.paymentId, `${input.companyId}:${input.paymentId}:remove-payment`, input.requestId));
      await sql`
        INSERT INTO removed_provider_payments (company_id, provider_payment_id, removed_by_invoice, request_id)
        VALUES (${input.companyId}, ${input.paymentId}, ${input.number}, ${input.requestId}) ON CONFLICT DO NOTHING`;
      log.info('provider payment removed', { paymentId: input.paymentId, number: input.number, requestId: input.requestId });
    },

    async deleteProviderInvoice(input: { companyId: string; providerInvoiceId: string; idempotencyKey: string; requestId: string }): Promise<void> {
      const api = await providerOf(input.companyId);
      await provider('delete provider invoice', () => api.removeInvoice(input.providerInvoiceId, input.idempotencyKey, input.requestId));
      log.info('provider invoice deleted', { providerInvoiceId: input.providerInvoiceId, requestId: input.requestId });
    },

    async updateProviderInvoice(input: {
      companyId: string;
      providerInvoiceId: string;
      number: string;
      invoiceDate: string;
      amount: number;
      outstanding: number;
      idempotencyKey: string;
      requestId: string;
    }): Promise<{ payNowUrl: string }> {
      const api = await providerOf(input.companyId);
      const inv = await provider('update provider invoice', () =>
        api.updateInvoice(
          input.providerInvoiceId,
          { number: input.number, invoiceDate: input.invoiceDate, amount: input.amount, outstanding: input.outstanding },
          input.idempotencyKey,
          input.requestId,
        ),
      );
      log.info('provider invoice updated', { providerInvoiceId: inv.id, outstanding: input.outstanding, requestId: input.requestId });
      return { payNowUrl: inv.payNowUrl };
    },

    /** Takes `amount` from a client prepayment for this invoice, once per application key. */
    async reservePrepayment(input: { companyId: string; clientId: string; prepaymentId: string; number: string; amount: number; applicationKey: string; requestId: string }): Promise<void> {
      await sql.begin(async (tx) => {
        await lockEventKeys(tx, [invoiceKey(input.companyId, input.number)]);
        const [pre] = await tx<{ client_id: string; remaining: number }[]>`
          SELECT client_id, remaining FROM prepayments WHERE company_id = ${input.companyId} AND id = ${input.prepaymentId} FOR UPDATE`;
        if (!pre) throw ApplicationFailure.nonRetryable(`prepayment ${input.prepaymentId} not found`, 'UnknownPrepayment');
        const [done] = await tx`SELECT 1 FROM prepayment_applications WHERE application_key = ${input.applicationKey}`;
        if (done) return;
        if (pre.client_id !== input.clientId) {
          throw ApplicationFailure.nonRetryable(`prepayment ${input.prepaymentId} belongs to client ${pre.client_id}, not ${input.clientId}`, 'PrepaymentMismatch');
        }
        if (pre.remaining < input.amount) {
          throw ApplicationFailure.nonRetryable(`prepayment ${input.prepaymentId} has ${pre.remaining} left, less than ${input.amount}`, 'PrepaymentExhausted');
        }
        await tx`UPDATE prepayments SET remaining = remaining - ${input.amount} WHERE id = ${input.prepaymentId}`;
        await tx`
          INSERT INTO prepayment_applications (application_key, company_id, prepayment_id, invoice_number, amount, request_id)
          VALUES (${input.applicationKey}, ${input.companyId}, ${input.prepaymentId}, ${input.number}, ${input.amount}, ${input.requestId})`;
        await emitEvents(tx, [
          {
            type: 'prepayment.applied',
            companyId: input.companyId,
            identity: [input.applicationKey],
            orderingKey: invoiceKey(input.companyId, input.number),
            requestId: input.requestId,
            data: { prepaymentId: input.prepaymentId, invoiceNumber: input.number, amount: input.amount, remaining: pre.remaining - input.amount },
          },
        ]);
      });
    },

    /** Re-creates, at the provider, the payment a prepayment stands for, against this invoice. */
    async recreatePrepaymentPayment(input: {
      companyId: string;
      customerId: string;
      providerInvoiceId: string;
      prepaymentId: string;
      amount: number;
      applicationKey: string;
      /** The provider call's key (default: one per application); a new record gets its own payment. */
      idempotencyKey?: string;
      requestId: string;
    }): Promise<{ providerPaymentId: string }> {
      const api = await providerOf(input.companyId);
      const payment = await provider('re-create prepayment payment', () =>
        api.recordPayment(
          { customerId: input.customerId, allocations: [{ invoiceId: input.providerInvoiceId, amount: input.amount }], method: 'prepayment', reference: input.prepaymentId },
          input.idempotencyKey ?? `${input.applicationKey}:provider-payment`,
          input.requestId,
        ),
      );
      await sql`UPDATE prepayment_applications SET provider_payment_id = ${payment.id} WHERE application_key = ${input.applicationKey}`;
      log.info('prepayment re-created as provider payment', { prepaymentId: input.prepaymentId, paymentId: payment.id, requestId: input.requestId });
      return { providerPaymentId: payment.id };
    },

    /** Renders the invoice PDF and stores it; the workflow keeps only the id and hash. */
    async renderInvoicePdf({ invoice, requestId }: { invoice: InvoiceState; requestId: string }) {
      const [parties] = await sql<{ company_name: string; client_name: string; client_email: string | null }[]>`
        SELECT co.name AS company_name, cl.name AS client_name, cl.email AS client_email
        FROM companies co JOIN clients cl ON cl.company_id = co.id
        WHERE co.id = ${invoice.companyId} AND cl.id = ${invoice.clientId}`;
      if (!parties) throw ApplicationFailure.nonRetryable(`unknown company or client for ${invoice.number}`, 'UnknownClient');
      const html = invoiceHtml(await withLink(invoice), {
        company: { name: parties.company_name },
        client: { id: invoice.clientId, name: parties.client_name, email: parties.client_email },
      });
      const pdf = await renderer.render(html);
      const sha256 = createHash('sha256').update(pdf).digest('hex');
      const documentId = stableUuid(invoice.companyId, invoice.number, String(invoice.revision), 'invoice-pdf');
      await sql`
        INSERT INTO documents (id, company_id, kind, content_type, sha256, bytes)
        VALUES (${documentId}, ${invoice.companyId}, 'invoice-pdf', 'application/pdf', ${sha256}, ${pdf})
        ON CONFLICT (id) DO UPDATE SET sha256 = EXCLUDED.sha256, bytes = EXCLUDED.bytes`;
      log.info('invoice PDF rendered', { number: invoice.number, documentId, bytes: pdf.length, requestId });
      return { documentId, sha256 };
    },

    /** The company's billing-run limits, resolved in money for this client (null: no limit applies). */
    async getBillingLimits({ companyId, clientId }: { companyId: string; clientId: string }) {
      const [row] = await sql<{ max_credited: BillLimit | null; max_debited: BillLimit | null; credit_limit: number | null }[]>`
        SELECT co.max_credited, co.max_debited, cl.credit_limit
        FROM companies co JOIN clients cl ON cl.company_id = co.id WHERE co.id = ${companyId} AND cl.id = ${clientId}`;
      if (!row) throw ApplicationFailure.nonRetryable(`unknown company or client ${companyId}/${clientId}`, 'UnknownClient');
      return { maxCredited: resolveLimit(row.max_credited, row.credit_limit), maxDebited: resolveLimit(row.max_debited, row.credit_limit) };
    },

    async recordLifecycleChange(input: { companyId: string; number: string; from: string | null; to: string; by: string; requestId: string; seq: number }): Promise<void> {
      // seq makes a retried write land once: the n-th change of this invoice.
      await sql`
        INSERT INTO lifecycle_changes (company_id, invoice_number, from_state, to_state, changed_by, request_id)
        SELECT ${input.companyId}, ${input.number}, ${input.from}, ${input.to}, ${input.by}, ${input.requestId}
        WHERE (SELECT count(*) FROM lifecycle_changes WHERE company_id = ${input.companyId} AND invoice_number = ${input.number}) < ${input.seq}`;
    },

    /**
     * Quick Pay: the whole balance in one payment. At the provider it is a payment like any other
     * (the Pay Now page shows the invoice paid); without a provider record billflow numbers it itself.
     */
    async recordQuickPay(input: {
      companyId: string;
      number: string;
      amount: number;
      details: { paymentType: string; paymentMethod: string; issuedOn: string; category: string; receivedByUser: string; receivedByUnit: string; requestId: string; operationKey?: string };
      provider: { customerId: string; providerInvoiceId: string } | null;
      idempotencyKey: string;
    }): Promise<{ paymentId: string; paidAt: string }> {
      const d = input.details;
      let paymentId = `qp_${stableUuid(input.idempotencyKey).replaceAll('-', '')}`;
      let paidAt = new Date(`${d.issuedOn}T12:00:00Z`).toISOString();
      if (input.provider) {
        const api = await providerOf(input.companyId);
        const p = await provider('record Quick Pay at the provider', () =>
          api.recordPayment(
            {
              customerId: input.provider!.customerId,
              allocations: [{ invoiceId: input.provider!.providerInvoiceId, amount: input.amount }],
              method: 'quickpay',
              reference: quickPayReference(d.operationKey, d.paymentType, d.paymentMethod),
            },
            input.idempotencyKey,
            d.requestId,
          ),
        );
        paymentId = p.id;
        paidAt = p.paidAt;
      }
      await sql`
        INSERT INTO quick_payments (company_id, invoice_number, payment_id, amount, payment_type, payment_method, issued_on, category,
          received_by_user, received_by_unit, request_id)
        VALUES (${input.companyId}, ${input.number}, ${paymentId}, ${input.amount}, ${d.paymentType}, ${d.paymentMethod}, ${d.issuedOn},
          ${d.category}, ${d.receivedByUser}, ${d.receivedByUnit}, ${d.requestId})
        ON CONFLICT DO NOTHING`;
      log.info('Quick Pay recorded', { number: input.number, paymentId, amount: input.amount, requestId: d.requestId });
      return { paymentId, paidAt };
    },

    /**
     * Where the client's final invoices are emailed, and whether its template carries the Pay Now
     * URL; null when they are not emailed (no address, or the client takes its bills on paper).
     */
    async getEmailSettings({ companyId, clientId }: { companyId: string; clientId: string }) {
      const [c] = await sql<{ email: string | null; template: EmailTemplate | null; delivery: 'email' | 'print' }[]>`
        SELECT email, invoice_email_template AS template, delivery_preference AS delivery FROM clients WHERE company_id = ${companyId} AND id = ${clientId}`;
      if (!c) throw ApplicationFailure.nonRetryable(`unknown client ${clientId}`, 'UnknownClient');
      return c.email && c.delivery === 'email' ? { to: c.email, usesPayNowUrl: templateUsesPayNowUrl(c.template) } : null;
    },

    /**
     * Emails the final invoice (PDF and backup attachments) to the client, at most once per
     * revision: 'unconfirmed' when an earlier attempt claimed the send and was cut off (a crash
     * between sending and recording), which is reported rather than risking a second email.
     */
    async sendInvoiceEmail({ invoice, requestId }: { invoice: InvoiceState; requestId: string }): Promise<{ messageId: string; outcome?: SendOutcome }> {
      const [sent] = await sql<{ message_id: string; sent_at: Date | null }[]>`
        SELECT message_id, sent_at FROM invoice_emails WHERE company_id = ${invoice.companyId} AND invoice_number = ${invoice.number} AND revision = ${invoice.revision}`;
      if (sent) return { messageId: sent.message_id, outcome: sent.sent_at ? 'already-sent' : 'unconfirmed' };
      const [row] = await sql<{ company_name: string; client_name: string; email: string | null; template: EmailTemplate | null }[]>`
        SELECT co.name AS company_name, cl.name AS client_name, cl.email, cl.invoice_email_template AS template
        FROM companies co JOIN clients cl ON cl.company_id = co.id WHERE co.id = ${invoice.companyId} AND cl.id = ${invoice.clientId}`;
      if (!row?.email) throw ApplicationFailure.nonRetryable(`client ${invoice.clientId} has no email address`, 'NoEmailAddress');
      const docIds = [invoice.pdf?.documentId, ...invoice.backupDocumentIds].filter((d): d is string => Boolean(d));
      const docs = await sql<{ id: string; bytes: Buffer; content_type: string; filename: string | null }[]>`
        SELECT id, bytes, content_type, filename FROM documents WHERE id IN ${sql(docIds)}`;
      const mail = renderInvoiceEmail(row.template, {
        company: { name: row.company_name },
        client: { id: invoice.clientId, name: row.client_name, email: row.email },
        invoice,
        payNowUrl: (await withLink(invoice)).payNowUrl,
      });
      const messageId = `<${invoice.companyId}.${invoice.number}.r${invoice.revision}@billflow>`;
      const claim = () => sql`
        INSERT INTO invoice_emails (company_id, invoice_number, revision, recipient, message_id, with_pay_now, request_id)
        VALUES (${invoice.companyId}, ${invoice.number}, ${invoice.revision}, ${row.email}, ${messageId}, ${mail.usesPayNowUrl}, ${requestId})
        ON CONFLICT DO NOTHING RETURNING 1`;
      const revision = () => sql`company_id = ${invoice.companyId} AND invoice_number = ${invoice.number} AND revision = ${invoice.revision}`;
      const release = () => sql`DELETE FROM invoice_emails WHERE ${revision()} AND sent_at IS NULL`;
      const confirm = () => sql`UPDATE invoice_emails SET sent_at = now() WHERE ${revision()}`;
      const outcome = await sendOnce(claim, release, confirm, {
        to: row.email,
        subject: mail.subject,
        text: mail.text,
        messageId,
        headers: { 'X-Request-Id': requestId, 'X-Billflow-Invoice': invoice.number },
        attachments: docIds.map((id) => {
          const d = docs.find((x) => x.id === id)!;
          return { filename: d.filename ?? `invoice-${invoice.number}.pdf`, content: d.bytes, contentType: d.content_type };
        }),
      });
      log.info('invoice emailed', { number: invoice.number, to: row.email, withPayNowUrl: mail.usesPayNowUrl, outcome, requestId });
      return { messageId, outcome };
    },

    /** Whether a reminder for this revision is still due, as the invoice's workflow last published it (it checks again). */
    async reminderRefusal(input: { companyId: string; number: string; revision: number }): Promise<ReminderRefusal | null> {
      const [row] = await sql<{ state: InvoiceState | null }[]>`SELECT state FROM invoices WHERE company_id = ${input.companyId} AND number = ${input.number}`;
      if (!row?.state) throw ApplicationFailure.nonRetryable(`invoice ${input.number} is not in the read model`, 'UnknownInvoice');
      return reminderRefusal(row.state, input.revision);
    },

    /**
     * Emails one due-date reminder for the invoice as its workflow holds it now: once per revision
     * and day (a resend after a crash between sending and recording carries the same Message-ID).
     */
    async sendReminder(input: { invoice: InvoiceState; daysAfterDue: number; requestId: string }): Promise<SendOutcome | 'no-email'> {
      const { invoice, daysAfterDue, requestId } = input;
      const { companyId, number, revision } = invoice;
      const [done] = await sql<{ sent_at: Date | null }[]>`
        SELECT sent_at FROM invoice_reminders WHERE company_id = ${companyId} AND invoice_number = ${number} AND revision = ${revision} AND days_after_due = ${daysAfterDue}`;
      if (done) return done.sent_at ? 'already-sent' : 'unconfirmed';
      const [row] = await sql<{ company_name: string; client_name: string; email: string | null }[]>`
        SELECT co.name AS company_name, cl.name AS client_name, cl.email
        FROM companies co JOIN clients cl ON cl.company_id = co.id WHERE co.id = ${companyId} AND cl.id = ${invoice.clientId}`;
      if (!row?.email) return 'no-email';
      const { payNowUrl } = await withLink(invoice);
      const mail = renderReminderEmail({
        company: { name: row.company_name },
        client: { name: row.client_name },
        invoice,
        daysAfterDue,
        payNowUrl,
      });
      const messageId = `<${companyId}.${number}.r${revision}.reminder${daysAfterDue}@billflow>`;
      const [pdf] = invoice.pdf ? await sql<{ bytes: Buffer }[]>`SELECT bytes FROM documents WHERE id = ${invoice.pdf.documentId}` : [];
      const day = () => sql`company_id = ${companyId} AND invoice_number = ${number} AND revision = ${revision} AND days_after_due = ${daysAfterDue}`;
      const outcome = await sendOnce(
        () => sql`
          INSERT INTO invoice_reminders (company_id, invoice_number, revision, days_after_due, recipient, message_id, outstanding)
          VALUES (${companyId}, ${number}, ${revision}, ${daysAfterDue}, ${row.email}, ${messageId}, ${invoice.outstanding}) ON CONFLICT DO NOTHING RETURNING 1`,
        () => sql`DELETE FROM invoice_reminders WHERE ${day()} AND sent_at IS NULL`,
        () =>
          sql.begin(async (tx) => {
            await lockEventKeys(tx, [invoiceKey(companyId, number)]);
            const confirmed = await tx`UPDATE invoice_reminders SET sent_at = now() WHERE ${day()} AND sent_at IS NULL RETURNING sent_at`;
            if (confirmed.length === 0) return confirmed;
            await emitEvents(tx, [
              {
                type: 'reminder.sent',
                companyId,
                identity: [number, String(revision), String(daysAfterDue)],
                orderingKey: invoiceKey(companyId, number),
                requestId,
                data: { invoiceNumber: number, revision, daysAfterDue, recipient: row.email, outstanding: invoice.outstanding, payNowUrl, messageId },
              },
            ]);
            return confirmed;
          }),
        {
          to: row.email,
          subject: mail.subject,
          text: mail.text,
          messageId,
          headers: { 'X-Request-Id': requestId, 'X-Billflow-Invoice': number, 'X-Billflow-Reminder': String(daysAfterDue) },
          attachments: pdf ? [{ filename: `invoice-${number}.pdf`, content: pdf.bytes, contentType: 'application/pdf' }] : [],
        },
      );
      log.info('reminder sent', { number, revision, daysAfterDue, to: row.email, outstanding: invoice.outstanding, outcome });
      return outcome;
    },

    /**
     * Writes the read model; a stale (retried, older) write never overwrites a newer one. The
     * events of what changed since the stored state are written with it (activities/events.ts).
     */
    async saveInvoice(s: InvoiceState): Promise<void> {
      const key = invoiceKey(s.companyId, s.number);
      // Made outside the transaction: a link made for a write that then loses to a newer one is still that series' link.
      const token = s.payNowUrl ? await payLinkToken(sql, s.companyId, s.number, paySeries(s.history)) : null;
      const shown: LinkedInvoice = { ...s, payNowUrl: token ? payLinkUrl(publicApiUrl, token) : null, providerPaymentUrl: s.payNowUrl };
      await sql.begin(async (tx) => {
        await lockEventKeys(tx, [key]);
        const [stored] = await tx<{ state: InvoiceState | null; version: number }[]>`
          SELECT state, version FROM invoices WHERE company_id = ${s.companyId} AND number = ${s.number} FOR UPDATE`;
        if (stored && stored.version > s.version) return;
        await tx`
          INSERT INTO invoices (company_id, number, client_id, project_id, status, currency, invoice_date, due_date, total,
            prepayments_applied, paid, outstanding, settlement, pay_now_url, pay_link_token, provider_invoice_id, pdf_document_id,
            lifecycle_state, classification, held, state, workflow_id, version, updated_at)
          VALUES (${s.companyId}, ${s.number}, ${s.clientId}, ${s.projectId ?? null}, ${s.status}, ${s.currency}, ${s.invoiceDate}, ${s.dueDate},
            ${s.total}, ${s.prepaymentsApplied}, ${s.paid}, ${s.outstanding}, ${s.settlement}, ${s.payNowUrl}, ${token},
            ${s.providerInvoiceId}, ${s.pdf?.documentId ?? null}, ${s.lifecycleState}, ${s.classification}, ${s.held}, ${tx.json(s as never)},
            ${`Invoice:${s.companyId}:${s.number}`}, ${s.version}, now())
          ON CONFLICT (company_id, number) DO UPDATE SET
            status = EXCLUDED.status, total = EXCLUDED.total, prepayments_applied = EXCLUDED.prepayments_applied,
            paid = EXCLUDED.paid, outstanding = EXCLUDED.outstanding, settlement = EXCLUDED.settlement,
            pay_now_url = EXCLUDED.pay_now_url, pay_link_token = EXCLUDED.pay_link_token, provider_invoice_id = EXCLUDED.provider_invoice_id,
            pdf_document_id = EXCLUDED.pdf_document_id, lifecycle_state = EXCLUDED.lifecycle_state,
            classification = EXCLUDED.classification, held = EXCLUDED.held, state = EXCLUDED.state, invoice_date = EXCLUDED.invoice_date,
            due_date = EXCLUDED.due_date, version = EXCLUDED.version, updated_at = now()
          -- Equal too: a local activity whose workflow task was lost runs again with the same version,
          -- and the later write is the one the workflow went on from.
          WHERE invoices.version <= EXCLUDED.version`;
        // A row from before the state snapshot was kept cannot tell what changed: no events for it.
        if (stored && !stored.state) return;
        const [origin] = stored
          ? []
          : await tx<{ request_id: string }[]>`
          SELECT request_id FROM invoice_origins WHERE company_id = ${s.companyId} AND number = ${s.number}`;
        await emitEvents(tx, invoiceEvents(stored?.state ?? undefined, shown, origin?.request_id ?? `create-${s.number}`));
      });
    },

    /** Records one applied payment and its receipts for the ERP feed, once. */
    async recordPayment(input: { companyId: string; number: string; currency: string; payment: ProviderPayment }): Promise<void> {
      const p = input.payment;
      const key = invoiceKey(input.companyId, input.number);
      const feePending = await sql.begin(async (tx) => {
        await lockEventKeys(tx, [key]);
        const applied = await tx`
          INSERT INTO payments (company_id, provider_payment_id, invoice_number, amount, fee, paid_at, source, request_id)
          VALUES (${input.companyId}, ${p.paymentId}, ${input.number}, ${p.amount}, ${p.fee}, ${p.paidAt}, ${p.source}, ${p.requestId})
          ON CONFLICT DO NOTHING RETURNING 1`;
        if (applied.length > 0) {
          await emitEvents(tx, [
            {
              type: 'payment.applied',
              companyId: input.companyId,
              identity: [input.number, p.paymentId],
              orderingKey: key,
              requestId: p.requestId,
              data: {
                invoiceNumber: input.number,
                paymentId: p.paymentId,
                amount: p.amount,
                fee: p.fee,
                totalAmount: p.totalAmount,
                currency: input.currency,
                paidAt: p.paidAt,
                method: p.method,
                source: p.source,
                coveredInvoices: p.coveredInvoices,
              },
            },
          ]);
        }
        for (const covered of p.coveredInvoices) {
          await tx`
            INSERT INTO payment_holds (company_id, provider_payment_id, invoice_number)
            VALUES (${input.companyId}, ${p.paymentId}, ${covered}) ON CONFLICT DO NOTHING`;
        }
        const [quickPay] =
          p.method === 'quickpay'
            ? await tx<QuickPayDetails[]>`
                SELECT payment_type AS "paymentType", payment_method AS "paymentMethod", issued_on::text AS "issuedOn", category,
                  received_by_user AS "receivedByUser", received_by_unit AS "receivedByUnit"
                FROM quick_payments WHERE company_id = ${input.companyId} AND payment_id = ${p.paymentId}`
            : [];
        const receipt = {
          companyId: input.companyId,
          providerPaymentId: p.paymentId,
          invoiceNumber: null,
          currency: input.currency,
          allocations: p.coveredInvoices,
          paidAt: p.paidAt,
          requestId: p.requestId,
        };
        // Payments signalled before their parts were carried know only this invoice's part (or all of it, for one invoice).
        const applications = p.applications ?? p.coveredInvoices.map((n) => ({ invoiceNumber: n, amount: n === input.number ? p.amount : null }));
        // The fee is a separate (miscellaneous) receipt; both last in the transaction (see insertReceipts).
        await insertReceipts(
          tx,
          [
            { ...receipt, kind: 'payment', amount: p.totalAmount, applications, quickPay: quickPay ?? null },
            ...(p.fee > 0 ? [{ ...receipt, kind: 'fee' as const, amount: p.fee, applications: [] }] : []),
          ],
          key,
        );
        return markProcessingFee(tx, {
          companyId: input.companyId,
          paymentId: p.paymentId,
          number: input.number,
          covered: p.coveredInvoices,
          paidAt: p.paidAt,
          requestId: p.requestId,
          method: p.method,
        });
      });
      log.info('payment applied', { number: input.number, paymentId: p.paymentId, amount: p.amount, requestId: p.requestId });
      // One try now, after the payment's receipt; what the provider cannot answer waits for the next reconciliation.
      if (feePending) await settleProcessingFees(sql, providerOf, input.companyId, p.paymentId);
    },
  };
}

export type SingleActivities = ReturnType<typeof createSingleActivities>;

export function createActivities(deps: ActivityDeps) {
  const single = createSingleActivities(deps);
  return { ...single, ...createCombinedActivities(single) };
}

export type Activities = ReturnType<typeof createActivities>;
