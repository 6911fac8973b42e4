/**
 * Reconciliations of a company's invoices with its provider account: the scheduled ones, and one
 * run now on request. Each report lists what differed and what each invoice's workflow repaired.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { Router } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import { reconcileScheduleId, reconcileWorkflowId, RECONCILE_WORKFLOW_TYPE, type ReconcileInput } from '../../workflows/reconcile-contract.js';
import { searchAttributes as sa } from '../../workflows/contract.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyOf } from '../middleware.js';
import { ReconciliationsQuery } from '../openapi.js';
import { queryOf } from '../validate.js';
import { toProblem } from '../temporal-errors.js';
import { preferredWaitMs } from './bill-runs.js';

/** The innermost cause's message: the provider's own answer rather than "Activity task failed". */
function deepestMessage(e: Error): string {
  let x: Error = e;
  while (x.cause instanceof Error) x = x.cause;
  return x.message;
}

interface ReconciliationRow {
  id: string;
  request_id: string;
  checked_invoices: number;
  checked_records: number;
  findings: unknown[];
  repairs_requested: string[] | null;
  halted: string | null;
  failed: string | null;
  started_at: Date;
  finished_at: Date | null;
}

export function reconciliationsRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const { sql, temporal } = deps;
  const r = Router();

  async function report(companyId: string, id: string) {
    const [row] = await sql<ReconciliationRow[]>`SELECT * FROM reconciliations WHERE company_id = ${companyId} AND id = ${id}`;
    if (!row) return null;
    const repairs = await sql`
      SELECT invoice_number AS "invoiceNumber", actions, repaired_at AS "repairedAt"
      FROM reconciliation_repairs WHERE reconciliation_id = ${id} ORDER BY invoice_number`;
    const requested = row.repairs_requested ?? [];
    // Repairs are done by the invoices' workflows after the run itself has finished.
    const status = row.failed ? 'failed' : !row.finished_at ? 'running' : repairs.length < requested.length ? 'repairing' : 'finished';
    return { ...summary(row), status, findings: row.findings, repairsRequested: requested, repairs };
  }

  function summary(row: ReconciliationRow) {
    return {
      id: row.id,
      requestId: row.request_id,
      status: row.failed ? 'failed' : row.finished_at ? 'finished' : 'running',
      failed: row.failed,
      halted: row.halted,
      checkedInvoices: row.checked_invoices,
      checkedRecords: row.checked_records,
      findingCount: row.findings.length,
      startedAt: row.started_at,
      comparedAt: row.finished_at,
    };
  }

  r.post('/v1/reconciliations', mw.erpAuth, mw.idempotency, async (req, res) => {
    const c = companyOf(res);
    const [company] = await sql<{ provider_enabled: boolean }[]>`SELECT provider_enabled FROM companies WHERE id = ${c.id}`;
    if (!company?.provider_enabled) throw new HttpProblem(409, 'provider-disabled', `company ${c.id} has no provider integration to reconcile with`);
    const reconciliationId = randomUUID();
    // Readable (running) from the first answer on, even before the workflow's first activity.
    await sql`
      INSERT INTO reconciliations (id, company_id, request_id, checked_invoices, checked_records, findings)
      VALUES (${reconciliationId}, ${c.id}, ${res.locals.requestId as string}, 0, 0, '[]')`;
    const input: ReconcileInput = { companyId: c.id, reconciliationId, requestId: res.locals.requestId as string };
    const handle = await temporal.workflow.start(RECONCILE_WORKFLOW_TYPE, {
      taskQueue: deps.taskQueue,
      workflowId: reconcileWorkflowId(c.id, reconciliationId),
      args: [input],
      typedSearchAttributes: new TypedSearchAttributes([{ key: sa.companyId, value: c.id }]),
      staticSummary: `Reconciliation of ${c.name} with its provider account (asked for)`,
    });
    const waitMs = preferredWaitMs(req.get('prefer')) || 20_000;
    try {
      await temporal.connection.withDeadline(Date.now() + waitMs, () => handle.result());
    } catch (e) {
      if (e instanceof WorkflowFailedError) {
        throw new HttpProblem(502, 'reconciliation-failed', `reconciliation ${reconciliationId} failed: ${deepestMessage(e)}`);
      }
      if (!toProblem(e, `reconciliation ${reconciliationId}`)) throw e;
    }
    const done = await report(c.id, reconciliationId);
    const location = `/v1/reconciliations/${reconciliationId}`;
    if (!done?.comparedAt) {
      res.status(202).location(location).json({ id: reconciliationId, status: 'running', workflowId: handle.workflowId });
      return;
    }
    res.status(201).location(location).json(done);
  });

  r.get('/v1/reconciliations', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const { limit } = queryOf(req, ReconciliationsQuery);
    const rows = await sql<ReconciliationRow[]>`
      SELECT * FROM reconciliations WHERE company_id = ${c.id} ORDER BY started_at DESC LIMIT ${limit}`;
    let schedule: { id: string; nextRunAt: Date | null } | null = null;
    try {
      const described = await temporal.connection.withDeadline(Date.now() + 5_000, () => temporal.schedule.getHandle(reconcileScheduleId(c.id)).describe());
      schedule = { id: described.scheduleId, nextRunAt: described.info.nextActionTimes[0] ?? null };
    } catch {
      // No schedule (integration off, or a Temporal without Schedules): the list still answers.
    }
    res.json({ schedule, data: rows.map(summary) });
  });

  r.get('/v1/reconciliations/:id', mw.erpAuth, async (req, res) => {
    const id = String(req.params.id);
    const found = /^[0-9a-f-]{36}$/.test(id) ? await report(companyOf(res).id, id) : null;
    if (!found) throw new HttpProblem(404, 'not-found', `reconciliation ${id} not found`);
    res.json(found);
  });
  return r;
}
