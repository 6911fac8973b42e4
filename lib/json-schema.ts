/**
 * Request-body validation against JSON Schemas (OpenAPI 3.1 dialect), shared by billflow's API and
 * the provider sandbox: a failure is a 422 problem document naming the first offending field.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { HttpProblem } from './problem.js';

/** A real calendar day, e.g. 2025-02-30 is refused. */
function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  // setUTCFullYear, not Date.UTC: that reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return d.toISOString().slice(0, 10) === s;
}

/** A control character (U+0000-U+001F): no email address or URL has one, and PostgreSQL cannot store U+0000. */
const hasControl = (s: string) => [...s].some((c) => c.charCodeAt(0) < 0x20);

function describe(e: ErrorObject): { field: string; detail: string } {
  const base = e.instancePath
    .replace(/^\//, '')
    .replace(/\/(\d+)/g, '[$1]')
    .replace(/\//g, '.');
  const join = (name: string) => [base, name].filter(Boolean).join('.');
  if (e.keyword === 'required') {
    const field = join((e.params as { missingProperty: string }).missingProperty);
    return { field, detail: `${field} is required` };
  }
  if (e.keyword === 'additionalProperties') {
    const field = join((e.params as { additionalProperty: string }).additionalProperty);
    return { field, detail: `${field} is not a known field` };
  }
  const field = base || 'body';
  if (e.keyword === 'uniqueItems') {
    const { i, j } = e.params as { i: number; j: number };
    return { field, detail: `${field} has the same value twice (items ${Math.min(i, j)} and ${Math.max(i, j)})` };
  }
  if (e.keyword === 'enum') {
    return { field, detail: `${field} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
  }
  if (e.keyword === 'format') return { field, detail: `${field} must be a valid ${(e.params as { format: string }).format}` };
  return { field, detail: `${field} ${e.message ?? 'is invalid'}` };
}

/** A query-string value read as `schema` types it (numbers and booleans), so the schema's bounds apply; anything else is left as it came. */
export function fromQueryString(value: unknown, schema: { type?: unknown } | undefined): unknown {
  const types = [schema?.type ?? []].flat();
  if (typeof value !== 'string') return value;
  if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(value)) return Number(value);
  if (types.includes('boolean') && (value === 'true' || value === 'false')) return value === 'true';
  return value;
}

/**
 * Builds `validBody(name, body)`: returns the body (defaults filled in) typed as `T` when it matches
 * the schema `schemaFor(name)`, else throws a 422 problem. `shared` are schemas `$ref`s may point into.
 */
export function bodyValidator<N>(schemaFor: (name: N) => object, shared: object[] = []) {
  const ajv = schemaAjv({ useDefaults: true });
  for (const s of shared) ajv.addSchema(s);
  const compiled = new Map<N, ValidateFunction>();

  return function validBody<T>(name: N, body: unknown): T {
    let v = compiled.get(name);
    if (!v) {
      v = ajv.compile(schemaFor(name));
      compiled.set(name, v);
    }
    // No body at all reads as an empty object, so the answer names the first missing field.
    const value = body ?? {};
    if (v(value)) return value as T;
    const { field, detail } = describe(v.errors![0]!);
    throw new HttpProblem(422, 'invalid-request', detail, field);
  };
}

/** An Ajv for the OpenAPI 3.1 dialect with billflow's formats (the tests check answers with one that fills no defaults). */
export function schemaAjv(options: { useDefaults?: boolean; allErrors?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: options.allErrors ?? false, strict: false, allowUnionTypes: true, useDefaults: options.useDefaults ?? false });
  ajv.addFormat('date', { type: 'string', validate: isDate });
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && isDate(s.slice(0, 10)),
  });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  // Neither format admits a control character (the URL parser would let one through).
  ajv.addFormat('email', { type: 'string', validate: (s) => !hasControl(s) && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(s) });
  ajv.addFormat('uri', { type: 'string', validate: (s) => !hasControl(s) && URL.canParse(s) && ['http:', 'https:'].includes(new URL(s).protocol) });
  return ajv;
}
