/**
 * Stripe's error answers: `{"error": {type, code?, message, param?}}` with Stripe's status codes
 * (400 invalid request, 401 bad key, 402 card error, 404 resource_missing, 5xx api_error). The
 * sandbox's own problems (an injected fault, a body that does not parse) are answered the same way.
 */
import type { ErrorRequestHandler } from 'express';
import { HttpProblem } from '../../lib/problem.js';

export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

export class StripeError extends Error {
  constructor(
    readonly status: number,
    readonly type: StripeErrorType,
    message: string,
    readonly param?: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'StripeError';
  }
}

export const invalid = (message: string, param?: string, code?: string) => new StripeError(400, 'invalid_request_error', message, param, code);

/** Stripe's wording for an id it does not know in this account. */
export const missing = (what: string, id: string, param = 'id') => new StripeError(404, 'invalid_request_error', `No such ${what}: '${id}'`, param, 'resource_missing');

function errorBody(e: StripeError) {
  return {
    error: {
      type: e.type,
      message: e.message,
      ...(e.code ? { code: e.code, doc_url: `https://stripe.com/docs/error-codes/${e.code.replaceAll('_', '-')}` } : {}),
      ...(e.param ? { param: e.param } : {}),
    },
  };
}

function asStripeError(err: unknown): StripeError | null {
  if (err instanceof StripeError) return err;
  if (err instanceof HttpProblem) {
    const type = err.status >= 500 ? 'api_error' : 'invalid_request_error';
    return new StripeError(err.status, type, err.detail, err.field, err.status === 429 ? 'rate_limit' : undefined);
  }
  // body-parser's errors carry their status (a body too large, one that does not parse).
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) return invalid(`The request body could not be read: ${(err as Error).message}`);
  return null;
}

export function stripeErrorHandler(log: (msg: string) => void): ErrorRequestHandler {
  return (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    const e = asStripeError(err);
    if (!e) log(`stripe sandbox: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const out = e ?? new StripeError(500, 'api_error', 'An unknown error occurred in the sandbox.');
    res.status(out.status).json(errorBody(out));
  };
}
