/** Cross-cutting request handling: correlation ids, API keys, idempotency. */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';

export interface CompanyRow {
  id: string;
  name: string;
  currency: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The ERP's `X-Request-Id`, or a fresh one; echoed back and carried into the workflow. */
export const requestId: RequestHandler = (req, res, next) => {
  const given = req.get('x-request-id');
  const id = given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
  res.locals.requestId = id;
  res.set('X-Request-Id', id);
  next();
};

function bearer(req: Request): string | null {
  const h = req.get('authorization');
  const m = h ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m ? m[1]! : null;
}

export function companyAuth(sql: Sql): RequestHandler {
  return async (req, res, next) => {
    const key = bearer(req);
    if (!key) return next(new HttpProblem(401, 'unauthenticated', 'missing API key: send Authorization: Bearer <company API key>'));
    const [company] = await sql<CompanyRow[]>`SELECT id, name, currency FROM companies WHERE api_key_hash = ${sha256(key)}`;
    if (!company) return next(new HttpProblem(401, 'unauthenticated', 'unknown API key'));
    res.locals.company = company;
    next();
  };
}

export function operatorAuth(adminKey: string): RequestHandler {
  const expected = Buffer.from(sha256(adminKey), 'hex');
  return (req, _res, next) => {
    const key = bearer(req);
    if (!key) return next(new HttpProblem(401, 'unauthenticated', 'missing operator key: send Authorization: Bearer <BILLFLOW_ADMIN_KEY>'));
    if (!timingSafeEqual(Buffer.from(sha256(key), 'hex'), expected)) {
      return next(new HttpProblem(401, 'unauthenticated', 'wrong operator key'));
    }
    next();
  };
}

const OPERATOR_SCOPE = '__operator__';

/**
 * Stripe-style `Idempotency-Key`: the first complete answer is stored and replayed to retries of
 * the same request; a key reused for a different request is refused. Answers that are not final
 * (5xx, 202 still in progress) are not stored, so a retry does the work again.
 */
export function idempotency(sql: Sql): RequestHandler {
  return async (req: Request, res: Response, next: NextFunction) => {
    const key = req.get('idempotency-key');
    if (!key) return next();
    if (key.length > 255) return next(new HttpProblem(422, 'invalid-request', 'Idempotency-Key is longer than 255 characters', 'Idempotency-Key'));
    const scope = (res.locals.company as CompanyRow | undefined)?.id ?? OPERATOR_SCOPE;
    const hash = sha256(`${req.method} ${req.originalUrl} ${JSON.stringify(req.body ?? null)}`);
    const inserted = await sql`
      INSERT INTO idempotency_keys (company_id, key, method, path, request_hash)
      VALUES (${scope}, ${key}, ${req.method}, ${req.originalUrl}, ${hash})
      ON CONFLICT DO NOTHING RETURNING key`;
    if (inserted.length === 0) {
      const [row] = await sql<{ request_hash: string; status: number | null; headers: Record<string, string> | null; body: unknown }[]>`
        SELECT request_hash, status, headers, body FROM idempotency_keys WHERE company_id = ${scope} AND key = ${key}`;
      if (!row) return next(new HttpProblem(409, 'request-in-progress', 'a request with this Idempotency-Key just finished; retry'));
      if (row.request_hash !== hash) {
        return next(new HttpProblem(422, 'idempotency-key-reused', 'this Idempotency-Key was used for a different request', 'Idempotency-Key'));
      }
      if (row.status === null) {
        return next(new HttpProblem(409, 'request-in-progress', 'a request with this Idempotency-Key is still being processed; retry later'));
      }
      res.status(row.status).set({ ...row.headers, 'Idempotent-Replayed': 'true' });
      res.send(JSON.stringify(row.body));
      return;
    }
    let captured: unknown;
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      captured = body;
      return json(body);
    };
    res.on('finish', () => {
      const final = res.statusCode < 500 && res.statusCode !== 202;
      const headers: Record<string, string> = { 'Content-Type': String(res.get('content-type') ?? 'application/json') };
      const location = res.get('location');
      if (location) headers.Location = location;
      const done = final
        ? sql`UPDATE idempotency_keys SET status = ${res.statusCode}, headers = ${sql.json(headers)}, body = ${sql.json(captured as never)}
              WHERE company_id = ${scope} AND key = ${key}`
        : sql`DELETE FROM idempotency_keys WHERE company_id = ${scope} AND key = ${key}`;
      done.catch((e: unknown) => process.stderr.write(`idempotency record for ${key} not saved: ${String(e)}\n`));
    });
    next();
  };
}
