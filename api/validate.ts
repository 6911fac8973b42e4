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
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      return next(new HttpProblem(400, 'malformed-json', 'request body must be a JSON object (Content-Type: application/json)'));
    }
    validBody(name, req.body);
    next();
  };
}
