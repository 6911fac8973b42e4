/** Request-body validation from the OpenAPI schemas, so the docs and the server cannot disagree. */
import type { RequestHandler } from 'express';
import { bodyValidator } from '../lib/json-schema.js';
import { HttpProblem } from '../lib/problem.js';
import { openapi, type SchemaName } from './openapi.js';

const validBody = bodyValidator<SchemaName>((name) => ({ $ref: `billflow#/components/schemas/${name}` }), [
  { $id: 'billflow', components: openapi.components },
]);

export function validateBody(name: SchemaName): RequestHandler {
  return (req, _res, next) => {
    // A body of another media type is 415; no body at all reads as {} (422 naming the first missing field).
    if (req.is('application/json') === false) {
      return next(new HttpProblem(415, 'unsupported-media-type', `request body must be application/json, not ${req.get('content-type') ?? 'untyped'}`));
    }
    validBody(name, req.body);
    next();
  };
}
