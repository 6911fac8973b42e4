/**
 * `GET /pay/{token}`: billflow's own Pay Now link, public (a payer follows it from the PDF or an
 * email). It sends the payer on to the provider's payment page of the moment, or says plainly why
 * there is nothing to pay there.
 */
import { Router } from 'express';
import { payLinkPage, type PayLinkPage } from '../../domain/pay-link.js';
import { invoiceWorkflowId, stateQuery, type InvoiceState } from '../../workflows/contract.js';
import type { ApiDeps } from '../deps.js';

const QUERY_MS = 5_000;

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, text: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escape(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>${escape(title)}</h1><p>${escape(text)}</p></body></html>`;
}

export function payRouter(deps: ApiDeps): Router {
  const { sql, temporal } = deps;
  const r = Router();

  /** The invoice from its workflow (a payment page replaced a moment ago shows at once), else as last saved. */
  async function invoiceOf(companyId: string, number: string): Promise<InvoiceState | null> {
    try {
      return await temporal.connection.withDeadline(Date.now() + QUERY_MS, () => temporal.workflow.getHandle(invoiceWorkflowId(companyId, number)).query(stateQuery));
    } catch {
      const [row] = await sql<{ state: InvoiceState | null }[]>`SELECT state FROM invoices WHERE company_id = ${companyId} AND number = ${number}`;
      return row?.state ?? null;
    }
  }

  r.get('/pay/:token', async (req, res) => {
    res.set('Cache-Control', 'no-store').set('Referrer-Policy', 'no-referrer');
    const [link] = await sql<{ company_id: string; invoice_number: string; series: number; company_name: string }[]>`
      SELECT l.company_id, l.invoice_number, l.series, co.name AS company_name
      FROM pay_links l JOIN companies co ON co.id = l.company_id WHERE l.token = ${String(req.params.token)}`;
    const invoice = link ? await invoiceOf(link.company_id, link.invoice_number) : null;
    if (!link || !invoice) {
      res.status(404).type('html').send(page('Payment link not found', 'This payment link is not known. Check the link on your invoice, or ask the sender for it again.'));
      return;
    }
    const outcome: PayLinkPage = payLinkPage(invoice, link.series);
    const what = `Invoice ${invoice.number} from ${link.company_name}`;
    switch (outcome.kind) {
      case 'redirect':
        res.redirect(303, outcome.url);
        return;
      case 'paid':
        res
          .status(200)
          .type('html')
          .send(page(`${what} is paid in full`, 'Paid in full: there is nothing left to pay. Thank you.'));
        return;
      case 'withdrawn':
        res
          .status(410)
          .type('html')
          .send(page(`${what} was withdrawn`, 'This payment link no longer works: the invoice was taken back to draft. When it is issued again it comes with a new link.'));
        return;
      case 'unavailable':
        res
          .status(503)
          .set('Retry-After', '30')
          .type('html')
          .send(page(`${what} cannot be paid online right now`, 'Its payment page is being prepared. Please try again in a minute.'));
        return;
    }
  });
  return r;
}
