/**
 * Pieces of the OpenAPI description shared by openapi.ts, openapi-bills.ts and openapi-webhooks.ts,
 * and the TypeBox helpers its schemas are written with: each schema is the JSON Schema the
 * description publishes and the validators use, and `Static<typeof X>` is its TypeScript type.
 */
import { CloneType, Type, type SchemaOptions, type Static, type TObject, type TOptional, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';

export const problem = { $ref: '#/components/responses/Problem' };
/** Money bound: sums of 500 such lines stay exact in a JavaScript number and in a bigint column. */
export const MAX_MINOR = 10_000_000_000_000;
/**
 * A sum of money in minor units (an invoice's total, what it owes or was paid, a payment of it):
 * up to 500 lines of MAX_MINOR each, so beyond MAX_MINOR; the API keeps sums within the safe integers.
 */
export const minorSum = (options: SchemaOptions = {}) =>
  Type.Integer({ minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, description: 'Money in minor units (cents), a sum of amounts; never a float.', ...options });
/** The largest value of a PostgreSQL `integer` column (intervals and day counts are stored in one). */
export const MAX_INT4 = 2_147_483_647;

/** Money in minor units; `options` narrow it (a minimum of 0, a description of its own). */
export const minor = (options: SchemaOptions = {}) => Type.Integer({ minimum: -MAX_MINOR, maximum: MAX_MINOR, description: 'Money in minor units (cents); never a float.', ...options });
export const date = (options: SchemaOptions = {}) => Type.String({ format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$', ...options });
/** An ERP identifier (client, project, invoice number, company code). */
export const id = (options: SchemaOptions = {}) => Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', ...options });

/** One of `values`, written as `enum` (the description stays readable, and the type is the union of the values). */
export function StringEnum<const V extends readonly string[]>(values: V, options: SchemaOptions = {}): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ type: 'string', enum: [...values], ...options });
}

/** `schema`, or null: written as `type: [<its type>, 'null']` with its bounds kept. */
export function Nullable<T extends TSchema>(schema: T, options: SchemaOptions = {}): TUnsafe<Static<T> | null> {
  const plain = JSON.parse(JSON.stringify(schema)) as { type: string };
  return Type.Unsafe<Static<T> | null>({ ...plain, type: [plain.type, 'null'], ...options });
}

/** Exactly one of `schemas` (`oneOf`: their branches exclude each other, which `anyOf` would not say). */
export function OneOf<T extends TSchema[]>(schemas: [...T], options: SchemaOptions = {}): TUnsafe<Static<T[number]>> {
  return Type.Unsafe<Static<T[number]>>({ ...options, oneOf: schemas });
}

/** A `$ref` to the component schema `name`, typed as `schema` (which must be the one registered under that name). */
export function Ref<T extends TSchema>(name: string, _schema: T): TUnsafe<Static<T>> {
  return Type.Unsafe<Static<T>>({ $ref: `#/components/schemas/${name}` });
}

/** An object the description does not detail (a step of a plan, a payment row). */
export const AnyObject = (options: SchemaOptions = {}) => Type.Unsafe<Record<string, unknown>>({ type: 'object', ...options });

/** An optional field the validator fills with `value` when absent, so a validated body always has it (see `Validated`). */
export function Default<T extends TSchema>(schema: T, value: Static<T>): TOptional<T & { default: unknown }> {
  return Type.Optional(CloneType(schema, { default: value })) as TOptional<T & { default: unknown }>;
}

type DefaultKeys<P extends TProperties> = { [K in keyof P]: P[K] extends { default: unknown } ? K : never }[keyof P];
type ObjectKeys<P extends TProperties> = { [K in keyof P]: P[K] extends TObject ? K : never }[keyof P];
/** What a body or query string of schema `T` is once validated: fields with a `Default` are present, in nested objects too. */
export type Validated<T extends TSchema> = T extends TObject<infer P> ? Static<T> & { [K in DefaultKeys<P>]-?: Static<P[K]> } & { [K in ObjectKeys<P>]?: Validated<P[K]> } : Static<T>;

/** The query parameters of an operation, from one object schema (each property's description is the parameter's). */
export function queryParameters(schema: TObject) {
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, property]) => {
    const { description, ...rest } = JSON.parse(JSON.stringify(property)) as { description?: string };
    return { name, in: 'query', ...(required.has(name) ? { required: true } : {}), schema: rest, ...(description ? { description } : {}) };
  });
}

export const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Retrying a request with the same key returns the first answer (kept 24 h, also when the client had gone before it was sent); ' +
    'reusing a key for a different request is 422. While the first request is running a retry is 409 request-in-progress; ' +
    'a request that died holds its key for at most 15 s (its lease), then a retry takes it over.',
  schema: { type: 'string', maxLength: 255 },
};

export const requestId = {
  name: 'X-Request-Id',
  in: 'header',
  required: false,
  description: 'Correlation id; generated when absent and echoed on the response.',
  schema: { type: 'string' },
};

const companyHeader = {
  name: 'Billflow-Company',
  in: 'header',
  required: false,
  description:
    'With an organisation key: the company this request is for. Needed on per-company routes when the organisation has several ' +
    'companies (422 `company-required` without it); narrows listings to that company. With a company key it may only name that company.',
  schema: id(),
};

/**
 * Adds the Billflow-Company header to every operation an ERP key can call (those without their
 * own `security`: operator-only and public operations declare theirs).
 */
export function withCompanyHeader<P extends object>(paths: P): P {
  type Operation = { security?: unknown; parameters?: readonly unknown[] };
  return Object.fromEntries(
    Object.entries(paths as Record<string, Record<string, Operation>>).map(([path, item]) => [
      path,
      Object.fromEntries(Object.entries(item).map(([method, op]) => [method, op.security ? op : { ...op, parameters: [...(op.parameters ?? []), companyHeader] }])),
    ]),
  ) as P;
}

/**
 * A JSON request body of the named schema, with a realistic example: the docs prefill "Try it out"
 * with it and schemathesis's examples phase sends it (test/api-docs.test.ts validates each against its schema).
 */
export function jsonBody<N extends string>(name: N, example: unknown) {
  return { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` }, example } } };
}

/** A path parameter, with an example for the same two readers as jsonBody's. */
export function pathParameter(name: string, example: string, schema: object = { type: 'string' }) {
  return { name, in: 'path', required: true, schema, example };
}

/** A JSON response of the named schema. */
export function jsonResponse<N extends string>(description: string, name: N) {
  return { description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}

/** A JSON response whose body is `schema` (written in place: listings, small acknowledgements). */
export function jsonAnswer(description: string, schema: TSchema) {
  return { description, content: { 'application/json': { schema } } };
}

/** `{ data: [...] }`, with `nextCursor` and `hasMore` when the listing pages (`cursor`: the cursor's schema). */
export function listOf(item: TSchema, cursor?: TSchema) {
  return Type.Object({
    data: Type.Array(item),
    ...(cursor ? { nextCursor: Nullable(cursor, { description: 'Pass as `after` for the next page (null: nothing read yet).' }), hasMore: Type.Boolean() } : {}),
  });
}

/** PostgreSQL cannot store U+0000 in text: every string of the description refuses it (422 naming the field). */
const NO_NUL = '^[^\\x00]*$';

/**
 * The description with `pattern: NO_NUL` on every string schema that has no pattern, enum, const or
 * format of its own (those never admit NUL; lib/json-schema.ts checks the formats so): one rule,
 * stated to clients and enforced by the validators. A format is left without the pattern, as a
 * generator that must meet both can hardly produce a value.
 */
export function refusingNul<T>(node: T): T {
  if (Array.isArray(node)) return node.map(refusingNul) as T;
  if (typeof node !== 'object' || node === null) return node;
  const copy = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, refusingNul(v)])) as Record<string, unknown>;
  const types = [copy.type ?? []].flat();
  const own = ['pattern', 'enum', 'const', 'format'].some((k) => copy[k] !== undefined);
  if (types.includes('string') && !own) copy.pattern = NO_NUL;
  return copy as T;
}

/** A problem-document answer that names the problem `type`s it may carry. */
function problemOf(...types: string[]) {
  return {
    description: `Problem document; type ${types.map((t) => `\`${t}\``).join(', ')}`,
    content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
  };
}

/** Problem `type`s by status, of one operation ("POST /v1/invoices") or of every operation of a kind. */
export type ProblemTypes = Record<number, string[]>;

/**
 * Names the problem `type`s of every problem answer: those the operation's own route gives
 * (`own`, by "METHOD /path") and those every operation of a kind can give (body errors where there
 * is a body, 422 where a parameter can be wrong, 401 where a key is needed, the Billflow-Company
 * and Idempotency-Key answers where those headers are taken). A status either list names is
 * added to the operation's answers when missing, so the description lists every status the
 * server answers.
 */
export function withProblemTypes<P extends object>(paths: P, own: Record<string, ProblemTypes>): P {
  type Operation = { security?: readonly unknown[]; parameters?: readonly { name: string }[]; requestBody?: unknown; responses: Record<string, unknown> };
  const common = (op: Operation): ProblemTypes => {
    const names = new Set((op.parameters ?? []).map((p) => p.name));
    const add: ProblemTypes = {};
    const push = (status: number, ...types: string[]) => (add[status] = [...(add[status] ?? []), ...types]);
    if (op.security?.length !== 0) push(401, 'unauthenticated');
    if (op.requestBody) {
      push(400, 'malformed-json');
      push(413, 'too-large');
      push(415, 'unsupported-media-type');
    }
    if (op.requestBody || names.size > 0) push(422, 'invalid-request');
    if (names.has(companyHeader.name)) {
      push(404, 'not-found');
      push(422, 'company-required', 'no-companies');
    }
    if (names.has(idempotencyKey.name)) {
      push(409, 'request-in-progress');
      push(422, 'idempotency-key-reused');
    }
    return add;
  };
  const unused = new Set(Object.keys(own));
  const result = Object.fromEntries(
    Object.entries(paths as Record<string, Record<string, Operation>>).map(([path, item]) => [
      path,
      Object.fromEntries(
        Object.entries(item).map(([method, op]) => {
          const name = `${method.toUpperCase()} ${path}`;
          unused.delete(name);
          const types: Record<string, Set<string>> = {};
          for (const list of [own[name] ?? {}, common(op)]) {
            for (const [status, t] of Object.entries(list)) for (const type of t) (types[status] ??= new Set()).add(type);
          }
          const responses = { ...op.responses };
          for (const [status, t] of Object.entries(types)) {
            const declared = responses[status] as { $ref?: string; content?: Record<string, unknown> } | undefined;
            if (declared && declared.$ref !== problem.$ref && !declared.content?.['application/problem+json']) {
              throw new Error(`${name} ${status}: problem types given for an answer that is not a problem`);
            }
            responses[status] = problemOf(...t);
          }
          return [method, { ...op, responses }];
        }),
      ),
    ]),
  ) as P;
  if (unused.size > 0) throw new Error(`problem types for operations the description does not have: ${[...unused].join(', ')}`);
  return result;
}

/**
 * What an answer leads to: the operations of `to` (a path: every operation on it; or one
 * "METHOD /path"), with path parameters and the request body filled from the answer.
 */
export interface LinkRule {
  from: string;
  status: number;
  to: string[];
  /** Path parameters of the targets: name -> runtime expression (`$response.body#/id`). */
  parameters?: Record<string, string>;
  /**
   * The whole request body of the targets, as OpenAPI means a link's `requestBody`: values are
   * constants or runtime expressions (`$response.body#/id`, or embedded: `P-{$response.body#/id}`).
   */
  requestBody?: Record<string, unknown>;
  /** Tells this link from another one between the same operations (the step it stands for: `final`, `reissue`). */
  name?: string;
}

/**
 * Adds OpenAPI `links` from each answer to the operations on what it made or changed (a client to
 * its GET and PATCH and to a new invoice for it, an invoice to its status changes, …), so a client
 * or a stateful fuzzer can follow them to real things.
 */
export function withLinks<P extends object>(paths: P, rules: LinkRule[]): P {
  type Item = Record<string, { responses: Record<string, { links?: object }> }>;
  const all = paths as Record<string, Item>;
  const copy = structuredClone(all);
  for (const rule of rules) {
    const [method, path] = rule.from.split(' ') as [string, string];
    const response = copy[path]?.[method.toLowerCase()]?.responses[rule.status];
    if (!response) throw new Error(`link from ${rule.from} ${rule.status}: no such answer`);
    const links: Record<string, object> = { ...response.links };
    for (const to of rule.to) {
      const [only, target] = to.includes(' ') ? (to.split(' ') as [string, string]) : [undefined, to];
      const item = all[target];
      if (!item) throw new Error(`link from ${rule.from} to ${target}: no such path`);
      const methods = only ? [only.toLowerCase()] : Object.keys(item);
      for (const m of methods) {
        if (!item[m]) throw new Error(`link from ${rule.from} to ${to}: no such operation`);
        const pointer = `#/paths/${target.replace(/~/g, '~0').replace(/\//g, '~1')}/${m}`;
        const name = `${m}${target.replace(/\{[^}]+\}/g, 'By').replace(/[^A-Za-z0-9]+/g, '_')}${rule.name ? `_${rule.name}` : ''}`;
        if (links[name]) throw new Error(`link from ${rule.from} ${rule.status} to ${to}: ${name} twice (give one a name)`);
        links[name] = {
          operationRef: pointer,
          ...(rule.parameters ? { parameters: rule.parameters } : {}),
          // schemathesis merges a link's body into the one it draws unless told otherwise; merged
          // into a random invoice (extra lines, a random projectId) a valid body is mostly refused.
          ...(rule.requestBody ? { requestBody: rule.requestBody, 'x-schemathesis': { merge_body: false } } : {}),
        };
      }
    }
    response.links = links;
  }
  return copy as P;
}
