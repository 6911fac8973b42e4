/**
 * Sends the outbox's deliveries (activities/events.ts) to the ERP's endpoints by the Standard
 * Webhooks specification, from the worker process. A loop over PostgreSQL rather than a workflow
 * per endpoint: the events are already rows there, every worker can run the loop (each delivery is
 * leased, so two never send the same one at once), and a busy endpoint's thousands of retries add
 * nothing to any Temporal history.
 *
 * Per endpoint, the deliveries of one ordering key (an invoice) go out one at a time in event
 * order: a later one waits while an earlier one is still being retried. Each attempt is recorded;
 * a delivery is retried with backoff for `retryForMs` from its first attempt (same webhook-id on
 * every try), and an endpoint that has failed without a success for `disableAfterMs` is disabled
 * (its deliveries wait until it is enabled again).
 *
 * The loop also purges the outbox: deliveries delivered more than `retentionMs` ago (with their
 * attempts), and events left with no delivery. Failed and pending ones stay until they are
 * delivered (an operator may redeliver a failed one).
 */
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { EVENTS_CHANNEL } from '../activities/events.js';
import type { Sql } from '../lib/db.js';
import type { Logger } from '../lib/log.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import { openEndpointSecret, type Keyring } from '../lib/secrets.js';

export interface DispatchOptions {
  /** One attempt's time limit, answer included. */
  timeoutMs: number;
  /** Wait before the second attempt; doubled after each failure up to `retryMaxMs`. */
  retryFirstMs: number;
  retryMaxMs: number;
  /** How long a delivery is retried from its first attempt before it is given up (`failed`). */
  retryForMs: number;
  /** An endpoint failing this long without a success is disabled. */
  disableAfterMs: number;
  /** Attempts in flight at once (different ordering keys). */
  concurrency: number;
  /** How often due retries are looked for when no new event wakes the loop. */
  pollMs: number;
  /** How long a delivered delivery is kept (listed with its attempts) before it is purged. */
  retentionMs: number;
  /** How often the outbox is purged. */
  purgeEveryMs: number;
}

const HOUR = 3_600_000;

const DEFAULT_DISPATCH: DispatchOptions = {
  timeoutMs: 15_000,
  retryFirstMs: 5_000,
  retryMaxMs: 6 * HOUR,
  retryForMs: 72 * HOUR,
  disableAfterMs: 120 * HOUR,
  concurrency: 8,
  pollMs: 1_000,
  retentionMs: 30 * 24 * HOUR,
  purgeEveryMs: HOUR,
};

/** Rows deleted per statement, so a purge never holds a long transaction. */
const PURGE_BATCH = 1_000;

/** The longest answer body kept with an attempt. */
const KEPT_BODY_CHARS = 2_000;

interface Claimed {
  id: number;
  attempts: number;
  first_attempt_at: Date;
  event_id: string;
  payload: string;
  endpoint_id: string;
  url: string;
  secret: string;
  secret_previous: string | null;
  secret_previous_expires_at: Date | null;
}

interface Outcome {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  body: string | null;
  error: string | null;
}

/** The webhook-signature header: one signature per valid secret (the new and, during a rotation's overlap, the old). */
function signatureHeader(secrets: string[], msgId: string, at: Date, payload: string): string {
  return secrets.map((s) => new Webhook(s).sign(msgId, at, payload)).join(' ');
}

export class WebhookDispatcher {
  private readonly opts: DispatchOptions;
  private readonly inflight = new Set<Promise<void>>();
  private stopped = false;
  private wake: () => void = () => {};
  private running: Promise<void> | null = null;
  private unlisten: (() => Promise<void>) | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly secrets: Keyring,
    private readonly log: Logger,
    opts: Partial<DispatchOptions> = {},
    private readonly metrics?: Pick<WorkerMetrics, 'webhookAttempts'>,
  ) {
    this.opts = { ...DEFAULT_DISPATCH, ...opts };
  }

  async start(): Promise<void> {
    // A new event wakes the loop at once; retries are found by polling.
    const listening = await this.sql.listen(EVENTS_CHANNEL, () => this.wake());
    this.unlisten = () => listening.unlisten();
    this.running = this.loop();
  }

  /** Stops claiming, and waits for the attempts in flight to be recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
    await Promise.all(this.inflight);
    await this.unlisten?.();
  }

  private async loop(): Promise<void> {
    let purgedAt = 0;
    while (!this.stopped) {
      try {
        if (Date.now() - purgedAt >= this.opts.purgeEveryMs) {
          purgedAt = Date.now();
          const purged = await this.purge();
          if (purged.deliveries > 0) this.log('webhook outbox purged', { ...purged, retentionDays: this.opts.retentionMs / (24 * HOUR) });
        }
        const free = this.opts.concurrency - this.inflight.size;
        for (const d of free > 0 ? await this.claim(free) : []) {
          const p = this.attempt(d)
            .catch((e: unknown) => this.log('webhook attempt not recorded', { deliveryId: d.id, level: 'WARN', error: String(e) }))
            .finally(() => {
              this.inflight.delete(p);
              // The next delivery of its key may be due now.
              this.wake();
            });
          this.inflight.add(p);
        }
      } catch (e) {
        if (this.stopped) break;
        this.log('webhook dispatch failed; trying again', { level: 'WARN', error: String(e) });
      }
      if (this.stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Deletes deliveries delivered before the retention, their attempts (cascade), then events no delivery refers to any more. */
  async purge(): Promise<{ deliveries: number; events: number }> {
    const retentionMs = this.opts.retentionMs;
    let deliveries = 0;
    for (;;) {
      const gone = await this.sql`
        DELETE FROM webhook_deliveries WHERE id IN (
          SELECT id FROM webhook_deliveries WHERE status = 'delivered' AND delivered_at < now() - ${retentionMs} * interval '1 millisecond'
          LIMIT ${PURGE_BATCH})`;
      deliveries += gone.count;
      if (gone.count < PURGE_BATCH) break;
    }
    let events = 0;
    for (;;) {
      // Only events older than the retention: a new event's deliveries are written in its own transaction.
      const gone = await this.sql`
        DELETE FROM webhook_events WHERE seq IN (
          SELECT ev.seq FROM webhook_events ev
          WHERE ev.created_at < now() - ${retentionMs} * interval '1 millisecond'
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_seq = ev.seq)
          LIMIT ${PURGE_BATCH})`;
      events += gone.count;
      if (gone.count < PURGE_BATCH) break;
    }
    return { deliveries, events };
  }

  /** Leases due deliveries that are first in line for their endpoint and ordering key. */
  private async claim(limit: number): Promise<(Claimed & { token: string })[]> {
    const token = randomUUID();
    const leaseMs = this.opts.timeoutMs + 30_000;
    const rows = await this.sql<Claimed[]>`
      WITH due AS (
        SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND (d.leased_until IS NULL OR d.leased_until < now()) AND e.enabled
          AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.ordering_key = d.ordering_key AND p.status = 'pending' AND p.event_seq < d.event_seq)
        ORDER BY d.next_attempt_at, d.event_seq LIMIT ${limit}
        FOR UPDATE OF d SKIP LOCKED
      )
      UPDATE webhook_deliveries d SET lease_token = ${token}, leased_until = now() + ${leaseMs} * interval '1 millisecond',
        attempts = d.attempts + 1, first_attempt_at = coalesce(d.first_attempt_at, now()), last_attempt_at = now()
      FROM due, webhook_events ev, webhook_endpoints e
      WHERE d.id = due.id AND ev.seq = d.event_seq AND e.id = d.endpoint_id
      RETURNING d.id, d.attempts, d.first_attempt_at, ev.id AS event_id, ev.payload, e.id AS endpoint_id, e.url, e.secret,
        e.secret_previous, e.secret_previous_expires_at`;
    return rows.map((r) => ({ ...r, token }));
  }

  private async attempt(d: Claimed & { token: string }): Promise<void> {
    const secrets = [openEndpointSecret(this.secrets, 'secret', d.endpoint_id, d.secret)];
    if (d.secret_previous && d.secret_previous_expires_at && d.secret_previous_expires_at > new Date()) {
      secrets.push(openEndpointSecret(this.secrets, 'secret_previous', d.endpoint_id, d.secret_previous));
    }
    const outcome = await this.send(d, secrets);
    const ok = outcome.statusCode !== null && outcome.statusCode >= 200 && outcome.statusCode < 300;
    const now = Date.now();
    const giveUpAt = d.first_attempt_at.getTime() + this.opts.retryForMs;
    const wait = Math.min(this.opts.retryMaxMs, this.opts.retryFirstMs * 2 ** (d.attempts - 1));
    // The last try falls on the end of the retry window, so a delivery is tried for all of it.
    const next = new Date(Math.min(now + wait, giveUpAt));
    const status = ok ? 'delivered' : now >= giveUpAt ? 'failed' : 'pending';
    await this.sql.begin(async (tx) => {
      await tx`
        INSERT INTO webhook_attempts (delivery_id, attempt, started_at, duration_ms, status_code, response_body, error)
        VALUES (${d.id}, ${d.attempts}, ${outcome.startedAt}, ${outcome.durationMs}, ${outcome.statusCode}, ${outcome.body}, ${outcome.error})
        ON CONFLICT DO NOTHING`;
      await tx`
        UPDATE webhook_deliveries SET status = ${status}, next_attempt_at = ${next}, delivered_at = ${ok ? new Date(now) : null},
          lease_token = NULL, leased_until = NULL
        WHERE id = ${d.id} AND lease_token = ${d.token}`;
      if (ok) {
        await tx`UPDATE webhook_endpoints SET last_success_at = now(), failing_since = NULL WHERE id = ${d.endpoint_id}`;
        return;
      }
      const [endpoint] = await tx<{ failing_since: Date; enabled: boolean }[]>`
        UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, ${outcome.startedAt}) WHERE id = ${d.endpoint_id}
        RETURNING failing_since, enabled`;
      if (!endpoint?.enabled || now - endpoint.failing_since.getTime() < this.opts.disableAfterMs) return;
      const reason = `failing since ${endpoint.failing_since.toISOString()} without a success; last attempt: ${describe(outcome)}`;
      await tx`UPDATE webhook_endpoints SET enabled = false, disabled_reason = ${reason}, updated_at = now() WHERE id = ${d.endpoint_id}`;
      this.log('webhook endpoint disabled after failing for long', { endpointId: d.endpoint_id, reason, level: 'WARN' });
    });
    this.metrics?.webhookAttempts.inc({ result: ok ? 'delivered' : status === 'pending' ? 'retrying' : 'failed' });
    this.log(ok ? 'webhook delivered' : 'webhook attempt failed', {
      endpointId: d.endpoint_id,
      deliveryId: d.id,
      webhookId: d.event_id,
      attempt: d.attempts,
      outcome: describe(outcome),
      ...(ok ? {} : { status, nextAttemptAt: status === 'pending' ? next.toISOString() : null }),
    });
  }

  private async send(d: Claimed, secrets: string[]): Promise<Outcome> {
    const startedAt = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'billflow-webhooks/1',
      'webhook-id': d.event_id,
      'webhook-timestamp': String(Math.floor(startedAt.getTime() / 1000)),
      'webhook-signature': signatureHeader(secrets, d.event_id, startedAt, d.payload),
    };
    try {
      // A redirect is an answer, not a place to send the body to.
      const res = await fetch(d.url, { method: 'POST', headers, body: d.payload, redirect: 'manual', signal: AbortSignal.timeout(this.opts.timeoutMs) });
      const body = (await res.text()).slice(0, KEPT_BODY_CHARS);
      return { startedAt, durationMs: Date.now() - startedAt.getTime(), statusCode: res.status, body, error: null };
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      const why = err.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
      return { startedAt, durationMs: Date.now() - startedAt.getTime(), statusCode: null, body: null, error: why };
    }
  }
}

function describe(o: Outcome): string {
  return o.statusCode !== null ? `HTTP ${o.statusCode}` : (o.error ?? 'no answer');
}
