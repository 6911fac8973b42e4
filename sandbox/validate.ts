/** Request-body validation with the schemas of sandbox/openapi.ts: a failure is a 422 naming the field. */
import { bodyValidator } from '../lib/json-schema.js';
import type { PaymentMethod } from './model.js';
import { requestSchemas, type RequestSchemaName } from './openapi.js';

interface FeeRuleInput {
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
  currency?: string;
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
  mode: 'none' | 'error' | 'delay' | 'chaos';
  status?: number;
  delayMs?: number;
  count?: number;
  match?: string;
  errorRate?: number;
  delayRate?: number;
  dropResponseRate?: number;
  webhooks?: { duplicateRate?: number; holdRate?: number; holdMs?: number; loseRate?: number };
}

/** Returns the body typed as `T` when it matches the named schema; throws a 422 problem otherwise. */
export const validBody = bodyValidator<RequestSchemaName>((name) => requestSchemas[name]);
