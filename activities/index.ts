/**
 * billflow's activities, built from their dependencies so tests and the worker wire real ones.
 * Workflows import this module as a type only.
 */
import { createHash } from 'node:crypto';
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../lib/db.js';
import type { InvoiceState, ProviderPayment } from '../workflows/contract.js';
import { invoiceHtml } from './pdf/invoice-document.js';
import type { PdfRenderer } from './pdf/renderer.js';
import { BillPayClient, paymentForInvoice, ProviderError, type ProviderAccount } from './provider/billpay.js';

export interface ActivityDeps {
  sql: Sql;
  renderer: PdfRenderer;
}

export interface CompanySettings {
  providerEnabled: boolean;
  paymentImportSeconds: number;
}

/** A uuid derived from business identity, so a retried write lands on the same row. */
export function stableUuid(...parts: string[]): string {
  const h = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Final provider refusals stop the retries; outages (5xx, network) keep retrying with backoff. */
async function provider<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ProviderError && !e.retryable) {
      throw ApplicationFailure.nonRetryable(`${what}: ${e.message}`, 'ProviderRejected', e.body);
    }
    throw e;
  }
}

export function createActivities({ sql, renderer }: ActivityDeps) {
  async function account(companyId: string): Promise<ProviderAccount> {
    const [row] = await sql<{ url: string | null; account_id: string | null; api_key: string | null; secret: string | null }[]>`
      SELECT provider_url AS url, provider_account_id AS account_id, provider_api_key AS api_key, provider_webhook_secret AS secret
      FROM companies WHERE id = ${companyId}`;
    if (!row?.url || !row.account_id || !row.api_key || !row.secret) {
      throw ApplicationFailure.nonRetryable(`company ${companyId} has no provider account configured`, 'NoProviderAccount');
    }
    return { url: row.url, accountId: row.account_id, apiKey: row.api_key, webhookSecret: row.secret };
  }

  return {
    async getCompanySettings({ companyId }: { companyId: string }): Promise<CompanySettings> {
      const [row] = await sql<{ provider_enabled: boolean; payment_import_seconds: number }[]>`
        SELECT provider_enabled, payment_import_seconds FROM companies WHERE id = ${companyId}`;
      if (!row) throw ApplicationFailure.nonRetryable(`unknown company ${companyId}`, 'UnknownCompany');
      return { providerEnabled: row.provider_enabled, paymentImportSeconds: row.payment_import_seconds };
    },

    async ensureProviderCustomer({ companyId, clientId, requestId }: { companyId: string; clientId: string; requestId: string }) {
      const [client] = await sql<{ name: string; email: string | null }[]>`
        SELECT name, email FROM clients WHERE company_id = ${companyId} AND id = ${clientId}`;
      if (!client) throw ApplicationFailure.nonRetryable(`unknown client ${clientId}`, 'UnknownClient');
      const api = new BillPayClient(await account(companyId));
      const customer = await provider('ensure customer', () =>
        api.ensureCustomer({ externalId: clientId, name: client.name, email: client.email }, requestId),
      );
      log.info('provider customer ready', { companyId, clientId, customerId: customer.id, requestId });
      return { customerId: customer.id };
    },

    async createProviderInvoice(input: {
      companyId: string;
      customerId: string;
      number: string;
      invoiceDate: string;
      amount: number;
      outstanding: number;
      idempotencyKey: string;
      requestId: string;
    }) {
      const api = new BillPayClient(await account(input.companyId));
      const inv = await provider('create provider invoice', () =>
        api.createInvoice(
          {
            customerId: input.customerId,
            number: input.number,
            invoiceDate: input.invoiceDate,
            amount: input.amount,
            outstanding: input.outstanding,
          },
          input.idempotencyKey,
          input.requestId,
        ),
      );
      log.info('provider invoice created', { number: input.number, providerInvoiceId: inv.id, requestId: input.requestId });
      return { providerInvoiceId: inv.id, payNowUrl: inv.payNowUrl };
    },

    async attachProviderInvoicePdf(input: {
      companyId: string;
      providerInvoiceId: string;
      documentId: string;
      idempotencyKey: string;
      requestId: string;
    }): Promise<void> {
      const [doc] = await sql<{ bytes: Buffer }[]>`SELECT bytes FROM documents WHERE id = ${input.documentId}`;
      if (!doc) throw ApplicationFailure.nonRetryable(`document ${input.documentId} not found`, 'MissingDocument');
      const api = new BillPayClient(await account(input.companyId));
      await provider('attach PDF', () => api.attachPdf(input.providerInvoiceId, doc.bytes, input.idempotencyKey, input.requestId));
      log.info('invoice PDF sent to provider', { providerInvoiceId: input.providerInvoiceId, requestId: input.requestId });
    },

    async importProviderPayments(input: { companyId: string; providerInvoiceId: string; requestId: string }): Promise<ProviderPayment[]> {
      const api = new BillPayClient(await account(input.companyId));
      const payments = await provider('list payments', () => api.listPayments(input.providerInvoiceId, input.requestId));
      return payments.flatMap((p) => paymentForInvoice(p, input.providerInvoiceId, 'import', input.requestId) ?? []);
    },

    /** Renders the invoice PDF and stores it; the workflow keeps only the id and hash. */
    async renderInvoicePdf({ invoice, requestId }: { invoice: InvoiceState; requestId: string }) {
      const [parties] = await sql<{ company_name: string; client_name: string; client_email: string | null }[]>`
        SELECT co.name AS company_name, cl.name AS client_name, cl.email AS client_email
        FROM companies co JOIN clients cl ON cl.company_id = co.id
        WHERE co.id = ${invoice.companyId} AND cl.id = ${invoice.clientId}`;
      if (!parties) throw ApplicationFailure.nonRetryable(`unknown company or client for ${invoice.number}`, 'UnknownClient');
      const html = invoiceHtml(invoice, {
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

    /** Writes the read model; a stale (retried, older) write never overwrites a newer one. */
    async saveInvoice(s: InvoiceState): Promise<void> {
      await sql`
        INSERT INTO invoices (company_id, number, client_id, status, currency, invoice_date, due_date, total,
          prepayments_applied, paid, outstanding, settlement, pay_now_url, provider_invoice_id, pdf_document_id,
          workflow_id, version, updated_at)
        VALUES (${s.companyId}, ${s.number}, ${s.clientId}, ${s.status}, ${s.currency}, ${s.invoiceDate}, ${s.dueDate},
          ${s.total}, ${s.prepaymentsApplied}, ${s.paid}, ${s.outstanding}, ${s.settlement}, ${s.payNowUrl},
          ${s.providerInvoiceId}, ${s.pdf?.documentId ?? null}, ${`Invoice:${s.companyId}:${s.number}`}, ${s.version}, now())
        ON CONFLICT (company_id, number) DO UPDATE SET
          status = EXCLUDED.status, total = EXCLUDED.total, prepayments_applied = EXCLUDED.prepayments_applied,
          paid = EXCLUDED.paid, outstanding = EXCLUDED.outstanding, settlement = EXCLUDED.settlement,
          pay_now_url = EXCLUDED.pay_now_url, provider_invoice_id = EXCLUDED.provider_invoice_id,
          pdf_document_id = EXCLUDED.pdf_document_id, version = EXCLUDED.version, updated_at = now()
        WHERE invoices.version < EXCLUDED.version`;
    },

    /** Records one applied payment and its receipts for the ERP feed, once. */
    async recordPayment(input: { companyId: string; number: string; currency: string; payment: ProviderPayment }): Promise<void> {
      const p = input.payment;
      await sql.begin(async (tx) => {
        await tx`
          INSERT INTO payments (company_id, provider_payment_id, invoice_number, amount, fee, paid_at, source, request_id)
          VALUES (${input.companyId}, ${p.paymentId}, ${input.number}, ${p.amount}, ${p.fee}, ${p.paidAt}, ${p.source}, ${p.requestId})
          ON CONFLICT DO NOTHING`;
        const allocations = tx.json(p.coveredInvoices);
        await tx`
          INSERT INTO receipts (company_id, kind, provider_payment_id, amount, currency, allocations, paid_at, request_id)
          VALUES (${input.companyId}, 'payment', ${p.paymentId}, ${p.totalAmount}, ${input.currency}, ${allocations}, ${p.paidAt}, ${p.requestId})
          ON CONFLICT DO NOTHING`;
        if (p.fee > 0) {
          await tx`
            INSERT INTO receipts (company_id, kind, provider_payment_id, amount, currency, allocations, paid_at, request_id)
            VALUES (${input.companyId}, 'fee', ${p.paymentId}, ${p.fee}, ${input.currency}, ${allocations}, ${p.paidAt}, ${p.requestId})
            ON CONFLICT DO NOTHING`;
        }
      });
      log.info('payment applied', { number: input.number, paymentId: p.paymentId, amount: p.amount, requestId: p.requestId });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
