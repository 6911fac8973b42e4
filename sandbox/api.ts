/**
 * The /v1 JSON API: accounts, customers, invoices, payments and the sandbox's own tools (request
 * log, faults, webhook deliveries). Authentication: `Authorization: Bearer <apiKey>`; another
 * account's ids answer 404 like unknown ones.
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Sql } from '../lib/db.js';
import { HttpProblem } from '../lib/problem.js';
import { applyFault, currentFault, injectedFaults, setFault } from './faults.js';
import { newId, newToken, sha256Hex } from './ids.js';
import { accountJson, customerJson, decodeCursor, findInvoice, findPayment, invoiceJson, paymentJson, type AccountRow, type CustomerRow, type InvoiceRow, type PaymentRow } from './model.js';
import { authenticatedAccount, keepRawBody, mutation, type MutationContext, type Reply } from './mutation.js';
import { AllocationError, recordPayment, removePayment } from './payments.js';
import type { RequestLog } from './request-log.js';
import { validBody, type AccountCreate, type AccountPatch, type CustomerCreate, type FaultSet, type InvoiceCreate, type InvoicePatch, type PaymentCreate } from './validate.js';
import type { WebhookDispatcher } from './webhooks.js';

export interface ApiDeps {
  sql: Sql;
  publicUrl: () => string;
  webhooks: WebhookDispatcher;
  requestLog: RequestLog;
}

const MAX_PDF = '10mb';

function account(res: Response): AccountRow {
  const a = authenticatedAccount(res);
  // Only reachable if a route were mounted before authentication.
  if (!a) throw new HttpProblem(401, 'unauthenticated', 'missing API key: send Authorization: Bearer <apiKey>');
  return a;
}

/** A list's page size: `limit`, 1 to 100, 50 when absent. */
function pageLimit(req: Request): number {
  const text = param(req, 'limit') ?? '50';
  const limit = Number(text);
  if (!/^\d+$/.test(text) || limit < 1 || limit > 100) {
    throw new HttpProblem(400, 'invalid-parameter', 'limit must be an integer from 1 to 100', 'limit');
  }
  return limit;
}

/** One query-string value; repeated parameters are refused rather than silently picked from. */
function param(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || typeof v === 'string') return v;
  throw new HttpProblem(400, 'invalid-parameter', `${name} must be given once`, name);
}

/** The `:id` of a mutation's route (handlers typed from the route string get it directly). */
function idParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string') throw new HttpProblem(404, 'not-found', 'missing id in the path', 'id');
  return id;
}

function notFound(what: string, id: string): HttpProblem {
  return new HttpProblem(404, 'not-found', `no ${what} ${id} in this account`, 'id');
}

/** An API key only ever sees its own account. */
function otherAccount(id: string): HttpProblem {
  return new HttpProblem(404, 'not-found', `no account ${id} for this API key`, 'id');
}

function authenticate(sql: Sql): RequestHandler {
  return async (req, res, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!m) {
      res.set('WWW-Authenticate', 'Bearer');
      throw new HttpProblem(401, 'unauthenticated', 'missing API key: send Authorization: Bearer <apiKey>');
    }
    const [row] = await sql<AccountRow[]>`SELECT * FROM accounts WHERE api_key = ${m[1]!}`;
    if (!row) {
      res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new HttpProblem(401, 'unauthenticated', 'unknown API key');
    }
    res.locals.account = row;
    next();
  };
}

export function apiRouter(deps: ApiDeps): express.Router {
  const { sql } = deps;
  const r = express.Router();
  const url = () => deps.publicUrl();
  const kickWebhooks = (ctx: MutationContext) => ctx.afterCommit(() => deps.webhooks.kick());

  r.use(deps.requestLog.middleware);
  r.use(express.json({ limit: '1mb', verify: keepRawBody }));
  r.use(express.raw({ type: 'application/pdf', limit: MAX_PDF, verify: keepRawBody }));

  // --- accounts -------------------------------------------------------------------------------
  r.post(
    '/accounts',
    mutation(sql, async ({ tx, req }): Promise<Reply> => {
      const b = validBody<AccountCreate>('AccountCreate', req.body);
      const [row] = await tx<AccountRow[]>`
        INSERT INTO accounts (id, name, api_key, webhook_secret, webhook_url, fee_fixed, fee_percent_bps)
        VALUES (${newId('acct')}, ${b.name}, ${newToken('sk_test_')}, ${newToken('whsec_')}, ${b.webhookUrl ?? null},
                ${b.convenienceFee?.fixed ?? 0}, ${b.convenienceFee?.percentBps ?? 0})
        RETURNING *`;
      return { status: 201, body: accountJson(row!), location: `/v1/accounts/${row!.id}` };
    }),
  );

  r.use(authenticate(sql));

  r.get('/accounts/:id', (req, res) => {
    const a = account(res);
    if (req.params.id !== a.id) throw otherAccount(req.params.id);
    res.json(accountJson(a));
  });

  r.patch(
    '/accounts/:id',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      if (idParam(ctx.req) !== a.id) throw otherAccount(idParam(ctx.req));
      const b = validBody<AccountPatch>('AccountPatch', ctx.req.body);
      const fee = b.convenienceFee ? { fixed: b.convenienceFee.fixed ?? 0, bps: b.convenienceFee.percentBps ?? 0 } : null;
      const [row] = await ctx.tx<AccountRow[]>`
        UPDATE accounts SET
          webhook_url = ${'webhookUrl' in b ? (b.webhookUrl ?? null) : a.webhook_url},
          fee_fixed = ${fee ? fee.fixed : a.fee_fixed},
          fee_percent_bps = ${fee ? fee.bps : a.fee_percent_bps}
        WHERE id = ${a.id} RETURNING *`;
      return { status: 200, body: accountJson(row!) };
    }),
  );

  // --- sandbox tools (never affected by injected faults) -----------------------------------------
  r.get('/sandbox/requests', async (req, res) => {
    const a = account(res);
    const requestId = param(req, 'requestId');
    await deps.requestLog.flush();
    const rows = await sql<{ method: string; path: string; status: number; request_id: string | null; at: Date }[]>`
      SELECT * FROM (
        SELECT id, method, path, status, request_id, at FROM request_log
        WHERE account_id = ${a.id} ${requestId === undefined ? sql`` : sql`AND request_id = ${requestId}`}
        ORDER BY id DESC LIMIT 1000) newest
      ORDER BY id`;
    res.json({ data: rows.map((l) => ({ method: l.method, path: l.path, status: l.status, requestId: l.request_id, at: l.at })) });
  });

  r.get('/sandbox/faults', async (_req, res) => {
    res.json(await currentFault(sql, account(res).id));
  });

  r.post(
    '/sandbox/faults',
    mutation(sql, async (ctx) => ({
      status: 200,
      body: await setFault(ctx.tx, account(ctx.res).id, validBody<FaultSet>('FaultSet', ctx.req.body)),
    })),
  );

  r.get('/sandbox/faults/injected', async (_req, res) => {
    res.json(await injectedFaults(sql, account(res).id));
  });

  r.get('/sandbox/webhook-deliveries', async (req, res) => {
    const a = account(res);
    const paymentId = param(req, 'paymentId');
    const rows = await sql<
      {
        id: string;
        type: string;
        payment_id: string;
        url: string;
        attempts: number;
        last_status: number | null;
        last_error: string | null;
        delivered_at: Date | null;
        body: string;
        last_headers: Record<string, string> | null;
        fault: string | null;
      }[]
    >`
      SELECT id, type, payment_id, url, attempts, last_status, last_error, delivered_at, body, last_headers, fault FROM webhook_deliveries
      WHERE account_id = ${a.id} ${paymentId === undefined ? sql`` : sql`AND payment_id = ${paymentId}`}
      ORDER BY created_at, id LIMIT 1000`;
    res.json({
      data: rows.map((d) => ({
        eventId: d.id,
        type: d.type,
        paymentId: d.payment_id,
        url: d.url,
        attempts: d.attempts,
        lastStatus: d.last_status,
        lastError: d.last_error,
        deliveredAt: d.delivered_at,
        body: d.body,
        headers: d.last_headers,
        fault: d.fault,
      })),
    });
  });

  // --- everything below can be made to fail or stall by an injected fault ------------------------
  r.use(applyFault(sql));

  // --- customers --------------------------------------------------------------------------------
  r.post(
    '/customers',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      const b = validBody<CustomerCreate>('CustomerCreate', ctx.req.body);
      const [row] = await ctx.tx<CustomerRow[]>`
        INSERT INTO customers (id, account_id, external_id, name, email)
        VALUES (${newId('cus')}, ${a.id}, ${b.externalId}, ${b.name}, ${b.email ?? null})
        ON CONFLICT (account_id, external_id) DO NOTHING RETURNING *`;
      if (!row) {
        const [existing] = await ctx.tx<{ id: string }[]>`
          SELECT id FROM customers WHERE account_id = ${a.id} AND external_id = ${b.externalId}`;
        throw new HttpProblem(409, 'customer-exists', `a customer with externalId ${b.externalId} already exists`, 'externalId', {
          customerId: existing!.id,
        });
      }
      return { status: 201, body: customerJson(row), location: `/v1/customers/${row.id}` };
    }),
  );

  r.get('/customers', async (req, res) => {
    const a = account(res);
    const externalId = param(req, 'externalId');
    const rows = await sql<CustomerRow[]>`
      SELECT * FROM customers
      WHERE account_id = ${a.id} ${externalId === undefined ? sql`` : sql`AND external_id = ${externalId}`}
      ORDER BY created_at, id LIMIT 1000`;
    res.json({ data: rows.map(customerJson) });
  });

  r.get('/customers/:id', async (req, res) => {
    const [row] = await sql<CustomerRow[]>`
      SELECT * FROM customers WHERE account_id = ${account(res).id} AND id = ${req.params.id}`;
    if (!row) throw notFound('customer', req.params.id);
    res.json(customerJson(row));
  });

  // --- invoices ---------------------------------------------------------------------------------
  const numberTaken = (number: string, invoiceId: string) =>
    new HttpProblem(409, 'invoice-number-exists', `invoice number ${number} is already used by a live invoice`, 'number', {
      invoiceId,
    });

  r.post(
    '/invoices',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      const b = validBody<InvoiceCreate>('InvoiceCreate', ctx.req.body);
      if (b.outstanding > b.amount) {
        throw new HttpProblem(422, 'invalid-request', `outstanding ${b.outstanding} exceeds amount ${b.amount}`, 'outstanding');
      }
      const [customer] = await ctx.tx`SELECT 1 FROM customers WHERE account_id = ${a.id} AND id = ${b.customerId}`;
      if (!customer) throw new HttpProblem(422, 'unknown-customer', `no customer ${b.customerId} in this account`, 'customerId');
      const id = newId('inv');
      const inserted = await ctx.tx`
        INSERT INTO invoices (id, account_id, customer_id, number, invoice_date, amount, outstanding, currency, status, pay_token, form_token)
        VALUES (${id}, ${a.id}, ${b.customerId}, ${b.number}, ${b.invoiceDate}, ${b.amount}, ${b.outstanding}, ${b.currency ?? 'USD'}, 'open',
                ${newToken()}, ${newToken()})
        ON CONFLICT (account_id, number) WHERE deleted_at IS NULL DO NOTHING RETURNING id`;
      if (inserted.length === 0) {
        const [existing] = await ctx.tx<{ id: string }[]>`
          SELECT id FROM invoices WHERE account_id = ${a.id} AND number = ${b.number} AND deleted_at IS NULL`;
        throw numberTaken(b.number, existing!.id);
      }
      const row = (await findInvoice(ctx.tx, a.id, id))!;
      return { status: 201, body: invoiceJson(row, url()), location: `/v1/invoices/${id}` };
    }),
  );

  r.get('/invoices', async (req, res) => {
    const a = account(res);
    const customerId = param(req, 'customerId');
    const number = param(req, 'number');
    const after = param(req, 'after');
    const limit = pageLimit(req);
    // Ids are the cursor: stable, unique, and known to the caller.
    const rows = await sql<InvoiceRow[]>`
      SELECT * FROM invoice_view
      WHERE account_id = ${a.id} AND deleted_at IS NULL
        ${after === undefined ? sql`` : sql`AND id > ${after}`}
        ${customerId === undefined ? sql`` : sql`AND customer_id = ${customerId}`}
        ${number === undefined ? sql`` : sql`AND number = ${number}`}
      ORDER BY id LIMIT ${limit + 1}`;
    const data = rows.slice(0, limit).map((i) => invoiceJson(i, url()));
    res.json({ data, nextCursor: data.at(-1)?.id ?? after ?? null, hasMore: rows.length > limit });
  });

  r.get('/invoices/:id', async (req, res) => {
    const row = await findInvoice(sql, account(res).id, req.params.id);
    if (!row) throw notFound('invoice', req.params.id);
    res.json(invoiceJson(row, url()));
  });

  r.patch(
    '/invoices/:id',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      const id = idParam(ctx.req);
      const b = validBody<InvoicePatch>('InvoicePatch', ctx.req.body);
      const [cur] = await ctx.tx<{ amount: number; outstanding: number }[]>`
        SELECT amount, outstanding FROM invoices WHERE account_id = ${a.id} AND id = ${id} AND deleted_at IS NULL FOR UPDATE`;
      if (!cur) throw notFound('invoice', id);
      const amount = b.amount ?? cur.amount;
      const outstanding = b.outstanding ?? cur.outstanding;
      if (outstanding > amount) {
        throw new HttpProblem(422, 'invalid-request', `outstanding ${outstanding} exceeds amount ${amount}`, b.outstanding === undefined ? 'amount' : 'outstanding');
      }
      if (b.number !== undefined) {
        const [other] = await ctx.tx<{ id: string }[]>`
          SELECT id FROM invoices WHERE account_id = ${a.id} AND number = ${b.number} AND deleted_at IS NULL AND id <> ${id}`;
        if (other) throw numberTaken(b.number, other.id);
      }
      await ctx.tx`
        UPDATE invoices SET
          number = COALESCE(${b.number ?? null}, number),
          invoice_date = COALESCE(${b.invoiceDate ?? null}::date, invoice_date),
          amount = ${amount}, outstanding = ${outstanding},
          status = ${outstanding === 0 ? 'paid' : 'open'}, updated_at = now()
        WHERE id = ${id}`;
      return { status: 200, body: invoiceJson((await findInvoice(ctx.tx, a.id, id))!, url()) };
    }),
  );

  r.delete(
    '/invoices/:id',
    mutation(sql, async (ctx) => {
      const id = idParam(ctx.req);
      const gone = await ctx.tx`
        UPDATE invoices SET deleted_at = now(), updated_at = now()
        WHERE account_id = ${account(ctx.res).id} AND id = ${id} AND deleted_at IS NULL RETURNING id`;
      if (gone.length === 0) throw notFound('invoice', id);
      return { status: 200, body: { id, deleted: true } };
    }),
  );

  r.put(
    '/invoices/:id/pdf',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      const id = idParam(ctx.req);
      const pdf: unknown = ctx.req.body;
      if (!Buffer.isBuffer(pdf)) {
        throw new HttpProblem(415, 'unsupported-media-type', 'send the PDF bytes with Content-Type: application/pdf', 'body');
      }
      if (!pdf.subarray(0, 5).equals(Buffer.from('%PDF-'))) {
        throw new HttpProblem(422, 'not-a-pdf', 'the body is not a PDF document (it must start with %PDF-)', 'body');
      }
      const updated = await ctx.tx`
        UPDATE invoices SET pdf = ${pdf}, pdf_sha256 = ${sha256Hex(pdf)}, updated_at = now()
        WHERE account_id = ${a.id} AND id = ${id} AND deleted_at IS NULL RETURNING id`;
      if (updated.length === 0) throw notFound('invoice', id);
      return { status: 200, body: invoiceJson((await findInvoice(ctx.tx, a.id, id))!, url()) };
    }),
  );

  r.get('/invoices/:id/pdf', async (req, res) => {
    const [row] = await sql<{ pdf: Buffer | null }[]>`
      SELECT pdf FROM invoices WHERE account_id = ${account(res).id} AND id = ${req.params.id} AND deleted_at IS NULL`;
    if (!row) throw notFound('invoice', req.params.id);
    if (!row.pdf) throw new HttpProblem(404, 'no-pdf', `invoice ${req.params.id} has no PDF attached`, 'id');
    res.type('application/pdf').send(row.pdf);
  });

  // --- payments ---------------------------------------------------------------------------------
  r.get('/payments', async (req, res) => {
    const a = account(res);
    const invoiceId = param(req, 'invoiceId');
    const customerId = param(req, 'customerId');
    const after = param(req, 'after');
    const limit = pageLimit(req);
    const includeRemoved = param(req, 'includeRemoved') === 'true';
    const afterSeq = after === undefined ? 0 : decodeCursor(after, 'after');
    const rows = await sql<PaymentRow[]>`
      SELECT * FROM payment_view
      WHERE account_id = ${a.id} AND seq > ${afterSeq}
        ${includeRemoved ? sql`` : sql`AND status = 'succeeded'`}
        ${customerId === undefined ? sql`` : sql`AND customer_id = ${customerId}`}
        ${invoiceId === undefined ? sql`` : sql`AND id IN (SELECT payment_id FROM payment_allocations WHERE invoice_id = ${invoiceId})`}
      ORDER BY seq LIMIT ${limit + 1}`;
    const data = rows.slice(0, limit).map(paymentJson);
    res.json({ data, nextCursor: data.at(-1)?.cursor ?? after ?? null, hasMore: rows.length > limit });
  });

  r.get('/payments/:id', async (req, res) => {
    const row = await findPayment(sql, account(res).id, req.params.id);
    if (!row) throw notFound('payment', req.params.id);
    res.json(paymentJson(row));
  });

  r.post(
    '/payments',
    mutation(sql, async (ctx) => {
      const a = account(ctx.res);
      const b = validBody<PaymentCreate>('PaymentCreate', ctx.req.body);
      const [customer] = await ctx.tx`SELECT 1 FROM customers WHERE account_id = ${a.id} AND id = ${b.customerId}`;
      if (!customer) throw new HttpProblem(422, 'unknown-customer', `no customer ${b.customerId} in this account`, 'customerId');
      try {
        const payment = await recordPayment(ctx.tx, a, {
          customerId: b.customerId,
          allocations: b.allocations,
          method: b.method,
          fee: b.fee ?? 0,
          paidAt: b.paidAt ?? null,
          reference: b.reference ?? null,
        });
        kickWebhooks(ctx);
        return { status: 201, body: paymentJson(payment), location: `/v1/payments/${payment.id}` };
      } catch (e) {
        if (e instanceof AllocationError) {
          const field = `allocations[${e.index}].${e.field}`;
          throw new HttpProblem(422, 'invalid-allocation', `${field}: ${e.message}`, field);
        }
        throw e;
      }
    }),
  );

  r.delete(
    '/payments/:id',
    mutation(sql, async (ctx) => {
      const id = idParam(ctx.req);
      const payment = await removePayment(ctx.tx, account(ctx.res), id);
      if (!payment) throw notFound('payment', id);
      kickWebhooks(ctx);
      return { status: 200, body: paymentJson(payment) };
    }),
  );

  return r;
}
