/**
 * Bill sending runs: start one (a Temporal workflow per run), follow its progress (read model, and
 * the workflow's progress Query while it runs), read its per-bill results, retry its failures (a
 * new run referencing it), download its batch printout; and one bill's PDF on demand.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { Router, type Response } from 'express';
import { HttpProblem } from '../../lib/problem.js';
import {
  billPdfWorkflowId,
  billRunProgressQuery,
  billRunWorkflowId,
  type BillCriteria,
  type BillOutcome,
  type BillRunInput,
  type BillRunKind,
  type BillRunProgress,
} from '../../workflows/bill-run-contract.js';
import type { billPdfWorkflow, billRunWorkflow } from '../../workflows/bill-run.js';
import { invoiceWorkflowId, searchAttributes as sa, stateQuery, type InvoiceState } from '../../workflows/contract.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyOf } from '../middleware.js';
import { ruleFailure, toProblem } from '../temporal-errors.js';
import { BillRunItemsQuery, BillRunsQuery } from '../openapi-bills.js';
import { bodyOf, queryOf } from '../validate.js';

/**
 * How long a GET waits for the run's progress Query. A Query that arrives while another one is
 * being answered is held by Temporal until the workflow's next task (the next batch), so it is
 * bounded: the read model's counters (written per bill) answer regardless.
 */
const QUERY_TIMEOUT_MS = 1_500;
const PDF_TIMEOUT_MS = 30_000;
/** The longest a caller may ask to wait for a run to finish (`Prefer: wait=N`). */
const MAX_WAIT_MS = 60_000;

/** `Prefer: wait=N` (RFC 7240): how long the caller will wait for the run to finish; 0 when not asked. */
export function preferredWaitMs(prefer: string | undefined): number {
  const m = prefer ? /(?:^|[,;\s])wait=(\d+)/.exec(prefer) : null;
  return m ? Math.min(Number(m[1]) * 1000, MAX_WAIT_MS) : 0;
}

interface BillRunRow {
  id: string;
  kind: BillRunKind;
  status: string;
  criteria: BillCriteria;
  template_id: string | null;
  retry_of: string | null;
  workflow_id: string;
  total: number;
  sent: number;
  printed: number;
  skipped_held: number;
  failed: number;
  printout_document_id: string | null;
  created_at: Date;
  completed_at: Date | null;
}

function runView(r: BillRunRow, extra: { progress?: BillRunProgress | null; items?: unknown[] } = {}) {
  const done = r.sent + r.printed + r.skipped_held + r.failed;
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    criteria: r.criteria,
    templateId: r.template_id,
    retryOf: r.retry_of,
    total: r.total,
    sent: r.sent,
    printed: r.printed,
    skippedHeld: r.skipped_held,
    failed: r.failed,
    pending: Math.max(0, r.total - done),
    workflowId: r.workflow_id,
    printoutUrl: r.printout_document_id ? `/v1/bill-runs/${encodeURIComponent(r.id)}/printout` : null,
    createdAt: r.created_at,
    completedAt: r.completed_at,
    ...(extra.progress !== undefined ? { progress: extra.progress } : {}),
    ...(extra.items ? { items: extra.items } : {}),
  };
}

/** Per-bill results of a run in seq order, after `after`, optionally of one outcome. */
function runItems(deps: ApiDeps, companyId: string, runId: string, opts: { after?: number; outcome?: BillOutcome | null; limit: number }) {
  const { sql } = deps;
  return sql<{ seq: number }[]>`
    SELECT seq, invoice_number AS "invoiceNumber", client_id AS "clientId", delivery, outcome, reason, recipient,
      message_id AS "messageId", document_id AS "documentId", document_sha256 AS "documentSha256", processed_at AS "processedAt"
    FROM bill_run_items
    WHERE company_id = ${companyId} AND run_id = ${runId} AND seq > ${opts.after ?? 0}
      ${opts.outcome ? sql`AND outcome = ${opts.outcome}` : sql``}
    ORDER BY seq LIMIT ${opts.limit}`;
}

async function loadRun(deps: ApiDeps, companyId: string, runId: string): Promise<BillRunRow> {
  const [row] = await deps.sql<BillRunRow[]>`SELECT * FROM bill_runs WHERE company_id = ${companyId} AND id = ${runId}`;
  if (!row) throw new HttpProblem(404, 'not-found', `bill run ${runId} not found`);
  return row;
}

/**
 * Records the run and starts its workflow (`BillRun:<company>:<run>`). With `Prefer: wait=N`,
 * answers once the run has finished (with its per-bill results) or after N seconds, whichever is
 * first; otherwise at once. 201 either way: the run exists.
 */
export async function startBillRun(
  deps: ApiDeps,
  res: Response,
  opts: { kind: BillRunKind; criteria: BillCriteria; templateId: string | null; retryOf: string | null; waitMs: number },
): Promise<void> {
  const c = companyOf(res);
  const runId = `run-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const workflowId = billRunWorkflowId(c.id, runId);
  await deps.sql`
    INSERT INTO bill_runs (company_id, id, kind, status, criteria, template_id, retry_of, workflow_id, request_id)
    VALUES (${c.id}, ${runId}, ${opts.kind}, 'selecting', ${deps.sql.json(opts.criteria as never)}, ${opts.templateId}, ${opts.retryOf},
      ${workflowId}, ${res.locals.requestId as string})`;
  const input: BillRunInput = { companyId: c.id, runId, kind: opts.kind };
  try {
    await deps.temporal.workflow.start<typeof billRunWorkflow>('billRunWorkflow', {
      taskQueue: deps.taskQueue,
      workflowId,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: new TypedSearchAttributes([{ key: sa.companyId, value: c.id }]),
      staticSummary: `Bill ${opts.kind === 'send' ? 'sending run' : 'communication'} ${runId}${opts.retryOf ? ` (retry of ${opts.retryOf})` : ''} for ${c.name}`,
    });
  } catch (e) {
    await deps.sql`DELETE FROM bill_runs WHERE company_id = ${c.id} AND id = ${runId}`;
    if (e instanceof WorkflowExecutionAlreadyStartedError) throw new HttpProblem(409, 'run-exists', `bill run ${runId} already exists`);
    throw e;
  }
  let items: unknown[] | undefined;
  if (opts.waitMs > 0) {
    res.set('Preference-Applied', `wait=${opts.waitMs / 1000}`);
    try {
      await deps.temporal.connection.withDeadline(Date.now() + opts.waitMs, () => deps.temporal.workflow.getHandle(workflowId).result());
      items = await runItems(deps, c.id, runId, { limit: 200 });
    } catch (e) {
      // Not finished within the bound: answer with the run as it stands; it goes on.
      if (!toProblem(e, `bill run ${runId}`)) throw e;
    }
  }
  const row = await loadRun(deps, c.id, runId);
  res
    .status(201)
    .location(`/v1/bill-runs/${encodeURIComponent(runId)}`)
    .json(runView(row, items ? { items } : {}));
}

export function billRunsRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const { sql, temporal } = deps;
  const r = Router();

  r.post('/v1/bill-runs', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'BillRunCreate');
    const criteria = b.criteria ?? {};
    if (criteria.invoiceDateFrom && criteria.invoiceDateTo && criteria.invoiceDateTo < criteria.invoiceDateFrom) {
      throw new HttpProblem(422, 'invalid-request', 'criteria.invoiceDateTo is before criteria.invoiceDateFrom', 'criteria.invoiceDateTo');
    }
    if (b.templateId) {
      const [t] = await sql`SELECT 1 FROM message_templates WHERE company_id = ${companyOf(res).id} AND id = ${b.templateId}`;
      if (!t) throw new HttpProblem(404, 'not-found', `message template ${b.templateId} not found`, 'templateId');
    }
    await startBillRun(deps, res, { kind: 'send', criteria, templateId: b.templateId ?? null, retryOf: null, waitMs: preferredWaitMs(req.get('prefer')) });
  });

  r.get('/v1/bill-runs', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const { limit, after } = queryOf(req, BillRunsQuery);
    let cursor: { created_at: Date; id: string } | undefined;
    if (after) {
      [cursor] = await sql<{ created_at: Date; id: string }[]>`SELECT created_at, id FROM bill_runs WHERE company_id = ${c.id} AND id = ${after}`;
      if (!cursor) throw new HttpProblem(422, 'invalid-request', `after must be the id of a run`, 'after');
    }
    const rows = await sql<BillRunRow[]>`
      SELECT * FROM bill_runs WHERE company_id = ${c.id}
        ${cursor ? sql`AND (created_at, id) < (${cursor.created_at}, ${cursor.id})` : sql``}
      ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`;
    const hasMore = rows.length > limit;
    const data = rows.slice(0, limit).map((row) => runView(row));
    res.json({ data, hasMore, nextCursor: hasMore ? data.at(-1)!.id : null });
  });

  r.get('/v1/bill-runs/:id', mw.erpAuth, async (req, res) => {
    const row = await loadRun(deps, companyOf(res).id, String(req.params.id));
    let progress: BillRunProgress | null | undefined;
    if (row.status === 'selecting' || row.status === 'running') {
      try {
        progress = await temporal.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => temporal.workflow.getHandle(row.workflow_id).query(billRunProgressQuery));
      } catch {
        progress = null; // the counters of the read model still answer
      }
    }
    res.json(runView(row, { progress }));
  });

  r.get('/v1/bill-runs/:id/items', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const run = await loadRun(deps, c.id, String(req.params.id));
    const { outcome, limit, after } = queryOf(req, BillRunItemsQuery);
    const rows = await runItems(deps, c.id, run.id, { after: after ?? 0, outcome: outcome ?? null, limit: limit + 1 });
    const hasMore = rows.length > limit;
    const data = rows.slice(0, limit);
    res.json({ data, hasMore, nextCursor: hasMore ? data.at(-1)!.seq : null });
  });

  r.post('/v1/bill-runs/:id/retry', mw.erpAuth, mw.idempotency, async (req, res) => {
    const c = companyOf(res);
    const run = await loadRun(deps, c.id, String(req.params.id));
    if (run.status !== 'completed') {
      throw new HttpProblem(409, 'run-in-progress', `bill run ${run.id} is still ${run.status}; retry its failures once it has completed`);
    }
    if (run.failed === 0) throw new HttpProblem(409, 'nothing-to-retry', `bill run ${run.id} has no failed bills`);
    await startBillRun(deps, res, { kind: run.kind, criteria: run.criteria, templateId: run.template_id, retryOf: run.id, waitMs: preferredWaitMs(req.get('prefer')) });
  });

  r.get('/v1/bill-runs/:id/printout', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const run = await loadRun(deps, c.id, String(req.params.id));
    if (run.status !== 'completed') throw new HttpProblem(409, 'run-in-progress', `bill run ${run.id} is still ${run.status}; its printout is made when it completes`);
    // The run exists (a 404 would say it does not): it has no printout.
    if (!run.printout_document_id) throw new HttpProblem(409, 'nothing-printed', `bill run ${run.id} printed no bills (its printoutUrl is null)`);
    const [doc] = await sql<{ bytes: Buffer; sha256: string }[]>`SELECT bytes, sha256 FROM documents WHERE id = ${run.printout_document_id}`;
    if (!doc) throw new HttpProblem(404, 'not-found', `the printout of bill run ${run.id} is missing`);
    res.type('application/pdf').set('ETag', `"${doc.sha256}"`).set('Content-Disposition', `inline; filename="printout-${run.id}.pdf"`).send(doc.bytes);
  });

  r.get('/v1/bills/:number/pdf', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const number = String(req.params.number);
    // The workflow, not the (eventually consistent) read model, says whether it is a bill now.
    let inv: InvoiceState;
    try {
      inv = await temporal.connection.withDeadline(Date.now() + PDF_TIMEOUT_MS, () => temporal.workflow.getHandle(invoiceWorkflowId(c.id, number)).query(stateQuery));
    } catch (e) {
      throw toProblem(e, `invoice ${number}`) ?? e;
    }
    if (inv.status !== 'Final') throw new HttpProblem(409, 'not-a-bill', `invoice ${number} is ${inv.status}; only a Final invoice is a bill`);
    let doc: { documentId: string };
    try {
      doc = await temporal.connection.withDeadline(Date.now() + PDF_TIMEOUT_MS, () =>
        temporal.workflow.execute<typeof billPdfWorkflow>('billPdfWorkflow', {
          taskQueue: deps.taskQueue,
          workflowId: billPdfWorkflowId(c.id, number, inv.version),
          // Two requests for the same figures share one render.
          workflowIdConflictPolicy: 'USE_EXISTING',
          args: [{ companyId: c.id, number }],
          staticSummary: `PDF of bill ${number} (${c.name})`,
        }),
      );
    } catch (e) {
      const rule = e instanceof WorkflowFailedError ? ruleFailure(e.cause) : null;
      if (rule?.type === 'NotABill') throw new HttpProblem(409, 'not-a-bill', rule.message);
      if (rule?.type === 'UnknownInvoice' || e instanceof WorkflowNotFoundError) throw new HttpProblem(404, 'not-found', `invoice ${number} not found`);
      throw toProblem(e, `the PDF of bill ${number}`) ?? e;
    }
    const [pdf] = await sql<{ bytes: Buffer; sha256: string }[]>`SELECT bytes, sha256 FROM documents WHERE id = ${doc.documentId}`;
    if (!pdf) throw new HttpProblem(404, 'not-found', `the PDF of bill ${number} is missing`);
    res.type('application/pdf').set('ETag', `"${pdf.sha256}"`).set('Content-Disposition', `inline; filename="invoice-${number}.pdf"`).send(pdf.bytes);
  });

  return r;
}
