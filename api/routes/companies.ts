/** Organisations and companies: the operator registers them; the ERP lists the companies its key covers. */
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { operatorAuth, scopeOf, sha256 } from '../middleware.js';
import { ensureReconcileSchedule } from '../schedules.js';
import { reconcileScheduleId } from '../../workflows/reconcile-contract.js';
import { validateBody } from '../validate.js';

interface CompanyBody {
  id: string;
  name: string;
  organisationId?: string;
  currency?: string;
  paymentImportSeconds?: number;
  reconcileSeconds?: number;
  reminderDays?: number[];
  provider?: { enabled: boolean; url?: string; accountId?: string; apiKey?: string; webhookSecret?: string };
}

const newApiKey = () => `bf_${randomBytes(24).toString('base64url')}`;

export function companiesRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  const operator = operatorAuth(deps.adminKey);

  r.post('/v1/organisations', operator, mw.idempotency, validateBody('OrganisationCreate'), async (req, res) => {
    const b = req.body as { id: string; name: string };
    const apiKey = newApiKey();
    const rows = await deps.sql`
      INSERT INTO organisations (id, name, api_key_hash) VALUES (${b.id}, ${b.name}, ${sha256(apiKey)})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (rows.length === 0) throw new HttpProblem(409, 'organisation-exists', `organisation ${b.id} already exists`, 'id');
    res.status(201).location(`/v1/organisations/${encodeURIComponent(b.id)}`).json({ id: b.id, name: b.name, apiKey });
  });

  r.post('/v1/companies', operator, mw.idempotency, validateBody('CompanyCreate'), async (req, res) => {
    const b = req.body as CompanyBody;
    const p = b.provider ?? { enabled: false };
    if (p.enabled) {
      for (const f of ['url', 'accountId', 'apiKey', 'webhookSecret'] as const) {
        if (!p[f]) throw new HttpProblem(422, 'invalid-request', `provider.${f} is required when provider.enabled is true`, `provider.${f}`);
      }
    }
    const apiKey = newApiKey();
    const organisationId = b.organisationId ?? null;
    const created = await deps.sql.begin(async (tx) => {
      if (organisationId) {
        // Serialises company creation within the organisation, so the client copy below is complete.
        const [org] = await tx`SELECT id FROM organisations WHERE id = ${organisationId} FOR UPDATE`;
        if (!org) throw new HttpProblem(422, 'invalid-request', `organisation ${organisationId} does not exist`, 'organisationId');
      }
      const rows = await tx`
        INSERT INTO companies (id, name, currency, api_key_hash, organisation_id, provider_enabled, provider_url, provider_account_id,
          provider_api_key, provider_webhook_secret, payment_import_seconds, reconcile_seconds, reminder_days)
        VALUES (${b.id}, ${b.name}, ${b.currency ?? 'USD'}, ${sha256(apiKey)}, ${organisationId}, ${p.enabled}, ${p.url ?? null},
          ${p.accountId ?? null}, ${p.apiKey ?? null}, ${p.webhookSecret ?? null}, ${b.paymentImportSeconds ?? 3600}, ${b.reconcileSeconds ?? 86_400},
          ${[...(b.reminderDays ?? [])].sort((x, y) => x - y)}::int[])
        ON CONFLICT (id) DO NOTHING RETURNING id`;
      if (rows.length === 0) return false;
      if (organisationId) {
        // The organisation's clients are shared: the new company starts with a copy of each.
        await tx`
          INSERT INTO clients (company_id, id, name, email, credit_limit, delivery_preference, invoice_email_template)
          SELECT DISTINCT ON (cl.id) ${b.id}, cl.id, cl.name, cl.email, cl.credit_limit, cl.delivery_preference, cl.invoice_email_template
          FROM clients cl JOIN companies co ON co.id = cl.company_id
          WHERE co.organisation_id = ${organisationId} AND co.id <> ${b.id}
          ORDER BY cl.id, co.id`;
      }
      return true;
    });
    if (!created) throw new HttpProblem(409, 'company-exists', `company ${b.id} already exists`, 'id');
    let scheduled = false;
    if (p.enabled) {
      try {
        scheduled = await ensureReconcileSchedule(deps.temporal, deps.taskQueue, { id: b.id, reconcileSeconds: b.reconcileSeconds ?? 86_400 });
      } catch (e) {
        // The company is registered; the API's next start makes the missing schedule.
        deps.log('reconciliation schedule not created', { companyId: b.id, error: String(e) });
      }
    }
    res
      .status(201)
      .location(`/v1/companies/${encodeURIComponent(b.id)}`)
      .json({
        id: b.id,
        name: b.name,
        organisationId,
        currency: b.currency ?? 'USD',
        paymentImportSeconds: b.paymentImportSeconds ?? 3600,
        reconcileSeconds: b.reconcileSeconds ?? 86_400,
        reconcileScheduleId: scheduled ? reconcileScheduleId(b.id) : null,
        reminderDays: [...(b.reminderDays ?? [])].sort((x, y) => x - y),
        provider: { enabled: p.enabled, url: p.url ?? null, accountId: p.accountId ?? null },
        webhookUrl: `${deps.publicApiUrl}/webhooks/provider/${encodeURIComponent(b.id)}`,
        apiKey,
      });
  });

  r.get('/v1/companies', mw.erpAuth, async (_req, res) => {
    const rows = await deps.sql`
      SELECT id, name, organisation_id AS "organisationId", currency, payment_import_seconds AS "paymentImportSeconds",
        reconcile_seconds AS "reconcileSeconds", provider_enabled AS "providerEnabled", reminder_days AS "reminderDays",
        json_build_object('enabled', provider_enabled, 'url', provider_url, 'accountId', provider_account_id) AS provider
      FROM companies WHERE id = ANY(${scopeOf(res).companies.map((c) => c.id)}::text[]) ORDER BY id`;
    res.json({
      data: rows.map(({ providerEnabled, reconcileSeconds, ...c }) => ({
        ...c,
        reconcileSeconds,
        reconcileScheduleId: providerEnabled ? reconcileScheduleId(String(c.id)) : null,
      })),
    });
  });
  return r;
}
