/** Maps what Temporal answers to the problem documents the ERP sees. */
import { isGrpcCancelledError, isGrpcDeadlineError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { HttpProblem } from '../lib/problem.js';

const RULE_ERRORS: Record<string, [number, string]> = {
  IllegalTransition: [409, 'illegal-transition'],
  ProviderUnavailable: [503, 'provider-unavailable'],
  ProviderRejected: [502, 'provider-rejected'],
  InvalidPrepayment: [422, 'invalid-prepayment'],
  PrepaymentMismatch: [422, 'invalid-prepayment'],
  PrepaymentExhausted: [422, 'prepayment-exhausted'],
  UnknownPrepayment: [404, 'not-found'],
  IllegalLifecycleMove: [409, 'illegal-lifecycle-move'],
  NotEditable: [409, 'not-editable'],
  InvalidRevision: [422, 'invalid-request'],
  NotHeld: [409, 'not-held'],
  QuickPayRefused: [409, 'quick-pay-refused'],
};

/** The rule failure behind a Temporal failure (an activity's failure arrives wrapped). */
export function ruleFailure(err: unknown): ApplicationFailure | null {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure) return e;
  }
  return null;
}

/** Our deadline ran out somewhere down the chain (the client wraps gRPC errors in ServiceError). */
function timedOut(err: unknown): boolean {
  const chain: Error[] = [];
  for (let e: unknown = err; e instanceof Error; e = (e as Error).cause) chain.push(e);
  return chain.some((e: unknown) => isGrpcDeadlineError(e) || isGrpcCancelledError(e) || /deadline|timed? ?out/i.test((e as Error).message));
}

export function toProblem(err: unknown, what: string): HttpProblem | null {
  if (err instanceof WorkflowNotFoundError) return new HttpProblem(404, 'not-found', `${what} not found`);
  const rule = err instanceof WorkflowUpdateFailedError ? ruleFailure(err.cause) : null;
  if (rule) {
    const [status, type] = RULE_ERRORS[rule.type ?? ''] ?? [422, 'rejected'];
    return new HttpProblem(status, type, rule.message);
  }
  if (timedOut(err)) {
    return new HttpProblem(503, 'worker-unavailable', `no billflow worker answered for ${what} in time; is the worker running?`);
  }
  return null;
}
