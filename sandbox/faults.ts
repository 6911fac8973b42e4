/**
 * Fault injection for tests of provider outages. A fault belongs to an account and lives in the
 * database, so every sandbox instance on it agrees; each affected request uses one of its count.
 */
import type { RequestHandler } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import type { Db } from './model.js';
import { authenticatedAccount } from './mutation.js';
import type { FaultSet } from './validate.js';

export interface Fault {
  mode: 'none' | 'error' | 'delay';
  status: number;
  delayMs: number;
  /** Requests still affected; null: until cleared. */
  remaining: number | null;
  /** Only requests of this method and path (`*`: any characters); null: every API request. */
  match: string | null;
}

const NO_FAULT: Fault = { mode: 'none', status: 503, delayMs: 0, remaining: null, match: null };

interface FaultRow {
  mode: Fault['mode'];
  status: number;
  delay_ms: number;
  remaining: number | null;
  match: string | null;
}

function toFault(row: FaultRow | undefined): Fault {
  if (!row || row.mode === 'none' || row.remaining === 0) return NO_FAULT;
  return { mode: row.mode, status: row.status, delayMs: row.delay_ms, remaining: row.remaining, match: row.match };
}


export async function currentFault(db: Db, accountId: string): Promise<Fault> {
  const [row] = await db<FaultRow[]>`SELECT mode, status, delay_ms, remaining, match FROM faults WHERE account_id = ${accountId}`;
  return toFault(row);
}

export async function setFault(db: Db, accountId: string, f: FaultSet): Promise<Fault> {
  const [row] = await db<FaultRow[]>`
    INSERT INTO faults (account_id, mode, status, delay_ms, remaining, match)
    VALUES (${accountId}, ${f.mode}, ${f.status ?? 503}, ${f.delayMs ?? 0}, ${f.count ?? null}, ${f.match ?? null})
    ON CONFLICT (account_id) DO UPDATE
      SET mode = EXCLUDED.mode, status = EXCLUDED.status, delay_ms = EXCLUDED.delay_ms,
          remaining = EXCLUDED.remaining, match = EXCLUDED.match, updated_at = now()
    RETURNING mode, status, delay_ms, remaining, match`;
  return toFault(row);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** For the account's API routes (mounted after authentication, never on /v1/sandbox or /v1/accounts). */
export function applyFault(sql: Sql): RequestHandler {
  return async (req, res, next) => {
    const account = authenticatedAccount(res);
    if (!account) return next();
    const route = `${req.method} ${req.baseUrl}${req.path}`;
    // Takes one request off the count in the same statement that reads the fault, so concurrent
    // requests never use more than `count` between them.
    const [row] = await sql<FaultRow[]>`
      UPDATE faults SET remaining = remaining - 1
      WHERE account_id = ${account.id} AND mode <> 'none' AND (remaining IS NULL OR remaining > 0)
        -- match as a LIKE pattern: its * is LIKE's %, and LIKE's own wildcards are literal.
        AND (match IS NULL OR ${route} LIKE replace(replace(replace(replace(match, '\\', '\\\\'), '%', '\\%'), '_', '\\_'), '*', '%'))
      RETURNING mode, status, delay_ms, remaining, match`;
    if (row?.mode === 'error') {
      throw new HttpProblem(row.status, 'injected-fault', `fault injected with POST /v1/sandbox/faults (mode error, status ${row.status})`);
    }
    if (row?.mode === 'delay') await sleep(row.delay_ms);
    next();
  };
}
