/** The company's billing-run definition: the limits that make a bill exceptional. */
import { Router } from 'express';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyOf } from '../middleware.js';
import { bodyOf } from '../validate.js';

export function billingRunRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.put('/v1/billing-run-definition', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'BillingRunDefinition');
    const company = companyOf(res);
    await sql`
      UPDATE companies SET max_credited = ${b.maxCredited ? sql.json(b.maxCredited as never) : null},
        max_debited = ${b.maxDebited ? sql.json(b.maxDebited as never) : null}
      WHERE id = ${company.id}`;
    res.json(b);
  });
  return r;
}
