/** What the API makes of Temporal's answers (api/temporal-errors.ts), for the answers no stack can be made to give on demand. */
import { QueryNotRegisteredError } from '@temporalio/client';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { toProblem } from '../api/temporal-errors.js';

describe('Temporal answers as problems', () => {
  it('takes a Query refused as not registered (a workflow whose task fails replay) for a workflow that cannot answer now, so reads fall back to the saved state', () => {
    // As the server answered a GET's Query in the chaos run, while the invoice's worker could not replay it.
    const refused = new QueryNotRegisteredError('[TMPRL1100] Nondeterminism error: Update machine does not handle this event: HistoryEvent(id: 36, TimerStarted)', status.INVALID_ARGUMENT);
    const problem = toProblem(refused, 'invoice INV-1');
    expect(problem).toMatchObject({ status: 503, type: 'worker-unavailable' });
    expect(problem?.detail).toContain('Nondeterminism error');
  });

  it('leaves an error it does not know to the server error handler', () => {
    expect(toProblem(new Error('something else'), 'invoice INV-1')).toBeNull();
  });
});
