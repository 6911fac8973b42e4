/**
 * The provider sandbox as an Express app: a Bill & Pay look-alike with its own tables, a /v1 JSON
 * API, hosted Pay Now pages and signed webhooks; and its Stripe-compatible mode (`stripeApp`,
 * sandbox/stripe/) on the same database, served on a port of its own. `sandbox/main.ts` runs it as a process; tests
 * mount it in-process on a random port.
 */
import express from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem, notFoundHandler, problemHandler } from '../lib/problem.js';
import { apiRouter } from './api.js';
import { openapi } from './openapi.js';
import { payPageRouter } from './pay-page.js';
import { RequestLog } from './request-log.js';
import { createStripeApp, type StripeAnswer } from './stripe/app.js';
import { WebhookDispatcher } from './webhooks.js';

export interface SandboxOptions {
  sql: Sql;
  /**
   * Base of Pay Now URLs, e.g. `http://127.0.0.1:4010`. A function is read on every use, for
   * callers that learn their port only after listening (tests listen on port 0).
   */
  publicUrl: string | (() => string);
  /** Base of the Stripe mode's hosted invoice pages (its own port); a function as for publicUrl. */
  stripePublicUrl?: string | (() => string);
  log?: (msg: string) => void;
  /** Sees every answer of the Stripe mode's API (tests validate them against Stripe's OpenAPI description). */
  onStripeAnswer?: (answer: StripeAnswer) => void;
}

export interface Sandbox {
  app: express.Express;
  /** The Stripe-compatible mode, served on its own port. */
  stripeApp: express.Express;
  /** Stops background webhook delivery and waits for request-log writes; the caller owns `sql`. */
  close(): Promise<void>;
}

export function createSandbox(opts: SandboxOptions): Sandbox {
  const { sql } = opts;
  const publicUrl = typeof opts.publicUrl === 'function' ? opts.publicUrl : () => opts.publicUrl as string;
  const log = opts.log ?? ((msg: string) => process.stderr.write(`[sandbox] ${msg}\n`));
  const webhooks = new WebhookDispatcher(sql, log);
  const requestLog = new RequestLog(sql, log);

  const app = express();
  app.disable('x-powered-by');
  // Repeated keys (`invoice=a&invoice=b`) become arrays; nothing nests.
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const id = req.get('x-request-id');
    if (id !== undefined) res.set('X-Request-Id', id);
    next();
  });

  app.get('/healthz', async (_req, res) => {
    try {
      await sql`SELECT 1`;
    } catch (e) {
      throw new HttpProblem(503, 'not-ready', `the sandbox database is unreachable: ${(e as Error).message}`);
    }
    res.json({ ok: true });
  });
  const spec = JSON.stringify(openapi);
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(spec);
  });
  app.use('/pay', payPageRouter({ sql, webhooks, log }));
  app.use('/v1', apiRouter({ sql, publicUrl, webhooks, requestLog }));
  app.use(notFoundHandler);
  app.use(problemHandler((msg, err) => log(`${msg}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)));

  const stripeUrl = opts.stripePublicUrl ?? publicUrl;
  const stripeApp = createStripeApp({
    sql,
    publicUrl: typeof stripeUrl === 'function' ? stripeUrl : () => stripeUrl,
    webhooks,
    requestLog,
    log,
    ...(opts.onStripeAnswer ? { onAnswer: opts.onStripeAnswer } : {}),
  });

  // Deliveries left undelivered by an earlier run go out now.
  webhooks.kick();

  return {
    app,
    stripeApp,
    async close() {
      await webhooks.close();
      await requestLog.flush();
    },
  };
}
