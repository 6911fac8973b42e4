/**
 * Adapter for Stripe, behind the PaymentProvider interface, through the `stripe` package at its
 * pinned API version. How billflow's lifecycle maps onto Stripe (README, "Stripe"):
 * - the customer is found by the ERP's client id in its metadata (`billflow_client_id`);
 * - an invoice is a draft with one item for the amount (and a negative one for what was already
 *   paid or credited), finalized; its `hosted_invoice_url` is the provider's payment page;
 * - a finalized invoice cannot be edited: leaving it voids it (open) or credits it out of band
 *   (paid, partly paid), and the plan replaces it on Reissue -> Final;
 * - a Quick Pay settles it as paid out of band; a re-applied prepayment is a credit note on it;
 * - only money collected through Stripe (invoice payments of a PaymentIntent or charge) is imported,
 *   and what Stripe kept of it comes from the charge's balance transaction.
 */
import { createHash } from 'node:crypto';
import Stripe from 'stripe';
import { PROVIDER_CAPABILITIES } from '../../domain/provider.js';
import {
  ProviderError,
  type NewProviderInvoice,
  type NewProviderPayment,
  type PaymentProvider,
  type ProcessingFee,
  type ProviderAccount,
  type ProviderCustomer,
  type ProviderInvoicePatch,
  type ProviderInvoiceRecord,
  type ProviderPaymentRecord,
  type WebhookVerifier,
} from './provider.js';

/** Pinned: requests and webhooks are read in this version's shapes whatever the account's default is. */
export const STRIPE_API_VERSION = '2026-08-26.dahlia';
/** Stripe's signature header and its default tolerance (the same 5 minutes as Bill & Pay's). */
const STRIPE_SIGNATURE_HEADER = 'Stripe-Signature';
const TOLERANCE_SECONDS = 300;

const CLIENT_ID_KEY = 'billflow_client_id';
const NUMBER_KEY = 'billflow_number';
const AMOUNT_KEY = 'billflow_amount';

/** The events billflow's webhook endpoint takes (payments; everything else is imported by listing). */
export const STRIPE_WEBHOOK_EVENTS = ['invoice_payment.paid'] as const;
const COMPANY_KEY = 'billflow_company';

/** Invoice payments that moved money through Stripe; out-of-band marks are billflow's own records. */
const COLLECTED_PAYMENT_TYPES = new Set(['payment_intent', 'charge']);

function unixSeconds(isoDate: string): number {
  return Math.floor(new Date(`${isoDate}T00:00:00Z`).getTime() / 1000);
}

function iso(unix: number | null | undefined): string {
  return new Date((unix ?? Math.floor(Date.now() / 1000)) * 1000).toISOString();
}

/** Stripe's search syntax quotes values with single quotes, escaped with a backslash. */
function searchValue(v: string): string {
  return `'${v.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

function idOf(x: string | { id: string } | null | undefined): string {
  return typeof x === 'string' ? x : (x?.id ?? '');
}

/** Stripe's answers as billflow's retryable (5xx, 429, network) or final refusals. */
function providerError(what: string, e: unknown): ProviderError {
  if (e instanceof Stripe.errors.StripeError) {
    const status = e.statusCode ?? null;
    return new ProviderError(`Stripe answered ${status ?? 'nothing'} to ${what}: ${e.message}`, status, e.code ?? e.type, { type: e.type, code: e.code ?? null });
  }
  return new ProviderError(`Stripe unreachable for ${what}: ${(e as Error).message}`, null, null);
}

function toRecord(inv: Stripe.Invoice): ProviderInvoiceRecord {
  const amount = Number(inv.metadata?.[AMOUNT_KEY]);
  return {
    id: inv.id ?? '',
    number: inv.metadata?.[NUMBER_KEY] ?? inv.number ?? inv.id ?? '',
    customerId: idOf(inv.customer),
    amount: Number.isFinite(amount) ? amount : inv.total,
    outstanding: inv.amount_remaining,
    status: inv.status === 'paid' ? 'paid' : 'open',
    payNowUrl: inv.hosted_invoice_url ?? '',
  };
}

function stripeClient(account: Pick<ProviderAccount, 'url' | 'apiKey'>, opts: { timeoutMs: number; retries: number }): Stripe {
  const url = new URL(account.url);
  return new Stripe(account.apiKey, {
    apiVersion: STRIPE_API_VERSION,
    host: url.hostname,
    port: url.port || (url.protocol === 'https:' ? 443 : 80),
    protocol: url.protocol === 'http:' ? 'http' : 'https',
    maxNetworkRetries: opts.retries,
    timeout: opts.timeoutMs,
    telemetry: false,
  });
}

/**
 * billflow's webhook endpoint in the company's Stripe account, made at registration (and when the
 * key changes): it takes STRIPE_WEBHOOK_EVENTS at `webhookUrl`, and its signing secret is answered
 * only here. Safe to repeat: the idempotency key (company, key, URL) makes a retried call answer
 * the same endpoint and secret; an endpoint an earlier attempt left behind (its secret never
 * stored) is deleted, so the account keeps one.
 */
export async function ensureWebhookEndpoint(account: Pick<ProviderAccount, 'url' | 'apiKey'>, companyId: string, webhookUrl: string, requestId: string): Promise<{ id: string; secret: string }> {
  const headers = { 'X-Request-Id': requestId };
  const fingerprint = createHash('sha256').update(`${account.apiKey}\n${webhookUrl}`).digest('hex').slice(0, 24);
  try {
    // Called from an API request, not an activity: the package's own retries (same idempotency key) are the retry layer here.
    const stripe = stripeClient(account, { timeoutMs: 6_000, retries: 2 });
    const created = await stripe.webhookEndpoints.create(
      { url: webhookUrl, enabled_events: [...STRIPE_WEBHOOK_EVENTS], api_version: STRIPE_API_VERSION, description: `billflow company ${companyId}`, metadata: { [COMPANY_KEY]: companyId } },
      { headers, idempotencyKey: `billflow:webhook-endpoint:${companyId}:${fingerprint}` },
    );
    if (!created.secret) throw new ProviderError(`Stripe answered webhook endpoint ${created.id} without its signing secret`, 502, 'no-secret');
    for await (const e of stripe.webhookEndpoints.list({ limit: 100 }, { headers })) {
      if (e.id !== created.id && e.url === webhookUrl && e.metadata?.[COMPANY_KEY] === companyId) await stripe.webhookEndpoints.del(e.id, {}, { headers });
    }
    return { id: created.id, secret: created.secret };
  } catch (e) {
    throw e instanceof ProviderError ? e : providerError('create webhook endpoint', e);
  }
}

export class StripeProvider implements PaymentProvider {
  readonly kind = 'stripe';
  readonly capabilities = PROVIDER_CAPABILITIES.stripe;
  private readonly stripe: Stripe;

  constructor(account: ProviderAccount, timeoutMs = 15_000) {
    // Two quick retries per call (the package's own: same idempotency key, only what is safe to
    // repeat): an activity makes several calls (a record is a customer search, the invoice, its
    // items and its finalize), and without them one blip would repeat them all. What still fails
    // is the activity's to retry, visibly in the Web UI.
    this.stripe = stripeClient(account, { timeoutMs, retries: 2 });
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw providerError(what, e);
    }
  }

  private opts(requestId: string, idempotencyKey?: string): Stripe.RequestOptions {
    return { headers: { 'X-Request-Id': requestId }, ...(idempotencyKey ? { idempotencyKey } : {}) };
  }

  /** The invoice, or null when Stripe has none by that id. */
  private async retrieve(invoiceId: string, requestId: string): Promise<Stripe.Invoice | null> {
    try {
      return await this.call(`GET invoice ${invoiceId}`, () => this.stripe.invoices.retrieve(invoiceId, {}, this.opts(requestId)));
    } catch (e) {
      if (e instanceof ProviderError && e.status === 404) return null;
      throw e;
    }
  }

  async ensureCustomer(c: { externalId: string; name: string; email: string | null }, requestId: string): Promise<ProviderCustomer> {
    const found = await this.call('search customers', () => this.stripe.customers.search({ query: `metadata['${CLIENT_ID_KEY}']:${searchValue(c.externalId)}`, limit: 10 }, this.opts(requestId)));
    const mine = found.data.find((x) => x.metadata?.[CLIENT_ID_KEY] === c.externalId);
    if (mine) return { id: mine.id, externalId: c.externalId };
    // Search lags writes by up to a minute; the key makes a second invoice of the same client meanwhile get the same customer.
    const created = await this.call('create customer', () =>
      this.stripe.customers.create({ name: c.name, ...(c.email ? { email: c.email } : {}), metadata: { [CLIENT_ID_KEY]: c.externalId } }, this.opts(requestId, `customer:${c.externalId}`)),
    );
    return { id: created.id, externalId: c.externalId };
  }

  async createInvoice(inv: NewProviderInvoice, idempotencyKey: string, requestId: string): Promise<ProviderInvoiceRecord> {
    if (!inv.currency || !inv.dueDate) throw new ProviderError(`invoice ${inv.number}: Stripe needs its currency and due date`, 422, 'invalid-request');
    const currency = inv.currency.toLowerCase();
    const due = unixSeconds(inv.dueDate);
    const draft = await this.call('create invoice', () =>
      this.stripe.invoices.create(
        {
          customer: inv.customerId,
          currency,
          // billflow emails the invoice itself and decides when it is finalized.
          collection_method: 'send_invoice',
          auto_advance: false,
          // Stripe refuses a due date in the past: such an invoice is due at once.
          ...(due > Date.now() / 1000 ? { due_date: due } : { days_until_due: 0 }),
          pending_invoice_items_behavior: 'exclude',
          description: `Invoice ${inv.number} of ${inv.invoiceDate}`,
          metadata: { [NUMBER_KEY]: inv.number, [AMOUNT_KEY]: String(inv.amount), billflow_invoice_date: inv.invoiceDate },
        },
        this.opts(requestId, `${idempotencyKey}:invoice`),
      ),
    );
    const id = draft.id!;
    let final: Stripe.Invoice;
    try {
      await this.call('add invoice item', () =>
        this.stripe.invoiceItems.create({ customer: inv.customerId, invoice: id, currency, amount: inv.amount, description: `Invoice ${inv.number}` }, this.opts(requestId, `${idempotencyKey}:item`)),
      );
      if (inv.amount > inv.outstanding) {
        await this.call('add credited item', () =>
          this.stripe.invoiceItems.create(
            { customer: inv.customerId, invoice: id, currency, amount: inv.outstanding - inv.amount, description: 'Already paid or credited' },
            this.opts(requestId, `${idempotencyKey}:credited-item`),
          ),
        );
      }
      final = await this.call('finalize invoice', () => this.stripe.invoices.finalizeInvoice(id, { auto_advance: false }, this.opts(requestId, `${idempotencyKey}:finalize`)));
      // Without a finalized invoice there is no page to pay on; asking again would get the same answer.
      if (final.status === 'draft' || !final.hosted_invoice_url) {
        throw new ProviderError(`Stripe did not finalize invoice ${id} (status ${final.status}, no hosted_invoice_url)`, 409, 'not-finalized', { invoice: id });
      }
    } catch (e) {
      // Refused for good: the draft is deleted, so nothing half-made stays at Stripe. An outage
      // leaves it for the retry, which carries on with the same draft (same idempotency keys).
      if (e instanceof ProviderError && !e.retryable) {
        await this.call(`delete draft ${id}`, () => this.stripe.invoices.del(id, {}, this.opts(requestId, `${idempotencyKey}:discard-draft`))).catch(() => undefined);
      }
      throw e;
    }
    return toRecord(final);
  }

  /** Stripe renders its own invoice document; billflow's PDF goes to the client by email. */
  async attachPdf(): Promise<void> {}

  /** Only the reconciliation's repair gets here (the plan replaces a Stripe invoice instead): it is reported for a person. */
  updateInvoice(invoiceId: string, _patch: ProviderInvoicePatch): Promise<ProviderInvoiceRecord> {
    return Promise.reject(new ProviderError(`Stripe cannot change finalized invoice ${invoiceId}: review it in the Stripe dashboard`, 409, 'not-editable'));
  }

  async removeInvoice(invoiceId: string, idempotencyKey: string, requestId: string): Promise<void> {
    const inv = await this.retrieve(invoiceId, requestId);
    if (!inv) return;
    // One revision can take two records out of use (Reissue -> Final replaces one, a later Draft
    // voids its replacement) under the workflow's one key: the record and the action make it theirs.
    const plan = removal(inv);
    const opts = this.opts(requestId, `${idempotencyKey}:${invoiceId}:${plan.action}`);
    if (plan.action === 'delete') await this.call(`delete draft ${invoiceId}`, () => this.stripe.invoices.del(invoiceId, {}, opts));
    else if (plan.action === 'void') await this.call(`void invoice ${invoiceId}`, () => this.stripe.invoices.voidInvoice(invoiceId, {}, opts));
    else if (plan.action === 'credit') {
      await this.call(`credit invoice ${invoiceId}`, () =>
        this.stripe.creditNotes.create(
          { invoice: invoiceId, amount: plan.amount, out_of_band_amount: plan.outOfBand, memo: "Taken back by billflow: its payments are the client's prepayments now", email_type: 'none' },
          opts,
        ),
      );
    }
  }

  async getInvoice(invoiceId: string, requestId: string): Promise<ProviderInvoiceRecord | null> {
    const inv = await this.retrieve(invoiceId, requestId);
    return inv && live(inv) ? toRecord(inv) : null;
  }

  async listInvoices(requestId: string): Promise<ProviderInvoiceRecord[]> {
    const out: ProviderInvoiceRecord[] = [];
    for (const status of ['open', 'paid'] as const) {
      await this.call(`list ${status} invoices`, async () => {
        for await (const inv of this.stripe.invoices.list({ status, limit: 100 }, this.opts(requestId))) if (live(inv)) out.push(toRecord(inv));
      });
    }
    return out;
  }

  async listPayments(invoiceId: string, requestId: string): Promise<ProviderPaymentRecord[]> {
    const inv = await this.retrieve(invoiceId, requestId);
    if (!inv) return [];
    const out: ProviderPaymentRecord[] = [];
    await this.call(`list payments of ${invoiceId}`, async () => {
      for await (const p of this.stripe.invoicePayments.list({ invoice: invoiceId, status: 'paid', limit: 100 }, this.opts(requestId))) {
        const record = collectedPayment(p, toRecord(inv).number, idOf(inv.customer));
        if (record && idOf(p.invoice) === invoiceId) out.push(record);
      }
    });
    return out;
  }

  async recordPayment(p: NewProviderPayment, idempotencyKey: string, requestId: string): Promise<ProviderPaymentRecord> {
    const [alloc, ...more] = p.allocations;
    if (!alloc || more.length > 0) throw new ProviderError('a Stripe invoice takes payments one invoice at a time', 422, 'invalid-request');
    const inv = await this.retrieve(alloc.invoiceId, requestId);
    if (!inv) throw new ProviderError(`Stripe has no invoice ${alloc.invoiceId}`, 404, 'not-found');
    const opts = this.opts(requestId, idempotencyKey);
    const base = {
      customerId: idOf(inv.customer),
      amount: alloc.amount,
      fee: 0,
      paidAt: new Date().toISOString(),
      status: 'succeeded' as const,
      method: p.method,
      reference: p.reference,
      allocations: [{ invoiceId: alloc.invoiceId, invoiceNumber: toRecord(inv).number, amount: alloc.amount }],
    };
    if (p.method !== 'prepayment' && alloc.amount >= inv.amount_remaining) {
      // The whole balance, paid outside Stripe (Quick Pay): the hosted page shows the invoice paid.
      await this.call(`pay ${alloc.invoiceId} out of band`, () => this.stripe.invoices.pay(alloc.invoiceId, { paid_out_of_band: true }, opts));
      return { ...base, id: `oob_${alloc.invoiceId}` };
    }
    // Part of it (a prepayment applied again): a credit note lowers what is due.
    const note = await this.call(`credit ${alloc.invoiceId}`, () =>
      this.stripe.creditNotes.create(
        { invoice: alloc.invoiceId, amount: alloc.amount, memo: `billflow ${p.method} ${p.reference}`, metadata: { billflow_method: p.method, billflow_reference: p.reference }, email_type: 'none' },
        opts,
      ),
    );
    return { ...base, id: note.id };
  }

  /**
   * Only billflow's own credit notes can be taken back (voided). A payment Stripe collected stays
   * (capabilities.removePayment is false), as does an out-of-band mark: when the invoice leaves,
   * removeInvoice credits what was paid out of band.
   */
  async removePayment(paymentId: string, idempotencyKey: string, requestId: string): Promise<void> {
    if (!paymentId.startsWith('cn_')) return;
    try {
      await this.call(`void credit note ${paymentId}`, () => this.stripe.creditNotes.voidCreditNote(paymentId, {}, this.opts(requestId, idempotencyKey)));
    } catch (e) {
      if (!(e instanceof ProviderError && e.status === 404)) throw e;
    }
  }

  /**
   * The fee in the balance transaction of the charge behind an invoice payment (its payment
   * intent's latest charge, expanded in one call). Out-of-band marks and billflow's credit notes
   * moved no money through Stripe: no fee.
   */
  async processingFee(paymentId: string, requestId: string): Promise<ProcessingFee | 'pending' | null> {
    if (!paymentId.startsWith('inpay_')) return null;
    const p = await this.call(`GET invoice payment ${paymentId}`, () => this.stripe.invoicePayments.retrieve(paymentId, {}, this.opts(requestId)));
    const intent = p.payment.type === 'payment_intent' ? idOf(p.payment.payment_intent) : '';
    if (!intent) return null;
    const pi = await this.call(`GET payment intent ${intent}`, () => this.stripe.paymentIntents.retrieve(intent, { expand: ['latest_charge.balance_transaction'] }, this.opts(requestId)));
    const charge = pi.latest_charge;
    const txn = charge && typeof charge !== 'string' ? charge.balance_transaction : null;
    // Stripe adds the balance transaction when the charge settles into the balance: read again until then.
    if (!txn || typeof txn === 'string') return 'pending';
    return { amount: txn.fee, currency: txn.currency.toUpperCase() };
  }
}

type Credited = Pick<Stripe.Invoice, 'total' | 'pre_payment_credit_notes_amount' | 'post_payment_credit_notes_amount'>;

/** Credit notes cover the whole invoice: billflow took it back (it cannot be voided once money was on it). */
function creditedInFull(inv: Credited): boolean {
  return inv.total > 0 && inv.pre_payment_credit_notes_amount + inv.post_payment_credit_notes_amount >= inv.total;
}

/** A record billflow counts as the invoice's: finalized, neither voided nor credited in full. */
function live(inv: Stripe.Invoice): boolean {
  return (inv.status === 'open' || inv.status === 'paid' || inv.status === 'uncollectible') && !creditedInFull(inv);
}

/**
 * How an invoice leaves billflow's books at Stripe: a draft is deleted, an open unpaid one voided,
 * and one with money on it (which cannot be voided) credited: what is still due, and what was paid
 * out of band, since billflow keeps that money as the client's prepayment (a customer-balance
 * credit would be applied by Stripe to the next invoice behind billflow's back).
 */
export function removal(
  inv: Pick<Stripe.Invoice, 'status' | 'amount_paid' | 'amount_remaining'> & Credited,
): { action: 'none' } | { action: 'delete' } | { action: 'void' } | { action: 'credit'; amount: number; outOfBand: number } {
  if (inv.status === 'void' || creditedInFull(inv)) return { action: 'none' };
  if (inv.status === 'draft') return { action: 'delete' };
  if (inv.amount_paid === 0) return { action: 'void' };
  return { action: 'credit', amount: inv.amount_remaining + inv.amount_paid, outOfBand: inv.amount_paid };
}

/** An invoice payment of money collected through Stripe, in billflow's shape; null for other kinds. */
export function collectedPayment(p: Stripe.InvoicePayment, invoiceNumber: string, customerId: string): ProviderPaymentRecord | null {
  if (p.status !== 'paid' || !COLLECTED_PAYMENT_TYPES.has(p.payment.type)) return null;
  const amount = p.amount_paid ?? 0;
  return {
    id: p.id,
    customerId,
    amount,
    // No payer's convenience fee at Stripe; what Stripe keeps is read apart (processingFee).
    fee: 0,
    paidAt: iso(p.status_transitions.paid_at ?? p.created),
    status: 'succeeded',
    method: 'card',
    allocations: [{ invoiceId: idOf(p.invoice), invoiceNumber, amount }],
  };
}

/**
 * Stripe signs with `Stripe-Signature`, checked by the stripe package's own verifier (each
 * accepted secret in turn); payments come as `invoice_payment.paid`. The event carries Stripe's
 * invoice id, not billflow's number, which the webhook route takes from its own invoices.
 */
export const stripeWebhooks: WebhookVerifier = {
  header: STRIPE_SIGNATURE_HEADER,
  verify(secrets, raw, signature) {
    if (!signature) return { why: `missing ${STRIPE_SIGNATURE_HEADER} header`, type: 'invalid-signature', field: STRIPE_SIGNATURE_HEADER };
    let event: Stripe.Event | null = null;
    let why = 'signature does not match the payload';
    for (const secret of secrets) {
      try {
        event = Stripe.webhooks.constructEvent(raw, signature, secret, TOLERANCE_SECONDS);
        break;
      } catch (e) {
        if (!(e instanceof Stripe.errors.StripeSignatureVerificationError)) {
          return { why: 'webhook body is not valid JSON', type: 'malformed-json' };
        }
        why = e.message;
      }
    }
    if (!event) return { why, type: 'invalid-signature', field: STRIPE_SIGNATURE_HEADER };
    if (typeof event.id !== 'string' || event.id === '') return { why: 'webhook event without an id', type: 'invalid-webhook', field: 'id' };
    if (event.type !== 'invoice_payment.paid') return { event: { id: event.id, type: event.type, payment: null } };
    const p = event.data.object;
    if (!p || typeof p.id !== 'string' || !p.invoice) {
      return { why: 'invoice_payment.paid event without data.object.id and data.object.invoice', type: 'invalid-webhook', field: 'data.object' };
    }
    return { event: { id: event.id, type: event.type, payment: collectedPayment(p, '', '') } };
  },
};
