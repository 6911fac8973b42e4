/**
 * Every mutating Stripe request runs here, in ONE transaction with its `Idempotency-Key` record
 * (as the Bill & Pay mode's sandbox/mutation.ts does): a retry with the same key and the same
 * request gets the first answer again (`Idempotent-Replayed: true`), the same key with other
 * parameters is Stripe's 400 idempotency_error. A request that fails rolls back, key included,
 * so a retry runs it again. Keys are per account (scope `stripe:<account>`).
 */
import type { Request, RequestHandler, Response } from 'express';
import type postgres from 'postgres';
import type { Sql } from '../../lib/db.js';
import { sha256Hex } from '../ids.js';
import type { AccountRow } from '../model.js';
import { authenticatedAccount, rawBodyOf } from '../mutation.js';
import { StripeError } from './errors.js';
import { Params } from './params.js';

export interface ChangeContext {
  tx: postgres.TransactionSql;
  req: Request;
  res: Response;
  account: AccountRow;
  params: Params;
  idempotencyKey: string | null;
  afterCommit(fn: () => void): void;
}

export function stripeAccount(res: Response): AccountRow {
  const a = authenticatedAccount(res);
  if (!a) throw new StripeError(401, 'invalid_request_error', 'You did not provide an API key.');
  return a;
}

export function change(sql: Sql, handler: (ctx: ChangeContext) => Promise<unknown>): RequestHandler {
  return async (req, res) => {
    const account = stripeAccount(res);
    const key = req.get('idempotency-key') ?? null;
    if (key !== null && (key.length === 0 || key.length > 255)) {
      throw new StripeError(400, 'invalid_request_error', 'Idempotency keys must be 1 to 255 characters long.', 'Idempotency-Key');
    }
    const scope = `stripe:${account.id}`;
    const fingerprint = sha256Hex(Buffer.concat([Buffer.from(`${req.method} ${req.originalUrl}\n`), rawBodyOf(req) ?? Buffer.alloc(0)]));
    const hooks: (() => void)[] = [];
    const out = await sql.begin(async (tx) => {
      if (key !== null) {
        const claimed = await tx`
          INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES (${scope}, ${key}, ${fingerprint})
          ON CONFLICT DO NOTHING RETURNING key`;
        if (claimed.length === 0) {
          const [prior] = await tx<{ fingerprint: string; status: number; body: string }[]>`
            SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`;
          if (prior!.fingerprint !== fingerprint) {
            throw new StripeError(
              400,
              'idempotency_error',
              `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
            );
          }
          return { status: prior!.status, body: prior!.body, replayed: true };
        }
      }
      const params = new Params({ ...(req.body as Record<string, unknown>) });
      const body = JSON.stringify(await handler({ tx, req, res, account, params, idempotencyKey: key, afterCommit: (fn) => hooks.push(fn) }));
      if (key !== null) await tx`UPDATE idempotency_keys SET status = 200, body = ${body} WHERE scope = ${scope} AND key = ${key}`;
      return { status: 200, body, replayed: false };
    });
    for (const fn of hooks) fn();
    if (key !== null) res.set('Idempotency-Key', key);
    if (out.replayed) res.set('Idempotent-Replayed', 'true');
    res.status(out.status).type('application/json').send(out.body);
  };
}
