/**
 * Request validation from the OpenAPI schemas, typed by them: a route reads its body with
 * `bodyOf(req, 'X')` and its query string with `queryOf(req, XQuery)`, and gets the schema's
 * TypeScript type, so the docs, the validation and the code cannot disagree.
 */
import type { TObject, TProperties } from '@sinclair/typebox';
import type { Request } from 'express';
import { bodyValidator, fromQueryString } from '../lib/json-schema.js';
import { HttpProblem } from '../lib/problem.js';
import { openapi, type schemas, type SchemaName } from './openapi.js';
import { refusingNul, type Validated } from './openapi-parts.js';

const validBody = bodyValidator<SchemaName>((name) => ({ $ref: `billflow#/components/schemas/${name}` }), [{ $id: 'billflow', components: openapi.components }]);

/** The request's JSON body as the schema `name` types it (defaults filled in), or a 415/422 problem. */
/** Each component schema's validated type, by name. */
export type Bodies = { [N in SchemaName]: Validated<(typeof schemas)[N]> };

export function bodyOf<N extends SchemaName>(req: Request, name: N): Bodies[NoInfer<N>] {
  // A body of another media type is 415; no body at all reads as {} (422 naming the first missing field).
  if (req.is('application/json') === false) {
    throw new HttpProblem(415, 'unsupported-media-type', `request body must be application/json, not ${req.get('content-type') ?? 'untyped'}`);
  }
  return validBody(name, req.body);
}

const validQuery = bodyValidator<TObject>((schema) => refusingNul(schema));

/**
 * The query string as `schema` types it (numbers and booleans read, defaults filled in). The
 * contract (api/contract.ts) has already refused a bad one with 422 against the same schema,
 * through the operation's parameters made from it (`queryParameters`).
 */
export function queryOf<P extends TProperties>(req: Request, schema: TObject<P>): Validated<TObject<P>> {
  const query = Object.fromEntries(Object.entries(req.query).map(([k, v]) => [k, fromQueryString(v, schema.properties[k] as { type?: unknown } | undefined)]));
  return validQuery(schema as unknown as TObject, query);
}
