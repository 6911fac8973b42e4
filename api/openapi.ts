/**
 * The one description of billflow's HTTP API: served at /openapi.json, rendered at /docs. Its
 * component schemas are TypeBox schemas: the request validators (api/validate.ts) use them, and the
 * routes get their bodies' types from them (`Validated<typeof X>`), so the three cannot disagree.
 */
import { Type, type Static } from '@sinclair/typebox';
import { INVOICE_STATUSES, SETTLEMENT_STATUSES } from '../domain/invoice.js';
import { PROVIDER_KINDS } from '../domain/provider.js';
import { billPaths, billSchemas } from './openapi-bills.js';
import { webhookPaths, webhookSchemas } from './openapi-webhooks.js';
import {
  AnyObject,
  date,
  Default,
  id,
  idempotencyKey,
  jsonAnswer,
  jsonBody,
  jsonResponse,
  listOf,
  MAX_INT4,
  MAX_MINOR,
  minor,
  minorSum,
  Nullable,
  OneOf,
  pathParameter,
  problem,
  queryParameters,
  Ref,
  refusingNul,
  requestId,
  StringEnum,
  withProblemTypes,
  withCompanyHeader,
  withLinks,
  type LinkRule,
  type ProblemTypes,
} from './openapi-parts.js';

const { Object: Obj, Partial, Optional, String: Str, Integer, Number: Num, Boolean: Bool, Array: Arr, Literal, Null } = Type;

/** Company settings set at registration and changeable with PATCH (no defaults here: a PATCH changes only what it names). */
const companySettings = {
  name: () => Str({ minLength: 1, maxLength: 200 }),
  paymentImportSeconds: () => Integer({ minimum: 1, maximum: MAX_INT4, description: 'How often an open invoice imports payments from the provider (default 3600).' }),
  reminderDays: () =>
    Arr(Integer({ minimum: -30, maximum: 365 }), {
      uniqueItems: true,
      maxItems: 10,
      description:
        'Days relative to the due date (0 = the due date, -3 = three days before, 7 = a week after) on which the client of a Final invoice ' +
        'that still owes something gets a reminder email with the outstanding amount, the Pay Now URL and the PDF. None by default.',
    }),
  reconcileSeconds: () =>
    Integer({
      minimum: 60,
      maximum: MAX_INT4,
      description: "How often the company's scheduled reconciliation compares billflow with the provider account and repairs drift (default 86400).",
    }),
};

// Sent in HTTP headers or used as HMAC keys: printable ASCII only, so a pasted placeholder ("sk_test_…") is refused here.
const printable = () => Str({ minLength: 1, pattern: '^[\\x21-\\x7E]+$' });
const providerAccount = {
  enabled: () => Bool(),
  url: () => Str({ format: 'uri', minLength: 1 }),
  accountId: printable,
  apiKey: printable,
  webhookSecret: printable,
};
const providerDescription = "The company's own payment provider account (Bill & Pay, or Stripe). With enabled=false invoices never go to the provider.";

const OrganisationCreate = Obj(
  { id: id({ description: "The ERP database's code." }), name: Str({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false, description: 'One ERP connection (an Ajera database) over several companies, with one API key.' },
);
const Organisation = Partial(Obj({ id: Str(), name: Str(), apiKey: Str({ description: 'Returned once, at creation. Covers every company of the organisation.' }) }));

const CompanyCreate = Obj(
  {
    id: id({ description: "The ERP's company code; part of every invoice workflow id." }),
    organisationId: Optional(
      id({
        description: "The organisation (ERP connection) the company belongs to. It shares the organisation's clients, and invoice numbers and project ids are unique across the organisation.",
      }),
    ),
    currency: Default(Str({ pattern: '^[A-Z]{3}$' }), 'USD'),
    name: companySettings.name(),
    paymentImportSeconds: Default(companySettings.paymentImportSeconds(), 3600),
    reminderDays: Default(companySettings.reminderDays(), []),
    reconcileSeconds: Default(companySettings.reconcileSeconds(), 86_400),
    provider: Optional(
      Obj(
        {
          kind: Default(
            StringEnum(PROVIDER_KINDS, {
              description:
                'The provider the company collects through, chosen once, at registration: `billpay` (a Bill & Pay-compatible API) or `stripe` ' +
                '(apiKey: the secret key; url defaults to https://api.stripe.com; no accountId; billflow creates its webhook endpoint in the account ' +
                "through Stripe's API and keeps its signing secret, unless webhookSecret names an endpoint the operator made).",
            }),
            'billpay',
          ),
          enabled: providerAccount.enabled(),
          url: Optional(providerAccount.url()),
          accountId: Optional(providerAccount.accountId()),
          apiKey: Optional(providerAccount.apiKey()),
          webhookSecret: Optional(providerAccount.webhookSecret()),
        },
        {
          additionalProperties: false,
          description: providerDescription,
          // Turning the integration on at registration needs the whole account (a Stripe one: its secret key alone).
          if: { properties: { enabled: { const: true } } },
          then: {
            required: ['apiKey'],
            if: { properties: { kind: { const: 'stripe' } }, required: ['kind'] },
            else: { required: ['url', 'accountId', 'webhookSecret'] },
          },
        },
      ),
    ),
  },
  { additionalProperties: false },
);

const CompanyPatch = Obj(
  {
    name: Optional(companySettings.name()),
    paymentImportSeconds: Optional(companySettings.paymentImportSeconds()),
    reminderDays: Optional(companySettings.reminderDays()),
    reconcileSeconds: Optional(companySettings.reconcileSeconds()),
    provider: Optional(
      Obj(
        {
          enabled: Optional(providerAccount.enabled()),
          kind: Optional(
            StringEnum(PROVIDER_KINDS, {
              description:
                "Another kind moves the company to that provider: give its whole account (Stripe: apiKey, url by default Stripe's; Bill & Pay: url, accountId, apiKey, webhookSecret), nothing of the old one is kept. The move runs the company's reconciliation at once, which makes each open Final invoice's record there; their Pay Now links stay. Reconcile before moving: payments are only imported from the current account.",
            }),
          ),
          url: Optional(providerAccount.url()),
          accountId: Optional(providerAccount.accountId()),
          apiKey: Optional(providerAccount.apiKey()),
          webhookSecret: Optional(providerAccount.webhookSecret()),
          webhookSecretOverlapSeconds: Default(
            Integer({
              minimum: 0,
              maximum: 2_592_000,
              description: 'With a new webhookSecret: how long webhooks signed with the one it replaces still verify (0: not at all).',
            }),
            86_400,
          ),
        },
        { additionalProperties: false, description: providerDescription },
      ),
    ),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'Only the fields given change. Invoices use the new settings from their next status change; the reconciliation schedule follows at once.',
  },
);

const Company = Partial(
  Obj({
    id: Str(),
    name: Str(),
    organisationId: Nullable(Str()),
    currency: Str(),
    paymentImportSeconds: Integer(),
    reconcileSeconds: Integer(),
    reconcileScheduleId: Nullable(Str(), { description: "The company's reconciliation schedule in Temporal (null without the provider integration)." }),
    reminderDays: Arr(Integer()),
    provider: Partial(
      Obj({
        enabled: Bool(),
        kind: StringEnum(PROVIDER_KINDS),
        url: Nullable(Str()),
        accountId: Nullable(Str()),
        circuit: Partial(
          Obj({
            state: StringEnum(['closed', 'open', 'half-open']),
            failures: Integer({ description: 'Outages in a row so far.' }),
            openedAt: Nullable(Str({ format: 'date-time' })),
            probeAfter: Nullable(Str({ format: 'date-time' })),
            lastFailure: Nullable(Str()),
            lastFailureAt: Nullable(Str({ format: 'date-time' })),
            refused: Integer({ description: 'Calls refused without reaching the provider since it last opened.' }),
            timesOpened: Integer(),
          }),
          {
            description:
              "The circuit breaker of the company's provider account (listing and PATCH answers): `open` after PROVIDER_CIRCUIT_FAILURES outages (5xx, 429, no answer) in a row; " +
              'provider calls then fail fast without reaching the provider (changes wait as `pendingChange`, answered 202) until `probeAfter`, when one call probes it (`half-open`); its success closes it.',
          },
        ),
      }),
    ),
    webhookUrl: Str({ description: 'Give this to the provider account as its webhook URL.' }),
    apiKey: Str({ description: 'Returned once, at creation. Send as `Authorization: Bearer <apiKey>`.' }),
  }),
);

const ClientCreate = Obj(
  {
    id: id({ description: "The ERP's client id." }),
    name: Str({ minLength: 1, maxLength: 200 }),
    email: Optional(Str({ format: 'email', maxLength: 320 })),
  },
  { additionalProperties: false },
);

const EmailTemplate = Obj(
  { subject: Str({ minLength: 1, maxLength: 500 }), body: Str({ minLength: 1, maxLength: 20_000 }) },
  {
    additionalProperties: false,
    description:
      "The client's invoice email. Tags: {{company.name}} {{client.name}} {{invoice.number}} {{invoice.invoiceDate}} {{invoice.dueDate}} " +
      '{{invoice.total}} {{invoice.outstanding}} {{payNowUrl}}, and {{#if tag}}…{{/if}} around them. With {{payNowUrl}} the emailed invoice carries its Pay Now URL. ' +
      'An unknown tag is refused with 422 naming it.',
  },
);

const ProjectCreate = Obj(
  {
    id: id({ description: "The ERP's project id; unique within the organisation." }),
    name: Str({ minLength: 1, maxLength: 200 }),
    clientId: id({ description: 'The client the project bills.' }),
    companyId: Optional(id({ description: "The company the project belongs to; its provider account sends the project's invoices. Required with an organisation key of several companies." })),
  },
  { additionalProperties: false },
);
const Project = Partial(Obj({ id: Str(), name: Str(), companyId: Str(), clientId: Str(), createdAt: Str() }));
const Client = Partial(Obj({ id: Str(), name: Str(), email: Nullable(Str()) }));

const InvoiceLine = Obj(
  {
    description: Str({ minLength: 1, maxLength: 500 }),
    quantity: Optional(Num({ minimum: -1_000_000_000, maximum: 1_000_000_000 })),
    unitPrice: Optional(minor()),
    amount: minor({ description: 'Line amount in minor units; must equal quantity x unitPrice when both are given.' }),
  },
  { additionalProperties: false },
);
const lines = () => Arr(Ref('InvoiceLine', InvoiceLine), { minItems: 1, maxItems: 500 });

const InvoiceCreate = Obj(
  {
    number: id({ description: "The ERP's invoice number, unique per company (per organisation when the company belongs to one)." }),
    projectId: Optional(id({ description: "The project the invoice bills. Its company is the invoice's company, whose provider account sends it and gives its Pay Now URL." })),
    clientId: Optional(id({ description: "The client billed; defaults to the project's client. Required without projectId." })),
    invoiceDate: date(),
    dueDate: date(),
    lines: lines(),
    prepaymentsApplied: Default(minor({ minimum: 0, description: 'Client prepayments (credits) the ERP applied to this invoice.' }), 0),
  },
  { additionalProperties: false },
);

const InvoiceRevision = Obj(
  { invoiceDate: Optional(date()), dueDate: Optional(date()), lines: Optional(lines()) },
  { additionalProperties: false, minProperties: 1, description: 'New content for a Draft or Reissue invoice.' },
);

const BackupAttachment = Obj(
  { filename: Str({ minLength: 1, maxLength: 200 }), contentType: Str({ minLength: 3, maxLength: 100 }), contentBase64: Str({ minLength: 1, maxLength: 10_000_000 }) },
  { additionalProperties: false },
);
const StatusChange = Obj(
  {
    status: StringEnum(INVOICE_STATUSES),
    dryRun: Default(Bool({ description: 'Answer with exactly what the change would do (the same plan the real change executes) and change nothing.' }), false),
    backupAttachments: Optional(Arr(BackupAttachment, { maxItems: 20, description: 'Backup documents printed with a Final invoice: kept and emailed with it, never sent to the provider.' })),
  },
  { additionalProperties: false },
);

const Plan = Partial(
  Obj({
    from: Str(),
    to: Str(),
    steps: Arr(
      AnyObject({
        description:
          'kind: import-payments | apply-payment | convert-to-prepayment | remove-provider-payment | hold-provider-payment (heldBy: invoices still Final) | ' +
          'keep-provider-payment (a provider that keeps the payments it collected, e.g. Stripe: its invoice is credited when it leaves) | ' +
          'delete-provider-invoice (voids: true where the provider voids rather than deletes, e.g. Stripe) | create-provider-invoice | update-provider-invoice | recreate-prepayment-payment (a prepayment applied while not Final becomes a payment on the record) | ' +
          'remove-prepayment-payment (before the record is deleted) | render-pdf | attach-pdf | email-invoice (to, withPayNowUrl) | skip-provider (reason) | hold-exceptional (classification)',
      }),
    ),
    payNowUrl: StringEnum(['new', 'same', 'removed', 'none', 'unchanged'], {
      description: "What the change does to the provider's payment page (`providerPaymentUrl`). billflow's own link (`payNowUrl` of the invoice) changes only on a Final after a Draft.",
    }),
    feed: Arr(AnyObject(), { description: 'Receipts-feed entries the change adds (payment, fee, prepayment).' }),
  }),
  { description: 'What a status change does at the provider and in the ERP feed, step by step.' },
);

const LifecycleChange = Obj(
  {
    state: StringEnum(['Presented', 'Presented & Confirmed', 'Presented & Rejected'], { description: 'Posted is set when the invoice becomes Final.' }),
    by: Str({ minLength: 1, maxLength: 200, description: 'Who makes the change (recorded with the time).' }),
  },
  { additionalProperties: false },
);

const Release = Obj({ by: Str({ minLength: 1, maxLength: 200, description: 'The operator releasing the held exceptional bill.' }) }, { additionalProperties: false });

const QuickPay = Obj(
  {
    paymentType: Str({ minLength: 1, maxLength: 100 }),
    paymentMethod: Str({ minLength: 1, maxLength: 100 }),
    issuedOn: date(),
    category: Str({ minLength: 1, maxLength: 100 }),
    receivedByUser: Str({ minLength: 1, maxLength: 200 }),
    receivedByUnit: Str({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false, description: "The amount is always the bill's whole unsettled balance and cannot be given." },
);

const BillLimit = OneOf([
  Obj({ kind: Literal('fixed'), amount: minor({ minimum: 0 }) }, { additionalProperties: false }),
  Obj({ kind: Literal('credit-limit'), percent: Num({ exclusiveMinimum: 0, maximum: 1000, description: '100 = equal to the credit limit' }) }, { additionalProperties: false }),
]);
const limitOrNone = () => OneOf([Ref('BillLimit', BillLimit), Null()]);
const BillingRunDefinition = Obj(
  { maxCredited: limitOrNone(), maxDebited: limitOrNone() },
  {
    additionalProperties: false,
    description: 'Bills whose total is below -maxCredited ("Max Credit Amount Reached") or above maxDebited ("Max Credit Limit Amount Reached") are exceptional and held. null: no limit.',
  },
);

const ClientPatch = Obj(
  {
    name: Optional(Str({ minLength: 1, maxLength: 200 })),
    email: Optional(Nullable(Str({ format: 'email', maxLength: 320 }))),
    creditLimit: Optional(Nullable(Integer({ minimum: 0, maximum: MAX_MINOR, description: 'Credit limit of the client account, minor units.' }))),
    deliveryPreference: Optional(StringEnum(['email', 'print'])),
  },
  { additionalProperties: false, minProperties: 1 },
);

const PrepaymentApply = Obj({ prepaymentId: Str({ format: 'uuid' }), amount: minor({ minimum: 1 }) }, { additionalProperties: false });

const Prepayment = Partial(
  Obj({
    id: Str(),
    companyId: Str(),
    clientId: Str(),
    amount: minorSum(),
    remaining: minorSum(),
    origin: Partial(Obj({ invoiceNumber: Str(), providerPaymentId: Str(), paidAt: Nullable(Str()) }), { description: 'The invoice and provider payment the credit came from.' }),
    applications: Arr(AnyObject()),
  }),
);

const PaymentHolds = Partial(
  Obj({
    paymentId: Str(),
    companyId: Str({ description: 'The company whose provider account took the payment.' }),
    coveredInvoices: Arr(Str()),
    heldBy: Arr(Str(), { description: 'Covered invoices still Final: the provider payment stays until each has changed.' }),
    removedAtProvider: Bool(),
  }),
);

const Invoice = Partial(
  Obj({
    companyId: Str(),
    number: Str(),
    clientId: Str(),
    projectId: Str({ description: 'Present when the invoice was created for a project.' }),
    projectName: Str(),
    status: StringEnum(INVOICE_STATUSES),
    settlement: StringEnum(SETTLEMENT_STATUSES),
    currency: Str(),
    invoiceDate: date(),
    dueDate: date(),
    lines: Arr(Ref('InvoiceLine', InvoiceLine)),
    total: minorSum(),
    prepaymentsApplied: minorSum(),
    paid: minorSum(),
    outstanding: minorSum(),
    payNowUrl: Nullable(Str(), {
      description:
        "billflow's own Pay Now link (`/pay/{token}`): the same from a Final until the invoice goes back to Draft, whatever the provider does underneath; it redirects to the provider's current payment page. Null while the invoice has no payment page (Draft, held, never sent).",
    }),
    providerPaymentUrl: Nullable(Str(), { description: "The provider's own payment page now (before the stable link, this was `payNowUrl`); it changes when the provider's record is replaced." }),
    providerInvoiceId: Nullable(Str()),
    sentToProvider: Bool(),
    revision: Integer(),
    payments: Arr(
      Partial(
        Obj({
          paymentId: Str({ description: "The provider's payment id (GET /v1/payments/{paymentId})." }),
          amount: minorSum({ description: 'The part of the payment applied to this invoice, fee excluded.' }),
          fee: minorSum({ description: 'Convenience fee paid on top; never lowers what is owed.' }),
          paidAt: Str(),
          source: StringEnum(['webhook', 'import', 'quickpay'], { description: "How billflow learned of it: the provider's webhook, the periodic import, or its own Quick Pay." }),
          coveredInvoices: Arr(Str(), { description: 'Every invoice the provider payment covered, this one included.' }),
        }),
      ),
    ),
    history: Arr(AnyObject()),
    pendingChange: Type.Unsafe<Record<string, unknown> | null>({
      type: ['object', 'null'],
      description: 'A status change under way (e.g. waiting out a provider outage after a 202).',
    }),
    emailDelivery: Nullable(Partial(Obj({ revision: Integer(), status: StringEnum(['sent', 'failed', 'unconfirmed']), to: Nullable(Str()), detail: Str(), at: Str() })), {
      description:
        "The latest Final's invoice email: `status` sent; failed when the mail server refused it for good (`detail` says why); unconfirmed when a crash cut the send off (it is never sent twice). The Final stands either way.",
    }),
    lastFailure: Nullable(Partial(Obj({ to: Str(), requestId: Str(), at: Str(), reason: Str(), undone: Arr(Str()) })), {
      description: 'The last status change or release that failed for good (a provider refusal): the reason and what was undone at the provider. Cleared by the next change that succeeds.',
    }),
    workflowId: Str(),
  }),
  { description: 'The invoice as its workflow holds it.' },
);

/** A row of the invoice listing: the read model the workflow keeps (eventually consistent), not the workflow's whole state. */
const InvoiceSummary = Obj(
  {
    number: Str(),
    companyId: Str(),
    clientId: Str(),
    projectId: Nullable(Str()),
    status: StringEnum(INVOICE_STATUSES),
    settlement: StringEnum(SETTLEMENT_STATUSES),
    currency: Str(),
    invoiceDate: date(),
    dueDate: date(),
    total: minorSum(),
    prepaymentsApplied: minorSum(),
    paid: minorSum(),
    outstanding: minorSum(),
    payNowUrl: Nullable(Str(), { description: "billflow's own Pay Now link (see Invoice)." }),
    providerPaymentUrl: Nullable(Str(), { description: "The provider's own payment page now." }),
    lifecycleState: Nullable(Str({ description: 'Posted, Presented, Presented & Confirmed or Presented & Rejected; null before the first Final.' })),
    classification: Nullable(Str({ description: 'An exceptional bill: Max Credit Amount Reached or Max Credit Limit Amount Reached.' })),
    held: Bool({ description: 'An exceptional bill held from the provider and the client until released.' }),
    workflowId: Str(),
    updatedAt: Str({ format: 'date-time' }),
  },
  { description: 'A row of GET /v1/invoices: the invoice as its workflow last recorded it in the read model.' },
);

const Receipt = Partial(
  Obj({
    id: Str({ description: 'Feed cursor of this receipt.' }),
    companyId: Str(),
    kind: StringEnum(['payment', 'fee', 'processing-fee', 'prepayment'], {
      description:
        "`fee` receipts are miscellaneous receipts for the payer's convenience fees (Bill & Pay); `processing-fee`: what the provider kept from a card payment it collected (Stripe's fee, from the charge's balance transaction; the client's cost, in the balance's currency); `prepayment`: a payment on an invoice that left Final became a client credit.",
    }),
    providerPaymentId: Str(),
    invoiceNumber: Nullable(Str(), { description: 'prepayment: the invoice the credit came from; null otherwise (see `applications`).' }),
    amount: minorSum(),
    currency: Str(),
    invoices: Arr(Str(), { description: 'Every invoice the provider payment covered.' }),
    applications: Nullable(Arr(Partial(Obj({ invoiceNumber: Str(), amount: Nullable(Integer()) }))), {
      description:
        'What the receipt applies to, as the ERP posts it: per invoice, the amount of this payment applied to it (a payment receipt; the amounts add up to `amount`). ' +
        'Empty for a fee (a miscellaneous receipt) and a prepayment (a credit, applied later). Null on receipts from before billflow recorded it.',
    }),
    quickPay: Nullable(
      Partial(
        Obj({
          paymentType: Str(),
          paymentMethod: Str(),
          issuedOn: Str({ format: 'date' }),
          category: Str(),
          receivedByUser: Str(),
          receivedByUnit: Str(),
        }),
      ),
      { description: "A Quick Pay's details as the ERP gave them (null for other payments)." },
    ),
    paidAt: Str({ format: 'date-time' }),
    requestId: Str(),
    acknowledged: Bool(),
  }),
);

const Reconciliation = Partial(
  Obj({
    id: Str({ format: 'uuid' }),
    requestId: Str({ description: 'Correlation id carried by every repair call to the provider.' }),
    status: StringEnum(['running', 'repairing', 'finished', 'failed'], {
      description: '`repairing`: compared, and some invoice workflows have not yet recorded their repair. `failed`: see `failed`.',
    }),
    failed: Nullable(Str(), { description: 'Why the run failed (e.g. the provider refused the account key).' }),
    halted: Nullable(Str(), { description: 'Why no repair was asked for although there were findings (most of the account differs at once).' }),
    findingCount: Integer(),
    startedAt: Str({ format: 'date-time' }),
    comparedAt: Nullable(Str({ format: 'date-time' }), { description: 'When the comparison finished and repairs were asked for.' }),
    checkedInvoices: Integer(),
    checkedRecords: Integer(),
    findings: Arr(
      Partial(
        Obj({
          kind: StringEnum(['missing-at-provider', 'figures-differ', 'stale-at-provider', 'unknown-at-provider']),
          number: Str(),
          providerInvoiceId: Str(),
          billflow: AnyObject({ description: 'figures-differ: amount and outstanding in billflow' }),
          provider: AnyObject({ description: 'figures-differ: amount and outstanding at the provider' }),
        }),
      ),
    ),
    repairsRequested: Arr(Str(), { description: 'Invoices whose workflows were asked to repair.' }),
    repairs: Arr(Partial(Obj({ invoiceNumber: Str(), actions: Arr(Str()), repairedAt: Str({ format: 'date-time' }) }))),
  }),
);

const ReceiptAck = Obj({ upTo: Str({ pattern: '^\\d{1,18}$', description: 'Acknowledge every receipt up to and including this id.' }) }, { additionalProperties: false });

/** The component schemas, by the name the description and the validators know them by. */
export const schemas = {
  ...billSchemas,
  ...webhookSchemas,
  OrganisationCreate,
  Organisation,
  CompanyCreate,
  CompanyPatch,
  Company,
  ClientCreate,
  EmailTemplate,
  ProjectCreate,
  Project,
  Client,
  InvoiceLine,
  InvoiceCreate,
  InvoiceRevision,
  StatusChange,
  Plan,
  LifecycleChange,
  Release,
  QuickPay,
  BillLimit,
  BillingRunDefinition,
  ClientPatch,
  PrepaymentApply,
  Prepayment,
  PaymentHolds,
  Invoice,
  InvoiceSummary,
  Receipt,
  Reconciliation,
  ReceiptAck,
};

/** Kept out of the NUL rule: `detail` may quote the input it refuses. */
const Problem = Partial(
  Obj({
    type: Str(),
    title: Str(),
    status: Integer(),
    detail: Str({ description: 'What was wrong; may quote the refused input.' }),
    field: Str({ description: 'The offending input field, when there is one.' }),
  }),
  { description: 'RFC 9457 problem document.' },
);

export type SchemaName = keyof typeof schemas;

/** The query strings of the listings (the contract checks them; the routes read them typed with `queryOf`). */
export const ClientQuery = Obj({ clientId: Optional(Str()) });
export const InvoicesQuery = Obj({
  status: Optional(StringEnum(INVOICE_STATUSES)),
  clientId: Optional(Str()),
  after: Optional(Str({ description: 'Cursor: the last invoice number of the previous page.' })),
  limit: Default(Integer({ minimum: 1, maximum: 200 }), 50),
});
export const ReceiptsQuery = Obj({
  after: Optional(Str({ pattern: '^\\d{1,18}$', description: 'Cursor: the id of the last receipt already read.' })),
  limit: Default(Integer({ minimum: 1, maximum: 200 }), 50),
  unacknowledged: Optional(Bool()),
});
export const ReconciliationsQuery = Obj({ limit: Default(Integer({ minimum: 1, maximum: 200 }), 20) });

const number = pathParameter('number', 'INV-2026-0042');
const clientId = pathParameter('id', 'CL-ACME');
/** A request body of the named schema with its example, typed by the schema (test/api-docs.test.ts also validates it). */
const body = <N extends SchemaName>(name: N, example: Static<(typeof schemas)[N]>) => jsonBody(name, example);

/**
 * One story for every example: Halden Engineering (an Ajera company, with its Bill & Pay account)
 * bills its client Acme Corporation for project PRJ-2026-017 with invoice INV-2026-0042.
 */
const example = {
  lines: [
    { description: 'Structural design, November 2026 (42 h)', quantity: 42, unitPrice: 17_500, amount: 735_000 },
    { description: 'Site visits', quantity: 3, unitPrice: 45_000, amount: 135_000 },
  ],
  by: 'dana.whitfield',
};
const json = (description: string, name: SchemaName) => jsonResponse(description, name);

const invoicePaths = ['status', 'revision', 'prepayments', 'lifecycle', 'release', 'quick-pay', 'reminders'].map((p) => `/v1/invoices/{number}/${p}`);
/** An invoice's PDFs: a Final's (a new invoice is a Draft, which has none yet). */
const invoicePdfs = ['/v1/invoices/{number}/pdf', '/v1/bills/{number}/pdf'];

/** A valid invoice's content for links that create one (each link names its number). */
const invoiceContent = { invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'Design, 10 h', quantity: 10, unitPrice: 15_000, amount: 150_000 }] };
const byId = { id: '$response.body#/id' };
const byNumber = { number: '$response.body#/number' };
/** The answers that are an invoice (created, or just changed). */
const invoiceAnswers = [
  ['POST /v1/invoices', 201],
  ['POST /v1/invoices', 200],
  ['POST /v1/invoices/{number}/status', 200],
  ['POST /v1/invoices/{number}/revision', 200],
  ['POST /v1/invoices/{number}/prepayments', 200],
  ['POST /v1/invoices/{number}/lifecycle', 200],
  ['POST /v1/invoices/{number}/release', 200],
  ['POST /v1/invoices/{number}/quick-pay', 200],
] as const;

/**
 * Links from what a request creates or changes to what can be done with it next (followed by
 * schemathesis's stateful phase): a client to a project and an invoice of its own, a project to an
 * invoice, an invoice to every operation on it, and to each status change and a revision with a
 * body that makes them. A link's requestBody is the whole body, so a new invoice's number comes
 * from what it is for: the client's id, or the project's with a `P-` before it.
 */
const LINKS: LinkRule[] = [
  { from: 'POST /v1/clients', status: 201, to: ['/v1/clients/{id}', '/v1/clients/{id}/invoice-email-template'], parameters: byId },
  { from: 'POST /v1/clients', status: 201, to: ['POST /v1/invoices'], requestBody: { number: '$response.body#/id', clientId: '$response.body#/id', ...invoiceContent } },
  { from: 'POST /v1/clients', status: 201, to: ['POST /v1/projects'], requestBody: { id: '$response.body#/id', name: 'Pier 4', clientId: '$response.body#/id' } },
  { from: 'POST /v1/projects', status: 201, to: ['/v1/projects/{id}'], parameters: byId },
  { from: 'POST /v1/projects', status: 201, to: ['POST /v1/invoices'], requestBody: { number: 'P-{$response.body#/id}', projectId: '$response.body#/id', ...invoiceContent } },
  { from: 'POST /v1/companies', status: 201, to: ['/v1/companies/{id}'], parameters: byId },
  ...invoiceAnswers.flatMap(([from, status]) => [
    { from, status, to: ['/v1/invoices/{number}', ...invoicePaths, ...(from === 'POST /v1/invoices' ? [] : invoicePdfs)], parameters: byNumber },
    { from, status, to: ['POST /v1/bill-runs'], requestBody: { criteria: { invoiceNumbers: ['$response.body#/number'] } } },
    // Each status change and a new content: the lifecycle refuses those that do not apply now (409), and a link is picked at random.
    ...(['Final', 'Reissue', 'Draft'] as const).map((to) => ({
      from,
      status,
      to: ['POST /v1/invoices/{number}/status'],
      parameters: byNumber,
      requestBody: { status: to },
      name: to.toLowerCase(),
    })),
    {
      from,
      status,
      to: ['POST /v1/invoices/{number}/revision'],
      parameters: byNumber,
      requestBody: { dueDate: '2027-01-15', lines: [...invoiceContent.lines, { description: 'Printing of drawings', amount: 12_450 }] },
      name: 'content',
    },
  ]),
  // A Quick Pay's payment, and the prepayments that payments become when their invoice leaves Final.
  { from: 'POST /v1/invoices/{number}/quick-pay', status: 200, to: ['GET /v1/payments/{paymentId}'], parameters: { paymentId: '$response.body#/payments/0/paymentId' } },
  { from: 'POST /v1/invoices/{number}/status', status: 200, to: ['GET /v1/prepayments'] },
  // A cent of the oldest prepayment back to the invoice it came from (which owes again once it left Final).
  {
    from: 'GET /v1/prepayments',
    status: 200,
    to: ['POST /v1/invoices/{number}/prepayments'],
    parameters: { number: '$response.body#/data/0/origin/invoiceNumber' },
    requestBody: { prepaymentId: '$response.body#/data/0/id', amount: 1 },
  },
  {
    from: 'POST /v1/message-templates',
    status: 201,
    to: ['/v1/message-templates/{id}', '/v1/message-templates/{id}/preview', '/v1/message-templates/{id}/send'],
    parameters: byId,
  },
  { from: 'POST /v1/message-templates', status: 201, to: ['POST /v1/bill-runs'], requestBody: { templateId: '$response.body#/id' } },
  ...['POST /v1/bill-runs', 'POST /v1/bill-runs/{id}/retry', 'POST /v1/message-templates/{id}/send'].map((from) => ({
    from,
    status: 201,
    to: ['/v1/bill-runs/{id}', '/v1/bill-runs/{id}/items', '/v1/bill-runs/{id}/retry', '/v1/bill-runs/{id}/printout'],
    parameters: byId,
  })),
  { from: 'POST /v1/reconciliations', status: 201, to: ['/v1/reconciliations/{id}'], parameters: byId },
  ...([201, 200] as const).map((status) => ({ from: 'PUT /v1/custom-tags/{name}', status, to: ['/v1/custom-tags/{name}'], parameters: { name: '$response.body#/name' } })),
  {
    from: 'POST /v1/webhook-endpoints',
    status: 201,
    to: ['/v1/webhook-endpoints/{id}', '/v1/webhook-endpoints/{id}/rotate-secret', '/v1/webhook-endpoints/{id}/deliveries'],
    parameters: byId,
  },
];

const worker = { 503: ['worker-unavailable'] };
/** A change made through the invoice's workflow (an Update): its rule errors, and no worker answering in time. */
const change = (rules: ProblemTypes): ProblemTypes => ({ 404: ['not-found'], ...worker, ...rules });

/** The problem types each route gives itself (the common ones are added by withProblemTypes), as api/routes/*.ts throws them. */
const PROBLEMS: Record<string, ProblemTypes> = {
  'GET /readyz': { 503: ['not-ready'] },
  'POST /v1/organisations': { 409: ['organisation-exists'] },
  'POST /v1/projects': { 404: ['not-found'], 409: ['project-exists'] },
  'GET /v1/projects/{id}': { 404: ['not-found'] },
  // A Stripe company's webhook endpoint is made at Stripe when it is registered or its key changes.
  'POST /v1/companies': { 409: ['company-exists'], 502: ['provider-rejected'], 503: ['provider-unavailable'] },
  'PATCH /v1/companies/{id}': { 404: ['not-found'], 502: ['provider-rejected'], 503: ['provider-unavailable'] },
  'POST /v1/clients': { 409: ['client-exists'] },
  'PUT /v1/clients/{id}/invoice-email-template': { 404: ['not-found'], 422: ['invalid-email-template'] },
  'PATCH /v1/clients/{id}': { 404: ['not-found'] },
  'GET /v1/clients/{id}': { 404: ['not-found'] },
  'POST /v1/invoices': { 404: ['not-found'], 409: ['invoice-exists'], 422: ['invalid-lines', 'invalid-amount'], ...worker },
  'GET /v1/invoices/{number}': { 404: ['not-found'], ...worker },
  'GET /v1/invoices/{number}/pdf': { 404: ['not-found'], ...worker },
  'POST /v1/invoices/{number}/status': change({ 409: ['illegal-transition'], 502: ['provider-rejected'], 503: ['worker-unavailable', 'provider-unavailable'] }),
  'POST /v1/invoices/{number}/prepayments': change({ 422: ['invalid-prepayment', 'prepayment-exhausted'] }),
  'GET /v1/payments/{paymentId}': { 404: ['not-found'] },
  'POST /v1/invoices/{number}/revision': change({ 409: ['not-editable'], 422: ['invalid-lines', 'invalid-amount'] }),
  'POST /v1/invoices/{number}/lifecycle': change({ 409: ['illegal-lifecycle-move'] }),
  'POST /v1/invoices/{number}/release': change({ 409: ['not-held'], 502: ['provider-rejected'] }),
  'POST /v1/invoices/{number}/quick-pay': change({ 409: ['quick-pay-refused'] }),
  'GET /v1/invoices/{number}/reminders': { 404: ['not-found'] },
  'POST /v1/reconciliations': { 409: ['provider-disabled'], 502: ['reconciliation-failed'] },
  'GET /v1/reconciliations/{id}': { 404: ['not-found'] },
  'POST /webhooks/provider/{companyId}': { 400: ['invalid-signature', 'invalid-webhook', 'malformed-json'], 503: ['temporal-unavailable'] },
  'POST /v1/message-templates': { 409: ['template-exists'], 422: ['unknown-tag'] },
  'GET /v1/message-templates/{id}': { 404: ['not-found'] },
  'PUT /v1/message-templates/{id}': { 404: ['not-found'], 409: ['template-exists'], 422: ['unknown-tag'] },
  'POST /v1/message-templates/{id}/preview': { 404: ['not-found'], 409: ['not-a-bill'], ...worker },
  'POST /v1/message-templates/{id}/send': { 404: ['not-found'], 409: ['not-a-bill', 'run-exists'] },
  'DELETE /v1/custom-tags/{name}': { 404: ['not-found'], 409: ['tag-in-use'] },
  'POST /v1/bill-runs': { 404: ['not-found'], 409: ['run-exists'] },
  'GET /v1/bill-runs/{id}': { 404: ['not-found'] },
  'GET /v1/bill-runs/{id}/items': { 404: ['not-found'] },
  'POST /v1/bill-runs/{id}/retry': { 404: ['not-found'], 409: ['run-in-progress', 'nothing-to-retry', 'run-exists'] },
  'GET /v1/bill-runs/{id}/printout': { 404: ['not-found'], 409: ['run-in-progress', 'nothing-printed'] },
  'GET /v1/bills/{number}/pdf': { 404: ['not-found'], 409: ['not-a-bill'], ...worker },
  'GET /v1/webhook-endpoints/{id}': { 404: ['not-found'] },
  'PATCH /v1/webhook-endpoints/{id}': { 404: ['not-found'] },
  'DELETE /v1/webhook-endpoints/{id}': { 404: ['not-found'] },
  'POST /v1/webhook-endpoints/{id}/rotate-secret': { 404: ['not-found'] },
  'GET /v1/webhook-endpoints/{id}/deliveries': { 404: ['not-found'] },
  'POST /v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver': { 404: ['not-found'] },
};

/** A page for a person (the payer), not a document for the ERP. */
function htmlPage(description: string) {
  return { description, content: { 'text/html': { schema: { type: 'string' } } } };
}

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'billflow API',
    version: '0.1.0',
    description:
      "The ERP's interface to billflow. Every invoice is a Temporal workflow; status changes are workflow Updates. " +
      'Authenticate with `Authorization: Bearer <key>`: a company API key acts for that company; an organisation API key acts for every ' +
      "company of the organisation: a new invoice goes to its project's company, an invoice number finds its company, listings cover " +
      'every company, and per-company settings (billing-run definition, message templates, bill runs) take the company from the ' +
      '`Billflow-Company` header (422 `company-required` without it). The operator key registers organisations and companies. ' +
      'Errors are RFC 9457 problem documents. Money is integer minor units.',
  },
  components: {
    securitySchemes: {
      bearer: { type: 'http', scheme: 'bearer', description: 'A company API key, or an organisation API key covering several companies.' },
      operator: { type: 'http', scheme: 'bearer', description: 'The operator key (BILLFLOW_ADMIN_KEY).' },
    },
    schemas: { ...refusingNul(schemas), Problem },
    responses: {
      Problem: { description: 'Error (problem document)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
    },
  },
  security: [{ bearer: [] }],
  paths: refusingNul(
    withLinks(
      withProblemTypes(
        withCompanyHeader({
          '/healthz': { get: { summary: 'Process is up', security: [], responses: { 200: jsonAnswer('ok', Obj({ ok: Literal(true) })) } } },
          '/readyz': {
            get: {
              summary: 'Temporal and PostgreSQL are reachable',
              security: [],
              responses: { 200: jsonAnswer('ready', Obj({ ok: Literal(true), postgres: Literal('up'), temporal: Literal('up') })), 503: problem },
            },
          },
          '/metrics': {
            get: {
              summary: 'Prometheus metrics of this API process (operator key)',
              security: [{ operator: [] }],
              description: 'Request latency by route template and status, status changes by outcome, webhook deliveries by status (from PostgreSQL), Node.js process metrics.',
              responses: { 200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } }, 401: problem },
            },
          },
          '/pay/{token}': {
            get: {
              summary: "billflow's Pay Now link: to the invoice's payment page at the provider (public, for payers)",
              security: [],
              description:
                'The link printed on the PDF and carried by the emails (`payNowUrl` of an invoice). It is the same from a Final until the invoice goes back to Draft, across reissues, ' +
                "a provider record re-created by reconciliation and a move to another provider account, and answers with the provider's payment page of the moment.",
              parameters: [pathParameter('token', 'k3Fz9QbW1xYt7LmR2sVn4A', { type: 'string', maxLength: 64 })],
              responses: {
                303: { description: "To the provider's current payment page (`Location`)", headers: { Location: { schema: { type: 'string' } } } },
                200: htmlPage('The invoice is paid in full: nothing is left to pay'),
                404: htmlPage('No such link'),
                410: htmlPage('The invoice went back to Draft after this link was given out: it no longer works (the next Final has a new link)'),
                503: htmlPage('The invoice has no payment page at the provider right now (being replaced, or lost and not yet re-created); try again shortly (`Retry-After`)'),
              },
            },
          },
          '/v1/organisations': {
            post: {
              summary: 'Register an organisation: one ERP connection over several companies (operator key)',
              security: [{ operator: [] }],
              description: 'Returns the organisation API key, once. Companies join it when they are registered with `organisationId`.',
              parameters: [idempotencyKey, requestId],
              requestBody: body('OrganisationCreate', { id: 'HALDEN-GROUP', name: 'Halden Group' }),
              responses: { 201: json('Created', 'Organisation'), 401: problem, 409: problem, 422: problem },
            },
          },
          '/v1/projects': {
            post: {
              summary: 'Register a project of a company',
              description: "An invoice created with `projectId` belongs to the project's company and is sent through that company's provider account.",
              parameters: [idempotencyKey, requestId],
              requestBody: body('ProjectCreate', { id: 'PRJ-2026-017', name: 'Acme HQ renovation', clientId: 'CL-ACME' }),
              responses: { 201: json('Created', 'Project'), 401: problem, 404: problem, 409: problem, 422: problem },
            },
            get: {
              summary: 'Projects of the companies the key covers',
              parameters: queryParameters(ClientQuery),
              responses: { 200: jsonAnswer('The projects', listOf(Ref('Project', Project))), 401: problem },
            },
          },
          '/v1/projects/{id}': {
            get: { summary: 'A project', parameters: [pathParameter('id', 'PRJ-2026-017')], responses: { 200: json('The project', 'Project'), 401: problem, 404: problem } },
          },
          '/v1/companies': {
            get: {
              summary: 'The companies the API key covers',
              responses: {
                200: {
                  description: 'The companies, without their API keys',
                  content: { 'application/json': { schema: { type: 'object', properties: { data: { type: 'array', items: { $ref: '#/components/schemas/Company' } } } } } },
                },
                401: problem,
              },
            },
            post: {
              summary: 'Register a company (operator key)',
              security: [{ operator: [] }],
              description:
                'Creates the company with its provider account settings and returns its API key, once. A Stripe company without webhookSecret gets ' +
                "billflow's webhook endpoint in its account, made through Stripe's API: 502 when Stripe refuses that, 503 when it cannot be reached (nothing registered).",
              parameters: [idempotencyKey, requestId],
              requestBody: body('CompanyCreate', {
                id: 'HALDEN-EAST',
                name: 'Halden Engineering East',
                currency: 'USD',
                reminderDays: [0, 7],
                provider: {
                  kind: 'billpay',
                  enabled: true,
                  url: 'https://api.billpay.example',
                  accountId: 'acct_4QX7T2',
                  apiKey: 'bp_sk_9f2c41d07e8a4b6c',
                  webhookSecret: 'bp_whsec_5d1e8a0c7b3f4e92',
                },
              }),
              responses: { 201: json('Created', 'Company'), 401: problem, 409: problem, 422: problem, 502: problem, 503: problem },
            },
          },
          '/v1/companies/{id}': {
            patch: {
              summary: "Change a company's provider account, intervals or reminder days (operator key)",
              description:
                'Only the fields given change; turning the provider integration on needs url, accountId, apiKey and webhookSecret (given now or ' +
                'before; a Stripe company: url and apiKey, its webhook endpoint is made by billflow). Invoices use the new settings from their next status change. The reconciliation schedule is updated, or removed when ' +
                'the integration is turned off.',
              security: [{ operator: [] }],
              parameters: [pathParameter('id', 'HALDEN-EAST'), idempotencyKey, requestId],
              requestBody: body('CompanyPatch', { reminderDays: [-3, 0, 14], paymentImportSeconds: 1800 }),
              // 502/503: a Stripe company's new key (or url) gets billflow's webhook endpoint in that account, which Stripe refused or could not be reached for.
              responses: { 200: json('The company', 'Company'), 401: problem, 404: problem, 422: problem, 502: problem, 503: problem },
            },
          },
          '/v1/clients': {
            post: {
              summary: 'Register a client (shared by every company of an organisation)',
              parameters: [idempotencyKey, requestId],
              requestBody: body('ClientCreate', { id: 'CL-ACME', name: 'Acme Corporation', email: 'ap@acme.example' }),
              responses: { 201: json('Created', 'Client'), 401: problem, 409: problem, 422: problem },
            },
          },
          '/v1/clients/{id}/invoice-email-template': {
            put: {
              summary: "Set the client's invoice email template",
              parameters: [clientId, idempotencyKey],
              requestBody: body('EmailTemplate', {
                subject: 'Invoice {{invoice.number}} from {{company.name}}',
                body:
                  'Dear {{client.name}},\n\nplease find attached invoice {{invoice.number}} of {{invoice.invoiceDate}} for {{invoice.total}}, due on {{invoice.dueDate}}.' +
                  '{{#if payNowUrl}} You can pay it online: {{payNowUrl}}{{/if}}\n\nKind regards,\n{{company.name}}',
              }),
              responses: {
                200: jsonAnswer('The template, with `usesPayNowUrl`', Obj({ subject: Str(), body: Str(), usesPayNowUrl: Bool() })),
                404: problem,
                422: problem,
              },
            },
          },
          '/v1/clients/{id}': {
            patch: {
              summary: "Change a client's name, email, credit limit or delivery preference",
              parameters: [clientId, idempotencyKey],
              requestBody: body('ClientPatch', { email: 'payables@acme.example', creditLimit: 2_500_000, deliveryPreference: 'email' }),
              responses: { 200: json('The client', 'Client'), 404: problem, 422: problem },
            },
            get: { summary: 'A client', parameters: [clientId], responses: { 200: json('The client', 'Client'), 404: problem } },
          },
          '/v1/invoices': {
            post: {
              summary: 'Create a draft invoice (starts its workflow)',
              description:
                "The invoice's company is its project's company (`projectId`), else the API key's company (or the `Billflow-Company` header). " +
                'The workflow id is `Invoice:<company>:<number>`; a second invoice with the same number in the company, or in its organisation, is 409. ' +
                'Once the workflow has started the answer is 201, also when no worker answers in time (the state is then the one the workflow starts from). ' +
                'The same create again (same number and content, e.g. a retry whose first answer was lost) is 200 with the invoice as it is now.',
              parameters: [idempotencyKey, requestId],
              requestBody: body('InvoiceCreate', { number: 'INV-2026-0042', projectId: 'PRJ-2026-017', clientId: 'CL-ACME', invoiceDate: '2026-11-30', dueDate: '2026-12-30', lines: example.lines }),
              responses: {
                201: json('Created', 'Invoice'),
                200: json('The same invoice was created before', 'Invoice'),
                401: problem,
                404: problem,
                409: problem,
                422: problem,
                503: problem,
              },
            },
            get: {
              summary: 'List invoices (read model; eventually consistent)',
              parameters: queryParameters(InvoicesQuery),
              responses: { 200: jsonAnswer('A page of invoices, by number', listOf(Ref('InvoiceSummary', InvoiceSummary), Str())), 401: problem, 422: problem },
            },
          },
          '/v1/invoices/{number}': {
            get: {
              summary: 'An invoice, as its workflow holds it',
              description:
                'While no worker answers (one restarting or being deployed), the invoice as its workflow last saved it, with the header ' +
                '`Billflow-State: saved`: a change is saved a moment after it answers, so the last answered change may be missing until a worker runs again. ' +
                '503 `worker-unavailable` only when nothing was saved yet.',
              parameters: [number],
              responses: {
                200: {
                  ...json('The invoice', 'Invoice'),
                  headers: { 'Billflow-State': { description: '`saved`: read from what the workflow last saved (no worker answered)', schema: { type: 'string', enum: ['saved'] } } },
                },
                404: problem,
                503: problem,
              },
            },
          },
          '/v1/invoices/{number}/status': {
            post: {
              summary: 'Change the invoice status (workflow Update); `dryRun` previews',
              description:
                'Draft -> Final prints the invoice: renders the PDF, and when the company has the provider enabled and something is owed, ' +
                'creates the client as a provider customer if needed and the provider invoice with the PDF, returning its Pay Now URL. ' +
                'Zero and net-zero invoices become Final without touching the provider; backup attachments never reach it. ' +
                'Final -> Reissue or Draft first imports every provider payment (refused with 503 `provider-unavailable` when it cannot, nothing changed); ' +
                'payments on the invoice become client prepayments and each provider payment record is removed once every invoice it covered has left Final. ' +
                "-> Draft deletes the provider's invoice record (its Pay Now URL stops working; the next Final gets a new one). " +
                "Reissue -> Final updates the provider's existing record (same Pay Now URL) with the new figures and PDF; a provider that cannot edit a " +
                'finalized invoice (Stripe) has it voided, or credited when paid, and replaced by a new one (a new Pay Now URL). ' +
                'The answer is the invoice with `plan`, the steps done; with `dryRun: true` it is `{ dryRun, plan }` and nothing changes. ' +
                'Errors: 409 `illegal-transition` (the lifecycle forbids it; nothing changed), 404 unknown invoice, 422 bad body, ' +
                '202 when the change is accepted but still waiting on the provider after 20 s, or after `Prefer: wait=N` seconds (poll the invoice), 503 `worker-unavailable` or `provider-unavailable`.',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('StatusChange', { status: 'Final' }),
              responses: {
                200: json('Changed (the invoice with `plan`), or the dry-run plan', 'Invoice'),
                202: jsonAnswer('Accepted; still in progress', Obj({ status: Literal('in-progress'), detail: Str(), updateId: Str() })),
                404: problem,
                409: problem,
                422: problem,
                503: problem,
              },
            },
          },
          '/v1/invoices/{number}/prepayments': {
            post: {
              summary: "Apply a client prepayment to the invoice (the ERP's action)",
              description:
                'Takes the amount from the prepayment and lowers what the invoice owes; when the invoice is Final at the provider the payment is created again there ' +
                "against it (lowering its outstanding balance). Errors: 404 unknown invoice or prepayment, 422 `invalid-prepayment` (another client's, or more than is owed), " +
                '422 `prepayment-exhausted` (more than is left).',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('PrepaymentApply', { prepaymentId: '3f0c5b9e-8a4d-4e7b-9c21-6d5a8f1e2b47', amount: 50_000 }),
              responses: { 200: json('The invoice', 'Invoice'), 404: problem, 422: problem, 503: problem },
            },
          },
          '/v1/prepayments': {
            get: {
              summary: 'Client prepayments (credits) made from payments on invoices that left Final',
              parameters: queryParameters(ClientQuery),
              responses: { 200: jsonAnswer('The prepayments', listOf(Ref('Prepayment', Prepayment))), 401: problem },
            },
          },
          '/v1/payments/{paymentId}': {
            get: {
              summary: 'A provider payment: the invoices it covered and which still hold it',
              parameters: [pathParameter('paymentId', 'pay_8Hq2Lw6Tn4')],
              responses: { 200: json('The payment', 'PaymentHolds'), 404: problem },
            },
          },
          '/v1/invoices/{number}/revision': {
            post: {
              summary: 'Edit a Draft or Reissue invoice (lines, dates)',
              description: 'Errors: 409 `illegal-transition` when the invoice is Final (reissue it first), 404 unknown invoice, 422 bad lines.',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('InvoiceRevision', { dueDate: '2027-01-15', lines: [...example.lines, { description: 'Printing of drawings', amount: 12_450 }] }),
              responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
            },
          },
          '/v1/invoices/{number}/lifecycle': {
            post: {
              summary: "Change the bill's informative life-cycle state",
              description:
                'Presented and Presented & Confirmed only from Posted; Presented & Rejected from Posted or Presented & Confirmed. Errors: 409 `illegal-lifecycle-move` (nothing changed), 404.',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('LifecycleChange', { state: 'Presented', by: example.by }),
              responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
            },
          },
          '/v1/invoices/{number}/release': {
            post: {
              summary: 'Release a held exceptional bill: its provider record and email go out now',
              description: 'Errors: 409 `not-held`, 404.',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('Release', { by: example.by }),
              responses: { 200: json('The invoice with `plan`', 'Invoice'), 404: problem, 409: problem, 422: problem },
            },
          },
          '/v1/invoices/{number}/quick-pay': {
            post: {
              summary: "Quick Pay: settle the bill's whole unsettled balance in one payment",
              description:
                'The payment is recorded at the provider (its Pay Now page shows the invoice paid) and reaches the receipts feed like any other. ' +
                'Errors: 409 `quick-pay-refused` (settled, not Final, or held), 422 (a field missing, or `amount` given: it is fixed), 404.',
              parameters: [number, idempotencyKey, requestId],
              requestBody: body('QuickPay', {
                paymentType: 'Check',
                paymentMethod: 'Check 10482',
                issuedOn: '2026-12-18',
                category: 'Client payment',
                receivedByUser: example.by,
                receivedByUnit: 'Accounts Receivable',
              }),
              responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
            },
          },
          '/v1/billing-run-definition': {
            put: {
              summary: "Set the company's billing-run definition (exceptional-bill limits)",
              parameters: [idempotencyKey],
              requestBody: body('BillingRunDefinition', { maxCredited: { kind: 'fixed', amount: 500_000 }, maxDebited: { kind: 'credit-limit', percent: 100 } }),
              responses: { 200: json('The definition', 'BillingRunDefinition'), 401: problem, 422: problem },
            },
          },
          '/v1/invoices/{number}/reminders': {
            get: {
              summary: "Due-date reminders: the company's reminder days and each reminder sent for this invoice",
              parameters: [number],
              responses: {
                200: jsonAnswer(
                  "The invoice's due date, the company's reminder days and each reminder sent",
                  Obj({
                    dueDate: date(),
                    reminderDays: Arr(Integer()),
                    sent: Arr(
                      Obj({
                        revision: Integer(),
                        daysAfterDue: Integer(),
                        recipient: Str(),
                        outstanding: minorSum(),
                        messageId: Str(),
                        sentAt: Nullable(Str({ format: 'date-time' }), { description: 'null when a crash cut the send off (it is not sent twice)' }),
                      }),
                    ),
                  }),
                ),
                401: problem,
                404: problem,
              },
            },
          },
          '/v1/invoices/{number}/pdf': {
            get: {
              summary: 'The final invoice PDF',
              description: "The PDF the invoice's workflow holds, there as soon as its Final has answered; while no worker answers, the one it last saved (`Billflow-State: saved`).",
              parameters: [number],
              responses: {
                200: {
                  description: 'The PDF',
                  content: { 'application/pdf': { schema: Str({ format: 'binary' }) } },
                  headers: { 'Billflow-State': { description: '`saved`: read from what the workflow last saved (no worker answered)', schema: { type: 'string', enum: ['saved'] } } },
                },
                404: problem,
                503: problem,
              },
            },
          },
          '/v1/receipts': {
            get: {
              summary: 'The receipts feed: one receipt per provider payment, fees as separate miscellaneous receipts',
              parameters: queryParameters(ReceiptsQuery),
              responses: { 200: jsonAnswer('A page of receipts, oldest first', listOf(Ref('Receipt', Receipt), Str())), 401: problem, 422: problem },
            },
          },
          '/v1/receipts/acknowledge': {
            post: {
              summary: 'Acknowledge receipts up to a cursor',
              parameters: [idempotencyKey],
              requestBody: body('ReceiptAck', { upTo: '1287' }),
              responses: { 200: jsonAnswer('How many receipts were newly acknowledged', Obj({ acknowledged: Integer() })), 401: problem, 422: problem },
            },
          },
          '/v1/reconciliations': {
            post: {
              summary: "Reconcile the company's invoices with its provider account now",
              description:
                'Compares every invoice with the live provider records and asks each affected invoice workflow to repair its own records: ' +
                "missed payments imported, figures set back to billflow's, a lost record re-created (new Pay Now URL), a stale record of one of " +
                "billflow's numbers deleted. Records for numbers billflow does not know are reported and left alone. The same runs on the " +
                "company's schedule (`Reconcile:<company>`, every `reconcileSeconds`). Answers 201 with the report once compared (repairs " +
                'follow within seconds: read the report again), or 202 while still comparing (`Prefer: wait=N` bounds the wait).',
              parameters: [idempotencyKey, requestId],
              responses: {
                201: json('The report', 'Reconciliation'),
                202: jsonAnswer('Still running; `Location` gives the report', Obj({ id: Str({ format: 'uuid' }), status: Literal('running'), workflowId: Str() })),
                401: problem,
                409: problem,
                422: problem,
                502: problem,
              },
            },
            get: {
              summary: "The company's reconciliations, newest first, and its schedule",
              parameters: queryParameters(ReconciliationsQuery),
              responses: {
                200: jsonAnswer(
                  'The schedule (null without one) and the runs, without their findings',
                  Obj({
                    schedule: Nullable(Obj({ id: Str(), nextRunAt: Nullable(Str({ format: 'date-time' })) })),
                    data: Arr(Ref('Reconciliation', Reconciliation)),
                  }),
                ),
                401: problem,
                422: problem,
              },
            },
          },
          '/v1/reconciliations/{id}': {
            get: {
              summary: 'One reconciliation: what differed and what each invoice workflow repaired',
              parameters: [pathParameter('id', '9b2e6f14-3c7a-4d58-a1e0-5f8c2d7b4a93', { type: 'string', format: 'uuid' })],
              responses: { 200: json('The report', 'Reconciliation'), 401: problem, 404: problem },
            },
          },
          '/webhooks/provider/{companyId}': {
            post: {
              summary: "The provider's signed payment webhooks",
              security: [],
              description:
                'Signed with `BillPay-Signature: t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>`; stale (>5 min) or bad signatures are 400, ' +
                'and so is every request for a company without provider webhooks (the answer never tells which companies exist). ' +
                'Each invoice the payment covers is signalled on its own. An invoice whose workflow has closed does not take the payment: the answer is still 200 and names it in `closed`. ' +
                'When Temporal could not be reached for an invoice the answer is 503 (after trying every invoice), so the provider delivers again; invoices apply a payment once.',
              parameters: [pathParameter('companyId', 'HALDEN-EAST')],
              responses: {
                200: jsonAnswer(
                  'Accepted (`invoices` were signalled), or a duplicate event, or an event type billflow does not act on',
                  Partial(
                    Obj({
                      received: Str({ description: 'The event id.' }),
                      invoices: Arr(Str()),
                      unknown: Arr(Str(), { description: 'Covered invoices billflow does not know.' }),
                      closed: Arr(Str()),
                      detail: Str(),
                      duplicate: Bool({ description: 'true: the event was handled before; this is its first answer.' }),
                      ignored: Str(),
                    }),
                  ),
                ),
                400: problem,
                503: problem,
              },
            },
          },
          ...billPaths,
          ...webhookPaths,
        }),
        PROBLEMS,
      ),
      LINKS,
    ),
  ),
} as const;
