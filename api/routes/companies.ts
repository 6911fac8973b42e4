import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { operatorAuth, sha256 } from '../middleware.js';
import { validateBody } from '../validate.js';

interface CompanyBody {
  id: string;
  name: string;
  currency?: string;
  paymentImportSeconds?: number;
  provider?: { enabled: boolean; url?: string; accountId?: string; apiKey?: string; webhookSecret?: string };
}

/** Operator-only: register a company with its provider account, and hand out its API key once. */
export function companiesRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  r.post('/v1/companies', operatorAuth(deps.adminKey), mw.idempotency, validateBody('CompanyCreate'), async (req, res) => {
    const b = req.body as CompanyBody;
    const p = b.provider ?? { enabled: false };
    if (p.enabled) {
      for (const f of ['url', 'accountId', 'apiKey', 'webhookSecret'] as const) {
        if (!p[f]) throw new HttpProblem(422, 'invalid-request', `provider.${f} is required when provider.enabled is true`, `provider.${f}`);
      }
    }
    const apiKey = `bf_${randomBytes(24).toString('base64url')}`;
    const rows = await deps.sql`
      INSERT INTO companies (id, name, currency, api_key_hash, provider_enabled, provider_url, provider_account_id,
        provider_api_key, provider_webhook_secret, payment_import_seconds)
      VALUES (${b.id}, ${b.name}, ${b.currency ?? 'USD'}, ${sha256(apiKey)}, ${p.enabled}, ${p.url ?? null}, ${p.accountId ?? null},
        ${p.apiKey ?? null}, ${p.webhookSecret ?? null}, ${b.paymentImportSeconds ?? 3600})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (rows.length === 0) throw new HttpProblem(409, 'company-exists', `company ${b.id} already exists`, 'id');
    res
      .status(201)
      .location(`/v1/companies/${encodeURIComponent(b.id)}`)
      .json({
        id: b.id,
        name: b.name,
        currency: b.currency ?? 'USD',
        paymentImportSeconds: b.paymentImportSeconds ?? 3600,
        provider: { enabled: p.enabled, url: p.url ?? null, accountId: p.accountId ?? null },
        webhookUrl: `${deps.publicApiUrl}/webhooks/provider/${encodeURIComponent(b.id)}`,
        apiKey,
      });
  });
  return r;
}
