/**
 * The OpenAPI schemas and paths of events to the ERP: webhook endpoints, their signing secrets
 * and deliveries. Spread into the one description in openapi.ts.
 */
import { Type, type Static } from '@sinclair/typebox';
import { EVENT_DESCRIPTIONS, EVENT_TYPES } from '../domain/events.js';
import { AnyObject, Default, idempotencyKey, jsonAnswer, jsonBody, jsonResponse, listOf, Nullable, pathParameter, problem, Ref, queryParameters, requestId, StringEnum } from './openapi-parts.js';

const { Object: Obj, Partial, Optional, String: Str, Integer, Boolean: Bool, Array: Arr } = Type;

/** Octets 0-255 without leading zeros. */
const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
/** Labels without `--` (so no punycode label the URL parser would refuse); the last starts with a letter (not an IPv4 number). */
const DOMAIN = '([A-Za-z0-9]+(-[A-Za-z0-9]+)*\\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*';
const PORT = '(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0)';

/** An http(s) URL every URL parser takes: a name, an IPv4 address or [::1], an optional port, then any printable path. */
const endpointUrl = () =>
  Str({
    maxLength: 2_000,
    pattern: `^https?://(${DOMAIN}|${OCTET}(\\.${OCTET}){3}|\\[::1\\])(:${PORT})?([/?#][!-~]*)?$`,
    description: "Where events are POSTed (the ERP's receiver).",
  });

const eventList = () => Arr(StringEnum(EVENT_TYPES), { minItems: 1, uniqueItems: true, description: 'The event types sent to it; absent (or null on PATCH): every type.' });

const eventTable = EVENT_TYPES.map((t) => `\`${t}\`: ${EVENT_DESCRIPTIONS[t]}`).join('; ');

const WebhookEndpointCreate = Obj({ url: endpointUrl(), description: Optional(Str({ maxLength: 500 })), events: Optional(eventList()) }, { additionalProperties: false });

const WebhookEndpointPatch = Obj(
  {
    url: Optional(endpointUrl()),
    description: Optional(Nullable(Str({ maxLength: 500 }))),
    events: Optional(Nullable(eventList())),
    enabled: Optional(Bool()),
  },
  {
    additionalProperties: false,
    minProperties: 1,
    description: 'Only the fields given change. `enabled: true` on a disabled endpoint tries its given-up deliveries again, in order.',
  },
);

const WebhookSecretRotation = Obj(
  {
    overlapSeconds: Default(
      Integer({
        minimum: 0,
        maximum: 2_592_000,
        description: 'How long the secret it replaces still signs too (a second signature in `webhook-signature`); 0: not at all.',
      }),
      86_400,
    ),
  },
  { additionalProperties: false },
);

const WebhookEndpoint = Partial(
  Obj({
    id: Str(),
    companyId: Str(),
    url: Str(),
    description: Nullable(Str()),
    events: Nullable(Arr(Str())),
    enabled: Bool(),
    disabledReason: Nullable(Str(), { description: 'Why it was disabled (failing for too long, or by the ERP).' }),
    failingSince: Nullable(Str({ format: 'date-time' }), { description: 'First failed attempt since the last success.' }),
    lastSuccessAt: Nullable(Str({ format: 'date-time' })),
    previousSecretExpiresAt: Nullable(Str({ format: 'date-time' }), { description: 'Until when the rotated-out secret also signs.' }),
    secret: Str({ description: 'The signing secret (`whsec_...`): answered only at creation and rotation.' }),
    createdAt: Str({ format: 'date-time' }),
    updatedAt: Str({ format: 'date-time' }),
  }),
);

const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;

const WebhookDelivery = Partial(
  Obj({
    id: Str(),
    webhookId: Str({ description: 'The `webhook-id` header: the same on every attempt (deduplicate by it).' }),
    eventType: Str(),
    requestId: Str({ description: 'The correlation id of the request that caused the event.' }),
    status: StringEnum(DELIVERY_STATUSES),
    attemptCount: Integer(),
    nextAttemptAt: Str({ format: 'date-time' }),
    deliveredAt: Nullable(Str({ format: 'date-time' })),
    createdAt: Str({ format: 'date-time' }),
    event: AnyObject({ description: 'The body exactly as sent: `{ id, type, timestamp, companyId, requestId, data }`.' }),
    attempts: Arr(
      Partial(
        Obj({
          attempt: Integer(),
          startedAt: Str({ format: 'date-time' }),
          durationMs: Integer(),
          statusCode: Nullable(Integer()),
          responseBody: Nullable(Str(), { description: 'The first 2,000 characters of the answer.' }),
          error: Nullable(Str(), { description: 'Why no answer came (refused, no answer in time, ...).' }),
        }),
      ),
    ),
  }),
);

/** The query string of an endpoint's deliveries. */
export const DeliveriesQuery = Obj({
  status: Optional(StringEnum(DELIVERY_STATUSES)),
  after: Optional(Str({ pattern: '^\\d{1,18}$', description: 'Cursor: the id of the last delivery already read.' })),
  limit: Default(Integer({ minimum: 1, maximum: 200 }), 50),
});

export const webhookSchemas = { WebhookEndpointCreate, WebhookEndpointPatch, WebhookSecretRotation, WebhookEndpoint, WebhookDelivery };

type Name = keyof typeof webhookSchemas;
const json = (description: string, name: Name) => jsonResponse(description, name);
const endpointId = pathParameter('id', 'we_0f3c9a7e2b6d4c1a8e5f7b20', { type: 'string', pattern: '^we_[0-9a-f]{24}$' });
const deliveryId = pathParameter('deliveryId', '4817', { type: 'string', pattern: '^[1-9][0-9]{0,17}$' });
/** A request body with its example, typed by the schema (as in openapi.ts). */
const body = <N extends Name>(name: N, example: Static<(typeof webhookSchemas)[N]>) => jsonBody(name, example);
const erpEvents = ['invoice.finalized', 'payment.applied', 'receipt.created'] as const;

export const webhookPaths = {
  '/v1/webhook-endpoints': {
    post: {
      summary: "Register an ERP endpoint for events (the company's)",
      description:
        'Events are POSTed by the Standard Webhooks specification: headers `webhook-id` (the same on every retry), `webhook-timestamp` and ' +
        "`webhook-signature` (`v1,<base64 HMAC-SHA256>` with the endpoint secret), verifiable with that specification's libraries in any language. " +
        'The body is `{ id, type, timestamp, companyId, requestId, data }`; `requestId` is the correlation id of the request that caused it. ' +
        'Any 2xx answer within 15 s is a delivery; anything else is retried with backoff for 3 days, in order per invoice; an endpoint failing for ' +
        `5 days is disabled. Event types: ${eventTable}. The answer carries the signing secret, once.`,
      parameters: [idempotencyKey, requestId],
      requestBody: body('WebhookEndpointCreate', { url: 'https://erp.halden.example/billflow/events', description: 'Ajera receipts import', events: [...erpEvents] }),
      responses: { 201: json('Registered (with `secret`, shown only now)', 'WebhookEndpoint'), 401: problem, 422: problem },
    },
    get: {
      summary: "The endpoints of the key's companies",
      responses: { 200: jsonAnswer('The endpoints', listOf(Ref('WebhookEndpoint', WebhookEndpoint))), 401: problem },
    },
  },
  '/v1/webhook-endpoints/{id}': {
    get: { summary: 'One endpoint', parameters: [endpointId], responses: { 200: json('The endpoint', 'WebhookEndpoint'), 401: problem, 404: problem } },
    patch: {
      summary: 'Change an endpoint (URL, description, event types, enabled)',
      parameters: [endpointId, idempotencyKey],
      requestBody: body('WebhookEndpointPatch', { events: [...erpEvents, 'reminder.sent'] }),
      responses: { 200: json('The endpoint', 'WebhookEndpoint'), 401: problem, 404: problem, 422: problem },
    },
    delete: {
      summary: 'Remove an endpoint and its deliveries',
      parameters: [endpointId],
      responses: { 204: { description: 'Removed' }, 401: problem, 404: problem },
    },
  },
  '/v1/webhook-endpoints/{id}/rotate-secret': {
    post: {
      summary: 'Give the endpoint a new signing secret (answered once)',
      description: 'During `overlapSeconds` (default a day) every delivery carries two signatures, by the new and the old secret, so the ERP can switch at leisure.',
      parameters: [endpointId, idempotencyKey],
      requestBody: body('WebhookSecretRotation', { overlapSeconds: 172_800 }),
      responses: { 200: json('The endpoint with its new `secret`', 'WebhookEndpoint'), 401: problem, 404: problem, 422: problem },
    },
  },
  '/v1/webhook-endpoints/{id}/deliveries': {
    get: {
      summary: "The endpoint's deliveries, oldest first, each with its attempts and the answers",
      parameters: [endpointId, ...queryParameters(DeliveriesQuery)],
      responses: { 200: jsonAnswer('A page of deliveries, oldest first', listOf(Ref('WebhookDelivery', WebhookDelivery), Str())), 401: problem, 404: problem, 422: problem },
    },
  },
  '/v1/webhook-endpoints/{id}/deliveries/{deliveryId}/redeliver': {
    post: {
      summary: 'Send a delivery again (same `webhook-id`), with a new retry window',
      description: 'It goes out as soon as the deliveries of its invoice before it are done.',
      parameters: [endpointId, deliveryId, idempotencyKey],
      responses: { 202: jsonAnswer('Queued again', Obj({ id: Str(), status: Type.Literal('pending') })), 401: problem, 404: problem },
    },
  },
} as const;
