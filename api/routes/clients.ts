/**
 * The ERP's clients. Companies of one organisation share their clients (as one ERP database
 * does): every write reaches each company's copy in one statement.
 */
import { Router } from 'express';
import { templateUsesPayNowUrl, validateEmailTemplate, type EmailTemplate } from '../../activities/email/invoice-email.js';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { scopeOf } from '../middleware.js';
import { validateBody } from '../validate.js';

export function clientsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.post('/v1/clients', mw.erpAuth, mw.idempotency, validateBody('ClientCreate'), async (req, res) => {
    const companies = scopeOf(res).clientCompanyIds;
    const b = req.body as { id: string; name: string; email?: string };
    if (companies.length === 0) throw new HttpProblem(422, 'no-companies', `organisation ${scopeOf(res).organisationId} has no companies yet`);
    const rows = await sql`
      INSERT INTO clients (company_id, id, name, email)
      SELECT company_id, ${b.id}, ${b.name}, ${b.email ?? null} FROM unnest(${companies}::text[]) AS company_id
      ON CONFLICT DO NOTHING RETURNING id`;
    if (rows.length === 0) throw new HttpProblem(409, 'client-exists', `client ${b.id} already exists`, 'id');
    res.status(201).location(`/v1/clients/${encodeURIComponent(b.id)}`).json({ id: b.id, name: b.name, email: b.email ?? null });
  });
  r.put('/v1/clients/:id/invoice-email-template', mw.erpAuth, mw.idempotency, validateBody('EmailTemplate'), async (req, res) => {
    const template = req.body as EmailTemplate;
    validateEmailTemplate(template, 'body');
    const rows = await sql`
      UPDATE clients SET invoice_email_template = ${sql.json({ ...template })}
      WHERE company_id = ANY(${scopeOf(res).clientCompanyIds}::text[]) AND id = ${String(req.params.id)} RETURNING id`;
    if (rows.length === 0) throw new HttpProblem(404, 'not-found', `client ${String(req.params.id)} not found`);
    res.json({ ...template, usesPayNowUrl: templateUsesPayNowUrl(template) });
  });
  r.patch('/v1/clients/:id', mw.erpAuth, mw.idempotency, validateBody('ClientPatch'), async (req, res) => {
    const b = req.body as { name?: string; email?: string | null; creditLimit?: number | null; deliveryPreference?: 'email' | 'print' };
    const [row] = await sql`
      UPDATE clients SET
        name = coalesce(${b.name ?? null}, name),
        email = CASE WHEN ${'email' in b} THEN ${b.email ?? null} ELSE email END,
        credit_limit = CASE WHEN ${'creditLimit' in b} THEN ${b.creditLimit ?? null}::bigint ELSE credit_limit END,
        delivery_preference = coalesce(${b.deliveryPreference ?? null}, delivery_preference)
      WHERE company_id = ANY(${scopeOf(res).clientCompanyIds}::text[]) AND id = ${String(req.params.id)}
      RETURNING id, name, email, credit_limit AS "creditLimit", delivery_preference AS "deliveryPreference"`;
    if (!row) throw new HttpProblem(404, 'not-found', `client ${String(req.params.id)} not found`);
    res.json(row);
  });
  r.get('/v1/clients/:id', mw.erpAuth, async (req, res) => {
    const [row] = await sql`
      SELECT id, name, email, credit_limit AS "creditLimit", delivery_preference AS "deliveryPreference",
        invoice_email_template AS "invoiceEmailTemplate"
      FROM clients WHERE company_id = ANY(${scopeOf(res).clientCompanyIds}::text[]) AND id = ${String(req.params.id)}
      ORDER BY company_id LIMIT 1`;
    if (!row) throw new HttpProblem(404, 'not-found', `client ${req.params.id} not found`);
    res.json(row);
  });
  return r;
}
