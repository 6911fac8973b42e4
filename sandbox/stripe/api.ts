/**
 * The Stripe-compatible API: stateful for the subset billflow's Stripe adapter uses (customers and
 * their search by metadata, invoice items, invoices with finalize / void / pay out of band / send /
 * delete, credit notes and their void, invoice payments, a card payment's payment intent with
 * its charge and balance transaction expanded, webhook endpoints, events). Requests are
 * Stripe's (form-encoded, `Authorization: Bearer <secret key>`, the pinned `Stripe-Version`);
 * answers are Stripe's objects and errors. The secret key is a sandbox account's apiKey, so the
 * account's injected faults (sandbox/faults.ts) and request log apply here too.
 */
import express, { type Request, type RequestHandler } from 'express';
import type { Sql } from '../../lib/db.js';
import { applyFault } from '../faults.js';
import { newToken } from '../ids.js';
import type { AccountRow, Db } from '../model.js';
import { keepRawBody } from '../mutation.js';
import type { RequestLog } from '../request-log.js';
import type { WebhookDispatcher } from '../webhooks.js';
import { change, stripeAccount, type ChangeContext } from './change.js';
import { invalid, StripeError } from './errors.js';
import { emit } from './events.js';
import { Params } from './params.js';
import {
  insert,
  listOf,
  load,
  now,
  recompute,
  save,
  STRIPE_SANDBOX_API_VERSION,
  stripeId,
  type CreditNote,
  type Customer,
  type Invoice,
  type InvoiceItem,
  type InvoicePayment,
  type LineItem,
  type StripeObject,
  type WebhookEndpoint,
} from './store.js';

export interface StripeApiDeps {
  sql: Sql;
  /** Base of hosted invoice pages, read on every use (tests learn their port after listening). */
  publicUrl: () => string;
  webhooks: WebhookDispatcher;
  requestLog: RequestLog;
}

const CURRENCIES = /^[a-z]{3}$/;

/** The expansions the sandbox answers: the ones billflow reads a card payment's fee through. */
const PAYMENT_INTENT_EXPANSIONS = ['latest_charge', 'latest_charge.balance_transaction'];

function authenticate(sql: Sql): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('authorization') ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    const basic = /^Basic\s+(\S+)$/i.exec(header)?.[1];
    const key = bearer ?? (basic ? Buffer.from(basic, 'base64').toString().split(':')[0] : undefined);
    if (!key)
      throw new StripeError(
        401,
        'invalid_request_error',
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      );
    const [row] = await sql<AccountRow[]>`SELECT * FROM accounts WHERE api_key = ${key}`;
    if (!row) throw new StripeError(401, 'invalid_request_error', `Invalid API Key provided: ${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`);
    const version = req.get('stripe-version');
    if (version !== undefined && version !== STRIPE_SANDBOX_API_VERSION) {
      throw invalid(`This sandbox speaks Stripe API version ${STRIPE_SANDBOX_API_VERSION} only, not ${version}.`, 'Stripe-Version');
    }
    res.locals.account = row;
    next();
  };
}

function query(req: Request): Params {
  return new Params({ ...(req.query as Record<string, unknown>) });
}

/** A list page of the account's objects, newest first, as Stripe pages them (`limit`, `starting_after`). */
async function page<T extends StripeObject>(db: Db, account: AccountRow, object: T['object'], url: string, p: Params, filter: Record<string, unknown> = {}) {
  const limit = p.int('limit', { min: 1 }) ?? 10;
  if (limit > 100) throw invalid('This value must be less than or equal to 100.', 'limit');
  const after = p.string('starting_after');
  p.done();
  const rows = await db<{ data: T }[]>`
    SELECT data FROM stripe_objects
    WHERE account_id = ${account.id} AND object = ${object} AND data @> ${db.json(filter as never)}
      ${after === undefined ? db`` : db`AND seq < (SELECT seq FROM stripe_objects WHERE account_id = ${account.id} AND id = ${after})`}
    ORDER BY seq DESC LIMIT ${limit + 1}`;
  return listOf(
    url,
    rows.slice(0, limit).map((r) => r.data),
    rows.length > limit,
  );
}

/**
 * Stripe's search language, for what is asked of customers here: clauses `field:'value'` on
 * email, name or `metadata['key']`, joined by AND.
 */
function searchFilter(q: string): Record<string, unknown> {
  const filter: { metadata?: Record<string, string>; [k: string]: unknown } = {};
  const clause = /\s*(email|name|metadata\['((?:[^'\\]|\\.)*)'\]):'((?:[^'\\]|\\.)*)'\s*/y;
  const unescape = (s: string) => s.replace(/\\(.)/g, '$1');
  let at = 0;
  for (;;) {
    clause.lastIndex = at;
    const m = clause.exec(q);
    if (!m) throw invalid(`The sandbox's search supports field:'value' clauses on email, name and metadata['key'], joined by AND: ${q}`, 'query');
    if (m[2] !== undefined) filter.metadata = { ...filter.metadata, [unescape(m[2])]: unescape(m[3]!) };
    else filter[m[1]!] = unescape(m[3]!);
    at = clause.lastIndex;
    if (at === q.length) return filter;
    const and = /AND\s+/y;
    and.lastIndex = at;
    if (!and.exec(q)) throw invalid(`Unexpected text in the search query at ${at}: ${q.slice(at)}`, 'query');
    at = and.lastIndex;
  }
}

/** The answer for a webhook endpoint: its secret is shown only when it is created. */
function publicEndpoint({ secret: _secret, ...e }: WebhookEndpoint): WebhookEndpoint {
  return e;
}

export function stripeApiRouter(deps: StripeApiDeps): express.Router {
  const { sql } = deps;
  const r = express.Router();
  const hosted = (token: string) => `${deps.publicUrl().replace(/\/+$/, '')}/i/${token}`;
  const kick = (ctx: ChangeContext) => ctx.afterCommit(() => deps.webhooks.kick());

  r.use(deps.requestLog.middleware);
  r.use(express.urlencoded({ extended: true, limit: '1mb', verify: keepRawBody }));
  r.use(authenticate(sql));
  r.use(applyFault(sql));

  // --- customers ---------------------------------------------------------------------------------
  r.post(
    '/customers',
    change(sql, async ({ tx, account, params: p }) => {
      const c: Customer = {
        id: stripeId('cus'),
        object: 'customer',
        balance: 0,
        created: now(),
        currency: null,
        description: p.string('description', { max: 350 }) ?? null,
        email: p.string('email', { max: 512 }) ?? null,
        invoice_prefix: Math.random().toString(36).slice(2, 10).toUpperCase(),
        livemode: false,
        metadata: p.metadata() ?? {},
        name: p.string('name', { max: 256 }) ?? null,
      };
      p.done();
      await insert(tx, account, c);
      return c;
    }),
  );

  r.get('/customers/search', async (req, res) => {
    const account = stripeAccount(res);
    const p = query(req);
    const filter = searchFilter(p.required('query'));
    const limit = p.int('limit', { min: 1 }) ?? 10;
    if (limit > 100) throw invalid('This value must be less than or equal to 100.', 'limit');
    p.done();
    const rows = await sql<{ data: Customer }[]>`
      SELECT data FROM stripe_objects WHERE account_id = ${account.id} AND object = 'customer' AND data @> ${sql.json(filter as never)}
      ORDER BY seq DESC LIMIT ${limit + 1}`;
    res.json({ object: 'search_result', data: rows.slice(0, limit).map((x) => x.data), has_more: rows.length > limit, next_page: null, url: '/v1/customers/search' });
  });

  r.get('/customers', async (req, res) => {
    const p = query(req);
    const email = p.string('email');
    res.json(await page<Customer>(sql, stripeAccount(res), 'customer', '/v1/customers', p, email === undefined ? {} : { email }));
  });

  r.get('/customers/:customer', async (req, res) => {
    query(req).done();
    res.json(await load(sql, stripeAccount(res), 'customer', req.params.customer));
  });

  // --- invoice items -----------------------------------------------------------------------------
  r.post(
    '/invoiceitems',
    change(sql, async ({ tx, account, params: p }) => {
      const customer = await load(tx, account, 'customer', p.required('customer'), { param: 'customer' });
      const amount = p.int('amount', { required: true })!;
      const currency = (p.string('currency') ?? 'usd').toLowerCase();
      if (!CURRENCIES.test(currency)) throw invalid(`Invalid currency: ${currency}`, 'currency');
      const invoiceId = p.string('invoice');
      const item: InvoiceItem = {
        id: stripeId('ii'),
        object: 'invoiceitem',
        amount,
        currency,
        customer: customer.id,
        date: now(),
        description: p.string('description', { max: 500 }) ?? null,
        discountable: amount >= 0,
        invoice: invoiceId ?? null,
        livemode: false,
        metadata: p.metadata() ?? {},
        period: { start: now(), end: now() },
        proration: false,
        quantity: 1,
        quantity_decimal: '1',
      };
      p.done();
      if (invoiceId !== undefined) {
        const inv = await load(tx, account, 'invoice', invoiceId, { lock: true, param: 'invoice' });
        if (inv.customer !== customer.id) throw invalid(`Invoice ${inv.id} belongs to another customer.`, 'invoice');
        if (inv.status !== 'draft') throw invalid('You can only add invoice items to draft invoices.', 'invoice', 'invoice_not_editable');
        if (inv.currency !== currency) throw invalid(`The invoice item's currency (${currency}) must match the invoice's (${inv.currency}).`, 'currency');
        await save(tx, addLine(inv, item));
      }
      await insert(tx, account, item);
      return item;
    }),
  );

  // --- invoices ----------------------------------------------------------------------------------
  r.post(
    '/invoices',
    change(sql, async ({ tx, account, params: p }) => {
      const customer = await load(tx, account, 'customer', p.required('customer'), { param: 'customer' });
      const currency = (p.string('currency') ?? customer.currency ?? 'usd').toLowerCase();
      if (!CURRENCIES.test(currency)) throw invalid(`Invalid currency: ${currency}`, 'currency');
      const collection = (p.string('collection_method', { oneOf: ['charge_automatically', 'send_invoice'] }) ?? 'charge_automatically') as Invoice['collection_method'];
      const dueDate = p.int('due_date');
      const daysUntilDue = p.int('days_until_due', { min: 0 });
      const created = now();
      if (collection === 'send_invoice' && dueDate === undefined && daysUntilDue === undefined) {
        throw invalid('Invoices with `collection_method=send_invoice` need `due_date` or `days_until_due`.', 'days_until_due');
      }
      if (collection === 'charge_automatically' && (dueDate !== undefined || daysUntilDue !== undefined)) {
        throw invalid('`due_date` and `days_until_due` can only be set when `collection_method=send_invoice`.', dueDate !== undefined ? 'due_date' : 'days_until_due');
      }
      if (dueDate !== undefined && dueDate < created) throw invalid('The due_date must be in the future.', 'due_date');
      const pending = p.string('pending_invoice_items_behavior', { oneOf: ['exclude', 'include'] }) ?? 'exclude';
      let inv: Invoice = {
        id: stripeId('in'),
        object: 'invoice',
        account_name: account.name,
        amount_due: 0,
        amount_overpaid: 0,
        amount_paid: 0,
        amount_paid_off_stripe: 0,
        amount_remaining: 0,
        amount_shipping: 0,
        attempt_count: 0,
        attempted: false,
        auto_advance: p.bool('auto_advance') ?? collection === 'charge_automatically',
        automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
        collection_method: collection,
        created,
        currency,
        customer: customer.id,
        customer_email: customer.email,
        customer_name: customer.name,
        default_tax_rates: [],
        description: p.string('description', { max: 1500 }) ?? null,
        discounts: [],
        due_date: dueDate ?? (daysUntilDue !== undefined ? created + daysUntilDue * 86_400 : null),
        ending_balance: null,
        hosted_invoice_url: null,
        invoice_pdf: null,
        issuer: { type: 'self' },
        lines: { object: 'list', data: [], has_more: false, url: '' },
        livemode: false,
        metadata: p.metadata() ?? {},
        number: null,
        payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
        period_end: created,
        period_start: created,
        post_payment_credit_notes_amount: 0,
        pre_payment_credit_notes_amount: 0,
        starting_balance: 0,
        status: 'draft',
        status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
        subtotal: 0,
        total: 0,
      };
      p.done();
      inv.lines.url = `/v1/invoices/${inv.id}/lines`;
      if (pending === 'include') {
        const items = await tx<{ data: InvoiceItem }[]>`
          SELECT data FROM stripe_objects WHERE account_id = ${account.id} AND object = 'invoiceitem'
            AND data @> ${tx.json({ customer: customer.id, currency } as never)} AND data->'invoice' = 'null'::jsonb ORDER BY seq FOR UPDATE`;
        for (const { data: item } of items) {
          inv = addLine(inv, item);
          await save(tx, { ...item, invoice: inv.id });
        }
      }
      await insert(tx, account, inv);
      return inv;
    }),
  );

  r.get('/invoices', async (req, res) => {
    const p = query(req);
    const status = p.string('status', { oneOf: ['draft', 'open', 'paid', 'uncollectible', 'void'] });
    const customer = p.string('customer');
    res.json(await page<Invoice>(sql, stripeAccount(res), 'invoice', '/v1/invoices', p, { ...(status ? { status } : {}), ...(customer ? { customer } : {}) }));
  });

  r.get('/invoices/:invoice', async (req, res) => {
    query(req).done();
    res.json(await load(sql, stripeAccount(res), 'invoice', req.params.invoice));
  });

  r.post(
    '/invoices/:invoice',
    change(sql, async ({ tx, account, params: p, req }) => {
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      const metadata = p.metadata();
      const description = p.string('description', { max: 1500 });
      p.done();
      if (description !== undefined && inv.status !== 'draft') throw invalid('You can only change the description of a draft invoice.', 'description', 'invoice_not_editable');
      const next: Invoice = { ...inv, ...(description !== undefined ? { description } : {}), ...(metadata ? { metadata: mergeMetadata(inv.metadata, metadata) } : {}) };
      await save(tx, next);
      return next;
    }),
  );

  r.delete(
    '/invoices/:invoice',
    change(sql, async (ctx) => {
      const { tx, account, params: p, req } = ctx;
      p.done();
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      if (inv.status !== 'draft') throw invalid('You can only delete draft invoices.', undefined, 'invoice_not_editable');
      await tx`DELETE FROM stripe_objects WHERE account_id = ${account.id} AND object = 'invoiceitem' AND data->>'invoice' = ${inv.id}`;
      await tx`DELETE FROM stripe_objects WHERE id = ${inv.id}`;
      await emit(tx, account, 'invoice.deleted', inv, ctx.idempotencyKey);
      kick(ctx);
      return { id: inv.id, object: 'invoice', deleted: true };
    }),
  );

  r.post(
    '/invoices/:invoice/finalize',
    change(sql, async (ctx) => {
      const { tx, account, params: p, req } = ctx;
      const autoAdvance = p.bool('auto_advance');
      p.done();
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      if (inv.status !== 'draft') throw invalid(`This invoice is already finalized, you can't re-finalize a non-draft invoice.`, undefined, 'invoice_not_editable');
      const [count] = await tx<{ n: number }[]>`
        SELECT count(*)::int AS n FROM stripe_objects WHERE account_id = ${account.id} AND object = 'invoice' AND data->>'customer' = ${inv.customer} AND data->>'number' IS NOT NULL`;
      const customer = await load(tx, account, 'customer', inv.customer);
      const token = newToken();
      const t = now();
      const figured = recompute(inv);
      // An invoice that owes nothing is paid as soon as it is finalized.
      const paid = figured.amount_due === 0;
      const next: Invoice = {
        ...figured,
        auto_advance: autoAdvance ?? inv.auto_advance,
        number: `${customer.invoice_prefix}-${String(count!.n + 1).padStart(4, '0')}`,
        hosted_invoice_url: hosted(token),
        ending_balance: 0,
        status: paid ? 'paid' : 'open',
        status_transitions: { ...inv.status_transitions, finalized_at: t, paid_at: paid ? t : null },
      };
      await save(tx, next, { token, formToken: newToken() });
      await emit(tx, account, 'invoice.finalized', next, ctx.idempotencyKey);
      if (paid) await emit(tx, account, 'invoice.paid', next, ctx.idempotencyKey);
      kick(ctx);
      return next;
    }),
  );

  r.post(
    '/invoices/:invoice/void',
    change(sql, async (ctx) => {
      const { tx, account, params: p, req } = ctx;
      p.done();
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      if (inv.status !== 'open' && inv.status !== 'uncollectible') throw invalid(`You can only void open or uncollectible invoices; this one is ${inv.status}.`, undefined, 'invoice_not_editable');
      if (inv.amount_paid > 0) throw invalid('You cannot void an invoice that has payments on it: issue a credit note instead.', undefined, 'invoice_not_editable');
      const next: Invoice = { ...inv, status: 'void', status_transitions: { ...inv.status_transitions, voided_at: now() } };
      await save(tx, next);
      await emit(tx, account, 'invoice.voided', next, ctx.idempotencyKey);
      kick(ctx);
      return next;
    }),
  );

  r.post(
    '/invoices/:invoice/pay',
    change(sql, async (ctx) => {
      const { tx, account, params: p, req } = ctx;
      const outOfBand = p.bool('paid_out_of_band');
      p.done();
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      if (inv.status !== 'open') throw invalid(`Invoice is already ${inv.status}: only open invoices can be paid.`, undefined, 'invoice_not_editable');
      // Charging a payment method needs one on file; the sandbox's payers pay on the hosted page.
      if (!outOfBand)
        throw new StripeError(
          402,
          'card_error',
          'This customer has no attached payment source or default payment method; the sandbox pays invoices only out of band (paid_out_of_band=true) or on the hosted page.',
          undefined,
          'invoice_no_payment_method_types',
        );
      const next = markPaid({ ...inv, amount_paid: inv.amount_paid + inv.amount_remaining, amount_paid_off_stripe: inv.amount_paid_off_stripe + inv.amount_remaining });
      await save(tx, next);
      await emit(tx, account, 'invoice.paid', next, ctx.idempotencyKey);
      kick(ctx);
      return next;
    }),
  );

  r.post(
    '/invoices/:invoice/send',
    change(sql, async ({ tx, account, params: p, req }) => {
      p.done();
      const inv = await load(tx, account, 'invoice', String(req.params.invoice), { lock: true });
      if (inv.collection_method !== 'send_invoice') throw invalid('You can only send invoices with collection_method=send_invoice.', undefined, 'invoice_not_editable');
      if (inv.status !== 'open') throw invalid(`You can only send open invoices; this one is ${inv.status}.`, undefined, 'invoice_not_editable');
      // The sandbox sends no email: the payer is given the hosted_invoice_url.
      return inv;
    }),
  );

  // --- credit notes ------------------------------------------------------------------------------
  r.post(
    '/credit_notes',
    change(sql, async (ctx) => {
      const { tx, account, params: p } = ctx;
      const inv = await load(tx, account, 'invoice', p.required('invoice'), { lock: true, param: 'invoice' });
      const amount = p.int('amount', { required: true, min: 1 })!;
      const outOfBand = p.int('out_of_band_amount', { min: 0 }) ?? 0;
      const memo = p.string('memo', { max: 5000 }) ?? null;
      const metadata = p.metadata() ?? {};
      const reason = p.string('reason', { oneOf: ['duplicate', 'fraudulent', 'order_change', 'product_unsatisfactory'] }) ?? null;
      p.string('email_type', { oneOf: ['credit_note', 'none'] });
      p.done();
      if (inv.status !== 'open' && inv.status !== 'paid') throw invalid(`Credit notes can only be issued on open or paid invoices; this one is ${inv.status}.`, 'invoice');
      // What is still due is credited before payment; anything beyond it was paid, and must say where it goes back.
      const pre = Math.min(amount - outOfBand, inv.amount_remaining);
      const post = amount - pre;
      if (pre < 0) throw invalid('out_of_band_amount cannot be more than the credit note amount.', 'out_of_band_amount');
      if (post !== outOfBand) {
        throw invalid(
          `The credit note amount (${amount}) exceeds what is still due (${inv.amount_remaining}): the part already paid must be given as refund_amount, credit_amount or out_of_band_amount.`,
          'amount',
        );
      }
      if (post > inv.amount_paid - inv.post_payment_credit_notes_amount) {
        throw invalid(`The post-payment credit (${post}) exceeds what was paid and not yet credited (${inv.amount_paid - inv.post_payment_credit_notes_amount}).`, 'out_of_band_amount');
      }
      const id = stripeId('cn');
      const [count] = await tx<{ n: number }[]>`SELECT count(*)::int AS n FROM stripe_objects WHERE account_id = ${account.id} AND object = 'credit_note' AND data->>'invoice' = ${inv.id}`;
      const note: CreditNote = {
        id,
        object: 'credit_note',
        amount,
        amount_shipping: 0,
        created: now(),
        currency: inv.currency,
        customer: inv.customer,
        discount_amount: 0,
        discount_amounts: [],
        invoice: inv.id,
        lines: {
          object: 'list',
          data: [
            {
              id: stripeId('cnli'),
              object: 'credit_note_line_item',
              amount,
              description: memo ?? 'Credit',
              discount_amount: 0,
              discount_amounts: [],
              livemode: false,
              metadata: {},
              pretax_credit_amounts: [],
              quantity: 1,
              tax_rates: [],
              type: 'custom_line_item',
              unit_amount: amount,
              unit_amount_decimal: String(amount),
            },
          ],
          has_more: false,
          url: `/v1/credit_notes/${id}/lines`,
        },
        livemode: false,
        memo,
        metadata,
        number: `${inv.number}-CN-${String(count!.n + 1).padStart(2, '0')}`,
        out_of_band_amount: outOfBand || null,
        // The sandbox renders no credit-note PDF; this address answers 404.
        pdf: `${deps.publicUrl().replace(/\/+$/, '')}/credit_notes/${id}/pdf`,
        post_payment_amount: post,
        pre_payment_amount: pre,
        pretax_credit_amounts: [],
        reason,
        refunds: [],
        status: 'issued',
        subtotal: amount,
        total: amount,
        type: pre > 0 && post > 0 ? 'mixed' : pre > 0 ? 'pre_payment' : 'post_payment',
        voided_at: null,
      };
      const credited = recompute({ ...inv, pre_payment_credit_notes_amount: inv.pre_payment_credit_notes_amount + pre, post_payment_credit_notes_amount: inv.post_payment_credit_notes_amount + post });
      // Credited down to nothing due: Stripe marks the invoice paid.
      const next = credited.status === 'open' && credited.amount_remaining === 0 ? markPaid(credited) : credited;
      await save(tx, next);
      await insert(tx, account, note);
      await emit(tx, account, 'credit_note.created', note, ctx.idempotencyKey);
      if (next.status === 'paid' && inv.status === 'open') await emit(tx, account, 'invoice.paid', next, ctx.idempotencyKey);
      kick(ctx);
      return note;
    }),
  );

  r.get('/credit_notes', async (req, res) => {
    const p = query(req);
    const invoice = p.string('invoice');
    res.json(await page<CreditNote>(sql, stripeAccount(res), 'credit_note', '/v1/credit_notes', p, invoice ? { invoice } : {}));
  });

  r.get('/credit_notes/:id', async (req, res) => {
    query(req).done();
    res.json(await load(sql, stripeAccount(res), 'credit_note', req.params.id));
  });

  r.post(
    '/credit_notes/:id/void',
    change(sql, async (ctx) => {
      const { tx, account, params: p, req } = ctx;
      p.done();
      const note = await load(tx, account, 'credit_note', String(req.params.id), { lock: true });
      if (note.status === 'void') throw invalid(`Credit note ${note.id} has already been voided.`);
      const inv = await load(tx, account, 'invoice', note.invoice, { lock: true });
      if (inv.status === 'void') throw invalid(`The credit note's invoice ${inv.id} is void.`);
      const restored = recompute({
        ...inv,
        pre_payment_credit_notes_amount: inv.pre_payment_credit_notes_amount - note.pre_payment_amount,
        post_payment_credit_notes_amount: inv.post_payment_credit_notes_amount - note.post_payment_amount,
      });
      // Owing again: the invoice is open again.
      const next: Invoice =
        restored.status === 'paid' && restored.amount_remaining > 0 ? { ...restored, status: 'open', status_transitions: { ...restored.status_transitions, paid_at: null } } : restored;
      const voided: CreditNote = { ...note, status: 'void', voided_at: now() };
      await save(tx, next);
      await save(tx, voided);
      await emit(tx, account, 'credit_note.voided', voided, ctx.idempotencyKey);
      kick(ctx);
      return voided;
    }),
  );

  // --- invoice payments --------------------------------------------------------------------------
  r.get('/invoice_payments', async (req, res) => {
    const p = query(req);
    const invoice = p.string('invoice');
    const status = p.string('status', { oneOf: ['canceled', 'open', 'paid'] });
    res.json(await page<InvoicePayment>(sql, stripeAccount(res), 'invoice_payment', '/v1/invoice_payments', p, { ...(invoice ? { invoice } : {}), ...(status ? { status } : {}) }));
  });

  r.get('/invoice_payments/:invoice_payment', async (req, res) => {
    query(req).done();
    res.json(await load(sql, stripeAccount(res), 'invoice_payment', req.params.invoice_payment));
  });

  // --- payment intents ---------------------------------------------------------------------------
  r.get('/payment_intents/:intent', async (req, res) => {
    const p = query(req);
    const expand = p.strings('expand') ?? [];
    p.done();
    const unknown = expand.find((e) => !PAYMENT_INTENT_EXPANSIONS.includes(e));
    if (unknown) throw invalid(`This property cannot be expanded (${unknown}).`, 'expand');
    const account = stripeAccount(res);
    const pi = await load(sql, account, 'payment_intent', req.params.intent, { param: 'intent' });
    if (expand.length === 0) return res.json(pi);
    // The charge and its balance transaction inline, as Stripe expands them (the fee is on the latter).
    const charge = await load(sql, account, 'charge', pi.latest_charge);
    const txn = expand.includes('latest_charge.balance_transaction') ? await load(sql, account, 'balance_transaction', charge.balance_transaction) : charge.balance_transaction;
    res.json({ ...pi, latest_charge: { ...charge, balance_transaction: txn } });
  });

  // --- webhook endpoints -------------------------------------------------------------------------
  r.post(
    '/webhook_endpoints',
    change(sql, async ({ tx, account, params: p }) => {
      const url = p.required('url', { max: 5000 });
      if (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol)) throw invalid(`Invalid URL: ${url}`, 'url', 'url_invalid');
      const e: WebhookEndpoint = {
        id: stripeId('we'),
        object: 'webhook_endpoint',
        api_version: p.string('api_version') ?? null,
        application: null,
        created: now(),
        description: p.string('description', { max: 5000 }) ?? null,
        enabled_events: p.strings('enabled_events', { required: true })!,
        livemode: false,
        metadata: p.metadata() ?? {},
        secret: newToken('whsec_'),
        status: 'enabled',
        url,
      };
      p.done();
      if (e.api_version !== null && e.api_version !== STRIPE_SANDBOX_API_VERSION) throw invalid(`This sandbox sends events in API version ${STRIPE_SANDBOX_API_VERSION} only.`, 'api_version');
      await insert(tx, account, e);
      return e;
    }),
  );

  r.get('/webhook_endpoints', async (req, res) => {
    const list = await page<WebhookEndpoint>(sql, stripeAccount(res), 'webhook_endpoint', '/v1/webhook_endpoints', query(req));
    res.json({ ...list, data: list.data.map(publicEndpoint) });
  });

  r.get('/webhook_endpoints/:webhook_endpoint', async (req, res) => {
    query(req).done();
    res.json(publicEndpoint(await load(sql, stripeAccount(res), 'webhook_endpoint', req.params.webhook_endpoint)));
  });

  r.post(
    '/webhook_endpoints/:webhook_endpoint',
    change(sql, async ({ tx, account, params: p, req }) => {
      const e = await load(tx, account, 'webhook_endpoint', String(req.params.webhook_endpoint), { lock: true });
      const url = p.string('url', { max: 5000 });
      if (url !== undefined && (!URL.canParse(url) || !['http:', 'https:'].includes(new URL(url).protocol))) throw invalid(`Invalid URL: ${url}`, 'url', 'url_invalid');
      const events = p.strings('enabled_events');
      const disabled = p.bool('disabled');
      const metadata = p.metadata();
      const description = p.string('description', { max: 5000 });
      p.done();
      const next: WebhookEndpoint = {
        ...e,
        ...(url !== undefined ? { url } : {}),
        ...(events ? { enabled_events: events } : {}),
        ...(disabled !== undefined ? { status: disabled ? 'disabled' : 'enabled' } : {}),
        ...(metadata ? { metadata: mergeMetadata(e.metadata, metadata) } : {}),
        ...(description !== undefined ? { description } : {}),
      };
      await save(tx, next);
      return publicEndpoint(next);
    }),
  );

  r.delete(
    '/webhook_endpoints/:webhook_endpoint',
    change(sql, async ({ tx, account, params: p, req }) => {
      p.done();
      const e = await load(tx, account, 'webhook_endpoint', String(req.params.webhook_endpoint), { lock: true });
      await tx`DELETE FROM stripe_objects WHERE id = ${e.id}`;
      // What was queued for it is not sent any more.
      await tx`UPDATE webhook_deliveries SET next_attempt_at = NULL WHERE account_id = ${account.id} AND id LIKE ${`%.${e.id}`} AND delivered_at IS NULL`;
      return { id: e.id, object: 'webhook_endpoint', deleted: true };
    }),
  );

  // --- events ------------------------------------------------------------------------------------
  r.get('/events', async (req, res) => {
    const p = query(req);
    const type = p.string('type');
    res.json(await page(sql, stripeAccount(res), 'event', '/v1/events', p, type ? { type } : {}));
  });

  r.get('/events/:id', async (req, res) => {
    query(req).done();
    res.json(await load(sql, stripeAccount(res), 'event', req.params.id));
  });

  r.use((req) => {
    throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${req.method}: ${req.baseUrl}${req.path}). The sandbox models only the part of Stripe's API billflow uses.`);
  });
  return r;
}

function mergeMetadata(cur: Record<string, string>, patch: Record<string, string>): Record<string, string> {
  const out = { ...cur };
  for (const [k, v] of Object.entries(patch)) {
    if (v === '') delete out[k];
    else out[k] = v;
  }
  return out;
}

function addLine(inv: Invoice, item: InvoiceItem): Invoice {
  const line: LineItem = {
    id: stripeId('il'),
    object: 'line_item',
    amount: item.amount,
    currency: item.currency,
    description: item.description,
    discountable: item.discountable,
    discounts: [],
    invoice: inv.id,
    livemode: false,
    metadata: item.metadata,
    parent: null,
    period: item.period,
    quantity: item.quantity,
    subtotal: item.amount,
  };
  return recompute({ ...inv, lines: { ...inv.lines, data: [...inv.lines.data, line] } });
}

export function markPaid(inv: Invoice): Invoice {
  return { ...inv, amount_remaining: 0, status: 'paid', status_transitions: { ...inv.status_transitions, paid_at: now() } };
}
