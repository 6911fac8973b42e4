/**
 * Signed webhooks through an outbox: an event row is written in the same transaction as the
 * payment change, then delivered in the background with exponential backoff. Rows are claimed
 * with a lease (`FOR UPDATE SKIP LOCKED`), so several sandbox instances on one database share the
 * work, and a restarted sandbox picks up whatever was left undelivered.
 */
import type { Sql } from '../lib/db.js';
import { SIGNATURE_HEADER, signPayload } from '../lib/signature.js';
import { newId } from './ids.js';
import type { AccountRow, Db, PaymentJson } from './model.js';

export type EventType = 'payment.succeeded' | 'payment.removed';

const MAX_ATTEMPTS = 8;
const FIRST_RETRY_MS = 500;
/** Longest sleep between looks at the table, so other instances' rows and restarts are noticed. */
const POLL_MS = 1_000;
/** How long a claimed row stays invisible to other instances; longer than one attempt can take. */
const LEASE_SECONDS = 30;
const ATTEMPT_TIMEOUT_MS = 10_000;
const BATCH = 20;

/** Queues `type` for the account's webhook URL; accounts without one get no events. */
export async function enqueueEvent(db: Db, account: AccountRow, type: EventType, payment: PaymentJson): Promise<void> {
  if (!account.webhook_url) return;
  const id = newId('evt');
  const body = JSON.stringify({ id, type, createdAt: new Date().toISOString(), accountId: account.id, data: { payment } });
  await db`
    INSERT INTO webhook_deliveries (id, account_id, payment_id, type, url, body)
    VALUES (${id}, ${account.id}, ${payment.id}, ${type}, ${account.webhook_url}, ${body})`;
}

/** Delay before attempt `failed + 1` after `failed` failed attempts: 0.5 s, 1 s, 2 s, ... */
function retryDelayMs(failed: number): number {
  return FIRST_RETRY_MS * 2 ** (failed - 1);
}

interface Claimed {
  id: string;
  url: string;
  body: string;
  attempts: number;
  webhook_secret: string;
}

export class WebhookDispatcher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private closed = false;

  constructor(
    private readonly sql: Sql,
    private readonly log: (msg: string) => void,
  ) {}

  /** Looks for due deliveries now (called after a commit that queued an event, and at start). */
  kick(): void {
    this.schedule(0);
  }

  /** Stops the timers and waits for attempts in flight; undelivered rows stay for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.run(), ms);
    // The HTTP server keeps a sandbox process alive; pending retries alone should not.
    this.timer.unref();
  }

  private run(): void {
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.tick()
      .catch((err: unknown) => {
        this.log(`webhook delivery loop: ${err instanceof Error ? err.message : String(err)}`);
        return POLL_MS;
      })
      .then((nextMs) => {
        this.running = undefined;
        this.schedule(this.rerun ? 0 : nextMs);
        this.rerun = false;
      });
  }

  /** Attempts every due delivery once; returns how long to sleep before looking again. */
  private async tick(): Promise<number> {
    const due = await this.sql<Claimed[]>`
      UPDATE webhook_deliveries d SET next_attempt_at = now() + make_interval(secs => ${LEASE_SECONDS})
      FROM accounts a
      WHERE a.id = d.account_id AND d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE delivered_at IS NULL AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
      RETURNING d.id, d.url, d.body, d.attempts, a.webhook_secret`;
    await Promise.all(due.map((d) => this.attempt(d)));
    if (due.length === BATCH) return 0;
    // NULL when nothing is pending (GREATEST would turn that into 0 and spin the loop).
    const [next] = await this.sql<{ wait_ms: string | number | null }[]>`
      SELECT ceil(EXTRACT(EPOCH FROM min(next_attempt_at) - now()) * 1000)::int8 AS wait_ms
      FROM webhook_deliveries WHERE delivered_at IS NULL AND next_attempt_at IS NOT NULL`;
    return next?.wait_ms == null ? POLL_MS : Math.min(Math.max(0, Number(next.wait_ms)), POLL_MS);
  }

  private async attempt(d: Claimed): Promise<void> {
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signPayload(d.webhook_secret, d.body) },
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      status = res.status;
      await res.body?.cancel();
      if (!res.ok) error = `receiver answered ${res.status}`;
    } catch (err) {
      // fetch reports "fetch failed"; the cause says why (ECONNREFUSED, timeout, ...).
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      error = err instanceof Error ? `${err.message}${cause}` : String(err);
    }
    const attempts = d.attempts + 1;
    if (error === null) {
      await this.sql`
        UPDATE webhook_deliveries SET attempts = ${attempts}, last_status = ${status}, last_error = NULL,
               delivered_at = now(), next_attempt_at = NULL
        WHERE id = ${d.id}`;
      return;
    }
    const giveUp = attempts >= MAX_ATTEMPTS;
    if (giveUp) this.log(`webhook ${d.id} to ${d.url} given up after ${attempts} attempts: ${error}`);
    await this.sql`
      UPDATE webhook_deliveries SET attempts = ${attempts}, last_status = ${status}, last_error = ${error},
             next_attempt_at = ${giveUp ? this.sql`NULL` : this.sql`now() + ${retryDelayMs(attempts)}::int * interval '1 millisecond'`}
      WHERE id = ${d.id}`;
  }
}
