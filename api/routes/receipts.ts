/** The ERP's receipts feed: cursor-paged, acknowledged by cursor. */
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf } from '../middleware.js';
import { validateBody } from '../validate.js';

function cursor(raw: unknown, field: string): string | null {
  if (raw === undefined) return null;
  const s = String(raw);
  if (!/^\d{1,18}$/.test(s)) throw new HttpProblem(422, 'invalid-request', `${field} must be a receipt id`, field);
  return s;
}

export function receiptsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.get('/v1/receipts', mw.erpAuth, async (req, res) => {
    const companies = companyIdsOf(res);
    const after = cursor(req.query.after, 'after');
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new HttpProblem(422, 'invalid-request', 'limit must be 1..200', 'limit');
    const unacked = req.query.unacknowledged === 'true';
    const rows = await sql<{ id: string }[]>`
      SELECT seq::text AS id, company_id AS "companyId", kind, provider_payment_id AS "providerPaymentId", invoice_number AS "invoiceNumber", amount, currency, allocations AS invoices,
        applications, quick_pay AS "quickPay",
        paid_at AS "paidAt", request_id AS "requestId", acknowledged_at IS NOT NULL AS acknowledged, created_at AS "createdAt"
      FROM receipts
      WHERE company_id = ANY(${companies}::text[])
        ${after ? sql`AND seq > ${after}` : sql``}
        ${unacked ? sql`AND acknowledged_at IS NULL` : sql``}
      ORDER BY seq LIMIT ${limit + 1}`;
    const hasMore = rows.length > limit;
    const data = rows.slice(0, limit);
    res.json({ data, hasMore, nextCursor: data.at(-1)?.id ?? after });
  });
  r.post('/v1/receipts/acknowledge', mw.erpAuth, mw.idempotency, validateBody('ReceiptAck'), async (req, res) => {
    const companies = companyIdsOf(res);
    const upTo = cursor((req.body as { upTo: string }).upTo, 'upTo');
    const rows = await sql`
      UPDATE receipts SET acknowledged_at = now()
      WHERE company_id = ANY(${companies}::text[]) AND seq <= ${upTo} AND acknowledged_at IS NULL RETURNING seq`;
    res.json({ acknowledged: rows.length });
  });
  return r;
}
