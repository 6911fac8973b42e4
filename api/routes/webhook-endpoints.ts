/**
 * The ERP's webhook endpoints (events out, by the Standard Webhooks specification): register,
 * change, delete, rotate the signing secret, and read every delivery with its attempts. The
 * signing secret is answered once, at creation and rotation, and stored encrypted.
 */
import { randomBytes } from 'node:crypto';
import { Router, type Response } from 'express';
import { EVENTS_CHANNEL } from '../../activities/events.js';
import type { EventType } from '../../domain/events.js';
import { HttpProblem } from '../../lib/problem.js';
import { openEndpointSecret, sealEndpointSecret } from '../../lib/secrets.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf, companyOf } from '../middleware.js';
import { DeliveriesQuery } from '../openapi-webhooks.js';
import { bodyOf, queryOf } from '../validate.js';

interface EndpointRow {
  id: string;
  company_id: string;
  url: string;
  description: string | null;
  events: EventType[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: Date | null;
  last_success_at: Date | null;
  secret_previous_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;
const newId = () => `we_${randomBytes(12).toString('hex')}`;

function view(row: EndpointRow) {
  return {
    id: row.id,
    companyId: row.company_id,
    url: row.url,
    description: row.description,
    events: row.events,
    enabled: row.enabled,
    disabledReason: row.disabled_reason,
    failingSince: row.failing_since,
    lastSuccessAt: row.last_success_at,
    previousSecretExpiresAt: row.secret_previous_expires_at && row.secret_previous_expires_at > new Date() ? row.secret_previous_expires_at : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function webhookEndpointsRouter({ sql, secrets }: ApiDeps, mw: ApiMiddleware): Router {
  const r = Router();

  /** The endpoint, if it is one of the key's companies' (else 404, as for one that does not exist). */
  async function find(res: Response, id: string): Promise<EndpointRow> {
    const [row] = await sql<EndpointRow[]>`SELECT * FROM webhook_endpoints WHERE id = ${id} AND company_id = ANY(${companyIdsOf(res)}::text[])`;
    if (!row) throw new HttpProblem(404, 'not-found', `webhook endpoint ${id} not found`);
    return row;
  }

  r.post('/v1/webhook-endpoints', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'WebhookEndpointCreate');
    const c = companyOf(res);
    const id = newId();
    const secret = newSecret();
    const [row] = await sql<EndpointRow[]>`
      INSERT INTO webhook_endpoints (id, company_id, url, description, events, secret)
      VALUES (${id}, ${c.id}, ${b.url}, ${b.description ?? null}, ${b.events ?? null}, ${sealEndpointSecret(secrets, 'secret', id, secret)})
      RETURNING *`;
    res
      .status(201)
      .location(`/v1/webhook-endpoints/${id}`)
      .json({ ...view(row!), secret });
  });

  r.get('/v1/webhook-endpoints', mw.erpAuth, async (_req, res) => {
    const rows = await sql<EndpointRow[]>`SELECT * FROM webhook_endpoints WHERE company_id = ANY(${companyIdsOf(res)}::text[]) ORDER BY created_at, id`;
    res.json({ data: rows.map(view) });
  });

  r.get('/v1/webhook-endpoints/:id', mw.erpAuth, async (req, res) => {
    res.json(view(await find(res, String(req.params.id))));
  });

  r.patch('/v1/webhook-endpoints/:id', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'WebhookEndpointPatch');
    const found = await find(res, String(req.params.id));
    const row = await sql.begin(async (tx) => {
      const changed: Record<string, unknown> = {};
      if (b.url !== undefined) changed.url = b.url;
      if (b.description !== undefined) changed.description = b.description;
      if (b.events !== undefined) changed.events = b.events;
      if (b.enabled !== undefined) changed.enabled = b.enabled;
      // Enabled again: it starts afresh, and what was given up while it failed is tried again, in order.
      if (b.enabled === true && !found.enabled) {
        Object.assign(changed, { disabled_reason: null, failing_since: null });
        await tx`
          UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL
          WHERE endpoint_id = ${found.id} AND status = 'failed'`;
      }
      if (b.enabled === false) changed.disabled_reason = 'disabled by the ERP';
      const [updated] = await tx<EndpointRow[]>`
        UPDATE webhook_endpoints SET ${tx(changed)}, updated_at = now() WHERE id = ${found.id} RETURNING *`;
      return updated!;
    });
    res.json(view(row));
  });

  r.delete('/v1/webhook-endpoints/:id', mw.erpAuth, async (req, res) => {
    const found = await find(res, String(req.params.id));
    await sql`DELETE FROM webhook_endpoints WHERE id = ${found.id}`;
    res.status(204).end();
  });

  r.post('/v1/webhook-endpoints/:id/rotate-secret', mw.erpAuth, mw.idempotency, async (req, res) => {
    const overlap = bodyOf(req, 'WebhookSecretRotation').overlapSeconds;
    const found = await find(res, String(req.params.id));
    const secret = newSecret();
    const row = await sql.begin(async (tx) => {
      const [current] = await tx<{ secret: string }[]>`SELECT secret FROM webhook_endpoints WHERE id = ${found.id} FOR UPDATE`;
      // The secret it replaces keeps signing (a second signature) during the overlap; sealed again, as its column's.
      const previous = overlap > 0 ? sealEndpointSecret(secrets, 'secret_previous', found.id, openEndpointSecret(secrets, 'secret', found.id, current!.secret)) : null;
      const [updated] = await tx<EndpointRow[]>`
        UPDATE webhook_endpoints SET secret = ${sealEndpointSecret(secrets, 'secret', found.id, secret)}, secret_previous = ${previous},
          secret_previous_expires_at = ${previous ? new Date(Date.now() + overlap * 1000) : null}, updated_at = now()
        WHERE id = ${found.id} RETURNING *`;
      return updated!;
    });
    res.json({ ...view(row), secret });
  });

  r.get('/v1/webhook-endpoints/:id/deliveries', mw.erpAuth, async (req, res) => {
    const found = await find(res, String(req.params.id));
    const { limit, after, status } = queryOf(req, DeliveriesQuery);
    const rows = await sql<{ id: string; attempts: unknown[] }[]>`
      SELECT d.id::text AS id, ev.id AS "webhookId", ev.type AS "eventType", ev.request_id AS "requestId", d.status,
        d.attempts AS "attemptCount", d.next_attempt_at AS "nextAttemptAt", d.delivered_at AS "deliveredAt", ev.created_at AS "createdAt",
        ev.payload::jsonb AS event,
        coalesce((SELECT jsonb_agg(jsonb_build_object('attempt', a.attempt, 'startedAt', a.started_at, 'durationMs', a.duration_ms,
            'statusCode', a.status_code, 'responseBody', a.response_body, 'error', a.error) ORDER BY a.attempt)
          FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]'::jsonb) AS attempts
      FROM webhook_deliveries d JOIN webhook_events ev ON ev.seq = d.event_seq
      WHERE d.endpoint_id = ${found.id}
        ${after ? sql`AND d.id > ${after}` : sql``}
        ${status ? sql`AND d.status = ${status}` : sql``}
      ORDER BY d.id LIMIT ${limit + 1}`;
    const hasMore = rows.length > limit;
    const data = rows.slice(0, limit);
    res.json({ data, hasMore, nextCursor: data.at(-1)?.id ?? after ?? null });
  });

  r.post('/v1/webhook-endpoints/:id/deliveries/:deliveryId/redeliver', mw.erpAuth, mw.idempotency, async (req, res) => {
    const found = await find(res, String(req.params.id));
    const deliveryId = String(req.params.deliveryId);
    // Sent again as soon as it is first in line for its invoice, with the same webhook-id, for a new retry window.
    const [row] = await sql<{ id: string; status: string }[]>`
      UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now(), first_attempt_at = NULL, delivered_at = NULL
      WHERE id = ${deliveryId} AND endpoint_id = ${found.id} RETURNING id::text AS id, status`;
    if (!row) throw new HttpProblem(404, 'not-found', `delivery ${deliveryId} of webhook endpoint ${found.id} not found`);
    await sql`SELECT pg_notify(${EVENTS_CHANNEL}, '')`;
    res.status(202).json(row);
  });

  return r;
}
