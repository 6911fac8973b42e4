/**
 * Fault injection for tests of provider outages. A fault belongs to an account and lives in the
 * database, so every sandbox instance on it agrees; each affected request uses one of its count.
 *
 * Modes: `error` and `delay` affect every request (or the next `count`); `chaos` picks at random
 * per request: an error (errorRate), a delay (delayRate), or (dropResponseRate) the request runs
 * and commits and its answer is then lost (the connection is destroyed), which is what a client
 * sees when the provider crashes after its commit. Webhook faults (duplicate, hold back so events
 * arrive out of order, lose) apply to the account's events in any mode; see webhooks.ts. The
 * Stripe mode's API (sandbox/stripe/) is the same account's, so its faults apply there too.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import type { Db } from './model.js';
import { authenticatedAccount } from './mutation.js';
import type { FaultSet } from './validate.js';

interface WebhookFaults {
  duplicateRate: number;
  holdRate: number;
  holdMs: number;
  loseRate: number;
}

export interface Fault {
  mode: 'none' | 'error' | 'delay' | 'chaos';
  status: number;
  delayMs: number;
  /** Requests still affected; null: until cleared. */
  remaining: number | null;
  /** Only requests of this method and path (`*`: any characters); null: every API request. */
  match: string | null;
  /** Only in mode chaos. */
  errorRate?: number;
  delayRate?: number;
  dropResponseRate?: number;
  /** Only when webhook faults are set. */
  webhooks?: WebhookFaults;
}

/** How many faults were injected into the account's traffic since it was created. */
export interface InjectedFaults {
  errors: number;
  delays: number;
  droppedResponses: number;
  webhooks: { duplicated: number; held: number; lost: number };
}

const NO_FAULT: Fault = { mode: 'none', status: 503, delayMs: 0, remaining: null, match: null };

interface FaultRow {
  mode: Fault['mode'];
  status: number;
  delay_ms: number;
  remaining: number | null;
  match: string | null;
  error_rate: number;
  delay_rate: number;
  drop_response_rate: number;
  webhook_duplicate_rate: number;
  webhook_hold_rate: number;
  webhook_hold_ms: number;
  webhook_lose_rate: number;
}

function toFault(row: FaultRow | undefined): Fault {
  if (!row) return NO_FAULT;
  const requests: Fault = row.mode === 'none' || row.remaining === 0 ? NO_FAULT : { mode: row.mode, status: row.status, delayMs: row.delay_ms, remaining: row.remaining, match: row.match };
  const fault = { ...requests };
  if (fault.mode === 'chaos') Object.assign(fault, { errorRate: row.error_rate, delayRate: row.delay_rate, dropResponseRate: row.drop_response_rate });
  if (row.webhook_duplicate_rate > 0 || row.webhook_hold_rate > 0 || row.webhook_lose_rate > 0) {
    fault.webhooks = { duplicateRate: row.webhook_duplicate_rate, holdRate: row.webhook_hold_rate, holdMs: row.webhook_hold_ms, loseRate: row.webhook_lose_rate };
  }
  return fault;
}

export async function currentFault(db: Db, accountId: string): Promise<Fault> {
  const [row] = await db<FaultRow[]>`SELECT * FROM faults WHERE account_id = ${accountId}`;
  return toFault(row);
}

export async function setFault(db: Db, accountId: string, f: FaultSet): Promise<Fault> {
  const w = f.webhooks;
  // The injected-fault counters are kept: they count over the account's life.
  const [row] = await db<FaultRow[]>`
    INSERT INTO faults (account_id, mode, status, delay_ms, remaining, match, error_rate, delay_rate, drop_response_rate,
                        webhook_duplicate_rate, webhook_hold_rate, webhook_hold_ms, webhook_lose_rate)
    VALUES (${accountId}, ${f.mode}, ${f.status ?? 503}, ${f.delayMs ?? 0}, ${f.count ?? null}, ${f.match ?? null}, ${f.errorRate ?? 0}, ${f.delayRate ?? 0},
            ${f.dropResponseRate ?? 0}, ${w?.duplicateRate ?? 0}, ${w?.holdRate ?? 0}, ${w?.holdMs ?? 0}, ${w?.loseRate ?? 0})
    ON CONFLICT (account_id) DO UPDATE
      SET mode = EXCLUDED.mode, status = EXCLUDED.status, delay_ms = EXCLUDED.delay_ms, remaining = EXCLUDED.remaining, match = EXCLUDED.match,
          error_rate = EXCLUDED.error_rate, delay_rate = EXCLUDED.delay_rate, drop_response_rate = EXCLUDED.drop_response_rate,
          webhook_duplicate_rate = EXCLUDED.webhook_duplicate_rate, webhook_hold_rate = EXCLUDED.webhook_hold_rate,
          webhook_hold_ms = EXCLUDED.webhook_hold_ms, webhook_lose_rate = EXCLUDED.webhook_lose_rate, updated_at = now()
    RETURNING *`;
  return toFault(row);
}

export async function injectedFaults(db: Db, accountId: string): Promise<InjectedFaults> {
  const [counts] = await db<{ errors: number; delays: number; dropped: number }[]>`
    SELECT injected_errors AS errors, injected_delays AS delays, dropped_responses AS dropped FROM faults WHERE account_id = ${accountId}`;
  const hooks = await db<{ fault: 'duplicated' | 'held' | 'lost'; n: number }[]>`
    SELECT fault, count(*)::int AS n FROM webhook_deliveries WHERE account_id = ${accountId} AND fault IS NOT NULL GROUP BY fault`;
  const hook = (f: string) => hooks.find((h) => h.fault === f)?.n ?? 0;
  return {
    errors: counts?.errors ?? 0,
    delays: counts?.delays ?? 0,
    droppedResponses: counts?.dropped ?? 0,
    webhooks: { duplicated: hook('duplicated'), held: hook('held'), lost: hook('lost') },
  };
}

/** For the account's API routes (mounted after authentication, never on /v1/sandbox or /v1/accounts). */
export function applyFault(sql: Sql): RequestHandler {
  return async (req, res, next) => {
    const account = authenticatedAccount(res);
    if (!account) return next();
    const route = `${req.method} ${req.baseUrl}${req.path}`;
    // One draw per request decides between error and delay, another whether the answer is lost;
    // the same statement that reads the fault takes one request off its count and counts what
    // was injected, so concurrent requests never use more than `count` between them.
    const roll = Math.random();
    const drop = Math.random();
    const [row] = await sql<(FaultRow & { error: boolean; delay: boolean; dropped: boolean })[]>`
      WITH picked AS (
        SELECT account_id,
               mode = 'error' OR (mode = 'chaos' AND ${roll}::float8 < error_rate) AS error,
               mode = 'delay' OR (mode = 'chaos' AND ${roll}::float8 >= error_rate AND ${roll}::float8 < error_rate + delay_rate) AS delay,
               mode = 'chaos' AND NOT (${roll}::float8 < error_rate) AND ${drop}::float8 < drop_response_rate AS dropped
        FROM faults
        WHERE account_id = ${account.id} AND mode <> 'none' AND (remaining IS NULL OR remaining > 0)
          -- match as a LIKE pattern: its * is LIKE's %, and LIKE's own wildcards are literal.
          AND (match IS NULL OR ${route} LIKE replace(replace(replace(replace(match, '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'))
        FOR UPDATE)
      UPDATE faults f SET remaining = f.remaining - 1,
             injected_errors = f.injected_errors + p.error::int,
             injected_delays = f.injected_delays + p.delay::int,
             dropped_responses = f.dropped_responses + p.dropped::int
      FROM picked p WHERE f.account_id = p.account_id
      RETURNING f.status, f.delay_ms, f.mode, p.error, p.delay, p.dropped`;
    if (!row) return next();
    if (row.error) {
      throw new HttpProblem(row.status, 'injected-fault', `fault injected with POST /v1/sandbox/faults (mode ${row.mode}, status ${row.status})`);
    }
    if (row.delay) await sleep(row.delay_ms);
    if (row.dropped) {
      // The handler runs (a mutation commits before it answers); its answer never leaves.
      const lose = () => {
        req.socket.destroy();
        return res;
      };
      res.send = lose;
      res.json = lose;
    }
    next();
  };
}
