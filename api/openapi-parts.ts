/** Pieces of the OpenAPI description shared by openapi.ts and openapi-bills.ts. */

export const problem = { $ref: '#/components/responses/Problem' };
export const minor = { type: 'integer', description: 'Money in minor units (cents); never a float.' };
export const date = { type: 'string', format: 'date', pattern: '^\\d{4}-\\d{2}-\\d{2}$' };
export const id = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' };

export const idempotencyKey = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  description: 'Retrying a request with the same key returns the first answer; reusing a key for a different request is 422.',
  schema: { type: 'string', maxLength: 255 },
};

export const requestId = {
  name: 'X-Request-Id',
  in: 'header',
  required: false,
  description: 'Correlation id; generated when absent and echoed on the response.',
  schema: { type: 'string' },
};

/** A JSON request body of the named schema. */
export function jsonBody<N extends string>(name: N) {
  return { required: true, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}

/** A JSON response of the named schema. */
export function jsonResponse<N extends string>(description: string, name: N) {
  return { description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${name}` } } } };
}
