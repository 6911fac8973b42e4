/**
 * Every mutating /v1 request runs here: in ONE transaction with its Idempotency-Key record, so a
 * change and the answer that reports it commit together. A second request with the same key waits
 * on the key's row until the first commits, then gets the stored answer byte for byte (header
 * `Idempotent-Replayed: true`), or 422 idempotency-key-reused if it is a different request.
 * A request that fails rolls back completely, key included: it changed nothing, so a retry runs it
 * again.
 */
import type { IncomingMessage } from 'node:http';
import type { Request, RequestHandler, Response } from 'express';
import type postgres from 'postgres';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import { sha256Hex } from './ids.js';
import type { AccountRow } from './model.js';

export interface Reply {
  status: number;
  body: unknown;
  /** For 201: where the created thing can be read. */
  location?: string;
}

export interface MutationContext {
  tx: postgres.TransactionSql;
  req: Request;
  res: Response;
  /** Runs once the transaction has committed (e.g. to wake the webhook dispatcher). */
  afterCommit(fn: () => void): void;
}

/** Raw request bodies, kept by the body parsers' `verify` hook for the idempotency fingerprint. */
const rawBodies = new WeakMap<IncomingMessage, Buffer>();

export function keepRawBody(req: IncomingMessage, _res: unknown, buf: Buffer): void {
  rawBodies.set(req, buf);
}

export function rawBodyOf(req: IncomingMessage): Buffer | undefined {
  return rawBodies.get(req);
}

export function authenticatedAccount(res: Response): AccountRow | undefined {
  return res.locals.account as AccountRow | undefined;
}

interface Stored {
  status: number;
  body: string;
  location: string | null;
  replayed: boolean;
}

export function mutation(sql: Sql, handler: (ctx: MutationContext) => Promise<Reply>): RequestHandler {
  return async (req, res) => {
    const key = req.get('idempotency-key');
    if (key !== undefined && (key.length === 0 || key.length > 255)) {
      throw new HttpProblem(400, 'invalid-idempotency-key', 'Idempotency-Key must be 1 to 255 characters', 'Idempotency-Key');
    }
    const scope = authenticatedAccount(res)?.id ?? '';
    const fingerprint = sha256Hex(Buffer.concat([Buffer.from(`${req.method} ${req.originalUrl}\n`), rawBodies.get(req) ?? Buffer.alloc(0)]));
    const hooks: (() => void)[] = [];
    const out = await sql.begin(async (tx): Promise<Stored> => {
      if (key !== undefined) {
        const claimed = await tx`
          INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES (${scope}, ${key}, ${fingerprint})
          ON CONFLICT DO NOTHING RETURNING key`;
        if (claimed.length === 0) {
          const [prior] = await tx<{ fingerprint: string; status: number; body: string; location: string | null }[]>`
            SELECT fingerprint, status, body, location FROM idempotency_keys WHERE scope = ${scope} AND key = ${key}`;
          if (prior!.fingerprint !== fingerprint) {
            throw new HttpProblem(422, 'idempotency-key-reused', 'this Idempotency-Key was already used for a different request (method, path or body differ)', 'Idempotency-Key');
          }
          return { status: prior!.status, body: prior!.body, location: prior!.location, replayed: true };
        }
      }
      const reply = await handler({ tx, req, res, afterCommit: (fn) => hooks.push(fn) });
      const stored = { status: reply.status, body: JSON.stringify(reply.body), location: reply.location ?? null, replayed: false };
      if (key !== undefined) {
        await tx`
          UPDATE idempotency_keys SET status = ${stored.status}, body = ${stored.body}, location = ${stored.location}
          WHERE scope = ${scope} AND key = ${key}`;
      }
      return stored;
    });
    for (const fn of hooks) fn();
    if (out.location) res.location(out.location);
    if (out.replayed) res.set('Idempotent-Replayed', 'true');
    res.status(out.status).type('application/json').send(out.body);
  };
}
