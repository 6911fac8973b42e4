/**
 * The Stripe-compatible mode as its own Express app (its own port beside the Bill & Pay one): the
 * API under /v1 and hosted invoice pages under /i. It shares the sandbox's database, accounts,
 * faults, request log and webhook outbox.
 */
import express from 'express';
import type { Sql } from '../../lib/db.js';
import type { RequestLog } from '../request-log.js';
import type { WebhookDispatcher } from '../webhooks.js';
import { stripeApiRouter } from './api.js';
import { StripeError, stripeErrorHandler } from './errors.js';
import { hostedPageRouter } from './page.js';
import { STRIPE_SANDBOX_API_VERSION } from './store.js';

/** One answer of the Stripe API: the operation (OpenAPI path template, null when no route matched), its status and body. */
export interface StripeAnswer {
  method: string;
  path: string | null;
  status: number;
  body: unknown;
}

export interface StripeAppOptions {
  sql: Sql;
  publicUrl: () => string;
  webhooks: WebhookDispatcher;
  requestLog: RequestLog;
  log: (msg: string) => void;
  /** Sees every API answer (the tests validate each against Stripe's OpenAPI description). */
  onAnswer?: (answer: StripeAnswer) => void;
}

export function createStripeApp(opts: StripeAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // Stripe's query strings nest like its bodies (`created[gte]=…`).
  app.set('query parser', 'extended');
  app.use((req, res, next) => {
    const id = req.get('x-request-id');
    if (id !== undefined) res.set('X-Request-Id', id);
    res.set('Stripe-Version', STRIPE_SANDBOX_API_VERSION);
    next();
  });
  const { onAnswer } = opts;
  if (onAnswer) {
    app.use('/v1', (req, res, next) => {
      const send = res.send.bind(res);
      res.send = (body: unknown) => {
        const route = (req.route as { path?: string } | undefined)?.path;
        const text = Buffer.isBuffer(body) ? body.toString() : body;
        onAnswer({
          method: req.method,
          path: route === undefined ? null : `/v1${route.replace(/:(\w+)/g, '{$1}')}`,
          status: res.statusCode,
          body: typeof text === 'string' ? (JSON.parse(text) as unknown) : text,
        });
        return send(body);
      };
      next();
    });
  }
  app.use('/v1', stripeApiRouter(opts));
  app.use('/i', hostedPageRouter(opts));
  app.use((req) => {
    throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${req.method}: ${req.path}).`);
  });
  app.use(stripeErrorHandler(opts.log));
  return app;
}
