/**
 * The OpenAPI schemas and paths of communicating bills (message templates with #tags, custom tags,
 * preview, send) and bill sending runs (progress, per-bill results, retry, printouts). Spread into
 * the one description in openapi.ts, so validation and /docs come from the same text.
 */
import { Type, type Static } from '@sinclair/typebox';
import { SETTLEMENT_STATUSES } from '../domain/invoice.js';
import { BUILT_IN_TAGS, CUSTOM_TAG_NAME } from '../domain/tags.js';
import { BILL_OUTCOMES, BILL_RUN_KINDS, DELIVERY_PREFERENCES } from '../workflows/bill-run-contract.js';
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
  Nullable,
  pathParameter,
  problem,
  queryParameters,
  Ref,
  requestId,
  StringEnum,
} from './openapi-parts.js';

const { Object: Obj, Partial, Optional, String: Str, Integer, Boolean: Bool, Array: Arr } = Type;

const tagList = Object.keys(BUILT_IN_TAGS)
  .map((t) => `#${t}`)
  .join(' ');

const MessageTemplateCreate = Obj(
  {
    name: Str({ minLength: 1, maxLength: 200, description: 'Unique within the company.' }),
    channel: Default(StringEnum(['email'], { description: "The channel the message goes by (email: to the client's email address)." }), 'email'),
    subject: Str({ minLength: 1, maxLength: 500 }),
    body: Str({ minLength: 1, maxLength: 20_000 }),
  },
  {
    additionalProperties: false,
    description:
      `A message about a bill. Tags: ${tagList}, and #custom.<name> for each of the company's custom tags; ` +
      'a trailing full stop is punctuation, `\\#` writes a literal #. A tag that is not known is refused with 422 `unknown-tag` naming it (`field`: subject or body).',
  },
);

const MessageTemplate = Partial(
  Obj({
    id: Str(),
    name: Str(),
    channel: Str(),
    subject: Str(),
    body: Str(),
    tags: Arr(Str(), { description: 'The tags the template uses.' }),
    createdAt: Str({ format: 'date-time' }),
    updatedAt: Str({ format: 'date-time' }),
  }),
);

const CustomTagValue = Obj({ value: Str({ maxLength: 2_000, description: 'What #custom.<name> is replaced by in every message of the company.' }) }, { additionalProperties: false });

const CustomTag = Partial(Obj({ name: Str(), tag: Str({ description: '`#custom.<name>`' }), value: Str(), updatedAt: Str({ format: 'date-time' }) }));

const MessagePreviewRequest = Obj({ invoiceNumber: id({ description: 'The bill whose values fill the tags.' }) }, { additionalProperties: false });

const MessagePreview = Partial(
  Obj({
    templateId: Str(),
    invoiceNumber: Str(),
    channel: Str(),
    recipient: Nullable(Str(), { description: "Where it would go (the client's email address); null when the client has none." }),
    subject: Str(),
    body: Str(),
  }),
);

const BillCriteria = Obj(
  {
    invoiceDateFrom: Optional(date()),
    invoiceDateTo: Optional(date()),
    settlement: Optional(Arr(StringEnum(SETTLEMENT_STATUSES), { minItems: 1, uniqueItems: true })),
    clientIds: Optional(Arr(id(), { minItems: 1, maxItems: 1_000 })),
    invoiceNumbers: Optional(Arr(id(), { minItems: 1, maxItems: 10_000 })),
    notYetSent: Optional(Bool({ description: 'Only bills never delivered yet (emailed with their PDF, or printed, by a bill sending run).' })),
    deliveryPreference: Optional(StringEnum(DELIVERY_PREFERENCES, { description: 'Only bills whose client prefers this delivery.' })),
  },
  { additionalProperties: false, description: "Which of the company's Final bills to select; every given criterion must hold." },
);

const MessageSend = Obj(
  {
    invoiceNumbers: Optional(Arr(id(), { minItems: 1, maxItems: 10_000, uniqueItems: true })),
    criteria: Optional(Ref('BillCriteria', BillCriteria)),
  },
  {
    additionalProperties: false,
    description: 'Exactly one of `invoiceNumbers` (one bill or several) and `criteria`.',
    oneOf: [{ required: ['invoiceNumbers'] }, { required: ['criteria'] }],
  },
);

const BillRunCreate = Obj(
  {
    criteria: Optional(Ref('BillCriteria', BillCriteria)),
    templateId: Optional(Str({ minLength: 1, maxLength: 64, description: 'The message emailed with each bill (default: a built-in one without the Pay Now URL).' })),
  },
  { additionalProperties: false },
);

const BillRunItem = Partial(
  Obj({
    seq: Integer(),
    invoiceNumber: Str(),
    clientId: Str(),
    delivery: StringEnum(DELIVERY_PREFERENCES),
    outcome: StringEnum(BILL_OUTCOMES),
    reason: Nullable(Str(), { description: 'Why it failed or was skipped.' }),
    recipient: Nullable(Str()),
    messageId: Nullable(Str()),
    documentId: Nullable(Str(), { description: 'A printed bill: its stored PDF (the one in the printout).' }),
    documentSha256: Nullable(Str(), { description: 'The sha256 of the PDF that was emailed or printed.' }),
    processedAt: Nullable(Str({ format: 'date-time' })),
  }),
);

const BillRun = Partial(
  Obj({
    id: Str(),
    kind: StringEnum(BILL_RUN_KINDS, { description: '`send`: bills by delivery preference; `communicate`: a message template.' }),
    status: StringEnum(['selecting', 'running', 'completed', 'failed']),
    criteria: Ref('BillCriteria', BillCriteria),
    templateId: Nullable(Str()),
    retryOf: Nullable(Str(), { description: 'The run whose failed bills this run retries.' }),
    total: Integer(),
    sent: Integer(),
    printed: Integer(),
    skippedHeld: Integer({ description: 'Held exceptional bills, not sent.' }),
    failed: Integer(),
    pending: Integer(),
    workflowId: Str({ description: "The run's Temporal workflow: `BillRun:<company>:<id>`." }),
    printoutUrl: Nullable(Str(), { description: 'The merged printout of the print bills, once the run has completed.' }),
    createdAt: Str({ format: 'date-time' }),
    completedAt: Nullable(Str({ format: 'date-time' })),
    progress: AnyObject({ description: "While running: the workflow's progress Query (phase, done, batches)." }),
    items: Arr(Ref('BillRunItem', BillRunItem), { description: 'With `Prefer: wait=N` and the run finished in time: the per-bill results (first 200).' }),
  }),
);

/** The query strings of the listings (the contract checks them; the routes read them typed with `queryOf`). */
export const BillRunsQuery = Obj({
  after: Optional(Str({ description: 'Cursor: the id of the last run of the previous page.' })),
  limit: Default(Integer({ minimum: 1, maximum: 200 }), 50),
});
export const BillRunItemsQuery = Obj({
  outcome: Optional(StringEnum(BILL_OUTCOMES)),
  after: Optional(Integer({ minimum: 0, maximum: MAX_INT4, description: 'Cursor: the `seq` of the last item already read.' })),
  limit: Default(Integer({ minimum: 1, maximum: 1000 }), 200),
});

export const billSchemas = {
  MessageTemplateCreate,
  MessageTemplate,
  CustomTagValue,
  CustomTag,
  MessagePreviewRequest,
  MessagePreview,
  BillCriteria,
  MessageSend,
  BillRunCreate,
  BillRun,
  BillRunItem,
};

type BillSchemaName = keyof typeof billSchemas;

const preferWait = {
  name: 'Prefer',
  in: 'header',
  required: false,
  description: '`wait=N` (RFC 7240, N <= 60): answer once the run has finished, with its per-bill results, or after N seconds with the run still running. Without it the answer comes at once.',
  schema: { type: 'string', example: 'wait=2' },
};
const templateId = pathParameter('id', 'tpl-5e1b7c9a2d40');
const runId = pathParameter('id', 'run-a41f09c3e7d25b68');
const tagName = pathParameter('name', 'project_accountant', { type: 'string', pattern: CUSTOM_TAG_NAME.source });
/** A request body with its example, typed by the schema (as in openapi.ts). */
const body = <N extends BillSchemaName>(name: N, example: Static<(typeof billSchemas)[N]>) => jsonBody(name, example);
const reminder = {
  name: 'Payment reminder',
  subject: 'Invoice #bill.number is due on #bill.due_date',
  body:
    'Dear #client.name,\n\nour invoice #bill.number for #bill.total is due on #bill.due_date, and #bill.amount_due of it is still open. ' +
    'You can pay it online: #bill.pay_now_url\n\nThank you,\n#company.name',
};
const november = { invoiceDateFrom: '2026-11-01', invoiceDateTo: '2026-11-30' };
const json = (description: string, name: BillSchemaName) => jsonResponse(description, name);
const pdf = (description: string) => ({ description, content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } });

export const billPaths = {
  '/v1/message-tags': {
    get: {
      summary: "Every tag a message template may use (built-in and the company's custom tags), with what it stands for",
      responses: { 200: jsonAnswer('The tags', listOf(Obj({ tag: Str(), description: Str() }))), 401: problem },
    },
  },
  '/v1/message-templates': {
    post: {
      summary: 'Create a message template',
      description:
        'Errors: 422 `unknown-tag` (a tag that is neither built in nor a custom tag of the company; `field` subject or body, the tag in `detail`), 409 `template-exists` (the name is taken).',
      parameters: [idempotencyKey, requestId],
      requestBody: body('MessageTemplateCreate', reminder),
      responses: { 201: json('Created (Location: /v1/message-templates/{id})', 'MessageTemplate'), 401: problem, 409: problem, 422: problem },
    },
    get: { summary: "The company's message templates", responses: { 200: jsonAnswer('The templates, by name', listOf(Ref('MessageTemplate', MessageTemplate))), 401: problem } },
  },
  '/v1/message-templates/{id}': {
    get: { summary: 'A message template', parameters: [templateId], responses: { 200: json('The template', 'MessageTemplate'), 401: problem, 404: problem } },
    put: {
      summary: 'Replace a message template',
      description: 'Errors: 404 unknown template, 422 `unknown-tag`, 409 `template-exists` (the new name is taken).',
      parameters: [templateId, idempotencyKey, requestId],
      requestBody: body('MessageTemplateCreate', reminder),
      responses: { 200: json('The template', 'MessageTemplate'), 401: problem, 404: problem, 409: problem, 422: problem },
    },
  },
  '/v1/message-templates/{id}/preview': {
    post: {
      summary: 'The template rendered for one bill, without sending it',
      description: "Values come from the invoice's workflow (its current figures). Errors: 404 unknown template or invoice, 409 `not-a-bill` (the invoice is not Final), 503 `worker-unavailable`.",
      parameters: [templateId, requestId],
      requestBody: body('MessagePreviewRequest', { invoiceNumber: 'INV-2026-0042' }),
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
      parameters: [templateId, idempotencyKey, requestId, preferWait],
      requestBody: body('MessageSend', { criteria: { ...november, settlement: ['Unsettled', 'Partially settled'] } }),
      responses: { 201: json('The run', 'BillRun'), 401: problem, 404: problem, 409: problem, 422: problem },
    },
  },
  '/v1/custom-tags': {
    get: { summary: "The company's custom tags (#custom.<name>)", responses: { 200: jsonAnswer('The custom tags, by name', listOf(Ref('CustomTag', CustomTag))), 401: problem } },
  },
  '/v1/custom-tags/{name}': {
    put: {
      summary: 'Define or change a custom tag',
      description: 'The name is lower case letters, digits and `_`, starting with a letter (422 otherwise). Answers 201 when created, 200 when changed.',
      parameters: [tagName, idempotencyKey],
      requestBody: body('CustomTagValue', { value: 'Dana Whitfield, project accountant (dana.whitfield@halden.example)' }),
      responses: { 200: json('Changed', 'CustomTag'), 201: json('Created', 'CustomTag'), 401: problem, 422: problem },
    },
    delete: {
      summary: 'Remove a custom tag',
      description: 'Errors: 404 unknown tag; 409 `tag-in-use` while a template uses it (the templates are named).',
      parameters: [tagName, idempotencyKey],
      responses: { 200: jsonAnswer('Removed', Obj({ name: Str(), deleted: Type.Literal(true) })), 401: problem, 404: problem, 409: problem },
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
      requestBody: body('BillRunCreate', { criteria: { ...november, notYetSent: true } }),
      responses: { 201: json('The run (Location: /v1/bill-runs/{id})', 'BillRun'), 401: problem, 404: problem, 422: problem },
    },
    get: {
      summary: 'Bill runs, newest first (read model, counters current while they run)',
      parameters: queryParameters(BillRunsQuery),
      responses: { 200: jsonAnswer('A page of runs, newest first', listOf(Ref('BillRun', BillRun), Str())), 401: problem, 422: problem },
    },
  },
  '/v1/bill-runs/{id}': {
    get: {
      summary: "A run: its counters, and while it runs its workflow's progress Query",
      parameters: [runId],
      responses: { 200: json('The run', 'BillRun'), 401: problem, 404: problem },
    },
  },
  '/v1/bill-runs/{id}/items': {
    get: {
      summary: 'Per-bill results of a run (sent, printed, skipped-held, failed with reason, pending)',
      parameters: [runId, ...queryParameters(BillRunItemsQuery)],
      responses: { 200: jsonAnswer('A page of per-bill results, in run order', listOf(Ref('BillRunItem', BillRunItem), Integer())), 401: problem, 404: problem, 422: problem },
    },
  },
  '/v1/bill-runs/{id}/retry': {
    post: {
      summary: "Retry a run's failed bills only: a new run (with `retryOf`) selecting exactly those",
      description:
        'Delivery preferences and addresses are read again, so a fixed client address is used. Errors: 404 unknown run, 409 `run-in-progress` (wait for it to finish), ' +
        '409 `nothing-to-retry` (no failed bills).',
      parameters: [runId, idempotencyKey, requestId, preferWait],
      responses: { 201: json('The new run (Location: /v1/bill-runs/{id})', 'BillRun'), 401: problem, 404: problem, 409: problem },
    },
  },
  '/v1/bill-runs/{id}/printout': {
    get: {
      summary: "The run's batch printout: one PDF of its print-preference bills, in run order",
      description: 'Errors: 404 unknown run; 409 `run-in-progress`, or `nothing-printed` (a finished run that printed no bills: its `printoutUrl` is null).',
      parameters: [runId],
      responses: { 200: pdf('The merged printout'), 401: problem, 404: problem, 409: problem },
    },
  },
  '/v1/bills/{number}/pdf': {
    get: {
      summary: "One bill's PDF on demand, with its current figures (payments since Final included)",
      description:
        "Rendered by the worker from the invoice workflow's state, kept by content (asking again with the same figures is served from store). " +
        'Errors: 404 unknown invoice, 409 `not-a-bill` (not Final), 503 `worker-unavailable`.',
      parameters: [pathParameter('number', 'INV-2026-0042')],
      responses: { 200: pdf('The bill'), 401: problem, 404: problem, 409: problem, 503: problem },
    },
  },
} as const;
