/** Organisations and companies: the operator registers them; the ERP lists the companies its key covers. */
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { circuitKey, circuitView } from '../../activities/provider/circuit.js';
import { ensureWebhookEndpoint } from '../../activities/provider/stripe.js';
import { ProviderError } from '../../activities/provider/provider.js';
import type { ProviderKind } from '../../domain/provider.js';
import { HttpProblem } from '../../lib/problem.js';
import { openOrNull, seal } from '../../lib/secrets.js';
import { STRIPE_API_URL } from '../../lib/config.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { operatorAuth, scopeOf, sha256 } from '../middleware.js';
import { ensureReconcileSchedule, removeReconcileSchedule } from '../schedules.js';
import { reconcileScheduleId } from '../../workflows/reconcile-contract.js';
import { bodyOf } from '../validate.js';

/**
 * An enabled integration needs the whole provider account, given now or stored before. A Stripe
 * account is named by its secret key alone: no account id, and no webhook secret (billflow makes
 * its own webhook endpoint, see stripeWebhookSecret).
 */
function requireCompleteAccount(kind: ProviderKind, p: { enabled: boolean; url?: string | null; accountId?: string | null; apiKey?: string | null; webhookSecret?: string | null }): void {
  if (!p.enabled) return;
  const needed = kind === 'stripe' ? (['url', 'apiKey'] as const) : (['url', 'accountId', 'apiKey', 'webhookSecret'] as const);
  for (const f of needed) {
    if (!p[f]) throw new HttpProblem(422, 'invalid-request', `provider.${f} is required when provider.enabled is true`, `provider.${f}`);
  }
}

/**
 * The signing secret of billflow's own webhook endpoint in the company's Stripe account, created
 * through Stripe's API (idempotent: a retried registration gets the same endpoint). A refused key
 * names the field; an unreachable Stripe is a 503, and nothing is registered.
 */
async function stripeWebhookSecret(account: { url: string; apiKey: string }, companyId: string, webhookUrl: string, requestId: string): Promise<string> {
  try {
    return (await ensureWebhookEndpoint(account, companyId, webhookUrl, requestId)).secret;
  } catch (e) {
    if (!(e instanceof ProviderError)) throw e;
    if (e.status === 401 || e.status === 403) throw new HttpProblem(422, 'invalid-request', `Stripe refused provider.apiKey: ${e.message}`, 'provider.apiKey');
    if (e.retryable) throw new HttpProblem(503, 'provider-unavailable', `the webhook endpoint could not be created at Stripe; nothing was registered: ${e.message}`);
    throw new HttpProblem(502, 'provider-rejected', `Stripe refused to create the webhook endpoint; nothing was registered: ${e.message}`);
  }
}

const newApiKey = () => `bf_${randomBytes(24).toString('base64url')}`;

export function companiesRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();
  const operator = operatorAuth(deps.adminKey);

  r.post('/v1/organisations', operator, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'OrganisationCreate');
    const apiKey = newApiKey();
    const rows = await deps.sql`
      INSERT INTO organisations (id, name, api_key_hash) VALUES (${b.id}, ${b.name}, ${sha256(apiKey)})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (rows.length === 0) throw new HttpProblem(409, 'organisation-exists', `organisation ${b.id} already exists`, 'id');
    res
      .status(201)
      .location(`/v1/organisations/${encodeURIComponent(b.id)}`)
      .json({ id: b.id, name: b.name, apiKey });
  });

  r.post('/v1/companies', operator, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'CompanyCreate');
    // Without a provider object there is no integration; its kind is then the schema's default.
    const kind: ProviderKind = b.provider?.kind ?? 'billpay';
    const p: { enabled: boolean; url?: string; accountId?: string; apiKey?: string; webhookSecret?: string } = {
      ...(kind === 'stripe' ? { url: deps.stripeApiUrl ?? STRIPE_API_URL } : {}),
      ...(b.provider ?? { enabled: false }),
    };
    requireCompleteAccount(kind, p);
    const webhookUrl = `${deps.publicApiUrl}/webhooks/provider/${encodeURIComponent(b.id)}`;
    if (kind === 'stripe' && p.enabled && !p.webhookSecret) {
      // Checked first, so a duplicate registration never makes an endpoint in someone's account.
      const [taken] = await deps.sql`SELECT 1 FROM companies WHERE id = ${b.id}`;
      if (taken) throw new HttpProblem(409, 'company-exists', `company ${b.id} already exists`, 'id');
      p.webhookSecret = await stripeWebhookSecret({ url: p.url!, apiKey: p.apiKey! }, b.id, webhookUrl, res.locals.requestId as string);
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
        INSERT INTO companies (id, name, currency, api_key_hash, organisation_id, provider_enabled, provider_kind, provider_url, provider_account_id,
          provider_api_key, provider_webhook_secret, payment_import_seconds, reconcile_seconds, reminder_days)
        VALUES (${b.id}, ${b.name}, ${b.currency}, ${sha256(apiKey)}, ${organisationId}, ${p.enabled}, ${kind}, ${p.url ?? null},
          ${p.accountId ?? null}, ${p.apiKey ? seal(deps.secrets, 'provider_api_key', b.id, p.apiKey) : null},
          ${p.webhookSecret ? seal(deps.secrets, 'provider_webhook_secret', b.id, p.webhookSecret) : null}, ${b.paymentImportSeconds}, ${b.reconcileSeconds},
          ${[...b.reminderDays].sort((x, y) => x - y)}::int[])
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
        scheduled = await ensureReconcileSchedule(deps.temporal, deps.taskQueue, { id: b.id, reconcileSeconds: b.reconcileSeconds });
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
        currency: b.currency,
        paymentImportSeconds: b.paymentImportSeconds,
        reconcileSeconds: b.reconcileSeconds,
        reconcileScheduleId: scheduled ? reconcileScheduleId(b.id) : null,
        reminderDays: [...b.reminderDays].sort((x, y) => x - y),
        provider: { enabled: p.enabled, kind, url: p.url ?? null, accountId: p.accountId ?? null },
        webhookUrl,
        apiKey,
      });
  });

  /**
   * The operator changes a company's settings: its provider account (or turning the integration
   * on or off), intervals and reminder days. Invoices use them from their next status change; the
   * reconciliation schedule follows at once. A new webhook secret does not cut off the old one at
   * once: webhooks signed with it still verify for `webhookSecretOverlapSeconds` (default a day),
   * while the provider moves to the new one.
   */
  r.patch('/v1/companies/:id', operator, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'CompanyPatch');
    const id = String(req.params.id);
    // No provider object: nothing of the account changes (and no secret is rotated, so no overlap applies).
    const { webhookSecretOverlapSeconds: overlap, ...given } = b.provider ?? { webhookSecretOverlapSeconds: 0 };
    const updated = await deps.sql.begin(async (tx) => {
      const [found] = await tx<{ kind: ProviderKind; enabled: boolean; url: string | null; accountId: string | null; apiKey: string | null; webhookSecret: string | null }[]>`
        SELECT provider_kind AS kind, provider_enabled AS enabled, provider_url AS url, provider_account_id AS "accountId", provider_api_key AS "apiKey",
          provider_webhook_secret AS "webhookSecret"
        FROM companies WHERE id = ${id} FOR UPDATE`;
      if (!found) return null;
      const { kind: was, ...stored } = found;
      const { kind: to, ...account } = given;
      const kind = to ?? was;
      // Another provider: nothing of the old account carries over (a Stripe account is its key, at Stripe's URL by default).
      const moving = kind !== was;
      const cur = moving ? { enabled: stored.enabled, url: kind === 'stripe' ? (deps.stripeApiUrl ?? STRIPE_API_URL) : null, accountId: null, apiKey: null, webhookSecret: null } : stored;
      const p = { ...cur, ...account };
      requireCompleteAccount(kind, p);
      const keyChanged = account.apiKey !== undefined && account.apiKey !== openOrNull(deps.secrets, 'provider_api_key', id, cur.apiKey);
      if (kind === 'stripe' && p.enabled && !account.webhookSecret && (keyChanged || (account.url !== undefined && account.url !== cur.url) || !cur.webhookSecret)) {
        // A new account (or none yet): billflow's endpoint there, whose secret takes over like a rotated one.
        account.webhookSecret = await stripeWebhookSecret(
          { url: p.url!, apiKey: account.apiKey ?? openOrNull(deps.secrets, 'provider_api_key', id, cur.apiKey)! },
          id,
          `${deps.publicApiUrl}/webhooks/provider/${encodeURIComponent(id)}`,
          res.locals.requestId as string,
        );
      }
      const apiKey = account.apiKey ? seal(deps.secrets, 'provider_api_key', id, account.apiKey) : cur.apiKey;
      const oldSecret = openOrNull(deps.secrets, 'provider_webhook_secret', id, stored.webhookSecret);
      if (moving || (account.webhookSecret && account.webhookSecret !== oldSecret)) {
        // A move keeps no secret of the old provider (its webhooks would be checked the new one's way): no overlap then.
        const previous = oldSecret && overlap > 0 && !moving ? seal(deps.secrets, 'provider_webhook_secret_previous', id, oldSecret) : null;
        await tx`
          UPDATE companies SET
            provider_webhook_secret = ${account.webhookSecret ? seal(deps.secrets, 'provider_webhook_secret', id, account.webhookSecret) : null},
            provider_webhook_secret_previous = ${previous},
            provider_webhook_secret_previous_expires_at = CASE WHEN ${previous}::text IS NULL THEN NULL ELSE now() + make_interval(secs => ${overlap}) END
          WHERE id = ${id}`;
      }
      const [row] = await tx<{ id: string; reconcileSeconds: number; enabled: boolean }[]>`
        UPDATE companies SET
          name = coalesce(${b.name ?? null}, name),
          payment_import_seconds = coalesce(${b.paymentImportSeconds ?? null}::int, payment_import_seconds),
          reconcile_seconds = coalesce(${b.reconcileSeconds ?? null}::int, reconcile_seconds),
          reminder_days = coalesce(${b.reminderDays ? [...b.reminderDays].sort((x, y) => x - y) : null}::int[], reminder_days),
          provider_enabled = ${p.enabled}, provider_kind = ${kind}, provider_url = ${p.url}, provider_account_id = ${p.accountId},
          provider_api_key = ${apiKey}
        WHERE id = ${id}
        RETURNING id, reconcile_seconds AS "reconcileSeconds", provider_enabled AS enabled`;
      return { ...row!, moving };
    });
    if (!updated) throw new HttpProblem(404, 'not-found', `company ${id} not found`);
    if (updated.enabled) {
      const scheduled = await ensureReconcileSchedule(deps.temporal, deps.taskQueue, { id, reconcileSeconds: updated.reconcileSeconds });
      // Moved: its open invoices' records are the old provider's until a reconciliation makes them at the new one, so one runs now.
      if (updated.moving && scheduled) await deps.temporal.schedule.getHandle(reconcileScheduleId(id)).trigger();
    } else await removeReconcileSchedule(deps.temporal, id);
    res.json((await companyViews([id]))[0]);
  });

  /** Companies as the API shows them (never their keys or secrets). */
  async function companyViews(ids: string[]) {
    const rows = await deps.sql<{ id: string; providerEnabled: boolean; provider: { enabled: boolean; kind: ProviderKind; url: string | null; accountId: string | null } }[]>`
      SELECT id, name, organisation_id AS "organisationId", currency, payment_import_seconds AS "paymentImportSeconds",
        reconcile_seconds AS "reconcileSeconds", provider_enabled AS "providerEnabled", reminder_days AS "reminderDays",
        json_build_object('enabled', provider_enabled, 'kind', provider_kind, 'url', provider_url, 'accountId', provider_account_id) AS provider
      FROM companies WHERE id = ANY(${ids}::text[]) ORDER BY id`;
    return Promise.all(
      rows.map(async ({ providerEnabled, ...c }) => ({
        ...c,
        // The circuit breaker of the company's provider account (closed when it never failed).
        provider: { ...c.provider, circuit: await circuitView(deps.sql, circuitKey({ ...c.provider, companyId: c.id })) },
        reconcileScheduleId: providerEnabled ? reconcileScheduleId(String(c.id)) : null,
      })),
    );
  }

  r.get('/v1/companies', mw.erpAuth, async (_req, res) => {
    res.json({ data: await companyViews(scopeOf(res).companies.map((c) => c.id)) });
  });
  return r;
}
