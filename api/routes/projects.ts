/** The ERP's projects: each belongs to one company, whose provider account sends its invoices. */
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf, companyOf, scopeOf, type CompanyRow } from '../middleware.js';
import { ClientQuery } from '../openapi.js';
import { bodyOf, queryOf } from '../validate.js';

const COLUMNS = 'id, name, company_id AS "companyId", client_id AS "clientId", created_at AS "createdAt"';

export function projectsRouter({ sql }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.post('/v1/projects', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'ProjectCreate');
    let company: CompanyRow;
    if (b.companyId !== undefined) {
      const named = scopeOf(res).companies.find((c) => c.id === b.companyId);
      // Like any id the key does not cover: 404.
      if (!named) throw new HttpProblem(404, 'not-found', `company ${b.companyId} is not one this API key covers`, 'companyId');
      company = named;
    } else {
      company = companyOf(res, 'companyId');
    }
    const [client] = await sql`SELECT 1 FROM clients WHERE company_id = ${company.id} AND id = ${b.clientId}`;
    if (!client) throw new HttpProblem(404, 'not-found', `client ${b.clientId} not found; register it first`, 'clientId');
    // Project ids are unique per organisation (partial unique index) and per company (primary key).
    const rows = await sql`
      INSERT INTO projects (company_id, id, organisation_id, client_id, name)
      VALUES (${company.id}, ${b.id}, ${company.organisationId}, ${b.clientId}, ${b.name})
      ON CONFLICT DO NOTHING RETURNING ${sql.unsafe(COLUMNS)}`;
    if (rows.length === 0) {
      const [owner] = await sql<{ company_id: string }[]>`
        SELECT company_id FROM projects WHERE id = ${b.id} AND (company_id = ${company.id} OR organisation_id = ${company.organisationId}) LIMIT 1`;
      throw new HttpProblem(409, 'project-exists', `project ${b.id} already exists in company ${owner?.company_id ?? company.id}`, 'id');
    }
    res
      .status(201)
      .location(`/v1/projects/${encodeURIComponent(b.id)}`)
      .json(rows[0]);
  });

  r.get('/v1/projects', mw.erpAuth, async (req, res) => {
    const { clientId } = queryOf(req, ClientQuery);
    const rows = await sql`
      SELECT ${sql.unsafe(COLUMNS)} FROM projects
      WHERE company_id = ANY(${companyIdsOf(res)}::text[]) ${clientId ? sql`AND client_id = ${clientId}` : sql``}
      ORDER BY id LIMIT 1000`;
    res.json({ data: rows });
  });

  r.get('/v1/projects/:id', mw.erpAuth, async (req, res) => {
    const [row] = await sql`
      SELECT ${sql.unsafe(COLUMNS)} FROM projects WHERE company_id = ANY(${companyIdsOf(res)}::text[]) AND id = ${String(req.params.id)}`;
    if (!row) throw new HttpProblem(404, 'not-found', `project ${String(req.params.id)} not found`);
    res.json(row);
  });
  return r;
}
