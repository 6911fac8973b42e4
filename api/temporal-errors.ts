/** Maps what Temporal answers to the problem documents the ERP sees. */
import { isGrpcCancelledError, isGrpcDeadlineError, QueryNotRegisteredError, ServiceError, WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { status } from '@grpc/grpc-js';
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
  // billflow's workflows always register their queries: the server says so when the workflow's
  // task is failing (its worker cannot replay it), which the operator must see to, not the ERP.
  if (err instanceof QueryNotRegisteredError) {
    return new HttpProblem(503, 'worker-unavailable', `the workflow of ${what} cannot answer: its workflow task is failing (${err.message.slice(0, 200)}); retry, and see the Temporal UI`);
  }
  if (timedOut(err)) {
    return new HttpProblem(503, 'worker-unavailable', `no billflow worker answered for ${what} in time; is the worker running?`);
  }
  if (err instanceof ServiceError && workflowTaskTrouble(err)) {
    return new HttpProblem(503, 'worker-unavailable', `the workflow of ${what} could not answer just now (its workers are restarting, or Temporal is unavailable); retry`);
  }
  return null;
}

/** A query or Update the server could not pass to a worker (a failing workflow task, a server restarting). */
function workflowTaskTrouble(err: ServiceError): boolean {
  const code = (err.cause as { code?: number } | undefined)?.code;
  return code === status.FAILED_PRECONDITION || code === status.UNAVAILABLE || code === status.ABORTED || code === status.DEADLINE_EXCEEDED;
}

/**
 * The server gave an Update up because the workflow task it rode on failed (typically a
 * continue-as-new racing new events, or a worker that died), or aborted it while the run closed:
 * it was not accepted, so it is sent again. Updates
 * are deduplicated by id and by the ERP's request key, so sending one again is always safe.
 */
function updateAborted(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const grpc = e as { code?: number; details?: string };
    if (grpc.code === status.FAILED_PRECONDITION && /workflow task failure/i.test(grpc.details ?? '')) return true;
    if (grpc.code === status.UNAVAILABLE && /update was aborted/i.test(grpc.details ?? '')) return true;
  }
  return false;
}

/** Runs `send` again while the server aborts it (see updateAborted), until `deadline` (epoch ms). */
export async function retryAborted<T>(send: () => Promise<T>, deadline: number): Promise<T> {
  for (let pause = 25; ; pause = Math.min(pause * 2, 500)) {
    try {
      return await send();
    } catch (e) {
      if (!updateAborted(e) || Date.now() + pause > deadline) throw e;
      await new Promise((r) => setTimeout(r, pause));
    }
  }
}
