/**
 * Each company with a provider account has a Temporal Schedule, `Reconcile:<company>`, that runs
 * its reconciliation every `reconcileSeconds`. Made when the company is registered, and checked for
 * every company when the API starts (which repairs one whose creation failed).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import type { Sql } from '../lib/db.js';
import type { Logger } from '../lib/log.js';
import { searchAttributes as sa } from '../workflows/contract.js';
import { RECONCILE_WORKFLOW_TYPE, reconcileScheduleId, type ReconcileInput } from '../workflows/reconcile-contract.js';

export interface ScheduledCompany {
  id: string;
  reconcileSeconds: number;
}

/**
 * Creates the company's reconciliation schedule, or brings an existing one to the current
 * interval and task queue; false when this Temporal has no Schedules.
 */
export async function ensureReconcileSchedule(temporal: Client, taskQueue: string, company: ScheduledCompany): Promise<boolean> {
  const args: [ReconcileInput] = [{ companyId: company.id }];
  const scheduleId = reconcileScheduleId(company.id);
  // Jitter spreads the companies' runs, so the provider does not get every account's listing at once.
  const spec = { intervals: [{ every: `${company.reconcileSeconds}s` }], jitter: `${Math.min(Math.floor(company.reconcileSeconds / 10), 3600)}s` };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: RECONCILE_WORKFLOW_TYPE,
    args,
    taskQueue,
    workflowId: scheduleId,
    typedSearchAttributes: new TypedSearchAttributes([{ key: sa.companyId, value: company.id }]),
  };
  try {
    // A run still going when the next is due is not doubled; missed runs (server down) are not replayed.
    await temporal.schedule.create({ scheduleId, spec, action, policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' } });
  } catch (e) {
    if (e instanceof ScheduleAlreadyRunning) {
      await temporal.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action }));
      return true;
    }
    // Temporal's time-skipping test server has no Schedules (gRPC UNIMPLEMENTED).
    if ((e as { code?: number }).code === 12 || /unimplemented/i.test(String(e))) return false;
    throw e;
  }
  return true;
}

/** Removes the company's schedule (its integration was turned off); none there counts as done. */
export async function removeReconcileSchedule(temporal: Client, companyId: string): Promise<void> {
  try {
    await temporal.schedule.getHandle(reconcileScheduleId(companyId)).delete();
  } catch (e) {
    if (!(e instanceof ScheduleNotFoundError) && (e as { code?: number }).code !== 12) throw e;
  }
}

export async function ensureAllReconcileSchedules(sql: Sql, temporal: Client, taskQueue: string, log: Logger): Promise<void> {
  const companies = await sql<ScheduledCompany[]>`
    SELECT id, reconcile_seconds AS "reconcileSeconds" FROM companies WHERE provider_enabled ORDER BY id`;
  for (const c of companies) {
    try {
      await ensureReconcileSchedule(temporal, taskQueue, c);
    } catch (e) {
      log('reconciliation schedule not ensured', { companyId: c.id, error: String(e) });
    }
  }
}
