/** The Express app: middleware, routers, docs and error handling. `main.ts` runs it as a process. */
import express, { type ErrorRequestHandler, type Express, type Request, type Response } from 'express';
import { DomainError } from '../domain/money.js';
import { createApiMetrics } from '../lib/metrics.js';
import { notFoundHandler, problemHandler, HttpProblem } from '../lib/problem.js';
import type { ApiDeps } from './deps.js';
import { contract } from './contract.js';
import { docsRouter } from './docs.js';
import { erpAuth, idempotency, operatorAuth, requestId } from './middleware.js';
import { openapi } from './openapi.js';
import { billRunsRouter } from './routes/bill-runs.js';
import { billingRunRouter } from './routes/billing-run.js';
import { clientsRouter } from './routes/clients.js';
import { communicationsRouter } from './routes/communications.js';
import { companiesRouter } from './routes/companies.js';
import { dashboardRouter } from './routes/dashboard.js';
import { invoicesRouter } from './routes/invoices.js';
import { payRouter } from './routes/pay.js';
import { paymentsRouter } from './routes/payments.js';
import { projectsRouter } from './routes/projects.js';
import { receiptsRouter } from './routes/receipts.js';
import { reconciliationsRouter } from './routes/reconciliations.js';
import { webhookEndpointsRouter } from './routes/webhook-endpoints.js';
import { webhooksRouter } from './routes/webhooks.js';

/** What ties a log line to the ERP's request: its correlation id, and the company and invoice when known. */
function correlation(req: Request, res: Response): Record<string, string> {
  const company = res.locals.company as { id: string } | undefined;
  const number = (req.params as Record<string, string | undefined> | undefined)?.number;
  return {
    ...(res.locals.requestId ? { requestId: res.locals.requestId as string } : {}),
    ...(company ? { companyId: company.id } : {}),
    ...(number ? { invoiceNumber: number } : {}),
  };
}

export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const metrics = createApiMetrics(deps.sql);
  // One line per answered request with its correlation id, company and invoice, timed by the route's
  // template (so ids never become metric labels; a path no route matched is one label).
  app.use((req, res, next) => {
    const end = metrics.httpDuration.startTimer();
    res.once('finish', () => {
      const template = (req.route as { path?: unknown } | undefined)?.path;
      const route = typeof template === 'string' ? template : 'unmatched';
      const seconds = end({ method: req.method, route, status: String(res.statusCode) });
      deps.log('request', {
        ...correlation(req, res),
        method: req.method,
        route,
        status: res.statusCode,
        ms: Math.round(seconds * 1000),
        ...(res.statusCode >= 500 ? { level: 'ERROR' } : {}),
      });
    });
    next();
  });
  app.use(requestId);
  // Before the routes and their key checks: an undeclared method is 405 whoever asks.
  app.use(contract);
  // Webhooks need the raw body for their signature, so they are mounted before the JSON parser.
  app.use(webhooksRouter(deps));
  app.use(express.json({ limit: '1mb', strict: true }));
  const mw = { erpAuth: erpAuth(deps.sql, deps.adminKey), idempotency: idempotency(deps.sql, deps.secrets), metrics };

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  app.get('/readyz', async (_req, res) => {
    try {
      await deps.sql`SELECT 1`;
      await deps.temporal.connection.withDeadline(Date.now() + 3_000, () => deps.temporal.workflowService.getSystemInfo({}));
    } catch (e) {
      throw new HttpProblem(503, 'not-ready', `a dependency is unreachable: ${(e as Error).message}`);
    }
    res.json({ ok: true, postgres: 'up', temporal: 'up' });
  });
  // The operator key, as Prometheus sends it (`authorization: { credentials_file: ... }`): the API also faces ERPs and the provider.
  app.get('/metrics', operatorAuth(deps.adminKey), async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  const spec = JSON.stringify(openapi);
  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(spec);
  });
  app.use(docsRouter());

  app.use(payRouter(deps));
  app.use(companiesRouter(deps, mw));
  app.use(clientsRouter(deps, mw));
  app.use(projectsRouter(deps, mw));
  app.use(billingRunRouter(deps, mw));
  app.use(invoicesRouter(deps, mw));
  app.use(paymentsRouter(deps, mw));
  app.use(receiptsRouter(deps, mw));
  app.use(communicationsRouter(deps, mw));
  app.use(billRunsRouter(deps, mw));
  app.use(reconciliationsRouter(deps, mw));
  app.use(webhookEndpointsRouter(deps, mw));
  app.use(dashboardRouter(deps));
  app.use(notFoundHandler);
  // A broken domain rule (domain/) is the caller's input: 422 naming the field, in one place.
  app.use(((err, _req, _res, next) => {
    next(err instanceof DomainError ? new HttpProblem(422, err.type, err.message, err.field) : err);
  }) as ErrorRequestHandler);
  app.use(problemHandler((msg, err, res) => deps.log(msg, { ...correlation(res.req, res), level: 'ERROR', error: err instanceof Error ? err.stack : String(err) })));
  return app;
}
