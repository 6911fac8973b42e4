/**
 * The provider's signed payment webhooks. The signature is checked against the raw body, with the
 * company's webhook secret or, within its overlap window, the one it replaced; a stale timestamp
 * is refused. Each payment is signalled to every invoice workflow it covers, which applies it
 * once; an event already handled (a replay or a redelivery of the same event id) is answered 200
 * and not passed on again.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import express, { Router } from 'express';
import type { ProviderKind } from '../../domain/provider.js';
import { webhookVerifierFor } from '../../activities/provider/calls.js';
import { paymentForInvoice } from '../../activities/provider/provider.js';
import { HttpProblem } from '../../lib/problem.js';
import { open } from '../../lib/secrets.js';
import { invoiceWorkflowId, paymentSignal } from '../../workflows/contract.js';
import type { ApiDeps } from '../deps.js';

/** How long handled event ids are remembered: far beyond the signature tolerance, which bounds a replay's age. */
const EVENT_RETENTION_SECONDS = 86_400;

export function webhooksRouter({ sql, temporal, log, secrets }: ApiDeps): Router {
  const r = Router();
  const unknownCompanySecret = randomBytes(32).toString('hex');
  r.post('/webhooks/provider/:companyId', express.raw({ type: '*/*', limit: '1mb' }), async (req, res) => {
    const companyId = String(req.params.companyId);
    const [company] = await sql<{ kind: ProviderKind; secret: string | null; previous: string | null }[]>`
      SELECT provider_kind AS kind, provider_webhook_secret AS secret,
        CASE WHEN provider_webhook_secret_previous_expires_at > now() THEN provider_webhook_secret_previous END AS previous
      FROM companies WHERE id = ${companyId}`;
    // This route is public: a company without webhooks is checked against a secret nobody has, so
    // its answer is a bad signature's, and never tells which company codes exist.
    if (!company?.secret) log('webhook for a company without provider webhooks configured', { companyId, requestId: res.locals.requestId as string });
    const accepted = company?.secret ? [open(secrets, 'provider_webhook_secret', companyId, company.secret)] : [unknownCompanySecret];
    if (company?.previous) accepted.push(open(secrets, 'provider_webhook_secret_previous', companyId, company.previous));
    const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    // Each provider signs its own way; the verifier also reads the event into billflow's shape.
    const verifier = webhookVerifierFor(company?.kind ?? 'billpay');
    const verified = verifier.verify(accepted, raw, req.get(verifier.header));
    if ('why' in verified) throw new HttpProblem(400, verified.type, verified.why, verified.field);
    const { event } = verified;
    const [handled] = await sql<{ answer: Record<string, unknown> }[]>`
      SELECT answer FROM provider_webhook_events
      WHERE company_id = ${companyId} AND event_id = ${event.id} AND received_at > now() - make_interval(secs => ${EVENT_RETENTION_SECONDS})`;
    if (handled) {
      res.json({ ...handled.answer, duplicate: true });
      return;
    }
    const payment = event.payment;
    if (!payment) {
      res.json({ received: event.id, ignored: `event type ${event.type}` });
      return;
    }
    const ids = payment.allocations.map((a) => a.invoiceId);
    const known =
      ids.length === 0
        ? []
        : await sql<{ number: string; provider_invoice_id: string }[]>`
            SELECT number, provider_invoice_id FROM invoices WHERE company_id = ${companyId} AND provider_invoice_id IN ${sql(ids)}
            UNION
            SELECT invoice_number, provider_invoice_id FROM provider_invoice_refs WHERE company_id = ${companyId} AND provider_invoice_id IN ${sql(ids)}`;
    const requestId = res.locals.requestId as string;
    // An event that names only the provider's invoice ids (Stripe's) gets the numbers from billflow's own invoices.
    const named = {
      ...payment,
      allocations: payment.allocations.map((a) => ({ ...a, invoiceNumber: a.invoiceNumber || (known.find((k) => k.provider_invoice_id === a.invoiceId)?.number ?? '') })),
    };
    // Each invoice is signalled on its own: one that cannot be reached never keeps the others from their payment.
    const outcomes = await Promise.all(
      known.map(async (inv) => {
        const p = paymentForInvoice(named, inv.provider_invoice_id, 'webhook', requestId);
        if (!p) return { number: inv.number, outcome: 'signalled' as const };
        try {
          await temporal.workflow.getHandle(invoiceWorkflowId(companyId, inv.number)).signal(paymentSignal, p);
          return { number: inv.number, outcome: 'signalled' as const };
        } catch (e) {
          // A closed workflow (completed, terminated) takes no more payments: redelivery would never change that.
          if (e instanceof WorkflowNotFoundError) return { number: inv.number, outcome: 'closed' as const };
          return { number: inv.number, outcome: 'failed' as const, error: e };
        }
      }),
    );
    const closed = outcomes.filter((o) => o.outcome === 'closed').map((o) => o.number);
    if (closed.length) log('webhook payment not applied: the invoice workflow is closed', { companyId, paymentId: payment.id, invoices: closed, requestId });
    const failed = outcomes.filter((o) => o.outcome === 'failed');
    if (failed.length) {
      log('webhook payment not signalled; the provider will redeliver', { companyId, paymentId: payment.id, failed: failed.map((f) => ({ number: f.number, error: String(f.error) })), requestId });
      // Redelivery is safe: the workflows that did get the payment apply it once.
      throw new HttpProblem(503, 'temporal-unavailable', `payment ${payment.id} could not be signalled to invoice(s) ${failed.map((f) => f.number).join(', ')}; deliver it again`);
    }
    const unknown = ids.filter((id) => !known.some((k) => k.provider_invoice_id === id));
    if (unknown.length) log('webhook names provider invoices billflow does not know', { companyId, unknown, requestId });
    const signalled = outcomes.filter((o) => o.outcome === 'signalled').map((o) => o.number);
    const answer = {
      received: event.id,
      invoices: signalled,
      unknown,
      ...(closed.length ? { closed, detail: `invoice(s) ${closed.join(', ')} no longer run (their workflow has closed): the payment was not applied to them` } : {}),
    };
    // Recorded only once every invoice has it: a delivery that failed above is passed on again when redelivered.
    await sql`
      WITH old AS (DELETE FROM provider_webhook_events WHERE received_at <= now() - make_interval(secs => ${EVENT_RETENTION_SECONDS}))
      INSERT INTO provider_webhook_events (company_id, event_id, answer) VALUES (${companyId}, ${event.id}, ${sql.json(answer)})
      ON CONFLICT (company_id, event_id) DO UPDATE SET received_at = now(), answer = EXCLUDED.answer`;
    res.json(answer);
  });
  return r;
}
