/**
 * The one description of the provider sandbox's API, served at /openapi.json. Its request-body
 * schemas are also what the server validates with (sandbox/validate.ts), so they cannot disagree.
 * Request schemas are self-contained (no $ref) so they compile on their own.
 */
import { PAYMENT_METHODS, SANDBOX_CURRENCIES } from './model.js';

/** Largest amount accepted: $1 trillion in cents, far inside the exactly-representable range. */
export const MAX_MINOR = 100_000_000_000_000;

const minor = (minimum: number) => ({
  type: 'integer',
  minimum,
  maximum: MAX_MINOR,
  description: 'Money in minor units (cents); never a float.',
});
const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength });
const currency = { type: 'string', enum: [...SANDBOX_CURRENCIES], description: 'ISO 4217 code; the sandbox takes two-decimal currencies.' };
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Record<string, unknown>) => ({ ...schema, type: [schema.type, 'null'] });
const feeRule = {
  type: 'object',
  additionalProperties: false,
  description: 'Convenience fee added on top of each Pay Now payment: fixed + percentBps of the amount, rounded half up.',
  properties: {
    fixed: minor(0),
    percentBps: { type: 'integer', minimum: 0, maximum: 10_000, description: 'Basis points: 250 = 2.5 %.' },
  },
};
const rate = { type: 'number', minimum: 0, maximum: 1, default: 0 };
const webhookUrl = { type: ['string', 'null'], format: 'uri', maxLength: 2000, description: 'http(s) URL that receives signed events.' };

export const requestSchemas = {
  AccountCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: { name: text(200), webhookUrl, convenienceFee: feeRule },
  },
  AccountPatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: { webhookUrl, convenienceFee: feeRule },
  },
  CustomerCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['externalId', 'name'],
    properties: {
      externalId: { ...text(200), description: "The ERP's client id; unique per account." },
      name: text(200),
      email: nullable({ type: 'string', format: 'email', maxLength: 320 }),
    },
  },
  InvoiceCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['customerId', 'number', 'invoiceDate', 'amount', 'outstanding'],
    properties: {
      customerId: text(100),
      number: { ...text(100), description: 'Unique among the live invoices of the account.' },
      invoiceDate: { type: 'string', format: 'date' },
      amount: { ...minor(0), description: 'The invoice amount, minor units.' },
      outstanding: { ...minor(1), description: 'What the payer owes now (amount less prepayments), minor units; at most amount.' },
      currency: { ...currency, default: 'USD', description: 'The currency of the amounts; the Pay Now page shows it. ISO 4217, two-decimal currencies only.' },
    },
  },
  InvoicePatch: {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    properties: {
      number: text(100),
      invoiceDate: { type: 'string', format: 'date' },
      amount: minor(0),
      outstanding: { ...minor(0), description: 'The new balance the ERP computed; 0 marks the invoice paid.' },
    },
  },
  PaymentCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['customerId', 'allocations', 'method'],
    properties: {
      customerId: text(100),
      allocations: {
        type: 'array',
        minItems: 1,
        maxItems: 100,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['invoiceId', 'amount'],
          properties: { invoiceId: text(100), amount: { ...minor(1), description: "At most the invoice's outstanding balance." } },
        },
      },
      method: { type: 'string', enum: [...PAYMENT_METHODS] },
      paidAt: { type: 'string', format: 'date-time' },
      reference: nullable(text(200)),
      fee: minor(0),
    },
  },
  FaultSet: {
    type: 'object',
    additionalProperties: false,
    required: ['mode'],
    properties: {
      mode: {
        type: 'string',
        enum: ['none', 'error', 'delay', 'chaos'],
        description:
          'error: every affected request answers `status`; delay: every affected request waits `delayMs`; chaos: each request at random answers `status` ' +
          '(errorRate), waits `delayMs` (delayRate), or runs and commits and then loses its answer, the connection closed without a response (dropResponseRate); ' +
          'none: no fault (also clears the webhook faults).',
      },
      status: { type: 'integer', minimum: 400, maximum: 599, default: 503 },
      delayMs: { type: 'integer', minimum: 0, maximum: 120_000, default: 0 },
      count: { type: 'integer', minimum: 1, description: 'How many following API requests are affected; omit for "until cleared".' },
      match: {
        type: 'string',
        minLength: 3,
        maxLength: 200,
        pattern: '^(GET|POST|PATCH|PUT|DELETE|\\*) /\\S*$',
        description: 'Only requests of this method and path are affected (and counted); `*` stands for any characters (also for the method), e.g. `PUT /v1/invoices/*/pdf`, `* /v1/invoices/*`.',
      },
      errorRate: { ...rate, description: 'Mode chaos: share of requests that answer `status`.' },
      delayRate: { ...rate, description: 'Mode chaos: share of requests delayed by `delayMs` (errorRate + delayRate at most 1 in effect).' },
      dropResponseRate: { ...rate, description: 'Mode chaos: share of the other requests that run and commit, then lose their answer.' },
      webhooks: {
        type: 'object',
        additionalProperties: false,
        description: "Faults in the account's webhook events, in any mode, decided once per event before its first attempt.",
        properties: {
          duplicateRate: { ...rate, description: 'Share of events delivered twice (same event id and body).' },
          holdRate: { ...rate, description: 'Share of events held back for holdMs, so later events arrive before them.' },
          holdMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 },
          loseRate: { ...rate, description: 'Share of events marked delivered and never sent.' },
        },
      },
    },
  },
};

export type RequestSchemaName = keyof typeof requestSchemas;

const responseSchemas = {
  Account: {
    type: 'object',
    properties: {
      id: { type: 'string', examples: ['acct_5f0c6a1e2b9d4c3a8e7f6a5b'] },
      name: { type: 'string' },
      apiKey: { type: 'string', description: 'Send as `Authorization: Bearer <apiKey>`.' },
      webhookSecret: { type: 'string', description: 'Key of the BillPay-Signature HMAC.' },
      webhookUrl: { type: ['string', 'null'] },
      convenienceFee: feeRule,
    },
  },
  Customer: {
    type: 'object',
    properties: {
      id: { type: 'string', examples: ['cus_5f0c6a1e2b9d4c3a8e7f6a5b'] },
      externalId: { type: 'string' },
      name: { type: 'string' },
      email: { type: ['string', 'null'] },
      createdAt: { type: 'string', format: 'date-time' },
    },
  },
  Invoice: {
    type: 'object',
    properties: {
      id: { type: 'string', examples: ['inv_5f0c6a1e2b9d4c3a8e7f6a5b'] },
      customerId: { type: 'string' },
      number: { type: 'string' },
      invoiceDate: { type: 'string', format: 'date' },
      amount: minor(0),
      outstanding: minor(0),
      paid: { ...minor(0), description: 'Sum of the succeeded payments allocated to this invoice.' },
      status: { type: 'string', enum: ['open', 'paid'] },
      currency,
      payNowUrl: { type: 'string', description: "The hosted payment page; stable for the record's life." },
      pdf: {
        type: ['object', 'null'],
        properties: { sha256: { type: 'string' }, bytes: { type: 'integer' } },
      },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
    },
  },
  Payment: {
    type: 'object',
    properties: {
      id: { type: 'string', examples: ['pay_5f0c6a1e2b9d4c3a8e7f6a5b'] },
      customerId: { type: 'string' },
      amount: { ...minor(1), description: 'Sum of the allocations; the fee is not included.' },
      fee: minor(0),
      currency: { ...currency, description: 'The currency of the invoices it pays (one payment never mixes currencies).' },
      paidAt: { type: 'string', format: 'date-time' },
      method: { type: 'string', enum: [...PAYMENT_METHODS] },
      payerName: { type: ['string', 'null'] },
      payerEmail: { type: ['string', 'null'] },
      cardLast4: { type: ['string', 'null'] },
      reference: { type: ['string', 'null'] },
      allocations: {
        type: 'array',
        items: {
          type: 'object',
          properties: { invoiceId: { type: 'string' }, invoiceNumber: { type: 'string' }, amount: minor(1) },
        },
      },
      status: { type: 'string', enum: ['succeeded', 'removed'] },
      cursor: { type: 'string', description: 'Opaque; pass as `after` to list the payments created after this one.' },
    },
  },
  PaymentPage: {
    type: 'object',
    properties: {
      data: { type: 'array', items: ref('Payment') },
      nextCursor: { type: ['string', 'null'], description: 'Pass as `after` for the next page (also when hasMore is false, to poll for newer payments).' },
      hasMore: { type: 'boolean' },
    },
  },
  Fault: {
    type: 'object',
    properties: {
      mode: { type: 'string', enum: ['none', 'error', 'delay', 'chaos'] },
      status: { type: 'integer' },
      delayMs: { type: 'integer' },
      remaining: { type: ['integer', 'null'], description: 'Requests still affected; null means until cleared.' },
      match: { type: ['string', 'null'], description: 'The method and path affected; null: every API request.' },
      errorRate: { type: 'number', description: 'Mode chaos only.' },
      delayRate: { type: 'number', description: 'Mode chaos only.' },
      dropResponseRate: { type: 'number', description: 'Mode chaos only.' },
      webhooks: {
        type: 'object',
        description: 'Only when webhook faults are set.',
        properties: { duplicateRate: { type: 'number' }, holdRate: { type: 'number' }, holdMs: { type: 'integer' }, loseRate: { type: 'number' } },
      },
    },
  },
  InjectedFaults: {
    type: 'object',
    description: "How many faults were injected into the account's traffic since it was created.",
    properties: {
      errors: { type: 'integer' },
      delays: { type: 'integer' },
      droppedResponses: { type: 'integer', description: 'Requests that ran (and committed) but whose answer was lost.' },
      webhooks: {
        type: 'object',
        properties: { duplicated: { type: 'integer' }, held: { type: 'integer' }, lost: { type: 'integer' } },
      },
    },
  },
  RequestLogEntry: {
    type: 'object',
    properties: {
      method: { type: 'string' },
      path: { type: 'string' },
      status: { type: 'integer' },
      requestId: { type: ['string', 'null'] },
      at: { type: 'string', format: 'date-time' },
    },
  },
  WebhookDelivery: {
    type: 'object',
    properties: {
      eventId: { type: 'string' },
      type: { type: 'string', enum: ['payment.succeeded', 'payment.removed'] },
      paymentId: { type: 'string' },
      url: { type: 'string' },
      attempts: { type: 'integer' },
      lastStatus: { type: ['integer', 'null'] },
      lastError: { type: ['string', 'null'] },
      deliveredAt: { type: ['string', 'null'], format: 'date-time' },
      body: { type: 'string', description: 'The exact JSON text that was signed and sent.' },
      headers: {
        type: ['object', 'null'],
        additionalProperties: { type: 'string' },
        description: 'The headers of the last attempt, signature included: with `body`, the request can be replayed exactly (null before the first attempt).',
      },
      fault: {
        type: ['string', 'null'],
        enum: ['duplicated', 'held', 'lost', null],
        description: 'The injected webhook fault: sent twice, held back (sent late, out of order), or lost (marked delivered, never sent).',
      },
    },
  },
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem document.',
    properties: {
      type: { type: 'string' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      field: { type: 'string', description: 'The offending input, when there is one.' },
    },
  },
};

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ok = (description: string, schema: object) => ({ description, ...json(schema) });
const list = (item: string) => ({ type: 'object', properties: { data: { type: 'array', items: ref(item) } } });
const problem = { $ref: '#/components/responses/Problem' };
const body = (name: RequestSchemaName) => ({ required: true, ...json(ref(name)) });
const pathId = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const query = (name: string, schema: object, description?: string) => ({ name, in: 'query', schema, ...(description ? { description } : {}) });
const idempotent = { $ref: '#/components/parameters/IdempotencyKey' };
const errors = { 400: problem, 401: problem, 404: problem, 409: problem, 422: problem };

export const openapi = {
  openapi: '3.1.0',
  info: {
    title: 'billflow provider sandbox (Bill & Pay-compatible)',
    version: '1.0.0',
    description:
      'A payment provider for development and tests: accounts, customers, invoices with hosted Pay Now pages, ' +
      'payments, signed webhooks (header BillPay-Signature: t=<unix>,v1=<hex HMAC-SHA256(webhookSecret, "<t>.<body>")>) ' +
      'and fault injection. Money is always integer minor units. Every mutating request honours Idempotency-Key: ' +
      'the first successful answer is replayed (header Idempotent-Replayed: true); a failed request changed nothing ' +
      'and is not recorded, so a retry runs it again. Every /v1 request is logged with its X-Request-Id.',
  },
  servers: [{ url: '/' }],
  security: [{ apiKey: [] }],
  paths: {
    '/v1/accounts': {
      post: {
        summary: 'Create an account (one per ERP company); no authentication',
        security: [],
        parameters: [idempotent],
        requestBody: body('AccountCreate'),
        responses: { 201: ok('The account, with its API key and webhook secret', ref('Account')), 422: problem },
      },
    },
    '/v1/accounts/{id}': {
      get: { summary: 'The calling account', parameters: [pathId('id')], responses: { 200: ok('The account', ref('Account')), ...errors } },
      patch: {
        summary: "Change the calling account's webhook URL or convenience fee",
        parameters: [pathId('id'), idempotent],
        requestBody: body('AccountPatch'),
        responses: { 200: ok('The account', ref('Account')), ...errors },
      },
    },
    '/v1/customers': {
      post: {
        summary: 'Create a customer; 409 customer-exists (with customerId) when the externalId is taken',
        parameters: [idempotent],
        requestBody: body('CustomerCreate'),
        responses: { 201: ok('The customer', ref('Customer')), ...errors },
      },
      get: {
        summary: "List the account's customers",
        parameters: [query('externalId', { type: 'string' })],
        responses: { 200: ok('Customers', list('Customer')), 401: problem },
      },
    },
    '/v1/customers/{id}': {
      get: { summary: 'A customer', parameters: [pathId('id')], responses: { 200: ok('The customer', ref('Customer')), ...errors } },
    },
    '/v1/invoices': {
      post: {
        summary: 'Create an invoice record with its Pay Now URL; 409 invoice-number-exists when a live invoice has the number',
        parameters: [idempotent],
        requestBody: body('InvoiceCreate'),
        responses: { 201: ok('The invoice', ref('Invoice')), ...errors },
      },
      get: {
        summary: "List the account's live invoices, in id order, a page at a time (`nextCursor`, `hasMore`)",
        parameters: [
          query('customerId', { type: 'string' }),
          query('number', { type: 'string' }),
          query('after', { type: 'string' }, 'A cursor: the id of the last invoice of the previous page'),
          query('limit', { type: 'integer', minimum: 1, maximum: 100, default: 50 }),
        ],
        responses: { 200: ok('Invoices', list('Invoice')), 401: problem },
      },
    },
    '/v1/invoices/{id}': {
      get: { summary: 'An invoice', parameters: [pathId('id')], responses: { 200: ok('The invoice', ref('Invoice')), ...errors } },
      patch: {
        summary: 'Reissue: change number, date, amount or outstanding; the record and its Pay Now URL stay',
        parameters: [pathId('id'), idempotent],
        requestBody: body('InvoicePatch'),
        responses: { 200: ok('The invoice', ref('Invoice')), ...errors },
      },
      delete: {
        summary: 'Delete the record; its Pay Now page answers 410 from now on',
        parameters: [pathId('id'), idempotent],
        responses: {
          200: ok('Deleted', { type: 'object', properties: { id: { type: 'string' }, deleted: { const: true } } }),
          ...errors,
        },
      },
    },
    '/v1/invoices/{id}/pdf': {
      put: {
        summary: 'Attach the invoice PDF (replaces any earlier one); must start with %PDF-, at most 10 MB',
        parameters: [pathId('id'), idempotent],
        requestBody: { required: true, content: { 'application/pdf': { schema: { type: 'string', contentMediaType: 'application/pdf' } } } },
        responses: { 200: ok('The invoice', ref('Invoice')), 413: problem, 415: problem, ...errors },
      },
      get: {
        summary: 'The attached PDF',
        parameters: [pathId('id')],
        responses: { 200: { description: 'The PDF', content: { 'application/pdf': {} } }, ...errors },
      },
    },
    '/v1/payments': {
      get: {
        summary: 'Payments in creation order, paged by cursor',
        parameters: [
          query('invoiceId', { type: 'string' }, 'Only payments with an allocation to this invoice'),
          query('customerId', { type: 'string' }),
          query('after', { type: 'string' }, 'A cursor: list payments created after that one'),
          query('limit', { type: 'integer', minimum: 1, maximum: 100, default: 50 }),
          query('includeRemoved', { type: 'boolean', default: false }),
        ],
        responses: { 200: ok('A page of payments', ref('PaymentPage')), 400: problem, 401: problem },
      },
      post: {
        summary: 'Record a payment made outside the Pay Now page (re-created prepayment, Quick Pay); fires payment.succeeded',
        parameters: [idempotent],
        requestBody: body('PaymentCreate'),
        responses: { 201: ok('The payment', ref('Payment')), ...errors },
      },
    },
    '/v1/payments/{id}': {
      get: { summary: 'A payment', parameters: [pathId('id')], responses: { 200: ok('The payment', ref('Payment')), ...errors } },
      delete: {
        summary: "Remove a payment: its amounts go back to the invoices' outstanding; fires payment.removed",
        parameters: [pathId('id'), idempotent],
        responses: { 200: ok('The payment, status removed', ref('Payment')), ...errors },
      },
    },
    '/v1/sandbox/requests': {
      get: {
        summary: "The account's recorded API calls, oldest first (the last 1000)",
        parameters: [query('requestId', { type: 'string' }, 'Only calls that carried this X-Request-Id')],
        responses: { 200: ok('Calls', list('RequestLogEntry')), 401: problem },
      },
    },
    '/v1/sandbox/faults': {
      get: { summary: "The account's injected fault", responses: { 200: ok('The fault', ref('Fault')), 401: problem } },
      post: {
        summary:
          "Make the account's other API requests fail (error), slow down (delay) or misbehave at random (chaos), for count requests or until cleared (mode none); and its webhooks duplicated, held back or lost",
        parameters: [idempotent],
        requestBody: body('FaultSet'),
        responses: { 200: ok('The fault', ref('Fault')), 401: problem, 422: problem },
      },
    },
    '/v1/sandbox/faults/injected': {
      get: { summary: 'Counts of the faults injected so far', responses: { 200: ok('The counts', ref('InjectedFaults')), 401: problem } },
    },
    '/v1/sandbox/webhook-deliveries': {
      get: {
        summary: 'Webhook delivery log, oldest first',
        parameters: [query('paymentId', { type: 'string' })],
        responses: { 200: ok('Deliveries', list('WebhookDelivery')), 401: problem },
      },
    },
    '/pay/{token}': {
      get: {
        summary: 'Hosted Pay Now page (HTML)',
        security: [],
        parameters: [pathId('token')],
        responses: { 200: { description: 'The page' }, 404: { description: 'Unknown link' }, 410: { description: 'Invoice deleted' } },
      },
      post: {
        summary: 'Submit the Pay Now form (application/x-www-form-urlencoded)',
        security: [],
        parameters: [pathId('token')],
        responses: {
          200: { description: 'Confirmation page' },
          402: { description: 'Card declined' },
          409: { description: 'The form is out of date' },
          422: { description: 'Invalid input, shown on the page' },
        },
      },
    },
    '/healthz': {
      get: { summary: 'Liveness, including the database', security: [], responses: { 200: ok('Up', { type: 'object' }), 503: problem } },
    },
  },
  components: {
    securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'The account API key (sk_test_…)' } },
    parameters: {
      IdempotencyKey: {
        name: 'Idempotency-Key',
        in: 'header',
        schema: { type: 'string', maxLength: 255 },
        description: 'Same key, same request: the first answer is replayed. Same key, different request: 422 idempotency-key-reused.',
      },
    },
    responses: {
      Problem: { description: 'An error', content: { 'application/problem+json': { schema: ref('Problem') } } },
    },
    schemas: { ...requestSchemas, ...responseSchemas },
  },
};
