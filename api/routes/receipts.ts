/** The ERP's receipts feed: cursor-paged, acknowledged by cursor. */
import { Router } from 'express';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf } from '../middleware.js';
import { ReceiptsQuery } from '../openapi.js';
import { bodyOf, queryOf } from '../validate.js';

export function receiptsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.get('/v1/receipts', mw.erpAuth, async (req, res) => {
    const companies = companyIdsOf(res);
    const { after, limit, unacknowledged: unacked } = queryOf(req, ReceiptsQuery);
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
    res.json({ data, hasMore, nextCursor: data.at(-1)?.id ?? after ?? null });
  });
  r.post('/v1/receipts/acknowledge', mw.erpAuth, mw.idempotency, async (req, res) => {
    const upTo = bodyOf(req, 'ReceiptAck').upTo;
    const companies = companyIdsOf(res);
    const rows = await sql`
      UPDATE receipts SET acknowledged_at = now()
      WHERE company_id = ANY(${companies}::text[]) AND seq <= ${upTo} AND acknowledged_at IS NULL RETURNING seq`;
    res.json({ acknowledged: rows.length });
  });
  return r;
}
