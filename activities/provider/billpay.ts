/**
 * Adapter for Bill & Pay-compatible providers (billflow's own sandbox speaks the same API), behind
 * the PaymentProvider interface. One instance per company account; every mutating call carries an
 * idempotency key made from business identity and the ERP request's correlation id.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PROVIDER_CAPABILITIES } from '../../domain/provider.js';
import { SIGNATURE_HEADER, verifySignature } from '../../lib/signature.js';
import {
  ProviderError,
  type NewProviderInvoice,
  type NewProviderPayment,
  type PaymentProvider,
  type ProviderAccount,
  type ProviderInvoicePatch,
  type ProviderInvoiceRecord,
  type ProviderPaymentRecord,
  type WebhookVerifier,
} from './provider.js';

export interface BillPayCustomer {
  id: string;
  externalId: string;
  name: string;
  email: string | null;
}

/** Bill & Pay's invoice and payment records are billflow's neutral shapes (the interface was cut from them). */
export type BillPayInvoice = ProviderInvoiceRecord;
export type BillPayPayment = ProviderPaymentRecord;

interface CallOptions {
  body?: unknown;
  raw?: { bytes: Uint8Array; contentType: string };
  idempotencyKey?: string;
  requestId: string;
}

/** Mean waits (ms, jittered 0.5-1.5x) before the quick retries of one call. */
const QUICK_RETRIES = [150, 450];

export class BillPayClient implements PaymentProvider {
  readonly kind = 'billpay';
  readonly capabilities = PROVIDER_CAPABILITIES.billpay;

  constructor(
    private readonly account: ProviderAccount,
    private readonly timeoutMs = 15_000,
  ) {}

  /**
   * One provider call, with two quick retries when repeating it is safe (a read, or a write under
   * its idempotency key) and the failure is an outage (network, 5xx, 429): an activity makes
   * several calls, and without them one blip would repeat them all. A timeout is not retried here
   * (it already took its time); what still fails is the activity's to retry, visibly in the Web UI.
   */
  private async call<T>(method: string, path: string, opts: CallOptions): Promise<T> {
    const repeatable = method === 'GET' || opts.idempotencyKey !== undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, opts);
      } catch (e) {
        const quick = e instanceof ProviderError && e.retryable && !(e.cause instanceof DOMException && e.cause.name === 'TimeoutError');
        if (!repeatable || !quick || attempt >= QUICK_RETRIES.length) throw e;
        await sleep(QUICK_RETRIES[attempt]! * (0.5 + Math.random()));
      }
    }
  }

  private async once<T>(method: string, path: string, opts: CallOptions): Promise<T> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.account.apiKey}`,
      'x-request-id': opts.requestId,
    };
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    let body: BodyInit | undefined;
    if (opts.raw) {
      headers['content-type'] = opts.raw.contentType;
      body = new Uint8Array(opts.raw.bytes);
    } else if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await fetch(new URL(path, this.account.url), { method, headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new ProviderError(`provider unreachable: ${method} ${path}: ${(e as Error).message}`, null, null, undefined, { cause: e });
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (!res.ok) {
      const type = typeof json.type === 'string' ? json.type.split('/').pop()! : null;
      const detail = typeof json.detail === 'string' ? json.detail : text.slice(0, 200);
      throw new ProviderError(`provider answered ${res.status} to ${method} ${path}: ${detail}`, res.status, type, json);
    }
    return json as T;
  }

  async findCustomer(externalId: string, requestId: string): Promise<BillPayCustomer | null> {
    const q = new URLSearchParams({ externalId });
    const { data } = await this.call<{ data: BillPayCustomer[] }>('GET', `/v1/customers?${q}`, { requestId });
    return data[0] ?? null;
  }

  /** Finds the customer by the ERP's client id, creating it when missing; safe to repeat. */
  async ensureCustomer(c: { externalId: string; name: string; email: string | null }, requestId: string): Promise<BillPayCustomer> {
    const existing = await this.findCustomer(c.externalId, requestId);
    if (existing) return existing;
    try {
      return await this.call<BillPayCustomer>('POST', '/v1/customers', {
        body: c,
        idempotencyKey: `customer:${c.externalId}`,
        requestId,
      });
    } catch (e) {
      // Created concurrently by another invoice of the same client: use that one.
      if (e instanceof ProviderError && e.type === 'customer-exists') {
        const found = await this.findCustomer(c.externalId, requestId);
        if (found) return found;
      }
      throw e;
    }
  }

  createInvoice(inv: NewProviderInvoice, idempotencyKey: string, requestId: string): Promise<BillPayInvoice> {
    // Bill & Pay keeps no due date. The currency is absent in activities scheduled before it travelled (the provider's default, USD).
    const { customerId, number, invoiceDate, amount, outstanding, currency } = inv;
    return this.call('POST', '/v1/invoices', { body: { customerId, number, invoiceDate, amount, outstanding, ...(currency ? { currency } : {}) }, idempotencyKey, requestId });
  }

  async attachPdf(invoiceId: string, pdf: Uint8Array, idempotencyKey: string, requestId: string): Promise<void> {
    await this.call('PUT', `/v1/invoices/${encodeURIComponent(invoiceId)}/pdf`, {
      raw: { bytes: pdf, contentType: 'application/pdf' },
      idempotencyKey,
      requestId,
    });
  }

  updateInvoice(invoiceId: string, patch: ProviderInvoicePatch, idempotencyKey: string, requestId: string): Promise<BillPayInvoice> {
    return this.call('PATCH', `/v1/invoices/${encodeURIComponent(invoiceId)}`, { body: patch, idempotencyKey, requestId });
  }

  /** Deletes the invoice record (its Pay Now URL stops working); already gone counts as done. */
  async removeInvoice(invoiceId: string, idempotencyKey: string, requestId: string): Promise<void> {
    await this.ignoreNotFound(() => this.call('DELETE', `/v1/invoices/${encodeURIComponent(invoiceId)}`, { idempotencyKey, requestId }));
  }

  /** Removes a payment record; already removed counts as done. */
  async removePayment(paymentId: string, idempotencyKey: string, requestId: string): Promise<void> {
    await this.ignoreNotFound(() => this.call('DELETE', `/v1/payments/${encodeURIComponent(paymentId)}`, { idempotencyKey, requestId }));
  }

  /** Bill & Pay keeps no fee from a payment: its fee is the payer's convenience fee, on the payment itself. */
  processingFee(): Promise<null> {
    return Promise.resolve(null);
  }

  recordPayment(p: NewProviderPayment, idempotencyKey: string, requestId: string): Promise<BillPayPayment> {
    return this.call('POST', '/v1/payments', { body: p, idempotencyKey, requestId });
  }

  /** The invoice record, or null when the provider has none (deleted, or never made). */
  async getInvoice(invoiceId: string, requestId: string): Promise<BillPayInvoice | null> {
    try {
      return await this.call<BillPayInvoice>('GET', `/v1/invoices/${encodeURIComponent(invoiceId)}`, { requestId });
    } catch (e) {
      if (e instanceof ProviderError && e.status === 404) return null;
      throw e;
    }
  }

  /** Every live invoice record of the account, following the cursor to the end. */
  async listInvoices(requestId: string): Promise<BillPayInvoice[]> {
    const out: BillPayInvoice[] = [];
    let after: string | null = null;
    for (;;) {
      const q = new URLSearchParams({ limit: '100' });
      if (after) q.set('after', after);
      const page: { data: BillPayInvoice[]; nextCursor: string | null; hasMore: boolean } = await this.call('GET', `/v1/invoices?${q}`, { requestId });
      out.push(...page.data);
      if (!page.hasMore || !page.nextCursor) return out;
      after = page.nextCursor;
    }
  }

  private async ignoreNotFound(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof ProviderError && e.status === 404)) throw e;
    }
  }

  /** Every payment on one invoice, following the cursor to the end. */
  async listPayments(invoiceId: string, requestId: string): Promise<BillPayPayment[]> {
    const out: BillPayPayment[] = [];
    let after: string | null = null;
    for (;;) {
      const q = new URLSearchParams({ invoiceId, limit: '100' });
      if (after) q.set('after', after);
      const page: { data: BillPayPayment[]; nextCursor: string | null; hasMore: boolean } = await this.call('GET', `/v1/payments?${q}`, { requestId });
      out.push(...page.data);
      if (!page.hasMore || !page.nextCursor) return out;
      after = page.nextCursor;
    }
  }
}

interface BillPayEvent {
  id?: unknown;
  type?: unknown;
  data?: { payment?: BillPayPayment };
}

/** Bill & Pay signs with `BillPay-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`; its payments come as `payment.succeeded`. */
export const billPayWebhooks: WebhookVerifier = {
  header: SIGNATURE_HEADER,
  verify(secrets, raw, signature) {
    const why = verifySignature(secrets, raw, signature);
    if (why) return { why, type: 'invalid-signature', field: SIGNATURE_HEADER };
    let event: BillPayEvent;
    try {
      event = JSON.parse(raw) as BillPayEvent;
    } catch {
      return { why: 'webhook body is not valid JSON', type: 'malformed-json' };
    }
    if (typeof event?.id !== 'string' || event.id === '') return { why: 'webhook event without an id', type: 'invalid-webhook', field: 'id' };
    const type = String(event.type);
    if (type !== 'payment.succeeded') return { event: { id: event.id, type, payment: null } };
    const payment = event.data?.payment;
    if (!payment || typeof payment.id !== 'string' || !Array.isArray(payment.allocations)) {
      return { why: 'payment.succeeded event without data.payment.id and data.payment.allocations', type: 'invalid-webhook', field: 'data.payment' };
    }
    return { event: { id: event.id, type, payment } };
  },
};
