/**
 * Rows of the sandbox's tables and the API objects made from them: the one place that decides how
 * an account, customer, invoice or payment looks on the wire.
 */
import type postgres from 'postgres';
import { HttpProblem } from '../lib/problem.js';

/** A pool or a transaction: the queries here run in either. */
export type Db = postgres.ISql;

export interface AccountRow {
  id: string;
  name: string;
  api_key: string;
  webhook_secret: string;
  webhook_url: string | null;
  fee_fixed: number;
  fee_percent_bps: number;
}

export interface FeeRule {
  /** Minor units added to every payment. */
  fixed: number;
  /** Basis points (1/100 of a percent) of the payment amount. */
  percentBps: number;
}

export function feeRuleOf(a: Pick<AccountRow, 'fee_fixed' | 'fee_percent_bps'>): FeeRule {
  return { fixed: a.fee_fixed, percentBps: a.fee_percent_bps };
}

export function accountJson(a: AccountRow) {
  return {
    id: a.id,
    name: a.name,
    apiKey: a.api_key,
    webhookSecret: a.webhook_secret,
    webhookUrl: a.webhook_url,
    convenienceFee: feeRuleOf(a),
  };
}

export interface CustomerRow {
  id: string;
  external_id: string;
  name: string;
  email: string | null;
  created_at: Date;
}

export function customerJson(c: CustomerRow) {
  return { id: c.id, externalId: c.external_id, name: c.name, email: c.email, createdAt: c.created_at };
}

/** A row of `invoice_view`. */
export interface InvoiceRow {
  id: string;
  account_id: string;
  customer_id: string;
  number: string;
  invoice_date: string;
  amount: number;
  outstanding: number;
  paid: number;
  status: 'open' | 'paid';
  currency: string;
  pay_token: string;
  form_token: string;
  pdf_sha256: string | null;
  pdf_bytes: number | null;
  deleted_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** The currencies the sandbox takes: two-decimal ones, so its page reads amounts in hundredths. */
export const SANDBOX_CURRENCIES = ['USD', 'EUR', 'GBP', 'CAD', 'AUD', 'NZD', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'MXN', 'SGD', 'HKD', 'ZAR'] as const;

function payNowUrl(publicUrl: string, payToken: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/pay/${payToken}`;
}

export function invoiceJson(i: InvoiceRow, publicUrl: string) {
  return {
    id: i.id,
    customerId: i.customer_id,
    number: i.number,
    invoiceDate: i.invoice_date,
    amount: i.amount,
    outstanding: i.outstanding,
    paid: i.paid,
    status: i.status,
    currency: i.currency,
    payNowUrl: payNowUrl(publicUrl, i.pay_token),
    pdf: i.pdf_sha256 === null ? null : { sha256: i.pdf_sha256, bytes: i.pdf_bytes },
    createdAt: i.created_at,
    updatedAt: i.updated_at,
  };
}

export const PAYMENT_METHODS = ['card', 'prepayment', 'quickpay', 'other'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];

interface Allocation {
  invoiceId: string;
  invoiceNumber: string;
  amount: number;
}

/** A row of `payment_view`. */
export interface PaymentRow {
  seq: number;
  id: string;
  account_id: string;
  customer_id: string;
  amount: number;
  fee: number;
  currency: string;
  paid_at: Date;
  method: PaymentMethod;
  payer_name: string | null;
  payer_email: string | null;
  card_last4: string | null;
  reference: string | null;
  status: 'succeeded' | 'removed';
  allocations: Allocation[];
}

export type PaymentJson = ReturnType<typeof paymentJson>;

export function paymentJson(p: PaymentRow) {
  return {
    id: p.id,
    customerId: p.customer_id,
    amount: p.amount,
    fee: p.fee,
    currency: p.currency,
    paidAt: p.paid_at,
    method: p.method,
    payerName: p.payer_name,
    payerEmail: p.payer_email,
    cardLast4: p.card_last4,
    reference: p.reference,
    allocations: p.allocations,
    status: p.status,
    cursor: encodeCursor(p.seq),
  };
}

/** Cursors are opaque to clients; inside they carry the payment's creation sequence number. */
function encodeCursor(seq: number): string {
  return Buffer.from(`pay:${seq}`).toString('base64url');
}

export function decodeCursor(cursor: string, field: string): number {
  const m = /^pay:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m) throw new HttpProblem(400, 'invalid-cursor', `${field} is not a cursor this API returned`, field);
  return Number(m[1]);
}

export async function findPayment(db: Db, accountId: string, id: string): Promise<PaymentRow | undefined> {
  const [row] = await db<PaymentRow[]>`SELECT * FROM payment_view WHERE account_id = ${accountId} AND id = ${id}`;
  return row;
}

export async function findInvoice(db: Db, accountId: string, id: string): Promise<InvoiceRow | undefined> {
  const [row] = await db<InvoiceRow[]>`
    SELECT * FROM invoice_view WHERE account_id = ${accountId} AND id = ${id} AND deleted_at IS NULL`;
  return row;
}
