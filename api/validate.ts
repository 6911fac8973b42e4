/** Request-body validation from the OpenAPI schemas, so the docs and the server cannot disagree. */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import type { RequestHandler } from 'express';
import { HttpProblem } from '../lib/problem.js';
import { openapi, type SchemaName } from './openapi.js';

const ajv = new Ajv2020({ allErrors: false, strict: false, useDefaults: true, coerceTypes: false });
ajv.addSchema({ $id: 'billflow', components: openapi.components } as object);
const validators = new Map<SchemaName, ValidateFunction>();

function validator(name: SchemaName): ValidateFunction {
  let v = validators.get(name);
  if (!v) {
    v = ajv.compile({ $ref: `billflow#/components/schemas/${name}` });
    validators.set(name, v);
  }
  return v;
}

function describe(e: ErrorObject): { field: string; detail: string } {
  const base = e.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
  if (e.keyword === 'required') {
    const field = [base, (e.params as { missingProperty: string }).missingProperty].filter(Boolean).join('.');
    return { field, detail: `${field} is required` };
  }
  if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    const field = [base, extra].filter(Boolean).join('.');
    return { field, detail: `${field} is not a known field` };
  }
  const field = base || 'body';
  if (e.keyword === 'enum') return { field, detail: `${field} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
  return { field, detail: `${field} ${e.message ?? 'is invalid'}` };
}

export function validateBody(name: SchemaName): RequestHandler {
  return (req, _res, next) => {
    if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
      return next(new HttpProblem(400, 'malformed-json', 'request body must be a JSON object (Content-Type: application/json)'));
    }
    const v = validator(name);
    if (v(req.body)) return next();
    const { field, detail } = describe(v.errors![0]!);
    next(new HttpProblem(422, 'invalid-request', detail, field));
  };
}
