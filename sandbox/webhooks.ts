/**
 * Signed webhooks through an outbox: an event row is written in the same transaction as the
 * payment change, then delivered in the background with exponential backoff. Rows are claimed
 * with a lease (`FOR UPDATE SKIP LOCKED`), so several sandbox instances on one database share the
 * work, and a restarted sandbox picks up whatever was left undelivered. Injected webhook faults
 * (sandbox/faults.ts) duplicate, hold back or lose an event before its first attempt. The Stripe
 * mode's events use the same outbox, one row per event and endpoint, signed under their own header
 * (`Stripe-Signature`) with the endpoint's secret.
 */
import type { Sql } from '../lib/db.js';
import { signPayload } from '../lib/signature.js';
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
  signature_header: string;
  fault: 'duplicated' | 'held' | 'lost' | null;
  /** The account's webhook fault rates (0 without a fault). */
  duplicate_rate: number;
  hold_rate: number;
  hold_ms: number;
  lose_rate: number;
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
      FROM accounts a LEFT JOIN faults f ON f.account_id = a.id
      WHERE a.id = d.account_id AND d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE delivered_at IS NULL AND next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT ${BATCH} FOR UPDATE SKIP LOCKED)
      RETURNING d.id, d.url, d.body, d.attempts, coalesce(d.secret, a.webhook_secret) AS webhook_secret, d.signature_header, d.fault,
        coalesce(f.webhook_duplicate_rate, 0) AS duplicate_rate, coalesce(f.webhook_hold_rate, 0) AS hold_rate,
        coalesce(f.webhook_hold_ms, 0) AS hold_ms, coalesce(f.webhook_lose_rate, 0) AS lose_rate`;
    await Promise.all(due.map((d) => this.attempt(d)));
    if (due.length === BATCH) return 0;
    // NULL when nothing is pending (GREATEST would turn that into 0 and spin the loop).
    const [next] = await this.sql<{ wait_ms: string | number | null }[]>`
      SELECT ceil(EXTRACT(EPOCH FROM min(next_attempt_at) - now()) * 1000)::int8 AS wait_ms
      FROM webhook_deliveries WHERE delivered_at IS NULL AND next_attempt_at IS NOT NULL`;
    return next?.wait_ms == null ? POLL_MS : Math.min(Math.max(0, Number(next.wait_ms)), POLL_MS);
  }

  /**
   * The injected webhook fault for a delivery not yet attempted: lost (marked delivered, never
   * sent) and held (sent after `hold_ms`, so later events overtake it) are recorded here and end
   * this attempt; duplicated is sent twice below.
   */
  private async injectFault(d: Claimed): Promise<'duplicated' | 'handled' | null> {
    if (d.attempts > 0 || d.fault !== null) return null;
    const roll = Math.random();
    if (roll < d.lose_rate) {
      await this.sql`UPDATE webhook_deliveries SET fault = 'lost', delivered_at = now(), next_attempt_at = NULL WHERE id = ${d.id}`;
      return 'handled';
    }
    if (roll < d.lose_rate + d.hold_rate) {
      await this.sql`
        UPDATE webhook_deliveries SET fault = 'held', next_attempt_at = now() + ${d.hold_ms}::int * interval '1 millisecond'
        WHERE id = ${d.id}`;
      return 'handled';
    }
    if (roll < d.lose_rate + d.hold_rate + d.duplicate_rate) {
      await this.sql`UPDATE webhook_deliveries SET fault = 'duplicated' WHERE id = ${d.id}`;
      return 'duplicated';
    }
    return null;
  }

  private async send(d: Claimed): Promise<{ status: number | null; error: string | null; headers: Record<string, string> }> {
    const headers = { 'content-type': 'application/json', [d.signature_header]: signPayload(d.webhook_secret, d.body) };
    try {
      const res = await fetch(d.url, {
        method: 'POST',
        headers,
        body: d.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
      });
      await res.body?.cancel();
      return { status: res.status, error: res.ok ? null : `receiver answered ${res.status}`, headers };
    } catch (err) {
      // fetch reports "fetch failed"; the cause says why (ECONNREFUSED, timeout, ...).
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
      return { status: null, error: err instanceof Error ? `${err.message}${cause}` : String(err), headers };
    }
  }

  private async attempt(d: Claimed): Promise<void> {
    const fault = await this.injectFault(d);
    if (fault === 'handled') return;
    const { status, error, headers } = await this.send(d);
    // A duplicate is the same event (id, body, signature) a second time, as a provider's retry after a lost acknowledgement.
    if (fault === 'duplicated' && error === null) await this.send(d);
    const attempts = d.attempts + 1;
    if (error === null) {
      await this.sql`
        UPDATE webhook_deliveries SET attempts = ${attempts}, last_status = ${status}, last_error = NULL, last_headers = ${this.sql.json(headers)},
               delivered_at = now(), next_attempt_at = NULL
        WHERE id = ${d.id}`;
      return;
    }
    const giveUp = attempts >= MAX_ATTEMPTS;
    if (giveUp) this.log(`webhook ${d.id} to ${d.url} given up after ${attempts} attempts: ${error}`);
    await this.sql`
      UPDATE webhook_deliveries SET attempts = ${attempts}, last_status = ${status}, last_error = ${error}, last_headers = ${this.sql.json(headers)},
             next_attempt_at = ${giveUp ? this.sql`NULL` : this.sql`now() + ${retryDelayMs(attempts)}::int * interval '1 millisecond'`}
      WHERE id = ${d.id}`;
  }
}
