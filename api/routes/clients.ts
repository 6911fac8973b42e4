/**
 * The ERP's clients. Companies of one organisation share their clients (as one ERP database
 * does): every write reaches each company's copy.
 */
import { Router } from 'express';
import type { TransactionSql } from 'postgres';
import { templateUsesPayNowUrl, validateEmailTemplate } from '../../activities/email/invoice-email.js';
import type { Sql } from '../../lib/db.js';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { noCompanies, scopeOf, type Scope } from '../middleware.js';
import { bodyOf } from '../validate.js';

/**
 * Runs `fn` over the companies sharing the key's clients. The organisation row is share-locked and
 * its companies read inside the transaction, so a company being registered (which locks that row
 * to copy the clients) either already counts here or copies this write afterwards.
 */
function withClientCompanies<T>(sql: Sql, scope: Scope, fn: (tx: TransactionSql, companyIds: string[]) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    if (!scope.organisationId)
      return fn(
        tx,
        scope.companies.map((c) => c.id),
      );
    await tx`SELECT 1 FROM organisations WHERE id = ${scope.organisationId} FOR SHARE`;
    const rows = await tx<{ id: string }[]>`SELECT id FROM companies WHERE organisation_id = ${scope.organisationId}`;
    if (rows.length === 0) throw noCompanies(scope.organisationId);
    return fn(
      tx,
      rows.map((r) => r.id),
    );
  }) as Promise<T>;
}

export function clientsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.post('/v1/clients', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'ClientCreate');
    const rows = await withClientCompanies(
      sql,
      scopeOf(res),
      (tx, companies) => tx`
      INSERT INTO clients (company_id, id, name, email)
      SELECT company_id, ${b.id}, ${b.name}, ${b.email ?? null} FROM unnest(${companies}::text[]) AS company_id
      ON CONFLICT DO NOTHING RETURNING id`,
    );
    if (rows.length === 0) throw new HttpProblem(409, 'client-exists', `client ${b.id} already exists`, 'id');
    res
      .status(201)
      .location(`/v1/clients/${encodeURIComponent(b.id)}`)
      .json({ id: b.id, name: b.name, email: b.email ?? null });
  });
  r.put('/v1/clients/:id/invoice-email-template', mw.erpAuth, mw.idempotency, async (req, res) => {
    const template = bodyOf(req, 'EmailTemplate');
    validateEmailTemplate(template, 'body');
    const rows = await withClientCompanies(
      sql,
      scopeOf(res),
      (tx, companies) => tx`
      UPDATE clients SET invoice_email_template = ${tx.json({ ...template })}
      WHERE company_id = ANY(${companies}::text[]) AND id = ${String(req.params.id)} RETURNING id`,
    );
    if (rows.length === 0) throw new HttpProblem(404, 'not-found', `client ${String(req.params.id)} not found`);
    res.json({ ...template, usesPayNowUrl: templateUsesPayNowUrl(template) });
  });
  r.patch('/v1/clients/:id', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'ClientPatch');
    const [row] = await withClientCompanies(
      sql,
      scopeOf(res),
      (tx, companies) => tx`
      UPDATE clients SET
        name = coalesce(${b.name ?? null}, name),
        email = CASE WHEN ${'email' in b} THEN ${b.email ?? null} ELSE email END,
        credit_limit = CASE WHEN ${'creditLimit' in b} THEN ${b.creditLimit ?? null}::bigint ELSE credit_limit END,
        delivery_preference = coalesce(${b.deliveryPreference ?? null}, delivery_preference)
      WHERE company_id = ANY(${companies}::text[]) AND id = ${String(req.params.id)}
      RETURNING id, name, email, credit_limit AS "creditLimit", delivery_preference AS "deliveryPreference"`,
    );
    if (!row) throw new HttpProblem(404, 'not-found', `client ${String(req.params.id)} not found`);
    res.json(row);
  });
  r.get('/v1/clients/:id', mw.erpAuth, async (req, res) => {
    const [row] = await withClientCompanies(
      sql,
      scopeOf(res),
      (tx, companies) => tx`
      SELECT id, name, email, credit_limit AS "creditLimit", delivery_preference AS "deliveryPreference",
        invoice_email_template AS "invoiceEmailTemplate"
      FROM clients WHERE company_id = ANY(${companies}::text[]) AND id = ${String(req.params.id)}
      ORDER BY company_id LIMIT 1`,
    );
    if (!row) throw new HttpProblem(404, 'not-found', `client ${req.params.id} not found`);
    res.json(row);
  });
  return r;
}
