/** Prepayments (client credits) and the provider payments billflow applied, with their holds. */
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf } from '../middleware.js';
import { ClientQuery } from '../openapi.js';
import { queryOf } from '../validate.js';

export function paymentsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.get('/v1/prepayments', mw.erpAuth, async (req, res) => {
    const companies = companyIdsOf(res);
    const { clientId } = queryOf(req, ClientQuery);
    const rows = await sql`
      SELECT p.id, p.company_id AS "companyId", p.client_id AS "clientId", p.amount, p.remaining, p.created_at AS "createdAt",
        json_build_object('invoiceNumber', p.origin_invoice, 'providerPaymentId', p.origin_payment_id, 'paidAt', p.paid_at) AS origin,
        coalesce((SELECT json_agg(json_build_object('invoiceNumber', a.invoice_number, 'amount', a.amount,
                   'providerPaymentId', a.provider_payment_id, 'requestId', a.request_id) ORDER BY a.created_at)
                  FROM prepayment_applications a WHERE a.prepayment_id = p.id), '[]') AS applications
      FROM prepayments p
      WHERE p.company_id = ANY(${companies}::text[]) ${clientId ? sql`AND p.client_id = ${clientId}` : sql``}
      ORDER BY p.created_at, p.id`;
    res.json({ data: rows });
  });

  r.get('/v1/payments/:paymentId', mw.erpAuth, async (req, res) => {
    const paymentId = String(req.params.paymentId);
    // A provider payment belongs to one company's account; with an organisation key, find which.
    const [owner] = await sql<{ company_id: string }[]>`
      SELECT company_id FROM payment_holds WHERE company_id = ANY(${companyIdsOf(res)}::text[]) AND provider_payment_id = ${paymentId}
      ORDER BY company_id LIMIT 1`;
    if (!owner) throw new HttpProblem(404, 'not-found', `payment ${paymentId} not found`);
    const companyId = owner.company_id;
    const holds = await sql<{ invoice_number: string; released: boolean }[]>`
      SELECT invoice_number, released_at IS NOT NULL AS released FROM payment_holds
      WHERE company_id = ${companyId} AND provider_payment_id = ${paymentId} ORDER BY invoice_number`;
    const [removed] = await sql`SELECT 1 FROM removed_provider_payments WHERE company_id = ${companyId} AND provider_payment_id = ${paymentId}`;
    res.json({
      paymentId,
      companyId,
      coveredInvoices: holds.map((h) => h.invoice_number),
      heldBy: holds.filter((h) => !h.released).map((h) => h.invoice_number),
      removedAtProvider: Boolean(removed),
    });
  });
  return r;
}
