/**
 * The hosted Pay Now page: server-rendered HTML with plain forms (works without JavaScript; a
 * small inline script only refreshes the fee and total while the payer types), no external assets.
 * Its look, fields and checks are exported for the Stripe mode's hosted invoice page (sandbox/stripe/page.ts).
 *
 * Stable form fields for browser tests, each with a `<label for>`:
 *   amount      #amount          decimal string, e.g. 123.45; defaults to the outstanding balance
 *   invoice     #invoice-<id>    checkbox per other open invoice of the customer (paid in full); value = its id
 *   payerName   #payerName
 *   payerEmail  #payerEmail
 *   cardNumber  #cardNumber      4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined
 *   expiry      #expiry          MM/YY
 *   cvc         #cvc
 *   formToken   hidden; one-time, so a re-posted form cannot pay twice
 *   submit      button "Pay"
 * Other ids: #outstanding, #summary-payment, #summary-fee, #summary-total, #errors (summary),
 * #<field>-error; confirmation: #payment-id, #total-charged; paid invoice: #paid-in-full.
 */
import { createHash } from 'node:crypto';
import express, { type ErrorRequestHandler, type Response } from 'express';
import { formatMoney } from '../domain/money.js';
import type { Sql } from '../lib/db.js';
import { newToken } from './ids.js';
import { feeRuleOf, findPayment, type AccountRow, type Db, type PaymentRow } from './model.js';
import { MAX_MINOR } from './openapi.js';
import { AllocationError, convenienceFee, lockInvoices, recordPayment } from './payments.js';
import type { WebhookDispatcher } from './webhooks.js';

export interface PayPageDeps {
  sql: Sql;
  webhooks: WebhookDispatcher;
  log: (msg: string) => void;
}

/** Amounts as the payer reads them, in the invoice's (or payment's) currency. */
const moneyIn = (currency: string) => (minor: number) => formatMoney(minor, currency);

/** Sandbox test cards, as payment providers' test modes have them. */
export const TEST_CARDS: Record<string, 'approve' | 'decline'> = {
  '4242424242424242': 'approve',
  '4000000000000002': 'decline',
};

// --- HTML with escaping by default ------------------------------------------------------------------

export class Html {
  constructor(readonly text: string) {}
}

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

type Part = Html | string | number | false | null | undefined | readonly Part[];

function renderValue(v: Part): string {
  if (v instanceof Html) return v.text;
  if (typeof v === 'string' || typeof v === 'number') return escape(String(v));
  if (v === null || v === undefined || v === false) return '';
  return v.map(renderValue).join('');
}

/** Template tag: interpolated values are escaped unless they are already Html. */
export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  return new Html(strings.reduce((out, s, i) => out + renderValue(values[i - 1]) + s));
}

const CSS = `
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans",sans-serif;color:#1d2733;background:#f3f5f8}
.bar{display:flex;justify-content:space-between;align-items:center;padding:.75rem 1.5rem;background:#17324d;color:#fff}
.company{font-weight:600}.badge{font-size:.75rem;padding:.1rem .5rem;border:1px solid #fff;border-radius:1rem}
main{max-width:36rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{margin:0 0 1rem;font-size:1.5rem}dl{margin:0}.facts div,.summary div{display:flex;justify-content:space-between;padding:.25rem 0;border-bottom:1px solid #e4e8ee}
dt{color:#556}dd{margin:0;font-weight:600}fieldset{border:0;margin:1.25rem 0 0;padding:0}legend{font-weight:600;margin-bottom:.5rem}
.field{margin-bottom:.75rem}label{display:block;margin-bottom:.2rem}input[type=text],input[type=email]{width:100%;padding:.5rem;font:inherit;border:1px solid #9aa5b1;border-radius:.25rem}
input[aria-invalid=true]{border-color:#b00020}.row{display:flex;gap:.75rem}.row .field{flex:1}
.check{display:flex;gap:.5rem;align-items:baseline}.check label{display:inline}
.hint{margin:.2rem 0 0;font-size:.875rem;color:#556}.error{margin:.2rem 0 0;font-size:.875rem;color:#b00020}
.errors{margin:1rem 0;padding:.75rem 1rem;border:2px solid #b00020;border-radius:.25rem}.errors h2{margin:0;font-size:1rem}
.summary{margin:1.25rem 0}.summary .total{font-size:1.125rem;border-bottom:0}
button{width:100%;padding:.75rem;font:inherit;font-weight:600;color:#fff;background:#0b6e4f;border:0;border-radius:.25rem;cursor:pointer}
.note{margin-top:1.25rem;font-size:.875rem;color:#556}.paid{font-size:1.25rem;font-weight:600;color:#0b6e4f}
table{width:100%;border-collapse:collapse;margin:1rem 0}td,th{text-align:left;padding:.25rem 0;border-bottom:1px solid #e4e8ee}td:last-child,th:last-child{text-align:right}
`;

/** Keeps the fee and total current while the payer types; the server answers with the same rule it charges by. */
const SCRIPT = `
(function () {
  var form = document.getElementById('pay-form');
  if (!form || !window.fetch) return;
  var ids = ['payment', 'fee', 'total'];
  var seq = 0;
  function update(event) {
    var name = event.target && event.target.name;
    if (name !== 'amount' && name !== 'invoice') return;
    var q = new URLSearchParams();
    q.set('amount', form.elements.amount.value);
    form.querySelectorAll('input[name="invoice"]:checked').forEach(function (box) { q.append('invoice', box.value); });
    var mine = ++seq;
    fetch(form.getAttribute('data-quote') + '?' + q.toString(), { headers: { accept: 'application/json' } })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (quote) {
        if (mine !== seq) return;
        ids.forEach(function (id) { document.getElementById('summary-' + id).textContent = (quote && quote[id]) || '—'; });
      })
      .catch(function () {});
  }
  form.addEventListener('input', update);
  form.addEventListener('change', update);
})();
`;

const cspHash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
/** Only our own inline style and script run; the pay token in the URL never leaves as a referrer. */
const PAGE_HEADERS = {
  'Content-Security-Policy': `default-src 'none'; style-src ${cspHash(CSS)}; script-src ${cspHash(SCRIPT)}; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export function layout(title: string, company: string | null, body: Html, withScript = false): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>${new Html(CSS)}</style>
</head>
<body>
<header class="bar"><span class="company">${company ?? 'Bill & Pay'}</span><span class="badge">Sandbox</span></header>
<main>
${body}
</main>
${withScript ? html`<script>${new Html(SCRIPT)}</script>` : ''}
</body>
</html>`;
}

export function sendPage(res: Response, status: number, page: Html): void {
  res.status(status).set(PAGE_HEADERS).type('html').send(page.text);
}

// --- data -------------------------------------------------------------------------------------------

interface PageInvoice {
  id: string;
  account_id: string;
  customer_id: string;
  number: string;
  invoice_date: string;
  outstanding: number;
  status: 'open' | 'paid';
  currency: string;
  pay_token: string;
  form_token: string;
  has_pdf: boolean;
  deleted_at: Date | null;
  account_name: string;
  fee_fixed: number;
  fee_percent_bps: number;
}

interface OtherInvoice {
  id: string;
  number: string;
  invoice_date: string;
  outstanding: number;
}

async function invoiceByToken(db: Db, token: string): Promise<PageInvoice | undefined> {
  const [row] = await db<PageInvoice[]>`
    SELECT i.id, i.account_id, i.customer_id, i.number, i.invoice_date::text AS invoice_date, i.outstanding, i.status, i.currency,
           i.pay_token, i.form_token, i.pdf IS NOT NULL AS has_pdf, i.deleted_at, a.name AS account_name, a.fee_fixed, a.fee_percent_bps
    FROM invoices i JOIN accounts a ON a.id = i.account_id
    WHERE i.pay_token = ${token}`;
  return row;
}

/** The customer's other open invoices of the same account and currency: they can be paid in the same payment. */
async function otherOpenInvoices(db: Db, inv: PageInvoice): Promise<OtherInvoice[]> {
  return db<OtherInvoice[]>`
    SELECT id, number, invoice_date::text AS invoice_date, outstanding FROM invoices
    WHERE account_id = ${inv.account_id} AND customer_id = ${inv.customer_id} AND id <> ${inv.id}
      AND deleted_at IS NULL AND status = 'open' AND currency = ${inv.currency}
    ORDER BY invoice_date, number`;
}

// --- the form ---------------------------------------------------------------------------------------

export type Field = 'amount' | 'invoice' | 'payerName' | 'payerEmail' | 'cardNumber' | 'expiry' | 'cvc';
export type Problem = { field: Field | null; message: string };

export interface FormInput {
  amount: string;
  invoices: string[];
  payerName: string;
  payerEmail: string;
  cardNumber: string;
  expiry: string;
  cvc: string;
  formToken: string;
}

export function readForm(body: unknown): FormInput {
  const b = (body ?? {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v.trim() : '');
  const many = (v: unknown) => (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x !== '');
  return {
    amount: text(b.amount),
    invoices: [...new Set(many(b.invoice))],
    payerName: text(b.payerName),
    payerEmail: text(b.payerEmail),
    cardNumber: text(b.cardNumber).replace(/[\s-]/g, ''),
    expiry: text(b.expiry),
    cvc: text(b.cvc),
    formToken: text(b.formToken),
  };
}

/** "1,234.5", "$1234.50" or "€1,234.50" -> 123450 minor units; null when it is not an amount. No floats involved. */
export function parseAmount(text: string): number | null {
  const m = /^(?:[^\d\s.,]{1,3}\s*)?(\d{1,3}(?:,\d{3})+|\d{1,13})(?:\.(\d{1,2}))?$/.exec(text);
  if (!m) return null;
  const minor = Number(m[1]!.replaceAll(',', '')) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return minor <= MAX_MINOR ? minor : null;
}

export function amountText(minor: number): string {
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}

function expiryProblem(expiry: string, now: Date): string | null {
  const m = /^(\d{1,2})\s*\/\s*(\d{2})$/.exec(expiry);
  const month = Number(m?.[1]);
  if (!m || month < 1 || month > 12) return 'Enter the expiry date as MM/YY.';
  const expires = (2000 + Number(m[2])) * 12 + month;
  return expires < now.getUTCFullYear() * 12 + now.getUTCMonth() + 1 ? 'The card has expired.' : null;
}

export const overBalance = (outstanding: number, currency: string): Problem => ({
  field: 'amount',
  message: `The amount can be at most ${moneyIn(currency)(outstanding)}, the outstanding balance.`,
});

/**
 * Every problem with the fields at once, so the payer fixes them in one go. The balance check
 * here only words the message early; recordPayment enforces it under a lock.
 */
export function checkFields(f: FormInput, outstanding: number, currency: string, now: Date): Problem[] {
  const problems: Problem[] = [];
  const amount = parseAmount(f.amount);
  if (amount === null) problems.push({ field: 'amount', message: 'Enter the amount to pay, e.g. 125.00.' });
  else if (amount < 1) problems.push({ field: 'amount', message: `The amount must be at least ${moneyIn(currency)(1)}.` });
  else if (amount > outstanding) problems.push(overBalance(outstanding, currency));
  if (!f.payerName) problems.push({ field: 'payerName', message: 'Enter the name on the card.' });
  else if (f.payerName.length > 200) problems.push({ field: 'payerName', message: 'The name is too long.' });
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(f.payerEmail) || f.payerEmail.length > 320) {
    problems.push({ field: 'payerEmail', message: 'Enter an email address, e.g. name@example.com.' });
  }
  if (!/^\d{12,19}$/.test(f.cardNumber)) problems.push({ field: 'cardNumber', message: 'Enter the card number.' });
  else if (!TEST_CARDS[f.cardNumber]) {
    problems.push({ field: 'cardNumber', message: 'This card is not accepted in the sandbox: use 4242 4242 4242 4242.' });
  }
  const expiry = expiryProblem(f.expiry, now);
  if (expiry) problems.push({ field: 'expiry', message: expiry });
  if (!/^\d{3,4}$/.test(f.cvc)) problems.push({ field: 'cvc', message: 'Enter the 3 or 4 digit security code.' });
  return problems;
}

interface Quote {
  payment: number;
  fee: number;
  total: number;
}

/** What the payer will be charged: the amount, the checked invoices in full, and the fee on their sum. */
function quote(inv: PageInvoice, others: readonly OtherInvoice[], amount: string, checked: readonly string[]): Quote | null {
  const main = parseAmount(amount);
  if (main === null) return null;
  const payment = main + others.filter((o) => checked.includes(o.id)).reduce((s, o) => s + o.outstanding, 0);
  const fee = convenienceFee(payment, feeRuleOf(inv));
  return { payment, fee, total: payment + fee };
}

export const dateText = (isoDay: string) => new Intl.DateTimeFormat('en-US', { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(`${isoDay}T00:00:00Z`));

function feeRuleText(inv: PageInvoice): string {
  const money = moneyIn(inv.currency);
  const parts = [inv.fee_fixed > 0 ? money(inv.fee_fixed) : null, inv.fee_percent_bps > 0 ? `${inv.fee_percent_bps / 100}% of the payment` : null].filter(Boolean);
  return parts.length ? `Convenience fee: ${parts.join(' + ')}.` : 'No convenience fee.';
}

function invoiceFacts(inv: PageInvoice): Html {
  const money = moneyIn(inv.currency);
  return html`<dl class="facts">
  <div><dt>From</dt><dd id="company-name">${inv.account_name}</dd></div>
  <div><dt>Invoice number</dt><dd id="invoice-number">${inv.number}</dd></div>
  <div><dt>Invoice date</dt><dd id="invoice-date">${dateText(inv.invoice_date)}</dd></div>
  <div><dt>Outstanding balance</dt><dd id="outstanding">${money(inv.outstanding)}</dd></div>
</dl>
${inv.has_pdf ? html`<p><a id="invoice-pdf" href="/pay/${inv.pay_token}/pdf">View the invoice (PDF)</a></p>` : ''}`;
}

interface FormView {
  inv: PageInvoice;
  others: OtherInvoice[];
  input: Omit<FormInput, 'cardNumber' | 'cvc' | 'formToken'>;
  problems: Problem[];
}

export function field(view: Pick<FormView, 'input' | 'problems'>, name: Exclude<Field, 'invoice'>, label: string, attrs: Html, hint?: string): Html {
  const problem = view.problems.find((p) => p.field === name);
  // Card number and CVC are never echoed back into a page.
  const value = name === 'cardNumber' || name === 'cvc' ? '' : view.input[name];
  const describedBy = [hint ? `${name}-hint` : null, problem ? `${name}-error` : null].filter(Boolean).join(' ');
  return html`<div class="field">
  <label for="${name}">${label}</label>
  <input id="${name}" name="${name}" value="${value}" ${attrs}${problem ? html` aria-invalid="true"` : ''}${describedBy ? html` aria-describedby="${describedBy}"` : ''}>
  ${hint ? html`<p class="hint" id="${name}-hint">${hint}</p>` : ''}
  ${problem ? html`<p class="error" id="${name}-error">${problem.message}</p>` : ''}
</div>`;
}

/** The card's fields, as every payment page of the sandbox asks for them. */
export function cardFields(view: Pick<FormView, 'input' | 'problems'>): Html {
  return html`<fieldset><legend>Card</legend>
${field(view, 'payerName', 'Name on card', html`type="text" autocomplete="cc-name" required`)}
${field(view, 'payerEmail', 'Email', html`type="email" autocomplete="email" required`)}
${field(view, 'cardNumber', 'Card number', html`type="text" inputmode="numeric" autocomplete="cc-number" required`)}
<div class="row">
${field(view, 'expiry', 'Expiry (MM/YY)', html`type="text" inputmode="numeric" autocomplete="cc-exp" placeholder="MM/YY" required`)}
${field(view, 'cvc', 'Security code (CVC)', html`type="text" inputmode="numeric" autocomplete="cc-csc" required`)}
</div>
</fieldset>`;
}

function formPage(view: FormView): Html {
  const { inv, others, input, problems } = view;
  const money = moneyIn(inv.currency);
  const q = quote(inv, others, input.amount, input.invoices);
  const invoiceProblem = problems.find((p) => p.field === 'invoice');
  const body = html`<h1>Pay invoice ${inv.number}</h1>
${invoiceFacts(inv)}
${
  problems.length
    ? html`<div id="errors" class="errors" role="alert"><h2>The payment was not made</h2><ul>${problems.map(
        (p) => html`<li>${p.field ? html`<a href="#${p.field === 'invoice' ? 'invoice-error' : p.field}">${p.message}</a>` : p.message}</li>`,
      )}</ul></div>`
    : ''
}
<form id="pay-form" method="post" action="/pay/${inv.pay_token}" data-quote="/pay/${inv.pay_token}/quote" novalidate>
<input type="hidden" name="formToken" value="${inv.form_token}">
<fieldset><legend>Payment</legend>
${field(view, 'amount', `Amount to pay (${inv.currency})`, html`type="text" inputmode="decimal" autocomplete="off" required`, `Up to ${money(inv.outstanding)}; you may pay part of the balance.`)}
${
  others.length
    ? html`<fieldset><legend>Also pay other open invoices (in full)</legend>
${others.map(
  (o) => html`<div class="check"><input type="checkbox" id="invoice-${o.id}" name="invoice" value="${o.id}"${input.invoices.includes(o.id) ? html` checked` : ''}>
<label for="invoice-${o.id}">Invoice ${o.number} of ${dateText(o.invoice_date)}: ${money(o.outstanding)}</label></div>`,
)}
${invoiceProblem ? html`<p class="error" id="invoice-error">${invoiceProblem.message}</p>` : ''}
</fieldset>`
    : ''
}
</fieldset>
${cardFields(view)}
<section class="summary" aria-live="polite"><dl>
  <div><dt>Payment</dt><dd id="summary-payment">${q ? money(q.payment) : '—'}</dd></div>
  <div><dt>Convenience fee</dt><dd id="summary-fee">${q ? money(q.fee) : '—'}</dd></div>
  <div class="total"><dt>Total charged</dt><dd id="summary-total">${q ? money(q.total) : '—'}</dd></div>
</dl><p class="hint" id="fee-rule">${feeRuleText(inv)}</p></section>
<button type="submit">Pay</button>
</form>
<p class="note">Sandbox test cards: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined; any future expiry and any CVC.</p>`;
  return layout(`Pay invoice ${inv.number} · ${inv.account_name}`, inv.account_name, body, true);
}

function paidPage(inv: PageInvoice): Html {
  return layout(
    `Invoice ${inv.number} · ${inv.account_name}`,
    inv.account_name,
    html`<h1>Invoice ${inv.number}</h1>
<p class="paid" id="paid-in-full">Paid in full</p>
${invoiceFacts(inv)}
<p class="note">Nothing is left to pay on this invoice. Thank you.</p>`,
  );
}

function confirmationPage(inv: PageInvoice, p: PaymentRow): Html {
  const money = moneyIn(p.currency);
  return layout(
    `Payment received · ${inv.account_name}`,
    inv.account_name,
    html`<h1>Payment received</h1>
<p>Thank you${p.payer_name ? html`, ${p.payer_name}` : ''}. Your payment to ${inv.account_name} was successful.</p>
<dl class="facts">
  <div><dt>Payment id</dt><dd><code id="payment-id">${p.id}</code></dd></div>
  <div><dt>Paid on</dt><dd>${new Intl.DateTimeFormat('en-US', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(p.paid_at)} UTC</dd></div>
  ${p.card_last4 ? html`<div><dt>Card</dt><dd>ending in ${p.card_last4}</dd></div>` : ''}
</dl>
<table>
<thead><tr><th>Invoice</th><th>Paid</th></tr></thead>
<tbody>
${p.allocations.map((a) => html`<tr><td>${a.invoiceNumber}</td><td>${money(a.amount)}</td></tr>`)}
<tr><td>Convenience fee</td><td id="fee-charged">${money(p.fee)}</td></tr>
<tr><th>Total charged</th><th id="total-charged">${money(p.amount + p.fee)}</th></tr>
</tbody>
</table>
<p><a href="/pay/${inv.pay_token}">Back to the invoice</a></p>`,
  );
}

export function messagePage(title: string, message: string, company: string | null): Html {
  return layout(title, company, html`<h1>${title}</h1><p>${message}</p>`);
}

// --- routes -----------------------------------------------------------------------------------------

type Outcome = { kind: 'paid'; payment: PaymentRow } | { kind: 'invalid'; problems: Problem[]; status: number } | { kind: 'gone' };

export function payPageRouter(deps: PayPageDeps): express.Router {
  const { sql } = deps;
  const r = express.Router();
  r.use(express.urlencoded({ extended: false, limit: '32kb' }));

  const notFound = () => messagePage('Payment link not found', 'Check that the link is complete, or ask the sender for a new one.', null);
  const gone = (inv: PageInvoice) =>
    messagePage('This invoice is no longer payable', `${inv.account_name} has withdrawn invoice ${inv.number}. If you received a newer invoice, use the payment link in it.`, inv.account_name);

  /** The form again, with the invoice as it is now: after a rejected submit nothing was recorded. */
  async function renderForm(res: Response, payToken: string, status: number, input: FormInput, problems: Problem[]) {
    const inv = await invoiceByToken(sql, payToken);
    if (!inv) return sendPage(res, 404, notFound());
    if (inv.deleted_at) return sendPage(res, 410, gone(inv));
    if (inv.status === 'paid') return sendPage(res, status, paidPage(inv));
    sendPage(res, status, formPage({ inv, others: await otherOpenInvoices(sql, inv), input, problems }));
  }

  r.get('/:token', async (req, res) => {
    const inv = await invoiceByToken(sql, req.params.token);
    if (!inv) return sendPage(res, 404, notFound());
    if (inv.deleted_at) return sendPage(res, 410, gone(inv));
    if (inv.status === 'paid') return sendPage(res, 200, paidPage(inv));
    const input = { amount: amountText(inv.outstanding), invoices: [], payerName: '', payerEmail: '', expiry: '' };
    sendPage(res, 200, formPage({ inv, others: await otherOpenInvoices(sql, inv), input, problems: [] }));
  });

  r.get('/:token/pdf', async (req, res) => {
    const [row] = await sql<{ pdf: Buffer | null; number: string; deleted_at: Date | null; account_name: string }[]>`
      SELECT i.pdf, i.number, i.deleted_at, a.name AS account_name
      FROM invoices i JOIN accounts a ON a.id = i.account_id WHERE i.pay_token = ${req.params.token}`;
    if (!row || !row.pdf) return sendPage(res, 404, notFound());
    if (row.deleted_at) return sendPage(res, 410, messagePage('This invoice is no longer payable', `Invoice ${row.number} was withdrawn.`, row.account_name));
    res
      .set({ 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' })
      .type('application/pdf')
      .set('Content-Disposition', `inline; filename="invoice-${row.number.replace(/[^\w.-]/g, '_')}.pdf"`)
      .send(row.pdf);
  });

  /** The figures of the summary box for an amount and a set of checked invoices (used by the page's script). */
  r.get('/:token/quote', async (req, res) => {
    const inv = await invoiceByToken(sql, req.params.token);
    if (!inv || inv.deleted_at) {
      res.status(404).json({ error: 'unknown payment link' });
      return;
    }
    const amount = typeof req.query.amount === 'string' ? req.query.amount.trim() : '';
    const raw = req.query.invoice;
    const checked = (Array.isArray(raw) ? raw : [raw]).filter((x): x is string => typeof x === 'string');
    const q = quote(inv, await otherOpenInvoices(sql, inv), amount, checked);
    const money = moneyIn(inv.currency);
    // Half-typed amounts are normal while typing: nulls, not an error status the browser would log.
    res.json(q ? { payment: money(q.payment), fee: money(q.fee), total: money(q.total) } : { payment: null, fee: null, total: null });
  });

  r.post('/:token', async (req, res) => {
    const payToken = req.params.token;
    const input = readForm(req.body);
    const inv = await invoiceByToken(sql, payToken);
    if (!inv) return sendPage(res, 404, notFound());
    if (inv.deleted_at) return sendPage(res, 410, gone(inv));

    // A re-posted form that already paid shows its receipt again instead of paying twice.
    const [earlier] = await sql<{ id: string }[]>`
      SELECT id FROM payments WHERE account_id = ${inv.account_id} AND form_token = ${input.formToken}`;
    if (earlier) return sendPage(res, 200, confirmationPage(inv, (await findPayment(sql, inv.account_id, earlier.id))!));

    const problems = checkFields(input, inv.outstanding, inv.currency, new Date());
    if (problems.length) return renderForm(res, payToken, 422, input, problems);
    if (TEST_CARDS[input.cardNumber] === 'decline') {
      return renderForm(res, payToken, 402, input, [{ field: 'cardNumber', message: 'Your card was declined. Nothing was charged; try another card.' }]);
    }

    const outcome = await sql.begin(async (tx): Promise<Outcome> => {
      const ids = [inv.id, ...input.invoices.filter((id) => id !== inv.id)];
      const locked = await lockInvoices(tx, inv.account_id, ids);
      const main = locked.get(inv.id)!;
      if (main.deleted_at) return { kind: 'gone' };
      if (main.form_token !== input.formToken) {
        // Either the twin of this submit won the lock just now, or the page is stale.
        const [twin] = await tx<{ id: string }[]>`
          SELECT id FROM payments WHERE account_id = ${inv.account_id} AND form_token = ${input.formToken}`;
        if (twin) return { kind: 'paid', payment: (await findPayment(tx, inv.account_id, twin.id))! };
        return {
          kind: 'invalid',
          status: 409,
          problems: [{ field: null, message: 'This page was out of date (the balance changed after it was opened). Check the amount and pay again.' }],
        };
      }
      const allocations = ids.map((id, i) => ({
        invoiceId: id,
        amount: i === 0 ? parseAmount(input.amount)! : (locked.get(id)?.outstanding ?? 0),
      }));
      const [account] = await tx<AccountRow[]>`SELECT * FROM accounts WHERE id = ${inv.account_id}`;
      const total = allocations.reduce((s, a) => s + a.amount, 0);
      try {
        const payment = await recordPayment(tx, account!, {
          customerId: inv.customer_id,
          allocations,
          method: 'card',
          fee: convenienceFee(total, feeRuleOf(account!)),
          payerName: input.payerName,
          payerEmail: input.payerEmail,
          cardLast4: input.cardNumber.slice(-4),
          formToken: input.formToken,
        });
        await tx`UPDATE invoices SET form_token = ${newToken()} WHERE id = ${inv.id}`;
        return { kind: 'paid', payment };
      } catch (e) {
        if (!(e instanceof AllocationError)) throw e;
        const other = locked.get(allocations[e.index]!.invoiceId);
        const problem: Problem =
          e.index === 0
            ? overBalance(main.outstanding, main.currency)
            : { field: 'invoice', message: `${other ? `Invoice ${other.number}` : 'A checked invoice'} can no longer be paid here; uncheck it.` };
        return { kind: 'invalid', status: 422, problems: [problem] };
      }
    });

    if (outcome.kind === 'gone') return sendPage(res, 410, gone(inv));
    if (outcome.kind === 'invalid') return renderForm(res, payToken, outcome.status, input, outcome.problems);
    deps.webhooks.kick();
    sendPage(res, 200, confirmationPage(inv, outcome.payment));
  });

  const errorPage: ErrorRequestHandler = (err: unknown, _req, res, next) => {
    if (res.headersSent) return next(err);
    deps.log(`pay page: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    sendPage(res, 500, messagePage('Something went wrong', 'Nothing was charged. Please try again in a moment.', null));
  };
  r.use(errorPage);
  return r;
}
