/** Cross-cutting request handling: correlation ids, API keys, idempotency. */
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import { openAnswer, sealAnswer, type Keyring } from '../lib/secrets.js';

export interface CompanyRow {
  id: string;
  name: string;
  currency: string;
  organisationId: string | null;
}

/** What the request's API key may see and act for. */
export interface Scope {
  /** The organisation of the key (or of the key's company); null for a company outside any. */
  organisationId: string | null;
  /** The companies the key reads and acts for: its own, or every company of its organisation. */
  companies: CompanyRow[];
  /** Where Idempotency-Key answers are kept for this key. */
  idempotencyScope: string;
}

/** The header naming the company when an organisation key acts on one company's settings. */
const COMPANY_HEADER = 'Billflow-Company';

export function scopeOf(res: Response): Scope {
  return res.locals.scope as Scope;
}

/**
 * The company a request acts for: the company key's own, or (for an organisation key) the company
 * named by the Billflow-Company header, by the invoice number in the path, or the organisation's
 * only company.
 */
export function companyOf(res: Response, orField?: string): CompanyRow {
  const company = res.locals.company as CompanyRow | undefined;
  if (company) return company;
  const scope = scopeOf(res);
  if (scope.companies.length === 0) throw noCompanies(scope.organisationId);
  const how = orField ? `give ${orField}, or name one with the ${COMPANY_HEADER} header` : `name one with the ${COMPANY_HEADER} header`;
  throw new HttpProblem(422, 'company-required', `organisation ${scope.organisationId} has several companies (${scope.companies.map((c) => c.id).join(', ')}): ${how}`, orField ?? COMPANY_HEADER);
}

export function noCompanies(organisationId: string | null): HttpProblem {
  return new HttpProblem(422, 'no-companies', `organisation ${organisationId} has no companies yet; the operator registers them with organisationId`);
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

/** The companies a listing covers: the request's company when known, else every company of the key. */
export function companyIdsOf(res: Response): string[] {
  const company = res.locals.company as CompanyRow | undefined;
  return company ? [company.id] : scopeOf(res).companies.map((c) => c.id);
}

const COMPANY_COLUMNS = 'id, name, currency, organisation_id AS "organisationId"';

/**
 * Accepts a company's API key or an organisation's (one ERP connection over several companies)
 * and records the request's Scope, and its company when that is known.
 */
export function erpAuth(sql: Sql, adminKey: string): RequestHandler {
  const operatorHash = sha256(adminKey);
  return async (req, res, next) => {
    const key = bearer(req);
    if (!key) return next(new HttpProblem(401, 'unauthenticated', 'missing API key: send Authorization: Bearer <company or organisation API key>'));
    const hash = sha256(key);
    const [company] = await sql<CompanyRow[]>`SELECT ${sql.unsafe(COMPANY_COLUMNS)} FROM companies WHERE api_key_hash = ${hash}`;
    if (company) {
      const named = req.get(COMPANY_HEADER);
      if (named !== undefined && named !== company.id) {
        // Like any id the key does not cover: 404, and the same answer whether that company exists or not.
        return next(new HttpProblem(404, 'not-found', `${COMPANY_HEADER}: this API key is company ${company.id}'s, not ${named}'s`, COMPANY_HEADER));
      }
      res.locals.company = company;
      res.locals.scope = { organisationId: company.organisationId, companies: [company], idempotencyScope: company.id } satisfies Scope;
      return next();
    }
    const [org] = await sql<{ id: string }[]>`SELECT id FROM organisations WHERE api_key_hash = ${hash}`;
    if (!org) {
      const why = hash === operatorHash ? 'this is the operator key, which registers organisations and companies; use a company or organisation API key here' : 'unknown API key';
      return next(new HttpProblem(401, 'unauthenticated', why));
    }
    const companies = await sql<CompanyRow[]>`SELECT ${sql.unsafe(COMPANY_COLUMNS)} FROM companies WHERE organisation_id = ${org.id} ORDER BY id`;
    res.locals.scope = { organisationId: org.id, companies, idempotencyScope: `organisation:${org.id}` } satisfies Scope;
    const chosen = await organisationCompany(sql, org.id, companies, req);
    if (chosen) res.locals.company = chosen;
    next();
  };
}

/** For an organisation key: the company named by header or by the invoice number, if any. */
async function organisationCompany(sql: Sql, organisationId: string, companies: CompanyRow[], req: Request): Promise<CompanyRow | undefined> {
  const named = req.get(COMPANY_HEADER);
  if (named !== undefined) {
    const company = companies.find((c) => c.id === named);
    if (!company) throw new HttpProblem(404, 'not-found', `${COMPANY_HEADER}: organisation ${organisationId} has no company ${named}`, COMPANY_HEADER);
    return company;
  }
  const number = req.params.number;
  if (number !== undefined) {
    const [row] = await sql<{ company_id: string }[]>`
      SELECT company_id FROM organisation_invoices WHERE organisation_id = ${organisationId} AND number = ${number}`;
    if (!row) throw new HttpProblem(404, 'not-found', `invoice ${number} not found`);
    return companies.find((c) => c.id === row.company_id);
  }
  return companies.length === 1 ? companies[0] : undefined;
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
 * How long an in-progress key is held for its request without being renewed; a request renews it
 * every third of that while it runs (a bill run may wait 60 s for its answer), so only a dead
 * request lets it run out. Short, because the ERP's retries of a request an API process died in
 * the middle of are answered 409 until then (a chaos run lost a lifecycle to a 60 s lease).
 */
const IDEMPOTENCY_LEASE_SECONDS = 15;
/** A request that has not answered after this long stops renewing (a hung handler frees its key). */
const LEASE_RENEW_FOR_MS = 10 * 60_000;
/** How long answers are kept (Stripe's 24 h); expired keys are purged and may be used afresh. */
const IDEMPOTENCY_KEEP_HOURS = 24;
const PURGE_EVERY_MS = 60_000;

/** What makes two requests "the same request" for one Idempotency-Key. */
export function idempotencyRequestHash(method: string, url: string, companyHeader: string | undefined, body: unknown): string {
  // The company header is part of the request: the same key for another company is another request.
  return sha256(`${method} ${url}${companyHeader === undefined ? '' : ` ${COMPANY_HEADER}=${companyHeader}`} ${JSON.stringify(body ?? null)}`);
}

/**
 * Stripe-style `Idempotency-Key`: the first complete answer is stored and replayed to retries of
 * the same request; a key reused for a different request is refused. Answers that are not final
 * (5xx, 202 still in progress) are not stored, so a retry does the work again. A request holds its
 * key on a lease; when it dies without answering, a retry after the lease takes the key over.
 * Answers are stored encrypted (they may carry a new API key).
 */
export function idempotency(sql: Sql, secrets: Keyring): RequestHandler {
  let nextPurge = 0;
  const keep = `${IDEMPOTENCY_KEEP_HOURS} hours`;
  const lease = `${IDEMPOTENCY_LEASE_SECONDS} seconds`;
  return async (req: Request, res: Response, next: NextFunction) => {
    const key = req.get('idempotency-key');
    if (!key) return next();
    if (key.length > 255) return next(new HttpProblem(422, 'invalid-request', 'Idempotency-Key is longer than 255 characters', 'Idempotency-Key'));
    const scope = (res.locals.scope as Scope | undefined)?.idempotencyScope ?? OPERATOR_SCOPE;
    const hash = idempotencyRequestHash(req.method, req.originalUrl, req.get(COMPANY_HEADER), req.body);
    if (Date.now() >= nextPurge) {
      nextPurge = Date.now() + PURGE_EVERY_MS;
      await sql`DELETE FROM idempotency_keys WHERE created_at < now() - ${keep}::interval`.catch((e: unknown) => process.stderr.write(`expired idempotency keys not purged: ${String(e)}\n`));
    }
    // One statement claims the key: a new key, an expired one, or (for the same request) one whose
    // lease ran out. Concurrent claims serialise on the row, so exactly one of them wins.
    const token = randomUUID();
    const claimed = await sql`
      INSERT INTO idempotency_keys AS k (company_id, key, method, path, request_hash, lease_token, locked_until)
      VALUES (${scope}, ${key}, ${req.method}, ${req.originalUrl}, ${hash}, ${token}, now() + ${lease}::interval)
      ON CONFLICT (company_id, key) DO UPDATE SET
        method = EXCLUDED.method, path = EXCLUDED.path, request_hash = EXCLUDED.request_hash, status = NULL, headers = NULL, body = NULL,
        created_at = CASE WHEN k.created_at < now() - ${keep}::interval THEN now() ELSE k.created_at END,
        lease_token = EXCLUDED.lease_token, locked_until = EXCLUDED.locked_until
      WHERE k.created_at < now() - ${keep}::interval
         OR (k.status IS NULL AND k.locked_until <= now() AND k.request_hash = EXCLUDED.request_hash)
      RETURNING key`;
    if (claimed.length === 0) {
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
      res.send(JSON.stringify(openAnswer(secrets, scope, key, row.body as string)));
      return;
    }
    const renewUntil = Date.now() + LEASE_RENEW_FOR_MS;
    const renewing = setInterval(
      () => {
        if (Date.now() > renewUntil) return clearInterval(renewing);
        sql`UPDATE idempotency_keys SET locked_until = now() + ${lease}::interval WHERE company_id = ${scope} AND key = ${key} AND lease_token = ${token} AND status IS NULL`.catch((e: unknown) =>
          process.stderr.write(`idempotency lease for ${key} not renewed: ${String(e)}\n`),
        );
      },
      (IDEMPOTENCY_LEASE_SECONDS * 1000) / 3,
    );
    renewing.unref();
    // The answer is stored when the handler gives it, before it is sent: a client that has gone
    // away meanwhile gets it on its retry, and one that got it replays it. Only the lease's holder writes.
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      clearInterval(renewing);
      const final = res.statusCode < 500 && res.statusCode !== 202;
      const headers: Record<string, string> = { 'Content-Type': String(res.get('content-type') ?? 'application/json') };
      const location = res.get('location');
      if (location) headers.Location = location;
      const done = final
        ? sql`UPDATE idempotency_keys SET status = ${res.statusCode}, headers = ${sql.json(headers)}, body = ${sql.json(sealAnswer(secrets, scope, key, body))}, locked_until = NULL
              WHERE company_id = ${scope} AND key = ${key} AND lease_token = ${token}`
        : sql`DELETE FROM idempotency_keys WHERE company_id = ${scope} AND key = ${key} AND lease_token = ${token}`;
      void done.catch((e: unknown) => process.stderr.write(`idempotency record for ${key} not saved: ${String(e)}\n`)).finally(() => json(body));
      return res;
    };
    next();
  };
}
