/**
 * The OpenAPI schemas and paths of communicating bills (message templates with #tags, custom tags,
 * preview, send) and bill sending runs (progress, per-bill results, retry, printouts). Spread into
 * the one description in openapi.ts, so validation and /docs come from the same text.
 */
import { SETTLEMENT_STATUSES } from '../domain/invoice.js';
import { BUILT_IN_TAGS, CUSTOM_TAG_NAME } from '../domain/tags.js';
import { BILL_OUTCOMES, BILL_RUN_KINDS, DELIVERY_PREFERENCES } from '../workflows/bill-run-contract.js';
import { date, id, idempotencyKey, jsonBody, jsonResponse, problem, requestId } from './openapi-parts.js';

const tagList = Object.keys(BUILT_IN_TAGS)
  .map((t) => `#${t}`)
  .join(' ');

export const billSchemas = {
  MessageTemplateCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'subject', 'body'],
    description:
      `A message about a bill. Tags: ${tagList}, and #custom.<name> for each of the company's custom tags; ` +
      'a trailing full stop is punctuation, `\\#` writes a literal #. A tag that is not known is refused with 422 `unknown-tag` naming it (`field`: subject or body).',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 200, description: 'Unique within the company.' },
      channel: { type: 'string', enum: ['email'], default: 'email', description: 'The channel the message goes by (email: to the client\'s email address).' },
      subject: { type: 'string', minLength: 1, maxLength: 500 },
      body: { type: 'string', minLength: 1, maxLength: 20_000 },
    },
  },
  MessageTemplate: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      name: { type: 'string' },
      channel: { type: 'string' },
      subject: { type: 'string' },
      body: { type: 'string' },
      tags: { type: 'array', items: { type: 'string' }, description: 'The tags the template uses.' },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
    },
  },
  CustomTagValue: {
    type: 'object',
    additionalProperties: false,
    required: ['value'],
    properties: { value: { type: 'string', maxLength: 2_000, description: 'What #custom.<name> is replaced by in every message of the company.' } },
  },
  CustomTag: {
    type: 'object',
    properties: { name: { type: 'string' }, tag: { type: 'string', description: '`#custom.<name>`' }, value: { type: 'string' }, updatedAt: { type: 'string', format: 'date-time' } },
  },
  MessagePreviewRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['invoiceNumber'],
    properties: { invoiceNumber: { ...id, description: 'The bill whose values fill the tags.' } },
  },
  MessagePreview: {
    type: 'object',
    properties: {
      templateId: { type: 'string' },
      invoiceNumber: { type: 'string' },
      channel: { type: 'string' },
      recipient: { type: ['string', 'null'], description: "Where it would go (the client's email address); null when the client has none." },
      subject: { type: 'string' },
      body: { type: 'string' },
    },
  },
  BillCriteria: {
    type: 'object',
    additionalProperties: false,
    description: "Which of the company's Final bills to select; every given criterion must hold.",
    properties: {
      invoiceDateFrom: date,
      invoiceDateTo: date,
      settlement: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...SETTLEMENT_STATUSES] } },
      clientIds: { type: 'array', minItems: 1, maxItems: 1_000, items: id },
      invoiceNumbers: { type: 'array', minItems: 1, maxItems: 10_000, items: id },
      notYetSent: { type: 'boolean', description: 'Only bills never delivered yet (emailed with their PDF, or printed, by a bill sending run).' },
      deliveryPreference: { type: 'string', enum: [...DELIVERY_PREFERENCES], description: "Only bills whose client prefers this delivery." },
    },
  },
  MessageSend: {
    type: 'object',
    additionalProperties: false,
    description: 'Exactly one of `invoiceNumbers` (one bill or several) and `criteria`.',
    properties: {
      invoiceNumbers: { type: 'array', minItems: 1, maxItems: 10_000, uniqueItems: true, items: id },
      criteria: { $ref: '#/components/schemas/BillCriteria' },
    },
    oneOf: [{ required: ['invoiceNumbers'] }, { required: ['criteria'] }],
  },
  BillRunCreate: {
    type: 'object',
    additionalProperties: false,
    properties: {
      criteria: { $ref: '#/components/schemas/BillCriteria' },
      templateId: { type: 'string', minLength: 1, maxLength: 64, description: 'The message emailed with each bill (default: a built-in one without the Pay Now URL).' },
    },
  },
  BillRun: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      kind: { type: 'string', enum: [...BILL_RUN_KINDS], description: '`send`: bills by delivery preference; `communicate`: a message template.' },
      status: { type: 'string', enum: ['selecting', 'running', 'completed', 'failed'] },
      criteria: { $ref: '#/components/schemas/BillCriteria' },
      templateId: { type: ['string', 'null'] },
      retryOf: { type: ['string', 'null'], description: 'The run whose failed bills this run retries.' },
      total: { type: 'integer' },
      sent: { type: 'integer' },
      printed: { type: 'integer' },
      skippedHeld: { type: 'integer', description: 'Held exceptional bills, not sent.' },
      failed: { type: 'integer' },
      pending: { type: 'integer' },
      workflowId: { type: 'string', description: 'The run\'s Temporal workflow: `BillRun:<company>:<id>`.' },
      printoutUrl: { type: ['string', 'null'], description: 'The merged printout of the print bills, once the run has completed.' },
      createdAt: { type: 'string', format: 'date-time' },
      completedAt: { type: ['string', 'null'], format: 'date-time' },
      progress: { type: 'object', description: 'While running: the workflow\'s progress Query (phase, done, batches).' },
      items: { type: 'array', items: { $ref: '#/components/schemas/BillRunItem' }, description: 'With `Prefer: wait=N` and the run finished in time: the per-bill results (first 200).' },
    },
  },
  BillRunItem: {
    type: 'object',
    properties: {
      seq: { type: 'integer' },
      invoiceNumber: { type: 'string' },
      clientId: { type: 'string' },
      delivery: { type: 'string', enum: [...DELIVERY_PREFERENCES] },
      outcome: { type: 'string', enum: [...BILL_OUTCOMES] },
      reason: { type: ['string', 'null'], description: 'Why it failed or was skipped.' },
      recipient: { type: ['string', 'null'] },
      messageId: { type: ['string', 'null'] },
      documentId: { type: ['string', 'null'], description: 'A printed bill: its stored PDF (the one in the printout).' },
      documentSha256: { type: ['string', 'null'], description: 'The sha256 of the PDF that was emailed or printed.' },
      processedAt: { type: ['string', 'null'], format: 'date-time' },
    },
  },
} as const;

type BillSchemaName = keyof typeof billSchemas;

const preferWait = {
  name: 'Prefer',
  in: 'header',
  required: false,
  description: '`wait=N` (RFC 7240, N <= 60): answer once the run has finished, with its per-bill results, or after N seconds with the run still running. Without it the answer comes at once.',
  schema: { type: 'string', example: 'wait=2' },
};
const pathParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
const tagName = { name: 'name', in: 'path', required: true, schema: { type: 'string', pattern: CUSTOM_TAG_NAME.source } };
const body = (name: BillSchemaName) => jsonBody(name);
const json = (description: string, name: BillSchemaName) => jsonResponse(description, name);
const pdf = (description: string) => ({ description, content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } });

export const billPaths = {
  '/v1/message-tags': {
    get: {
      summary: 'Every tag a message template may use (built-in and the company\'s custom tags), with what it stands for',
      responses: { 200: { description: '`{ data: [{ tag, description }] }`' }, 401: problem },
    },
  },
  '/v1/message-templates': {
    post: {
      summary: 'Create a message template',
      description: 'Errors: 422 `unknown-tag` (a tag that is neither built in nor a custom tag of the company; `field` subject or body, the tag in `detail`), 409 `template-exists` (the name is taken).',
      parameters: [idempotencyKey, requestId],
      requestBody: body('MessageTemplateCreate'),
      responses: { 201: json('Created (Location: /v1/message-templates/{id})', 'MessageTemplate'), 401: problem, 409: problem, 422: problem },
    },
    get: { summary: "The company's message templates", responses: { 200: { description: '`{ data: MessageTemplate[] }`' }, 401: problem } },
  },
  '/v1/message-templates/{id}': {
    get: { summary: 'A message template', parameters: [pathParam('id')], responses: { 200: json('The template', 'MessageTemplate'), 401: problem, 404: problem } },
    put: {
      summary: 'Replace a message template',
      description: 'Errors: 404 unknown template, 422 `unknown-tag`, 409 `template-exists` (the new name is taken).',
      parameters: [pathParam('id'), idempotencyKey, requestId],
      requestBody: body('MessageTemplateCreate'),
      responses: { 200: json('The template', 'MessageTemplate'), 401: problem, 404: problem, 409: problem, 422: problem },
    },
  },
  '/v1/message-templates/{id}/preview': {
    post: {
      summary: 'The template rendered for one bill, without sending it',
      description: 'Values come from the invoice\'s workflow (its current figures). Errors: 404 unknown template or invoice, 409 `not-a-bill` (the invoice is not Final), 503 `worker-unavailable`.',
      parameters: [pathParam('id'), requestId],
      requestBody: body('MessagePreviewRequest'),
      responses: { 200: json('Rendered subject and body', 'MessagePreview'), 401: problem, 404: problem, 409: problem, 422: problem, 503: problem },
    },
  },
  '/v1/message-templates/{id}/send': {
    post: {
      summary: 'Send the message to one bill or many (a durable run: one Temporal workflow)',
      description:
        "Each bill's client gets the rendered message by the template's channel (email). Held exceptional bills are skipped; a client without an address is a failed bill. " +
        'Answers 201 with the run (Location: /v1/bill-runs/{id}); follow it there. Errors: 404 unknown template, or (with `invoiceNumbers`) an unknown invoice; ' +
        '409 `not-a-bill` (one of `invoiceNumbers` is not Final); 422 neither or both of `invoiceNumbers` and `criteria`.',
      parameters: [pathParam('id'), idempotencyKey, requestId, preferWait],
      requestBody: body('MessageSend'),
      responses: { 201: json('The run', 'BillRun'), 401: problem, 404: problem, 409: problem, 422: problem },
    },
  },
  '/v1/custom-tags': {
    get: { summary: "The company's custom tags (#custom.<name>)", responses: { 200: { description: '`{ data: CustomTag[] }`' }, 401: problem } },
  },
  '/v1/custom-tags/{name}': {
    put: {
      summary: 'Define or change a custom tag',
      description: 'The name is lower case letters, digits and `_`, starting with a letter (422 otherwise). Answers 201 when created, 200 when changed.',
      parameters: [tagName, idempotencyKey],
      requestBody: body('CustomTagValue'),
      responses: { 200: json('Changed', 'CustomTag'), 201: json('Created', 'CustomTag'), 401: problem, 422: problem },
    },
    delete: {
      summary: 'Remove a custom tag',
      description: 'Errors: 404 unknown tag; 409 `tag-in-use` while a template uses it (the templates are named).',
      parameters: [tagName, idempotencyKey],
      responses: { 200: { description: 'Removed: `{ name, deleted: true }`' }, 401: problem, 404: problem, 409: problem },
    },
  },
  '/v1/bill-runs': {
    post: {
      summary: 'Start a bill sending run',
      description:
        "Selects the company's Final bills by `criteria` and delivers each by its client's delivery preference: `email` (the message, default or `templateId`, with the bill's PDF " +
        "showing its current figures attached) or `print` (the PDF goes into the run's merged printout). Held exceptional bills are skipped and reported. " +
        'One Temporal workflow per run (`BillRun:<company>:<id>`); progress at GET /v1/bill-runs/{id}. Errors: 404 unknown `templateId`, 422 bad criteria.',
      parameters: [idempotencyKey, requestId, preferWait],
      requestBody: body('BillRunCreate'),
      responses: { 201: json('The run (Location: /v1/bill-runs/{id})', 'BillRun'), 401: problem, 404: problem, 422: problem },
    },
    get: {
      summary: 'Bill runs, newest first (read model, counters current while they run)',
      parameters: [
        { name: 'after', in: 'query', schema: { type: 'string' }, description: 'Cursor: the id of the last run of the previous page.' },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
      ],
      responses: { 200: { description: '`{ data: BillRun[], nextCursor, hasMore }`' }, 401: problem, 422: problem },
    },
  },
  '/v1/bill-runs/{id}': {
    get: {
      summary: "A run: its counters, and while it runs its workflow's progress Query",
      parameters: [pathParam('id')],
      responses: { 200: json('The run', 'BillRun'), 401: problem, 404: problem },
    },
  },
  '/v1/bill-runs/{id}/items': {
    get: {
      summary: 'Per-bill results of a run (sent, printed, skipped-held, failed with reason, pending)',
      parameters: [
        pathParam('id'),
        { name: 'outcome', in: 'query', schema: { type: 'string', enum: [...BILL_OUTCOMES] } },
        { name: 'after', in: 'query', schema: { type: 'integer' }, description: 'Cursor: the `seq` of the last item already read.' },
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
      ],
      responses: { 200: { description: '`{ data: BillRunItem[], nextCursor, hasMore }`' }, 401: problem, 404: problem, 422: problem },
    },
  },
  '/v1/bill-runs/{id}/retry': {
    post: {
      summary: "Retry a run's failed bills only: a new run (with `retryOf`) selecting exactly those",
      description:
        'Delivery preferences and addresses are read again, so a fixed client address is used. Errors: 404 unknown run, 409 `run-in-progress` (wait for it to finish), ' +
        '409 `nothing-to-retry` (no failed bills).',
      parameters: [pathParam('id'), idempotencyKey, requestId, preferWait],
      responses: { 201: json('The new run (Location: /v1/bill-runs/{id})', 'BillRun'), 401: problem, 404: problem, 409: problem },
    },
  },
  '/v1/bill-runs/{id}/printout': {
    get: {
      summary: "The run's batch printout: one PDF of its print-preference bills, in run order",
      description: 'Errors: 404 unknown run, or a run that printed nothing; 409 `run-in-progress`.',
      parameters: [pathParam('id')],
      responses: { 200: pdf('The merged printout'), 401: problem, 404: problem, 409: problem },
    },
  },
  '/v1/bills/{number}/pdf': {
    get: {
      summary: "One bill's PDF on demand, with its current figures (payments since Final included)",
      description:
        'Rendered by the worker from the invoice workflow\'s state, kept by content (asking again with the same figures is served from store). ' +
        'Errors: 404 unknown invoice, 409 `not-a-bill` (not Final), 503 `worker-unavailable`.',
      parameters: [pathParam('number')],
      responses: { 200: pdf('The bill'), 401: problem, 404: problem, 409: problem, 503: problem },
    },
  },
} as const;
