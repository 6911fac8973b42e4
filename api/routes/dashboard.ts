/**
 * The operator dashboard at GET /dashboard: what needs a person's eye, from the read model.
 *
 * Sign-in: a form posts the operator key (every company) or a company or organisation API key (its
 * own companies) once; the answer sets a session cookie that holds no key, only who signed in and
 * until when, under an HMAC made with a key derived from BILLFLOW_SECRET_KEY (HttpOnly,
 * SameSite=Strict, Path=/dashboard, Secure when served over https, 8 hours). `Authorization:
 * Bearer <key>` works too, for scripts. The page is read-only and runs no script.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { Router, type Request, type Response } from 'express';
import type { Sql } from '../../lib/db.js';
import type { Finding } from '../../domain/reconcile.js';
import { invoiceWorkflowId } from '../../workflows/contract.js';
import { dashboardPage, loginPage, AGING_BUCKETS, type Aging, type DashboardData } from '../dashboard-page.js';
import type { ApiDeps } from '../deps.js';
import { sha256 } from '../middleware.js';

const COOKIE = 'billflow_dashboard';
const SESSION_MS = 8 * 3_600_000;

/** Who signed in: the operator (every company) or a key's own companies. */
type Viewer = { kind: 'operator' } | { kind: 'company' | 'organisation'; id: string };

const FINDINGS: Record<Finding['kind'], string> = {
  'missing-at-provider': 'sent to the provider, but the provider no longer has it',
  'figures-differ': 'amount or balance differs at the provider',
  'stale-at-provider': 'an old provider record is still open',
  'unknown-at-provider': 'made at the provider by hand; billflow does not know it',
};

export function dashboardRouter(deps: ApiDeps): Router {
  const r = Router();
  const { sql } = deps;
  const macKey = createHmac('sha256', deps.secrets.current.key).update('billflow dashboard session').digest();
  const operatorHash = Buffer.from(sha256(deps.adminKey), 'hex');
  const namespace = deps.temporal.options.namespace;
  const uiUrl = deps.temporalUiUrl?.replace(/\/$/, '') ?? null;
  const workflowUrl = (id: string) => (uiUrl ? `${uiUrl}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(id)}` : null);

  const mac = (text: string) => createHmac('sha256', macKey).update(text).digest('base64url');

  async function viewerOfKey(key: string): Promise<Viewer | null> {
    const hash = sha256(key);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), operatorHash)) return { kind: 'operator' };
    const [company] = await sql<{ id: string }[]>`SELECT id FROM companies WHERE api_key_hash = ${hash}`;
    if (company) return { kind: 'company', id: company.id };
    const [org] = await sql<{ id: string }[]>`SELECT id FROM organisations WHERE api_key_hash = ${hash}`;
    return org ? { kind: 'organisation', id: org.id } : null;
  }

  function session(v: Viewer): string {
    const body = `${v.kind}:${v.kind === 'operator' ? '' : encodeURIComponent(v.id)}:${Date.now() + SESSION_MS}`;
    return `${body}.${mac(body)}`;
  }

  function viewerOfSession(token: string): Viewer | null {
    const dot = token.lastIndexOf('.');
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(mac(body));
    if (dot < 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const [kind, id, until] = body.split(':');
    if (!(Number(until) > Date.now())) return null;
    if (kind === 'operator') return { kind };
    return kind === 'company' || kind === 'organisation' ? { kind, id: decodeURIComponent(id!) } : null;
  }

  async function viewerOf(req: Request): Promise<Viewer | null> {
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    if (bearer) return viewerOfKey(bearer);
    const cookie = (req.get('cookie') ?? '').split(/;\s*/).find((c) => c.startsWith(`${COOKIE}=`));
    return cookie ? viewerOfSession(decodeURIComponent(cookie.slice(COOKIE.length + 1))) : null;
  }

  function html(res: Response, status: number, body: string) {
    res
      .status(status)
      .set({
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        'Cache-Control': 'no-store',
        'Referrer-Policy': 'no-referrer',
      })
      .type('html')
      .send(body);
  }

  function cookie(req: Request, value: string, maxAgeMs: number): string {
    const secure = req.secure || req.get('x-forwarded-proto') === 'https' ? '; Secure' : '';
    return `${COOKIE}=${encodeURIComponent(value)}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure}`;
  }

  r.get('/dashboard', async (req, res) => {
    const viewer = await viewerOf(req);
    if (!viewer) return html(res, 401, loginPage(null));
    html(res, 200, dashboardPage(await load(sql, viewer, workflowUrl)));
  });

  r.post('/dashboard/login', express.urlencoded({ extended: false, limit: '4kb' }), async (req, res) => {
    const key = typeof (req.body as { key?: unknown } | undefined)?.key === 'string' ? (req.body as { key: string }).key.trim() : '';
    const viewer = key ? await viewerOfKey(key) : null;
    if (!viewer) return html(res, 401, loginPage(key ? 'That key is not the operator key or a company or organisation API key.' : 'Enter a key.'));
    res.set('Set-Cookie', cookie(req, session(viewer), SESSION_MS)).redirect(303, '/dashboard');
  });

  r.post('/dashboard/logout', (req, res) => {
    res.set('Set-Cookie', cookie(req, '', 0)).redirect(303, '/dashboard');
  });
  return r;
}

/** The companies a viewer sees (null: every company), and how the page names the scope. */
async function scopeOf(sql: Sql, v: Viewer): Promise<{ ids: string[] | null; label: string }> {
  if (v.kind === 'operator') return { ids: null, label: 'all companies (operator)' };
  const rows =
    v.kind === 'company'
      ? await sql<{ id: string; name: string }[]>`SELECT id, name FROM companies WHERE id = ${v.id}`
      : await sql<{ id: string; name: string }[]>`SELECT id, name FROM companies WHERE organisation_id = ${v.id} ORDER BY name`;
  return { ids: rows.map((c) => c.id), label: rows.map((c) => c.name).join(', ') || 'no companies' };
}

async function load(sql: Sql, viewer: Viewer, workflowUrl: (id: string) => string | null): Promise<DashboardData> {
  const scope = await scopeOf(sql, viewer);
  const within = (column: string) => (scope.ids ? sql`AND ${sql(column)} = ANY(${scope.ids}::text[])` : sql``);
  const day = (d: Date | null) => (d ? d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC' : null);

  const open = await sql<
    {
      company_name: string;
      number: string;
      client_name: string;
      currency: string;
      total: number;
      outstanding: number;
      due_date: string;
      days_overdue: number;
      classification: string | null;
      held: boolean;
      workflow_id: string;
    }[]
  >`
    SELECT c.name AS company_name, i.number, cl.name AS client_name, i.currency, i.total, i.outstanding, i.due_date::text AS due_date,
      (current_date - i.due_date) AS days_overdue, i.classification, i.held, i.workflow_id
    FROM invoices i JOIN companies c ON c.id = i.company_id JOIN clients cl ON cl.company_id = i.company_id AND cl.id = i.client_id
    WHERE i.status = 'Final' AND (i.held OR i.outstanding > 0) ${within('i.company_id')}
    ORDER BY i.due_date, c.name, i.number`;
  const row = (i: (typeof open)[number]) => ({
    companyName: i.company_name,
    number: i.number,
    clientName: i.client_name,
    currency: i.currency,
    total: i.total,
    outstanding: i.outstanding,
    dueDate: i.due_date,
    daysOverdue: i.days_overdue,
    classification: i.classification,
    workflowUrl: workflowUrl(i.workflow_id),
  });
  const owed = open.filter((i) => !i.held && i.outstanding > 0);
  const aging = new Map<string, Aging>();
  for (const i of owed) {
    const a = aging.get(i.currency) ?? { currency: i.currency, amounts: AGING_BUCKETS.map(() => 0), counts: AGING_BUCKETS.map(() => 0) };
    const bucket = i.days_overdue <= 0 ? 0 : i.days_overdue <= 30 ? 1 : i.days_overdue <= 60 ? 2 : i.days_overdue <= 90 ? 3 : 4;
    a.amounts[bucket]! += i.outstanding;
    a.counts[bucket]!++;
    aging.set(i.currency, a);
  }

  const lastRuns = await sql<{ company_id: string; company_name: string; findings: Finding[]; finished_at: Date | null; started_at: Date }[]>`
    SELECT DISTINCT ON (r.company_id) r.company_id, c.name AS company_name, r.findings, r.finished_at, r.started_at
    FROM reconciliations r JOIN companies c ON c.id = r.company_id
    WHERE r.failed IS NULL ${within('r.company_id')}
    ORDER BY r.company_id, r.started_at DESC`;
  const drift = lastRuns.flatMap((run) =>
    run.findings.map((f) => ({
      companyName: run.company_name,
      checkedAt: day(run.finished_at ?? run.started_at)!,
      what: FINDINGS[f.kind],
      number: f.number,
      workflowUrl: f.kind === 'unknown-at-provider' ? null : workflowUrl(invoiceWorkflowId(run.company_id, f.number)),
    })),
  );

  const runs = await sql<{ company_name: string; kind: string; created_at: Date; total: number; sent: number; printed: number; skipped_held: number; failed: number; workflow_id: string }[]>`
    SELECT c.name AS company_name, b.kind, b.created_at, b.total, b.sent, b.printed, b.skipped_held, b.failed, b.workflow_id
    FROM bill_runs b JOIN companies c ON c.id = b.company_id
    WHERE b.status IN ('selecting', 'running') ${within('b.company_id')}
    ORDER BY b.created_at`;

  const endpoints = await sql<{ company_name: string; url: string; description: string | null; failing_since: Date | null; disabled_reason: string | null; last_success_at: Date | null }[]>`
    SELECT c.name AS company_name, e.url, e.description, e.failing_since, e.disabled_reason, e.last_success_at
    FROM webhook_endpoints e JOIN companies c ON c.id = e.company_id
    WHERE (e.failing_since IS NOT NULL OR NOT e.enabled) ${within('e.company_id')}
    ORDER BY e.failing_since NULLS LAST, e.url`;

  return {
    scope: scope.label,
    asOf: day(new Date())!,
    held: open.filter((i) => i.held).map(row),
    overdue: owed
      .filter((i) => i.days_overdue > 0)
      .sort((a, b) => b.days_overdue - a.days_overdue)
      .map(row),
    drift,
    runs: runs.map((b) => ({
      companyName: b.company_name,
      kind: b.kind,
      startedAt: day(b.created_at)!,
      total: b.total,
      done: b.sent + b.printed + b.skipped_held + b.failed,
      failed: b.failed,
      workflowUrl: workflowUrl(b.workflow_id),
    })),
    endpoints: endpoints.map((e) => ({
      companyName: e.company_name,
      url: e.url,
      description: e.description,
      failingSince: day(e.failing_since),
      disabledReason: e.disabled_reason,
      lastSuccessAt: day(e.last_success_at),
    })),
    aging: [...aging.values()],
  };
}
