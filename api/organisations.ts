/**
 * Routing for organisations (one ERP connection over several companies): a project names its
 * company, and an invoice number is unique within the organisation so it names its company too.
 */
import type { Response } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import { scopeOf, type CompanyRow } from './middleware.js';

export interface Project {
  id: string;
  name: string;
  clientId: string;
  company: CompanyRow;
}

/** The project among the key's companies; refused when the request is for another company. */
export async function findProject(sql: Sql, res: Response, projectId: string): Promise<Project> {
  const scope = scopeOf(res);
  const [row] = await sql<{ company_id: string; client_id: string; name: string }[]>`
    SELECT company_id, client_id, name FROM projects
    WHERE company_id = ANY(${scope.companies.map((c) => c.id)}::text[]) AND id = ${projectId}`;
  const company = row && scope.companies.find((c) => c.id === row.company_id);
  if (!row || !company) throw new HttpProblem(404, 'not-found', `project ${projectId} not found; register it first`, 'projectId');
  const asked = res.locals.company as CompanyRow | undefined;
  if (asked && asked.id !== company.id) {
    throw new HttpProblem(422, 'invalid-request', `project ${projectId} belongs to company ${company.id}, not ${asked.id}`, 'projectId');
  }
  return { id: projectId, name: row.name, clientId: row.client_id, company };
}

/**
 * Reserves an invoice number within the company's organisation before its workflow starts. The
 * same company may claim it again (a retried create then meets its own workflow); another may not.
 */
export async function claimNumber(sql: Sql, company: CompanyRow, number: string): Promise<void> {
  await sql`
    INSERT INTO organisation_invoices (organisation_id, number, company_id)
    VALUES (${company.organisationId}, ${number}, ${company.id}) ON CONFLICT DO NOTHING`;
  const [owner] = await sql<{ company_id: string }[]>`
    SELECT company_id FROM organisation_invoices WHERE organisation_id = ${company.organisationId} AND number = ${number}`;
  if (owner && owner.company_id !== company.id) {
    throw new HttpProblem(409, 'invoice-exists', `invoice number ${number} is already used by company ${owner.company_id} of organisation ${company.organisationId}`, 'number');
  }
}
