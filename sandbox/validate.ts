/** Request-body validation with the schemas of sandbox/openapi.ts: a failure is a 422 naming the field. */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { HttpProblem } from '../lib/problem.js';
import type { PaymentMethod } from './model.js';
import { requestSchemas, type RequestSchemaName } from './openapi.js';

export interface FeeRuleInput {
  fixed?: number;
  percentBps?: number;
}
export interface AccountCreate {
  name: string;
  webhookUrl?: string | null;
  convenienceFee?: FeeRuleInput;
}
export interface AccountPatch {
  webhookUrl?: string | null;
  convenienceFee?: FeeRuleInput;
}
export interface CustomerCreate {
  externalId: string;
  name: string;
  email?: string | null;
}
export interface InvoiceCreate {
  customerId: string;
  number: string;
  invoiceDate: string;
  amount: number;
  outstanding: number;
}
export interface InvoicePatch {
  number?: string;
  invoiceDate?: string;
  amount?: number;
  outstanding?: number;
}
export interface PaymentCreate {
  customerId: string;
  allocations: { invoiceId: string; amount: number }[];
  method: PaymentMethod;
  paidAt?: string;
  reference?: string | null;
  fee?: number;
}
export interface FaultSet {
  mode: 'none' | 'error' | 'delay';
  status?: number;
  delayMs?: number;
  count?: number;
}

/** A real calendar day, e.g. 2025-02-30 is refused. */
function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}

const ajv = new Ajv2020({ allErrors: false, strict: true, allowUnionTypes: true });
ajv.addFormat('date', { type: 'string', validate: isDate });
ajv.addFormat('date-time', {
  type: 'string',
  validate: (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && isDate(s.slice(0, 10)),
});
ajv.addFormat('email', /^[^\s@]+@[^\s@]+\.[^\s@]+$/);
ajv.addFormat('uri', {
  type: 'string',
  validate: (s) => URL.canParse(s) && ['http:', 'https:'].includes(new URL(s).protocol),
});

const compiled = new Map<RequestSchemaName, ValidateFunction>();

function describe(e: ErrorObject): { field: string; detail: string } {
  const base = e.instancePath.replace(/^\//, '').replace(/\/(\d+)/g, '[$1]').replace(/\//g, '.');
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
  if (e.keyword === 'enum') {
    return { field, detail: `${field} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` };
  }
  if (e.keyword === 'format') return { field, detail: `${field} must be a valid ${(e.params as { format: string }).format}` };
  return { field, detail: `${field} ${e.message ?? 'is invalid'}` };
}

/** Returns the body typed as `T` when it matches the named schema; throws a 422 problem otherwise. */
export function validBody<T>(name: RequestSchemaName, body: unknown): T {
  let v = compiled.get(name);
  if (!v) {
    v = ajv.compile(requestSchemas[name]);
    compiled.set(name, v);
  }
  // No body at all reads as an empty object, so the answer names the first missing field.
  const value = body ?? {};
  if (v(value)) return value as T;
  const { field, detail } = describe(v.errors![0]!);
  throw new HttpProblem(422, 'invalid-request', detail, field);
}
