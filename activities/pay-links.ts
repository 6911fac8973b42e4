/**
 * billflow's stable Pay Now links, as everything outside the workflow shows the invoice: the PDF,
 * the emails, the read model, events and the API. The workflow keeps only the provider's page
 * (`InvoiceState.payNowUrl`); here it becomes `providerPaymentUrl`, and `payNowUrl` becomes
 * billflow's link of the invoice's series (domain/pay-link.ts), so the workflow needs no new commands.
 */
import { randomBytes } from 'node:crypto';
import { paySeries, payLinkUrl } from '../domain/pay-link.js';
import type { Sql } from '../lib/db.js';
import type { InvoiceState } from '../workflows/contract.js';

/** The invoice as billflow shows it: `payNowUrl` is billflow's link, `providerPaymentUrl` the provider's own page. */
export type LinkedInvoice = InvoiceState & { providerPaymentUrl: string | null };

/** The token of an invoice's series, made (128 random bits) the first time anything asks for it. */
export async function payLinkToken(sql: Sql, companyId: string, number: string, series: number): Promise<string> {
  const [made] = await sql<{ token: string }[]>`
    INSERT INTO pay_links (token, company_id, invoice_number, series)
    VALUES (${randomBytes(16).toString('base64url')}, ${companyId}, ${number}, ${series})
    ON CONFLICT (company_id, invoice_number, series) DO NOTHING RETURNING token`;
  if (made) return made.token;
  const [kept] = await sql<{ token: string }[]>`
    SELECT token FROM pay_links WHERE company_id = ${companyId} AND invoice_number = ${number} AND series = ${series}`;
  return kept!.token;
}

/**
 * The invoice with billflow's link in `payNowUrl`: there is one while the invoice has a payment
 * page at the provider (none while Draft, held, or never sent), and it is the same for the whole series.
 */
export async function linked(sql: Sql, publicApiUrl: string, s: InvoiceState): Promise<LinkedInvoice> {
  const providerPaymentUrl = s.payNowUrl;
  if (!providerPaymentUrl) return { ...s, payNowUrl: null, providerPaymentUrl: null };
  const token = await payLinkToken(sql, s.companyId, s.number, paySeries(s.history));
  return { ...s, payNowUrl: payLinkUrl(publicApiUrl, token), providerPaymentUrl };
}
