/**
 * The one description of billflow's HTTP API: served at /openapi.json, rendered at /docs, and the
 * source of the request-body schemas the server validates with (api/validate.ts).
 */
import { INVOICE_STATUSES, SETTLEMENT_STATUSES } from '../domain/invoice.js';
import { PROVIDER_KINDS } from '../domain/provider.js';
import { billPaths, billSchemas } from './openapi-bills.js';
import { webhookPaths, webhookSchemas } from './openapi-webhooks.js';
import { date, id, idempotencyKey, jsonBody, jsonResponse, MAX_INT4, MAX_MINOR, minor, problem, refusingNul, requestId, withCommonAnswers, withCompanyHeader, withLinks, type LinkRule } from './openapi-parts.js';


/** Company settings set at registration and changeable with PATCH (no defaults here: a PATCH changes only what it names). */
const companySettings = {
  name: { type: 'string', minLength: 1, maxLength: 200 },
  paymentImportSeconds: { type: 'integer', minimum: 1, maximum: MAX_INT4, description: 'How often an open invoice imports payments from the provider (default 3600).' },
  reminderDays: {
    type: 'array',
    uniqueItems: true,
    maxItems: 10,
    items: { type: 'integer', minimum: -30, maximum: 365 },
    description:
      'Days relative to the due date (0 = the due date, -3 = three days before, 7 = a week after) on which the client of a Final invoice ' +
      'that still owes something gets a reminder email with the outstanding amount, the Pay Now URL and the PDF. None by default.',
  },
  reconcileSeconds: {
    type: 'integer',
    minimum: 60,
    maximum: MAX_INT4,
    description: "How often the company's scheduled reconciliation compares billflow with the provider account and repairs drift (default 86400).",
  },
};

const providerAccount = {
  type: 'object',
  additionalProperties: false,
  description: "The company's own payment provider account (Bill & Pay, or Stripe). With enabled=false invoices never go to the provider.",
  properties: {
    enabled: { type: 'boolean' },
    url: { type: 'string', format: 'uri', minLength: 1 },
    // Sent in HTTP headers or used as HMAC keys: printable ASCII only, so a pasted placeholder ("sk_test_…") is refused here.
    accountId: { type: 'string', minLength: 1, pattern: '^[\\x21-\\x7E]+$' },
    apiKey: { type: 'string', minLength: 1, pattern: '^[\\x21-\\x7E]+$' },
    webhookSecret: { type: 'string', minLength: 1, pattern: '^[\\x21-\\x7E]+$' },
  },
};

const schemas = {
  ...billSchemas,
  ...webhookSchemas,
  OrganisationCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name'],
    description: 'One ERP connection (an Ajera database) over several companies, with one API key.',
    properties: { id: { ...id, description: "The ERP database's code." }, name: { type: 'string', minLength: 1, maxLength: 200 } },
  },
  Organisation: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      apiKey: { type: 'string', description: 'Returned once, at creation. Covers every company of the organisation.' },
    },
  },
  CompanyCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name'],
    properties: {
      id: { ...id, description: "The ERP's company code; part of every invoice workflow id." },
      organisationId: {
        ...id,
        description: "The organisation (ERP connection) the company belongs to. It shares the organisation's clients, and invoice numbers and project ids are unique across the organisation.",
      },
      currency: { type: 'string', pattern: '^[A-Z]{3}$', default: 'USD' },
      name: companySettings.name,
      paymentImportSeconds: { ...companySettings.paymentImportSeconds, default: 3600 },
      reminderDays: { ...companySettings.reminderDays, default: [] },
      reconcileSeconds: { ...companySettings.reconcileSeconds, default: 86_400 },
      provider: {
        ...providerAccount,
        properties: {
          kind: {
            type: 'string',
            enum: [...PROVIDER_KINDS],
            default: 'billpay',
            description:
              'The provider the company collects through, chosen once, at registration: `billpay` (a Bill & Pay-compatible API) or `stripe` ' +
              '(apiKey: the secret key; url defaults to https://api.stripe.com; no accountId; billflow creates its webhook endpoint in the account ' +
              'through Stripe\'s API and keeps its signing secret, unless webhookSecret names an endpoint the operator made).',
          },
          ...providerAccount.properties,
        },
        required: ['enabled'],
        // Turning the integration on at registration needs the whole account (a Stripe one: its secret key alone).
        if: { properties: { enabled: { const: true } } },
        then: {
          required: ['apiKey'],
          if: { properties: { kind: { const: 'stripe' } }, required: ['kind'] },
          else: { required: ['url', 'accountId', 'webhookSecret'] },
        },
      },
    },
  },
  CompanyPatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    description: 'Only the fields given change. Invoices use the new settings from their next status change; the reconciliation schedule follows at once.',
    properties: {
      ...companySettings,
      provider: {
        ...providerAccount,
        properties: {
          ...providerAccount.properties,
          webhookSecretOverlapSeconds: {
            type: 'integer',
            minimum: 0,
            maximum: 2_592_000,
            default: 86_400,
            description: 'With a new webhookSecret: how long webhooks signed with the one it replaces still verify (0: not at all).',
          },
        },
      },
    },
  },
  Company: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      organisationId: { type: ['string', 'null'] },
      currency: { type: 'string' },
      paymentImportSeconds: { type: 'integer' },
      reconcileSeconds: { type: 'integer' },
      reconcileScheduleId: { type: ['string', 'null'], description: "The company's reconciliation schedule in Temporal (null without the provider integration)." },
      reminderDays: { type: 'array', items: { type: 'integer' } },
      provider: {
        type: 'object',
        properties: { enabled: { type: 'boolean' }, kind: { type: 'string', enum: [...PROVIDER_KINDS] }, url: { type: ['string', 'null'] }, accountId: { type: ['string', 'null'] } },
      },
      webhookUrl: { type: 'string', description: "Give this to the provider account as its webhook URL." },
      apiKey: { type: 'string', description: 'Returned once, at creation. Send as `Authorization: Bearer <apiKey>`.' },
    },
  },
  ClientCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name'],
    properties: {
      id: { ...id, description: "The ERP's client id." },
      name: { type: 'string', minLength: 1, maxLength: 200 },
      email: { type: 'string', format: 'email', maxLength: 320 },
    },
  },
  EmailTemplate: {
    type: 'object',
    additionalProperties: false,
    required: ['subject', 'body'],
    description:
      "The client's invoice email. Tags: {{company.name}} {{client.name}} {{invoice.number}} {{invoice.invoiceDate}} {{invoice.dueDate}} " +
      '{{invoice.total}} {{invoice.outstanding}} {{payNowUrl}}, and {{#if tag}}…{{/if}} around them. With {{payNowUrl}} the emailed invoice carries its Pay Now URL. ' +
      'An unknown tag is refused with 422 naming it.',
    properties: { subject: { type: 'string', minLength: 1, maxLength: 500 }, body: { type: 'string', minLength: 1, maxLength: 20_000 } },
  },
  ProjectCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name', 'clientId'],
    properties: {
      id: { ...id, description: "The ERP's project id; unique within the organisation." },
      name: { type: 'string', minLength: 1, maxLength: 200 },
      clientId: { ...id, description: 'The client the project bills.' },
      companyId: { ...id, description: "The company the project belongs to; its provider account sends the project's invoices. Required with an organisation key of several companies." },
    },
  },
  Project: {
    type: 'object',
    properties: { id: { type: 'string' }, name: { type: 'string' }, companyId: { type: 'string' }, clientId: { type: 'string' }, createdAt: { type: 'string' } },
  },
  Client: { type: 'object', properties: { id: { type: 'string' }, name: { type: 'string' }, email: { type: ['string', 'null'] } } },
  InvoiceLine: {
    type: 'object',
    additionalProperties: false,
    required: ['description', 'amount'],
    properties: {
      description: { type: 'string', minLength: 1, maxLength: 500 },
      quantity: { type: 'number', minimum: -1_000_000_000, maximum: 1_000_000_000 },
      unitPrice: minor,
      amount: { ...minor, description: 'Line amount in minor units; must equal quantity x unitPrice when both are given.' },
    },
  },
  InvoiceCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['number', 'invoiceDate', 'dueDate', 'lines'],
    properties: {
      number: { ...id, description: "The ERP's invoice number, unique per company (per organisation when the company belongs to one)." },
      projectId: {
        ...id,
        description: "The project the invoice bills. Its company is the invoice's company, whose provider account sends it and gives its Pay Now URL.",
      },
      clientId: { ...id, description: "The client billed; defaults to the project's client. Required without projectId." },
      invoiceDate: date,
      dueDate: date,
      lines: { type: 'array', minItems: 1, maxItems: 500, items: { $ref: '#/components/schemas/InvoiceLine' } },
      prepaymentsApplied: { ...minor, minimum: 0, default: 0, description: 'Client prepayments (credits) the ERP applied to this invoice.' },
    },
  },
  InvoiceRevision: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    description: 'New content for a Draft or Reissue invoice.',
    properties: {
      invoiceDate: date,
      dueDate: date,
      lines: { type: 'array', minItems: 1, maxItems: 500, items: { $ref: '#/components/schemas/InvoiceLine' } },
    },
  },
  StatusChange: {
    type: 'object',
    additionalProperties: false,
    required: ['status'],
    properties: {
      status: { type: 'string', enum: [...INVOICE_STATUSES] },
      dryRun: { type: 'boolean', default: false, description: 'Answer with exactly what the change would do (the same plan the real change executes) and change nothing.' },
      backupAttachments: {
        type: 'array',
        maxItems: 20,
        description: 'Backup documents printed with a Final invoice: kept and emailed with it, never sent to the provider.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['filename', 'contentType', 'contentBase64'],
          properties: {
            filename: { type: 'string', minLength: 1, maxLength: 200 },
            contentType: { type: 'string', minLength: 3, maxLength: 100 },
            contentBase64: { type: 'string', minLength: 1, maxLength: 10_000_000 },
          },
        },
      },
    },
  },
  Plan: {
    type: 'object',
    description: 'What a status change does at the provider and in the ERP feed, step by step.',
    properties: {
      from: { type: 'string' },
      to: { type: 'string' },
      steps: {
        type: 'array',
        items: {
          type: 'object',
          description:
            'kind: import-payments | apply-payment | convert-to-prepayment | remove-provider-payment | hold-provider-payment (heldBy: invoices still Final) | ' +
            'keep-provider-payment (a provider that keeps the payments it collected, e.g. Stripe: its invoice is credited when it leaves) | ' +
            'delete-provider-invoice (voids: true where the provider voids rather than deletes, e.g. Stripe) | create-provider-invoice | update-provider-invoice | recreate-prepayment-payment (a prepayment applied while not Final becomes a payment on the record) | ' +
            'remove-prepayment-payment (before the record is deleted) | render-pdf | attach-pdf | email-invoice (to, withPayNowUrl) | skip-provider (reason) | hold-exceptional (classification)',
        },
      },
      payNowUrl: { type: 'string', enum: ['new', 'same', 'removed', 'none', 'unchanged'] },
      feed: { type: 'array', items: { type: 'object' }, description: 'Receipts-feed entries the change adds (payment, fee, prepayment).' },
    },
  },
  LifecycleChange: {
    type: 'object',
    additionalProperties: false,
    required: ['state', 'by'],
    properties: {
      state: { type: 'string', enum: ['Presented', 'Presented & Confirmed', 'Presented & Rejected'], description: 'Posted is set when the invoice becomes Final.' },
      by: { type: 'string', minLength: 1, maxLength: 200, description: 'Who makes the change (recorded with the time).' },
    },
  },
  Release: {
    type: 'object',
    additionalProperties: false,
    required: ['by'],
    properties: { by: { type: 'string', minLength: 1, maxLength: 200, description: 'The operator releasing the held exceptional bill.' } },
  },
  QuickPay: {
    type: 'object',
    additionalProperties: false,
    required: ['paymentType', 'paymentMethod', 'issuedOn', 'category', 'receivedByUser', 'receivedByUnit'],
    description: 'The amount is always the bill\'s whole unsettled balance and cannot be given.',
    properties: {
      paymentType: { type: 'string', minLength: 1, maxLength: 100 },
      paymentMethod: { type: 'string', minLength: 1, maxLength: 100 },
      issuedOn: date,
      category: { type: 'string', minLength: 1, maxLength: 100 },
      receivedByUser: { type: 'string', minLength: 1, maxLength: 200 },
      receivedByUnit: { type: 'string', minLength: 1, maxLength: 200 },
    },
  },
  BillLimit: {
    oneOf: [
      { type: 'object', additionalProperties: false, required: ['kind', 'amount'], properties: { kind: { const: 'fixed' }, amount: { ...minor, minimum: 0 } } },
      {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'percent'],
        properties: { kind: { const: 'credit-limit' }, percent: { type: 'number', exclusiveMinimum: 0, maximum: 1000, description: '100 = equal to the credit limit' } },
      },
    ],
  },
  BillingRunDefinition: {
    type: 'object',
    additionalProperties: false,
    required: ['maxCredited', 'maxDebited'],
    description: 'Bills whose total is below -maxCredited ("Max Credit Amount Reached") or above maxDebited ("Max Credit Limit Amount Reached") are exceptional and held. null: no limit.',
    properties: {
      maxCredited: { oneOf: [{ $ref: '#/components/schemas/BillLimit' }, { type: 'null' }] },
      maxDebited: { oneOf: [{ $ref: '#/components/schemas/BillLimit' }, { type: 'null' }] },
    },
  },
  ClientPatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200 },
      email: { type: ['string', 'null'], format: 'email', maxLength: 320 },
      creditLimit: { type: ['integer', 'null'], minimum: 0, maximum: MAX_MINOR, description: 'Credit limit of the client account, minor units.' },
      deliveryPreference: { type: 'string', enum: ['email', 'print'] },
    },
  },
  PrepaymentApply: {
    type: 'object',
    additionalProperties: false,
    required: ['prepaymentId', 'amount'],
    properties: { prepaymentId: { type: 'string', format: 'uuid' }, amount: { ...minor, minimum: 1 } },
  },
  Prepayment: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      companyId: { type: 'string' },
      clientId: { type: 'string' },
      amount: minor,
      remaining: minor,
      origin: { type: 'object', description: 'The invoice and provider payment the credit came from.' },
      applications: { type: 'array', items: { type: 'object' } },
    },
  },
  PaymentHolds: {
    type: 'object',
    properties: {
      paymentId: { type: 'string' },
      companyId: { type: 'string', description: "The company whose provider account took the payment." },
      coveredInvoices: { type: 'array', items: { type: 'string' } },
      heldBy: { type: 'array', items: { type: 'string' }, description: 'Covered invoices still Final: the provider payment stays until each has changed.' },
      removedAtProvider: { type: 'boolean' },
    },
  },
  Invoice: {
    type: 'object',
    description: "The invoice as its workflow holds it.",
    properties: {
      companyId: { type: 'string' },
      number: { type: 'string' },
      clientId: { type: 'string' },
      projectId: { type: 'string', description: 'Present when the invoice was created for a project.' },
      projectName: { type: 'string' },
      status: { type: 'string', enum: [...INVOICE_STATUSES] },
      settlement: { type: 'string', enum: [...SETTLEMENT_STATUSES] },
      currency: { type: 'string' },
      invoiceDate: date,
      dueDate: date,
      lines: { type: 'array', items: { $ref: '#/components/schemas/InvoiceLine' } },
      total: minor,
      prepaymentsApplied: minor,
      paid: minor,
      outstanding: minor,
      payNowUrl: { type: ['string', 'null'] },
      providerInvoiceId: { type: ['string', 'null'] },
      sentToProvider: { type: 'boolean' },
      revision: { type: 'integer' },
      payments: { type: 'array', items: { type: 'object' } },
      history: { type: 'array', items: { type: 'object' } },
      pendingChange: { type: ['object', 'null'], description: 'A status change under way (e.g. waiting out a provider outage after a 202).' },
      emailDelivery: {
        type: ['object', 'null'],
        description:
          "The latest Final's invoice email: `status` sent; failed when the mail server refused it for good (`detail` says why); unconfirmed when a crash cut the send off (it is never sent twice). The Final stands either way.",
        properties: { revision: { type: 'integer' }, status: { type: 'string', enum: ['sent', 'failed', 'unconfirmed'] }, to: { type: ['string', 'null'] }, detail: { type: 'string' }, at: { type: 'string' } },
      },
      lastFailure: {
        type: ['object', 'null'],
        description: 'The last status change or release that failed for good (a provider refusal): the reason and what was undone at the provider. Cleared by the next change that succeeds.',
        properties: { to: { type: 'string' }, requestId: { type: 'string' }, at: { type: 'string' }, reason: { type: 'string' }, undone: { type: 'array', items: { type: 'string' } } },
      },
      workflowId: { type: 'string' },
    },
  },
  Receipt: {
    type: 'object',
    properties: {
      id: { type: 'string', description: 'Feed cursor of this receipt.' },
      companyId: { type: 'string' },
      kind: {
        type: 'string',
        enum: ['payment', 'fee', 'prepayment'],
        description: '`fee` receipts are miscellaneous receipts for convenience fees; `prepayment`: a payment on an invoice that left Final became a client credit.',
      },
      providerPaymentId: { type: 'string' },
      invoiceNumber: { type: ['string', 'null'], description: 'prepayment: the invoice the credit came from; null otherwise (see `applications`).' },
      amount: minor,
      currency: { type: 'string' },
      invoices: { type: 'array', items: { type: 'string' }, description: 'Every invoice the provider payment covered.' },
      applications: {
        type: ['array', 'null'],
        description:
          'What the receipt applies to, as the ERP posts it: per invoice, the amount of this payment applied to it (a payment receipt; the amounts add up to `amount`). ' +
          'Empty for a fee (a miscellaneous receipt) and a prepayment (a credit, applied later). Null on receipts from before billflow recorded it.',
        items: { type: 'object', properties: { invoiceNumber: { type: 'string' }, amount: { type: ['integer', 'null'] } } },
      },
      quickPay: {
        type: ['object', 'null'],
        description: "A Quick Pay's details as the ERP gave them (null for other payments).",
        properties: {
          paymentType: { type: 'string' },
          paymentMethod: { type: 'string' },
          issuedOn: { type: 'string', format: 'date' },
          category: { type: 'string' },
          receivedByUser: { type: 'string' },
          receivedByUnit: { type: 'string' },
        },
      },
      paidAt: { type: 'string', format: 'date-time' },
      requestId: { type: 'string' },
      acknowledged: { type: 'boolean' },
    },
  },
  Reconciliation: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      requestId: { type: 'string', description: 'Correlation id carried by every repair call to the provider.' },
      status: {
        type: 'string',
        enum: ['running', 'repairing', 'finished', 'failed'],
        description: '`repairing`: compared, and some invoice workflows have not yet recorded their repair. `failed`: see `failed`.',
      },
      failed: { type: ['string', 'null'], description: 'Why the run failed (e.g. the provider refused the account key).' },
      halted: { type: ['string', 'null'], description: 'Why no repair was asked for although there were findings (most of the account differs at once).' },
      findingCount: { type: 'integer' },
      startedAt: { type: 'string', format: 'date-time' },
      comparedAt: { type: ['string', 'null'], format: 'date-time', description: 'When the comparison finished and repairs were asked for.' },
      checkedInvoices: { type: 'integer' },
      checkedRecords: { type: 'integer' },
      findings: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            kind: { type: 'string', enum: ['missing-at-provider', 'figures-differ', 'stale-at-provider', 'unknown-at-provider'] },
            number: { type: 'string' },
            providerInvoiceId: { type: 'string' },
            billflow: { type: 'object', description: 'figures-differ: amount and outstanding in billflow' },
            provider: { type: 'object', description: 'figures-differ: amount and outstanding at the provider' },
          },
        },
      },
      repairsRequested: { type: 'array', items: { type: 'string' }, description: 'Invoices whose workflows were asked to repair.' },
      repairs: {
        type: 'array',
        items: {
          type: 'object',
          properties: { invoiceNumber: { type: 'string' }, actions: { type: 'array', items: { type: 'string' } }, repairedAt: { type: 'string', format: 'date-time' } },
        },
      },
    },
  },
  ReceiptAck: {
    type: 'object',
    additionalProperties: false,
    required: ['upTo'],
    properties: { upTo: { type: 'string', pattern: '^\\d+$', description: 'Acknowledge every receipt up to and including this id.' } },
  },
} as const;

/** Kept out of the NUL rule: `detail` may quote the input it refuses. */
const Problem = {
  type: 'object',
  description: 'RFC 9457 problem document.',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string', description: 'What was wrong; may quote the refused input.' },
    field: { type: 'string', description: 'The offending input field, when there is one.' },
  },
} as const;

export type SchemaName = keyof typeof schemas;

const number = { name: 'number', in: 'path', required: true, schema: { type: 'string' } };
const body = (name: SchemaName) => jsonBody(name);
const json = (description: string, name: SchemaName) => jsonResponse(description, name);

const invoicePaths = ['status', 'revision', 'prepayments', 'lifecycle', 'release', 'quick-pay', 'reminders', 'pdf'].map((p) => `/v1/invoices/{number}/${p}`);

/** Links from what a request creates to what can be done with it (followed by schemathesis's stateful phase). */
const LINKS: LinkRule[] = [
  { from: 'POST /v1/clients', status: 201, to: ['/v1/clients/{id}', '/v1/clients/{id}/invoice-email-template'], parameter: 'id', value: '$response.body#/id' },
  { from: 'POST /v1/projects', status: 201, to: ['/v1/projects/{id}'], parameter: 'id', value: '$response.body#/id' },
  { from: 'POST /v1/companies', status: 201, to: ['/v1/companies/{id}'], parameter: 'id', value: '$response.body#/id' },
  ...([201, 200] as const).map((status) => ({
    from: 'POST /v1/invoices',
    status,
    to: ['/v1/invoices/{number}', ...invoicePaths, '/v1/bills/{number}/pdf'],
    parameter: 'number',
    value: '$response.body#/number',
  })),
  {
    from: 'POST /v1/message-templates',
    status: 201,
    to: ['/v1/message-templates/{id}', '/v1/message-templates/{id}/preview', '/v1/message-templates/{id}/send'],
    parameter: 'id',
    value: '$response.body#/id',
  },
  ...['POST /v1/bill-runs', 'POST /v1/bill-runs/{id}/retry', 'POST /v1/message-templates/{id}/send'].map((from) => ({
    from,
    status: 201,
    to: ['/v1/bill-runs/{id}', '/v1/bill-runs/{id}/items', '/v1/bill-runs/{id}/retry', '/v1/bill-runs/{id}/printout'],
    parameter: 'id',
    value: '$response.body#/id',
  })),
  { from: 'POST /v1/reconciliations', status: 201, to: ['/v1/reconciliations/{id}'], parameter: 'id', value: '$response.body#/id' },
  { from: 'PUT /v1/custom-tags/{name}', status: 201, to: ['/v1/custom-tags/{name}'], parameter: 'name', value: '$response.body#/name' },
  {
    from: 'POST /v1/webhook-endpoints',
    status: 201,
    to: ['/v1/webhook-endpoints/{id}', '/v1/webhook-endpoints/{id}/rotate-secret', '/v1/webhook-endpoints/{id}/deliveries'],
    parameter: 'id',
    value: '$response.body#/id',
  },
];

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
  paths: refusingNul(withLinks(withCommonAnswers(withCompanyHeader({
    '/healthz': { get: { summary: 'Process is up', security: [], responses: { 200: { description: 'ok' } } } },
    '/readyz': { get: { summary: 'Temporal and PostgreSQL are reachable', security: [], responses: { 200: { description: 'ready' }, 503: problem } } },
    '/v1/organisations': {
      post: {
        summary: 'Register an organisation: one ERP connection over several companies (operator key)',
        security: [{ operator: [] }],
        description: 'Returns the organisation API key, once. Companies join it when they are registered with `organisationId`.',
        parameters: [idempotencyKey, requestId],
        requestBody: body('OrganisationCreate'),
        responses: { 201: json('Created', 'Organisation'), 401: problem, 409: problem, 422: problem },
      },
    },
    '/v1/projects': {
      post: {
        summary: 'Register a project of a company',
        description: "An invoice created with `projectId` belongs to the project's company and is sent through that company's provider account.",
        parameters: [idempotencyKey, requestId],
        requestBody: body('ProjectCreate'),
        responses: { 201: json('Created', 'Project'), 401: problem, 404: problem, 409: problem, 422: problem },
      },
      get: {
        summary: 'Projects of the companies the key covers',
        parameters: [{ name: 'clientId', in: 'query', schema: { type: 'string' } }],
        responses: { 200: { description: '`{ data: Project[] }`' }, 401: problem },
      },
    },
    '/v1/projects/{id}': {
      get: { summary: 'A project', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json('The project', 'Project'), 401: problem, 404: problem } },
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
        requestBody: body('CompanyCreate'),
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
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, idempotencyKey, requestId],
        requestBody: body('CompanyPatch'),
        // 502/503: a Stripe company's new key (or url) gets billflow's webhook endpoint in that account, which Stripe refused or could not be reached for.
        responses: { 200: json('The company', 'Company'), 401: problem, 404: problem, 422: problem, 502: problem, 503: problem },
      },
    },
    '/v1/clients': {
      post: {
        summary: 'Register a client (shared by every company of an organisation)',
        parameters: [idempotencyKey, requestId],
        requestBody: body('ClientCreate'),
        responses: { 201: json('Created', 'Client'), 401: problem, 409: problem, 422: problem },
      },
    },
    '/v1/clients/{id}/invoice-email-template': {
      put: {
        summary: "Set the client's invoice email template",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, idempotencyKey],
        requestBody: body('EmailTemplate'),
        responses: { 200: { description: 'The template, with `usesPayNowUrl`' }, 404: problem, 422: problem },
      },
    },
    '/v1/clients/{id}': {
      patch: {
        summary: "Change a client's name, email, credit limit or delivery preference",
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }, idempotencyKey],
        requestBody: body('ClientPatch'),
        responses: { 200: json('The client', 'Client'), 404: problem, 422: problem },
      },
      get: { summary: 'A client', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { 200: json('The client', 'Client'), 404: problem } },
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
        requestBody: body('InvoiceCreate'),
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
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...INVOICE_STATUSES] } },
          { name: 'clientId', in: 'query', schema: { type: 'string' } },
          { name: 'after', in: 'query', schema: { type: 'string' }, description: 'Cursor: the last invoice number of the previous page.' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        ],
        responses: { 200: { description: '`{ data: Invoice[], nextCursor, hasMore }`' }, 401: problem, 422: problem },
      },
    },
    '/v1/invoices/{number}': {
      get: {
        summary: 'An invoice, as its workflow holds it',
        description:
          'While no worker answers (one restarting or being deployed), the invoice as its workflow last saved it, with the header ' +
          '`Billflow-State: saved`: every change saves before it answers, so no answered change is missing, but a change under way is not shown. ' +
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
          "payments on the invoice become client prepayments and each provider payment record is removed once every invoice it covered has left Final. " +
          "-> Draft deletes the provider's invoice record (its Pay Now URL stops working; the next Final gets a new one). " +
          "Reissue -> Final updates the provider's existing record (same Pay Now URL) with the new figures and PDF; a provider that cannot edit a " +
          'finalized invoice (Stripe) has it voided, or credited when paid, and replaced by a new one (a new Pay Now URL). ' +
          'The answer is the invoice with `plan`, the steps done; with `dryRun: true` it is `{ dryRun, plan }` and nothing changes. ' +
          'Errors: 409 `illegal-transition` (the lifecycle forbids it; nothing changed), 404 unknown invoice, 422 bad body, ' +
          '202 when the change is accepted but still waiting on the provider after 20 s, or after `Prefer: wait=N` seconds (poll the invoice), 503 `worker-unavailable` or `provider-unavailable`.',
        parameters: [number, idempotencyKey, requestId],
        requestBody: body('StatusChange'),
        responses: { 200: json('Changed (the invoice with `plan`), or the dry-run plan', 'Invoice'), 202: { description: 'Accepted; still in progress' }, 404: problem, 409: problem, 422: problem, 503: problem },
      },
    },
    '/v1/invoices/{number}/prepayments': {
      post: {
        summary: "Apply a client prepayment to the invoice (the ERP's action)",
        description:
          'Takes the amount from the prepayment and lowers what the invoice owes; when the invoice is Final at the provider the payment is created again there ' +
          'against it (lowering its outstanding balance). Errors: 404 unknown invoice or prepayment, 422 `invalid-prepayment` (another client\'s, or more than is owed), ' +
          '422 `prepayment-exhausted` (more than is left).',
        parameters: [number, idempotencyKey, requestId],
        requestBody: body('PrepaymentApply'),
        responses: { 200: json('The invoice', 'Invoice'), 404: problem, 422: problem, 503: problem },
      },
    },
    '/v1/prepayments': {
      get: {
        summary: 'Client prepayments (credits) made from payments on invoices that left Final',
        parameters: [{ name: 'clientId', in: 'query', schema: { type: 'string' } }],
        responses: { 200: { description: '`{ data: Prepayment[] }`' }, 401: problem },
      },
    },
    '/v1/payments/{paymentId}': {
      get: {
        summary: 'A provider payment: the invoices it covered and which still hold it',
        parameters: [{ name: 'paymentId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: json('The payment', 'PaymentHolds'), 404: problem },
      },
    },
    '/v1/invoices/{number}/revision': {
      post: {
        summary: 'Edit a Draft or Reissue invoice (lines, dates)',
        description: 'Errors: 409 `illegal-transition` when the invoice is Final (reissue it first), 404 unknown invoice, 422 bad lines.',
        parameters: [number, idempotencyKey, requestId],
        requestBody: body('InvoiceRevision'),
        responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
      },
    },
    '/v1/invoices/{number}/lifecycle': {
      post: {
        summary: "Change the bill's informative life-cycle state",
        description: 'Presented and Presented & Confirmed only from Posted; Presented & Rejected from Posted or Presented & Confirmed. Errors: 409 `illegal-lifecycle-move` (nothing changed), 404.',
        parameters: [number, idempotencyKey, requestId],
        requestBody: body('LifecycleChange'),
        responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
      },
    },
    '/v1/invoices/{number}/release': {
      post: {
        summary: 'Release a held exceptional bill: its provider record and email go out now',
        description: 'Errors: 409 `not-held`, 404.',
        parameters: [number, idempotencyKey, requestId],
        requestBody: body('Release'),
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
        requestBody: body('QuickPay'),
        responses: { 200: json('The invoice', 'Invoice'), 404: problem, 409: problem, 422: problem },
      },
    },
    '/v1/billing-run-definition': {
      put: {
        summary: "Set the company's billing-run definition (exceptional-bill limits)",
        parameters: [idempotencyKey],
        requestBody: body('BillingRunDefinition'),
        responses: { 200: { description: 'The definition' }, 401: problem, 422: problem },
      },
    },
    '/v1/invoices/{number}/reminders': {
      get: {
        summary: 'Due-date reminders: the company\'s reminder days and each reminder sent for this invoice',
        parameters: [number],
        responses: { 200: { description: '`{ dueDate, reminderDays, sent: [{ revision, daysAfterDue, recipient, outstanding, messageId, sentAt }] }`; sentAt is null when a crash cut the send off (it is not sent twice)' }, 401: problem, 404: problem },
      },
    },
    '/v1/invoices/{number}/pdf': {
      get: { summary: 'The final invoice PDF', parameters: [number], responses: { 200: { description: 'application/pdf' }, 404: problem } },
    },
    '/v1/receipts': {
      get: {
        summary: 'The receipts feed: one receipt per provider payment, fees as separate miscellaneous receipts',
        parameters: [
          { name: 'after', in: 'query', schema: { type: 'string', pattern: '^\\d{1,18}$' }, description: 'Cursor: the id of the last receipt already read.' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'unacknowledged', in: 'query', schema: { type: 'boolean' } },
        ],
        responses: { 200: { description: '`{ data: Receipt[], nextCursor, hasMore }`' }, 401: problem, 422: problem },
      },
    },
    '/v1/receipts/acknowledge': {
      post: { summary: 'Acknowledge receipts up to a cursor', parameters: [idempotencyKey], requestBody: body('ReceiptAck'), responses: { 200: { description: '`{ acknowledged: n }`' }, 401: problem, 422: problem } },
    },
    '/v1/reconciliations': {
      post: {
        summary: "Reconcile the company's invoices with its provider account now",
        description:
          'Compares every invoice with the live provider records and asks each affected invoice workflow to repair its own records: ' +
          'missed payments imported, figures set back to billflow\'s, a lost record re-created (new Pay Now URL), a stale record of one of ' +
          "billflow's numbers deleted. Records for numbers billflow does not know are reported and left alone. The same runs on the " +
          "company's schedule (`Reconcile:<company>`, every `reconcileSeconds`). Answers 201 with the report once compared (repairs " +
          'follow within seconds: read the report again), or 202 while still comparing (`Prefer: wait=N` bounds the wait).',
        parameters: [idempotencyKey, requestId],
        responses: { 201: json('The report', 'Reconciliation'), 202: { description: 'Still running; `Location` gives the report' }, 401: problem, 409: problem, 422: problem, 502: problem },
      },
      get: {
        summary: "The company's reconciliations, newest first, and its schedule",
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 20 } }],
        responses: { 200: { description: '`{ schedule: { id, nextRunAt } | null, data: [...] }`' }, 401: problem, 422: problem },
      },
    },
    '/v1/reconciliations/{id}': {
      get: {
        summary: 'One reconciliation: what differed and what each invoice workflow repaired',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } }],
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
        parameters: [{ name: 'companyId', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          200: { description: 'Accepted: `{ received, invoices, unknown, closed?, detail? }` (`invoices` were signalled)' },
          400: problem,
          503: problem,
        },
      },
    },
    ...billPaths,
    ...webhookPaths,
  })), LINKS)),
} as const;
