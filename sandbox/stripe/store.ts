/**
 * The Stripe mode's objects, kept as the JSON it answers with (table stripe_objects), and the
 * shapes it builds: customers, invoice items, invoices (with their lines), credit notes, invoice
 * payments with the payment intent, charge and balance transaction (its processing fee) behind
 * each card payment, webhook endpoints and events. Every object has each field Stripe's OpenAPI description
 * requires (test/stripe-sandbox.test.ts validates each answer against it), and no field it lacks.
 */
import { randomBytes } from 'node:crypto';
import type { AccountRow, Db } from '../model.js';
import { missing } from './errors.js';

/** The one API version this mode speaks (the adapter pins the same; the tests check they agree). */
export const STRIPE_SANDBOX_API_VERSION = '2026-08-26.dahlia';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Stripe-style ids: a prefix and 24 random base-62 characters. */
export function stripeId(prefix: string): string {
  const bytes = randomBytes(24);
  return `${prefix}_${[...bytes].map((b) => ALPHABET[b % 62]).join('')}`;
}

export const now = () => Math.floor(Date.now() / 1000);

type Metadata = Record<string, string>;

export interface Customer {
  id: string;
  object: 'customer';
  balance: number;
  created: number;
  currency: string | null;
  description: string | null;
  email: string | null;
  invoice_prefix: string;
  livemode: false;
  metadata: Metadata;
  name: string | null;
}

export interface LineItem {
  id: string;
  object: 'line_item';
  amount: number;
  currency: string;
  description: string | null;
  discountable: boolean;
  discounts: string[];
  invoice: string;
  livemode: false;
  metadata: Metadata;
  parent: null;
  period: { start: number; end: number };
  quantity: number;
  subtotal: number;
}

export interface InvoiceItem {
  id: string;
  object: 'invoiceitem';
  amount: number;
  currency: string;
  customer: string;
  date: number;
  description: string | null;
  discountable: boolean;
  invoice: string | null;
  livemode: false;
  metadata: Metadata;
  period: { start: number; end: number };
  proration: boolean;
  quantity: number;
  quantity_decimal: string;
}

type InvoiceStatus = 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';

export interface Invoice {
  id: string;
  object: 'invoice';
  account_name: string;
  amount_due: number;
  amount_overpaid: number;
  amount_paid: number;
  amount_paid_off_stripe: number;
  amount_remaining: number;
  amount_shipping: number;
  attempt_count: number;
  attempted: boolean;
  auto_advance: boolean;
  automatic_tax: { disabled_reason: null; enabled: false; liability: null; provider: null; status: null };
  collection_method: 'charge_automatically' | 'send_invoice';
  created: number;
  currency: string;
  customer: string;
  customer_email: string | null;
  customer_name: string | null;
  default_tax_rates: never[];
  description: string | null;
  discounts: never[];
  due_date: number | null;
  ending_balance: number | null;
  hosted_invoice_url: string | null;
  invoice_pdf: string | null;
  issuer: { type: 'self' };
  lines: { object: 'list'; data: LineItem[]; has_more: false; url: string };
  livemode: false;
  metadata: Metadata;
  number: string | null;
  payment_settings: { default_mandate: null; payment_method_options: null; payment_method_types: null };
  period_end: number;
  period_start: number;
  post_payment_credit_notes_amount: number;
  pre_payment_credit_notes_amount: number;
  starting_balance: number;
  status: InvoiceStatus;
  status_transitions: { finalized_at: number | null; marked_uncollectible_at: number | null; paid_at: number | null; voided_at: number | null };
  subtotal: number;
  total: number;
}

export interface CreditNote {
  id: string;
  object: 'credit_note';
  amount: number;
  amount_shipping: number;
  created: number;
  currency: string;
  customer: string;
  discount_amount: number;
  discount_amounts: never[];
  invoice: string;
  lines: { object: 'list'; data: Record<string, unknown>[]; has_more: false; url: string };
  livemode: false;
  memo: string | null;
  metadata: Metadata;
  number: string;
  out_of_band_amount: number | null;
  pdf: string;
  post_payment_amount: number;
  pre_payment_amount: number;
  pretax_credit_amounts: never[];
  reason: string | null;
  refunds: never[];
  status: 'issued' | 'void';
  subtotal: number;
  total: number;
  type: 'pre_payment' | 'post_payment' | 'mixed';
  voided_at: number | null;
}

export interface InvoicePayment {
  id: string;
  object: 'invoice_payment';
  amount_paid: number | null;
  amount_requested: number;
  created: number;
  currency: string;
  invoice: string;
  is_default: boolean;
  livemode: false;
  payment: { type: 'payment_intent'; payment_intent: string };
  status: 'paid' | 'open' | 'canceled';
  status_transitions: { canceled_at: number | null; paid_at: number | null };
}

/** What the hosted page's card payment was, as Stripe keeps it: its charge is `latest_charge`. */
interface PaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  created: number;
  currency: string;
  customer: string;
  latest_charge: string;
  livemode: false;
  metadata: Metadata;
  payment_method_types: string[];
  status: 'succeeded';
}

interface Charge {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  balance_transaction: string;
  billing_details: { address: null; email: string | null; name: string | null; phone: null; tax_id: null };
  captured: boolean;
  created: number;
  currency: string;
  customer: string;
  disputed: boolean;
  livemode: false;
  metadata: Metadata;
  paid: boolean;
  payment_intent: string;
  refunded: boolean;
  status: 'succeeded';
}

/** The charge in the account's balance: what Stripe kept as its processing fee, and the net. */
interface BalanceTransaction {
  id: string;
  object: 'balance_transaction';
  amount: number;
  available_on: number;
  balance_type: 'payments';
  created: number;
  currency: string;
  description: string | null;
  exchange_rate: null;
  fee: number;
  fee_details: { amount: number; application: null; currency: string; description: string; type: 'stripe_fee' }[];
  net: number;
  reporting_category: 'charge';
  source: string;
  status: 'pending' | 'available';
  type: 'charge';
}

/**
 * The sandbox's processing fee on a card charge, in the charge's minor units: Stripe's standard
 * card pricing (2.9% + 30), rounded half up. A real account's pricing varies; billflow reads
 * whatever the balance transaction says.
 */
function processingFee(amount: number): number {
  return Math.round((amount * 29) / 1000) + 30;
}

/** A succeeded card payment of `amount` on `inv`: its payment intent, charge and balance transaction, with the processing fee. */
export function cardCharge(inv: Invoice, amount: number, created: number, payer: { name: string | null; email: string | null }) {
  const fee = processingFee(amount);
  const intent = stripeId('pi');
  const charge = stripeId('ch');
  const txn = stripeId('txn');
  const pi: PaymentIntent = {
    id: intent,
    object: 'payment_intent',
    amount,
    amount_received: amount,
    created,
    currency: inv.currency,
    customer: inv.customer,
    latest_charge: charge,
    livemode: false,
    metadata: {},
    payment_method_types: ['card'],
    status: 'succeeded',
  };
  const ch: Charge = {
    id: charge,
    object: 'charge',
    amount,
    amount_captured: amount,
    amount_refunded: 0,
    balance_transaction: txn,
    billing_details: { address: null, email: payer.email, name: payer.name, phone: null, tax_id: null },
    captured: true,
    created,
    currency: inv.currency,
    customer: inv.customer,
    disputed: false,
    livemode: false,
    metadata: {},
    paid: true,
    payment_intent: intent,
    refunded: false,
    status: 'succeeded',
  };
  const bt: BalanceTransaction = {
    id: txn,
    object: 'balance_transaction',
    amount,
    // Card funds become available two days later, as on a new Stripe account's standard schedule.
    available_on: created + 2 * 86_400,
    balance_type: 'payments',
    created,
    currency: inv.currency,
    description: inv.number ? `Invoice ${inv.number}` : null,
    exchange_rate: null,
    fee,
    fee_details: [{ amount: fee, application: null, currency: inv.currency, description: 'Stripe processing fees', type: 'stripe_fee' }],
    net: amount - fee,
    reporting_category: 'charge',
    source: charge,
    status: 'pending',
    type: 'charge',
  };
  return { intent, objects: [pi, ch, bt] as StripeObject[] };
}

export interface WebhookEndpoint {
  id: string;
  object: 'webhook_endpoint';
  api_version: string | null;
  application: null;
  created: number;
  description: string | null;
  enabled_events: string[];
  livemode: false;
  metadata: Metadata;
  secret?: string;
  status: 'enabled' | 'disabled';
  url: string;
}

export interface StripeEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: StripeObject };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export type StripeObject = Customer | InvoiceItem | Invoice | CreditNote | InvoicePayment | PaymentIntent | Charge | BalanceTransaction | WebhookEndpoint | StripeEvent;

const NAMES: Record<StripeObject['object'], string> = {
  customer: 'customer',
  invoiceitem: 'invoiceitem',
  invoice: 'invoice',
  credit_note: 'credit note',
  invoice_payment: 'invoice payment',
  payment_intent: 'payment_intent',
  charge: 'charge',
  balance_transaction: 'balance transaction',
  webhook_endpoint: 'webhook endpoint',
  event: 'event',
};

type ByObject = { [O in StripeObject['object']]: Extract<StripeObject, { object: O }> };

/** The account's object by id, or Stripe's 404; `lock` takes its row lock for a change. */
export async function load<O extends StripeObject['object']>(db: Db, account: AccountRow, object: O, id: string, opts: { lock?: boolean; param?: string } = {}): Promise<ByObject[O]> {
  const [row] = await db<{ data: ByObject[O] }[]>`
    SELECT data FROM stripe_objects WHERE account_id = ${account.id} AND object = ${object} AND id = ${id}
    ${opts.lock ? db`FOR UPDATE` : db``}`;
  if (!row) throw missing(NAMES[object], id, opts.param);
  return row.data;
}

export async function insert(db: Db, account: AccountRow, obj: StripeObject, extra: { token?: string; formToken?: string } = {}): Promise<void> {
  await db`
    INSERT INTO stripe_objects (id, account_id, object, token, form_token, data)
    VALUES (${obj.id}, ${account.id}, ${obj.object}, ${extra.token ?? null}, ${extra.formToken ?? null}, ${db.json(obj as never)})`;
}

export async function save(db: Db, obj: StripeObject, extra: { token?: string; formToken?: string } = {}): Promise<void> {
  await db`
    UPDATE stripe_objects SET data = ${db.json(obj as never)},
      token = coalesce(${extra.token ?? null}, token), form_token = coalesce(${extra.formToken ?? null}, form_token)
    WHERE id = ${obj.id}`;
}

/** amount_due and amount_remaining follow the lines, the credit notes and what was paid. */
export function recompute(inv: Invoice): Invoice {
  const subtotal = inv.lines.data.reduce((s, l) => s + l.amount, 0);
  const due = Math.max(0, subtotal - inv.pre_payment_credit_notes_amount);
  return { ...inv, subtotal, total: subtotal, amount_due: due, amount_remaining: Math.max(0, due - inv.amount_paid) };
}

/** A list page as Stripe answers it; `url` is the list's path. */
export function listOf<T>(url: string, data: T[], hasMore: boolean) {
  return { object: 'list' as const, data, has_more: hasMore, url };
}
