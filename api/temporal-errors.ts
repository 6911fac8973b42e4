/** Maps what Temporal answers to the problem documents the ERP sees. */
import { isGrpcDeadlineError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { HttpProblem } from '../lib/problem.js';

const RULE_ERRORS: Record<string, [number, string]> = {
  IllegalTransition: [409, 'illegal-transition'],
  NotSupported: [409, 'not-supported'],
  ProviderRejected: [502, 'provider-rejected'],
};

export function toProblem(err: unknown, what: string): HttpProblem | null {
  if (err instanceof WorkflowNotFoundError) return new HttpProblem(404, 'not-found', `${what} not found`);
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const [status, type] = RULE_ERRORS[err.cause.type ?? ''] ?? [422, 'rejected'];
    return new HttpProblem(status, type, err.cause.message);
  }
  if (isGrpcDeadlineError(err) || (err instanceof Error && /deadline/i.test(err.message))) {
    return new HttpProblem(503, 'worker-unavailable', `no billflow worker answered for ${what} in time; is the worker running?`);
  }
  return null;
}
