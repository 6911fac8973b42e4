/**
 * Every /v1 request is recorded (method, path, status, X-Request-Id, account) so a trace can follow
 * an ERP request into the provider. Rows are written after the response, off the request's path;
 * reading the log first waits for this instance's pending writes, so a caller sees its own calls.
 */
import type { RequestHandler } from 'express';
import type { Sql } from '../lib/db.js';
import { authenticatedAccount } from './mutation.js';

export class RequestLog {
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly sql: Sql,
    private readonly log: (msg: string) => void,
  ) {}

  readonly middleware: RequestHandler = (req, res, next) => {
    res.on('finish', () => {
      const write = this.sql`
        INSERT INTO request_log (account_id, method, path, status, request_id)
        VALUES (${authenticatedAccount(res)?.id ?? null}, ${req.method}, ${req.originalUrl}, ${res.statusCode},
                ${req.get('x-request-id') ?? null})`.then(
        () => undefined,
        (err: unknown) => this.log(`request log: ${err instanceof Error ? err.message : String(err)}`),
      );
      this.pending.add(write);
      void write.finally(() => this.pending.delete(write));
    });
    next();
  };

  /** Waits for the rows of requests already answered. */
  async flush(): Promise<void> {
    await Promise.all(this.pending);
  }
}
