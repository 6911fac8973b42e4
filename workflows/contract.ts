/**
 * The invoice slice's contract, written once for the API, the workflow, the worker and the tests:
 * task queue, workflow ids, message definitions, search attributes and the shapes they carry.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Classification, LifecycleState } from '../domain/bill.js';
import type { AppliedPayment, InvoiceLine, InvoiceStatus, SettlementStatus } from '../domain/invoice.js';
import type { Plan } from '../domain/plan.js';
import type { Minor } from '../domain/money.js';
import type { ResyncRequest } from './reconcile-contract.js';

const ID_PREFIX = 'Invoice';

/** Deterministic id, so one ERP invoice can only ever have one workflow: `Invoice:<company>:<number>`. */
export function invoiceWorkflowId(companyId: string, number: string): string {
  return `${ID_PREFIX}:${companyId}:${number}`;
}

/** The due-date reminders of one Final revision of an invoice: `Reminders:<company>:<number>:r<revision>`. */
export function remindersWorkflowId(companyId: string, number: string, revision: number): string {
  return `Reminders:${companyId}:${number}:r${revision}`;
}

export interface ReminderRequest {
  revision: number;
  daysAfterDue: number;
  /** Set when an earlier try failed (provider or SMTP outage): tries so far, and when to try next (epoch ms). */
  attempts?: number;
  notBefore?: number;
}

export interface RemindersInput {
  companyId: string;
  number: string;
  revision: number;
  dueDate: string;
  reminderDays: number[];
}

export function parseInvoiceWorkflowId(id: string): { companyId: string; number: string } | null {
  const m = /^Invoice:([^:]+):(.+)$/.exec(id);
  return m ? { companyId: m[1]!, number: m[2]! } : null;
}

export const searchAttributes = {
  invoiceNumber: defineSearchAttributeKey('InvoiceNumber', SearchAttributeType.KEYWORD),
  clientId: defineSearchAttributeKey('ClientId', SearchAttributeType.KEYWORD),
  companyId: defineSearchAttributeKey('CompanyId', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('InvoiceStatus', SearchAttributeType.KEYWORD),
  outstanding: defineSearchAttributeKey('OutstandingAmount', SearchAttributeType.INT),
  settlement: defineSearchAttributeKey('SettlementStatus', SearchAttributeType.KEYWORD),
  lifecycle: defineSearchAttributeKey('LifecycleState', SearchAttributeType.KEYWORD),
  classification: defineSearchAttributeKey('Classification', SearchAttributeType.KEYWORD),
  /** The due date (midnight UTC), so the Web UI can ask `DueDate < "2026-12-01T00:00:00Z"`. */
  dueDate: defineSearchAttributeKey('DueDate', SearchAttributeType.DATETIME),
  /** Final, owed, and past its due date; false again once paid or no longer Final. */
  overdue: defineSearchAttributeKey('Overdue', SearchAttributeType.BOOL),
  /** The status a change still running is taking the invoice to (unset when none runs), so a stuck one is one query away. */
  pendingChange: defineSearchAttributeKey('PendingChange', SearchAttributeType.KEYWORD),
} as const;

const CLI_TYPES: Partial<Record<SearchAttributeType, string>> = {
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.BOOL]: 'Bool',
};

/** `Name=Type` pairs for `temporal server start-dev --search-attribute`. */
export const SEARCH_ATTRIBUTE_FLAGS: readonly string[] = Object.values(searchAttributes).map((k) => `${k.name}=${CLI_TYPES[k.type]}`);

export interface InvoiceDraft {
  companyId: string;
  number: string;
  clientId: string;
  /** The ERP project the invoice bills; its company is `companyId`. */
  projectId?: string;
  projectName?: string;
  invoiceDate: string;
  dueDate: string;
  currency: string;
  lines: InvoiceLine[];
  /** Prepayments (client credits) the ERP applied to this invoice. */
  prepaymentsApplied: Minor;
}

interface StatusChange {
  at: string;
  from: InvoiceStatus;
  to: InvoiceStatus;
  requestId: string;
  /** Set when an operator released a held exceptional bill (Final -> Final). */
  releasedBy?: string;
}

/** Everything the workflow knows about its invoice; also what the details endpoint returns. */
export interface InvoiceState extends InvoiceDraft {
  status: InvoiceStatus;
  /** Bumped on every Final; part of every provider idempotency key. */
  revision: number;
  total: Minor;
  paid: Minor;
  outstanding: Minor;
  settlement: SettlementStatus;
  payNowUrl: string | null;
  providerInvoiceId: string | null;
  providerCustomerId: string | null;
  /** The final PDF lives in PostgreSQL; the workflow keeps only its id and hash. */
  pdf: { documentId: string; sha256: string } | null;
  sentToProvider: boolean;
  /** How often the workflow imports payments while something is owed; null when not at the provider. */
  paymentImportSeconds: number | null;
  payments: AppliedPayment[];
  /** Payments that became client prepayments when the invoice left Final; never applied again. */
  convertedPayments: AppliedPayment[];
  /** Prepayments the ERP applied to this invoice, and the provider payments re-created for them. */
  prepaymentApplications: {
    prepaymentId: string;
    amount: Minor;
    providerPaymentId: string | null;
    requestId: string;
    /** The ERP request that applied it (absent on applications made before requests were keyed). */
    operationKey?: string;
  }[];
  /** Backup attachments printed with the invoice: emailed with it, never sent to the provider. */
  backupDocumentIds: string[];
  history: StatusChange[];
  /** A status change under way (e.g. waiting out a provider outage after the API answered 202). */
  pendingChange: { to: InvoiceStatus; requestId: string; since: string } | null;
  /** The bill's informative life-cycle state (Posted when it becomes Final), and who changed it when. */
  lifecycleState: LifecycleState | null;
  lifecycleHistory: { at: string; from: LifecycleState | null; to: LifecycleState; by: string; requestId: string }[];
  /** Exceptional-bill classification at the last Final; `held` keeps it from the provider and email until released. */
  classification: Classification | null;
  held: boolean;
  /** Bumped on every read-model write, so a stale retried write can never win. */
  version: number;
  /** The invoice email of the latest Final: sent, refused by the mail server for good, or cut off by a crash mid-send (the Final stands). */
  emailDelivery?: { revision: number; status: 'sent' | 'failed' | 'unconfirmed'; to: string | null; detail: string; at: string } | null;
  /** The last status change or release that failed, and what was undone; cleared by the next one that succeeds. */
  lastFailure?: { to: InvoiceStatus; requestId: string; at: string; reason: string; undone: string[] } | null;
  /** Quick Pay requests already applied, by the ERP's request key, so a retry is answered, not applied twice. */
  quickPayKeys?: string[];
}

export interface InvoiceWorkflowInput {
  draft: InvoiceDraft;
  /** Carried across continue-as-new. */
  state?: InvoiceState;
  /** Payments signalled but not yet applied when the previous run continued as new. */
  pending?: ProviderPayment[];
  /** Reconciliation repairs asked for but not yet done when the previous run continued as new. */
  pendingResyncs?: ResyncRequest[];
  pendingReminders?: ReminderRequest[];
  /** Reminder days of a Final whose reminders were not started yet when the run continued as new. */
  pendingReminderStart?: number[];
  /** Continue as new past this many history events as well as when Temporal suggests it (tests lower it). */
  continueAsNewAfterEvents?: number;
}

export interface ChangeStatusRequest {
  to: InvoiceStatus;
  /** The ERP request's correlation id. */
  requestId: string;
  /** Answer with the plan and change nothing. */
  dryRun?: boolean;
  /** Backup attachments (stored documents) printed with a Final invoice. */
  backupDocumentIds?: string[];
}

export interface StatusChangeResult {
  invoice: InvoiceState;
  plan: Plan;
  dryRun: boolean;
}

/** New content for a Draft or Reissue invoice (the ERP edits it before printing it again). */
export interface ReviseRequest {
  lines?: InvoiceLine[];
  invoiceDate?: string;
  dueDate?: string;
  requestId: string;
}

export interface LifecycleRequest {
  to: LifecycleState;
  by: string;
  requestId: string;
}

export interface ReleaseRequest {
  by: string;
  requestId: string;
}

/** Quick Pay: the amount is always the whole unsettled balance; the rest describes the payment. */
export interface QuickPayRequest {
  paymentType: string;
  paymentMethod: string;
  issuedOn: string;
  category: string;
  receivedByUser: string;
  receivedByUnit: string;
  requestId: string;
  /** The ERP request's Idempotency-Key (else its X-Request-Id): the same key never pays twice, across continue-as-new too. */
  operationKey?: string;
}

export interface ApplyPrepaymentRequest {
  prepaymentId: string;
  amount: Minor;
  requestId: string;
  /** As for Quick Pay: one application per ERP request key. */
  operationKey?: string;
}

/** A provider payment as the webhook and the importer both see it. */
export interface ProviderPayment {
  paymentId: string;
  /** Part applied to this invoice. */
  amount: Minor;
  fee: Minor;
  paidAt: string;
  /** Every invoice number the payment covered, this one included. */
  coveredInvoices: string[];
  /** The payment's whole amount across its invoices, fee excluded. */
  totalAmount: Minor;
  /** The part applied to each invoice it covered (absent on payments signalled before it was carried). */
  applications?: { invoiceNumber: string; amount: Minor }[];
  method: 'card' | 'prepayment' | 'quickpay' | 'other';
  /** The provider payment's reference; a Quick Pay's starts with its ERP request key (`quickPayReference`). */
  reference?: string;
  source: AppliedPayment['source'];
  requestId: string;
}

/** A Quick Pay's reference at the provider: its request key first, so the payment tells which request made it. */
export function quickPayReference(operationKey: string | undefined, paymentType: string, paymentMethod: string): string {
  return `${operationKey ? `${operationKey} ` : ''}${paymentType}/${paymentMethod}`.slice(0, 200);
}

/** The ERP request key a Quick Pay's provider reference carries, if any. */
export function quickPayKeyOf(reference: string | undefined): string | null {
  const m = reference ? /^((?:idem|req):\S+) /.exec(reference) : null;
  return m ? m[1]! : null;
}

export const stateQuery = defineQuery<InvoiceState>('state');
export const changeStatusUpdate = defineUpdate<StatusChangeResult, [ChangeStatusRequest]>('changeStatus');
export const reviseUpdate = defineUpdate<InvoiceState, [ReviseRequest]>('revise');
export const lifecycleUpdate = defineUpdate<InvoiceState, [LifecycleRequest]>('setLifecycleState');
export const releaseUpdate = defineUpdate<StatusChangeResult, [ReleaseRequest]>('release');
export const quickPayUpdate = defineUpdate<InvoiceState, [QuickPayRequest]>('quickPay');
export const applyPrepaymentUpdate = defineUpdate<InvoiceState, [ApplyPrepaymentRequest]>('applyPrepayment');
export const paymentSignal = defineSignal<[ProviderPayment]>('paymentReceived');
/** A reminder's day has come (from the invoice's reminders workflow); the invoice sends it if still owed. */
export const reminderSignal = defineSignal<[ReminderRequest]>('reminderDue');

/**
 * A provider idempotency key for attaching a document, keyed by its content too: a render made
 * again after a crash has other bytes (Chromium dates each PDF), and the provider refuses one key
 * for two bodies. Attaching replaces, so attaching twice is harmless.
 */
export function contentKey(base: string, sha256: string): string {
  return `${base}:${sha256.slice(0, 16)}`;
}
