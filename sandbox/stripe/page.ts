/**
 * The Stripe mode's hosted invoice page (`hosted_invoice_url`, /i/<token>): the Bill & Pay page's
 * look and card form (sandbox/pay-page.ts), for one invoice in its own currency. Paying on it is
 * money collected through Stripe: an invoice payment of a PaymentIntent, and the events
 * `invoice_payment.paid` (and `invoice.paid` once nothing is due). The payer may pay part of what
 * is due (Stripe's own page does so only where partial payments are turned on).
 *
 * Stable ids for browser tests: the form fields as on the Bill & Pay page (#amount, #payerName,
 * #payerEmail, #cardNumber, #expiry, #cvc, button "Pay"), #amount-due; confirmation #payment-id,
 * #total-charged; #paid-in-full on a paid invoice, #invoice-void on a void one.
 */
import express, { type ErrorRequestHandler, type Response } from 'express';
import { formatMoney } from '../../domain/money.js';
import type { Sql } from '../../lib/db.js';
import { newToken } from '../ids.js';
import type { AccountRow, Db } from '../model.js';
import { amountText, cardFields, checkFields, dateText, field, html, layout, messagePage, overBalance, parseAmount, readForm, sendPage, TEST_CARDS, type Html, type Problem } from '../pay-page.js';
import type { WebhookDispatcher } from '../webhooks.js';
import { markPaid } from './api.js';
import { emit } from './events.js';
import { cardCharge, insert, now, recompute, save, stripeId, type Invoice, type InvoicePayment } from './store.js';

export interface HostedPageDeps {
  sql: Sql;
  webhooks: WebhookDispatcher;
  log: (msg: string) => void;
}

interface Found {
  inv: Invoice;
  formToken: string;
  account: AccountRow;
}

const day = (unix: number) => new Date(unix * 1000).toISOString().slice(0, 10);

function facts(inv: Invoice): Html {
  const money = (m: number) => formatMoney(m, inv.currency.toUpperCase());
  return html`<dl class="facts">
  <div><dt>From</dt><dd id="company-name">${inv.account_name}</dd></div>
  <div><dt>Invoice number</dt><dd id="invoice-number">${inv.number ?? inv.id}</dd></div>
  ${inv.metadata.billflow_number ? html`<div><dt>Reference</dt><dd id="reference">${inv.metadata.billflow_number}</dd></div>` : ''}
  ${inv.due_date ? html`<div><dt>Due</dt><dd id="due-date">${dateText(day(inv.due_date))}</dd></div>` : ''}
  <div><dt>Amount due</dt><dd id="amount-due">${money(inv.amount_remaining)}</dd></div>
</dl>`;
}

type Input = ReturnType<typeof readForm>;

function formPage(found: Found, input: Omit<Input, 'cardNumber' | 'cvc' | 'formToken'>, problems: Problem[]): Html {
  const { inv } = found;
  const currency = inv.currency.toUpperCase();
  const view = { input, problems };
  const body = html`<h1>Pay invoice ${inv.number ?? inv.id}</h1>
${facts(inv)}
${problems.length ? html`<div id="errors" class="errors" role="alert"><h2>The payment was not made</h2><ul>${problems.map((p) => html`<li>${p.message}</li>`)}</ul></div>` : ''}
<form id="pay-form" method="post" novalidate>
<input type="hidden" name="formToken" value="${found.formToken}">
<fieldset><legend>Payment</legend>
${field(view, 'amount', `Amount to pay (${currency})`, html`type="text" inputmode="decimal" autocomplete="off" required`, `Up to ${formatMoney(inv.amount_remaining, currency)}; you may pay part of it.`)}
</fieldset>
${cardFields(view)}
<button type="submit">Pay</button>
</form>
<p class="note">Stripe test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined; any future expiry and any CVC.</p>`;
  return layout(`Pay invoice ${inv.number ?? inv.id} · ${inv.account_name}`, inv.account_name, body);
}

function statusPage(inv: Invoice): Html {
  const paid = inv.status === 'paid';
  return layout(
    `Invoice ${inv.number ?? inv.id} · ${inv.account_name}`,
    inv.account_name,
    html`<h1>Invoice ${inv.number ?? inv.id}</h1>
${paid ? html`<p class="paid" id="paid-in-full">Paid</p>` : html`<p class="paid" id="invoice-void">This invoice is void</p>`}
${facts(inv)}
<p class="note">${paid ? 'Nothing is left to pay on this invoice. Thank you.' : `${inv.account_name} has voided this invoice: nothing can be paid on it. If you received a newer invoice, use the link in it.`}</p>`,
  );
}

function confirmationPage(inv: Invoice, p: InvoicePayment, payer: string): Html {
  const money = (m: number) => formatMoney(m, inv.currency.toUpperCase());
  return layout(
    `Payment received · ${inv.account_name}`,
    inv.account_name,
    html`<h1>Payment received</h1>
<p>Thank you, ${payer}. Your payment to ${inv.account_name} was successful.</p>
<dl class="facts">
  <div><dt>Payment id</dt><dd><code id="payment-id">${p.id}</code></dd></div>
  <div><dt>Invoice</dt><dd>${inv.number ?? inv.id}</dd></div>
  <div><dt>Total charged</dt><dd id="total-charged">${money(p.amount_paid ?? 0)}</dd></div>
</dl>
<p><a href="${new URL(inv.hosted_invoice_url!).pathname}">Back to the invoice</a></p>`,
  );
}

export function hostedPageRouter(deps: HostedPageDeps): express.Router {
  const { sql } = deps;
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '32kb' }));

  async function find(token: string, db: Db = sql, lock = false): Promise<Found | null> {
    const [row] = await db<{ data: Invoice; form_token: string; account_id: string }[]>`
      SELECT data, form_token, account_id FROM stripe_objects WHERE token = ${token} AND object = 'invoice' ${lock ? db`FOR UPDATE` : db``}`;
    if (!row) return null;
    const [account] = await db<AccountRow[]>`SELECT * FROM accounts WHERE id = ${row.account_id}`;
    return { inv: row.data, formToken: row.form_token, account: account! };
  }
  const notFound = (res: Response) => sendPage(res, 404, messagePage('Invoice not found', 'Check that the link is complete, or ask the sender for a new one.', null));

  r.get('/:token', async (req, res) => {
    const found = await find(req.params.token);
    if (!found) return notFound(res);
    if (found.inv.status !== 'open') return sendPage(res, 200, statusPage(found.inv));
    sendPage(res, 200, formPage(found, { amount: amountText(found.inv.amount_remaining), invoices: [], payerName: '', payerEmail: '', expiry: '' }, []));
  });

  r.post('/:token', async (req, res) => {
    const input = readForm(req.body);
    const found = await find(req.params.token);
    if (!found) return notFound(res);
    // A re-posted form that already paid shows its receipt again instead of paying twice.
    const [earlier] = await sql<{ data: InvoicePayment }[]>`
      SELECT data FROM stripe_objects WHERE object = 'invoice_payment' AND form_token = ${input.formToken} AND account_id = ${found.account.id}`;
    if (earlier) return sendPage(res, 200, confirmationPage(found.inv, earlier.data, input.payerName));
    if (found.inv.status !== 'open') return sendPage(res, 409, statusPage(found.inv));
    const currency = found.inv.currency.toUpperCase();
    const problems = checkFields(input, found.inv.amount_remaining, currency, new Date());
    if (problems.length) return sendPage(res, 422, formPage(found, input, problems));
    if (TEST_CARDS[input.cardNumber] === 'decline') {
      return sendPage(res, 402, formPage(found, input, [{ field: 'cardNumber', message: 'Your card was declined. Nothing was charged; try another card.' }]));
    }
    const amount = parseAmount(input.amount)!;
    const outcome = await sql.begin(async (tx) => {
      const locked = (await find(req.params.token, tx, true))!;
      if (locked.formToken !== input.formToken) return { kind: 'stale' as const, found: locked };
      if (locked.inv.status !== 'open') return { kind: 'closed' as const, found: locked };
      if (amount > locked.inv.amount_remaining) return { kind: 'over' as const, found: locked };
      const t = now();
      const charged = cardCharge(locked.inv, amount, t, { name: input.payerName || null, email: input.payerEmail || null });
      for (const obj of charged.objects) await insert(tx, locked.account, obj);
      const payment: InvoicePayment = {
        id: stripeId('inpay'),
        object: 'invoice_payment',
        amount_paid: amount,
        amount_requested: amount,
        created: t,
        currency: locked.inv.currency,
        invoice: locked.inv.id,
        is_default: false,
        livemode: false,
        payment: { type: 'payment_intent', payment_intent: charged.intent },
        status: 'paid',
        status_transitions: { canceled_at: null, paid_at: t },
      };
      const paid = recompute({ ...locked.inv, amount_paid: locked.inv.amount_paid + amount });
      const inv = paid.amount_remaining === 0 ? markPaid(paid) : paid;
      await insert(tx, locked.account, payment, { formToken: input.formToken });
      await save(tx, inv, { formToken: newToken() });
      await emit(tx, locked.account, 'invoice_payment.paid', payment, null);
      if (inv.status === 'paid') await emit(tx, locked.account, 'invoice.paid', inv, null);
      return { kind: 'paid' as const, payment, inv };
    });
    if (outcome.kind === 'paid') {
      deps.webhooks.kick();
      return sendPage(res, 200, confirmationPage(outcome.inv, outcome.payment, input.payerName));
    }
    if (outcome.kind === 'closed') return sendPage(res, 409, statusPage(outcome.found.inv));
    const problem: Problem =
      outcome.kind === 'over'
        ? overBalance(outcome.found.inv.amount_remaining, currency)
        : { field: null, message: 'This page was out of date (the amount due changed after it was opened). Check the amount and pay again.' };
    sendPage(res, 409, formPage(outcome.found, input, [problem]));
  });

  const errorPage: ErrorRequestHandler = (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    deps.log(`hosted invoice page: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendPage(res, 500, messagePage('Something went wrong', 'Nothing was charged. Please try again in a moment.', null));
  };
  r.use(errorPage);
  return r;
}
