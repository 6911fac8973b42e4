/** Pieces of the OpenAPI description shared by openapi.ts and openapi-bills.ts. */

export const problem = { $ref: '#/components/responses/Problem' };
export const minor = { type: 'integer', description: 'Money in minor units (cents); never a float.' };
export const date = { type: 'string', format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
export const id = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' };

export const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description:
    'Retrying a request with the same key returns the first answer (kept 24 h, also when the client had gone before it was sent); ' +
    'reusing a key for a different request is 422. While the first request is running a retry is 409 request-in-progress; ' +
    'a request that died holds its key for at most 60 s, then a retry takes it over.',
  schema: { type: 'string', maxLength: 255 },
};

export const requestId = {
  name: 'X-Request-Id',
  in: 'header',
  required: false,
  description: 'Correlation id; generated when absent and echoed on the response.',
  schema: { type: 'string' },
};

export const companyHeader = {
  name: 'Billflow-Company',
  in: 'header',
  required: false,
  description:
    'With an organisation key: the company this request is for. Needed on per-company routes when the organisation has several ' +
    'companies (422 `company-required` without it); narrows listings to that company. With a company key it may only name that company.',
  schema: { type: 'string' },
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

/** A JSON request body of the named schema. */
export function jsonBody<N extends string>(name: N) {
  return { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}

/** A JSON response of the named schema. */
export function jsonResponse<N extends string>(description: string, name: N) {
  return { description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}
