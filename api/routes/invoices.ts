/** The ERP's invoice endpoints: each invoice is a workflow; status changes are workflow Updates. */
import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { isGrpcServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateStage, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import { TypedSearchAttributes } from '@temporalio/common';
import { Router, type Request, type Response } from 'express';
import { linked } from '../../activities/pay-links.js';
import { payLinkUrl } from '../../domain/pay-link.js';
import { datesError, validateLines } from '../../domain/invoice.js';
import { stableUuid } from '../../lib/ids.js';
import { HttpProblem } from '../../lib/problem.js';
import {
  applyPrepaymentUpdate,
  changeStatusUpdate,
  invoiceWorkflowId,
  lifecycleUpdate,
  quickPayUpdate,
  releaseUpdate,
  reviseUpdate,
  searchAttributes as sa,
  stateQuery,
  type InvoiceDraft,
  type InvoiceState,
} from '../../workflows/contract.js';
import type { invoiceWorkflow } from '../../workflows/invoice.js';
import { initialState } from '../../workflows/state.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyIdsOf, companyOf } from '../middleware.js';
import { claimNumber, findProject } from '../organisations.js';
import { retryAborted, toProblem } from '../temporal-errors.js';
import { InvoicesQuery } from '../openapi.js';
import { bodyOf, queryOf } from '../validate.js';

const GRPC_NOT_FOUND = 5;

/** `Prefer: wait=N` (RFC 7240): the caller may wait less than the default before a 202. */
function waitMs(prefer: string | undefined, fallbackMs: number): number {
  const m = prefer ? /(?:^|[,;\s])wait=(\d+)/.exec(prefer) : null;
  return m ? Math.min(Number(m[1]) * 1000, fallbackMs) : fallbackMs;
}

/**
 * What makes a money-moving request one operation for the workflow: the ERP's Idempotency-Key,
 * else its X-Request-Id. A retry of it then never applies twice, even in a new workflow run.
 */
function operationKey(req: Request, res: Response): string {
  const key = req.get('idempotency-key');
  // Hashed: short enough to travel in a provider reference, and the same for every retry.
  const digest = (s: string) => createHash('sha256').update(s).digest('base64url').slice(0, 22);
  return key ? `idem:${digest(key)}` : `req:${digest(res.locals.requestId as string)}`;
}

export function invoicesRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const { sql, temporal } = deps;
  const r = Router();
  /** Says an invoice was read from what its workflow last saved, not from the workflow itself. */
  const STATE_HEADER = 'Billflow-State';
  const handle = (companyId: string, number: string): WorkflowHandle<typeof invoiceWorkflow> => temporal.workflow.getHandle(invoiceWorkflowId(companyId, number));
  const within = <T>(ms: number, fn: () => Promise<T>) => temporal.connection.withDeadline(Date.now() + ms, fn);
  const answerMs = deps.workerAnswerMs ?? 10_000;

  /** The invoice as the ERP sees it: billflow's stable Pay Now link, and the provider's own page beside it. */
  async function view(state: InvoiceState) {
    return { ...(await linked(sql, deps.publicApiUrl, state)), workflowId: invoiceWorkflowId(state.companyId, state.number) };
  }

  /** Runs an invoice Update to completion and maps its refusals to problem documents. */
  async function update<Ret, Arg>(companyId: string, number: string, def: UpdateDefinition<Ret, [Arg]>, arg: Arg, idemKey: string | undefined): Promise<Ret> {
    const waitMs = deps.updateWaitMs ?? 20_000;
    try {
      return await retryAborted(
        () => within(waitMs, () => handle(companyId, number).executeUpdate(def, { args: [arg], ...(idemKey ? { updateId: `${def.name}:${idemKey}` } : {}) })),
        Date.now() + waitMs,
      );
    } catch (e) {
      throw toProblem(e, `invoice ${number}`) ?? e;
    }
  }

  async function readState(companyId: string, number: string): Promise<InvoiceState> {
    try {
      return await within(answerMs, () => handle(companyId, number).query(stateQuery));
    } catch (e) {
      throw toProblem(e, `invoice ${number}`) ?? e;
    }
  }

  /**
   * The invoice from its workflow or, while no worker answers (restarting, deploying), as the
   * workflow last saved it (`saved`): a change is saved just after it answers (RECORD_AFTER_ANSWER
   * in workflows/invoice.ts), so the last one may be missing until a worker runs again.
   * `nothingSaved` decides when there is no saved state either.
   */
  async function currentOrSaved(companyId: string, number: string, nothingSaved: (e: HttpProblem) => InvoiceState): Promise<{ state: InvoiceState; saved: boolean }> {
    try {
      return { state: await readState(companyId, number), saved: false };
    } catch (e) {
      if (!(e instanceof HttpProblem && e.type === 'worker-unavailable')) throw e;
      const [row] = await sql<{ state: InvoiceState }[]>`SELECT state FROM invoices WHERE company_id = ${companyId} AND number = ${number}`;
      return row ? { state: row.state, saved: true } : { state: nothingSaved(e), saved: false };
    }
  }

  /**
   * An invoice's state just after its workflow was started; with nothing saved yet (so nothing
   * changed), the state the workflow starts from.
   */
  async function stateOf(draft: InvoiceDraft): Promise<InvoiceState> {
    return (await currentOrSaved(draft.companyId, draft.number, () => initialState(draft))).state;
  }

  /** The draft an invoice's workflow was first started with (its first run's input), if Temporal still has it. */
  async function createdFrom(companyId: string, number: string): Promise<InvoiceDraft | null> {
    const workflowId = invoiceWorkflowId(companyId, number);
    try {
      const first = await within(answerMs, async () => {
        const d = await handle(companyId, number).describe();
        const runId = d.raw.workflowExecutionInfo?.firstRunId || d.runId;
        return temporal.workflowService.getWorkflowExecutionHistory({ namespace: temporal.options.namespace, execution: { workflowId, runId }, maximumPageSize: 1 });
      });
      const payload = first.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      if (!payload) return null;
      return (temporal.options.loadedDataConverter.payloadConverter.fromPayload(payload) as { draft?: InvoiceDraft }).draft ?? null;
    } catch (e) {
      // The first run's history is gone (past retention): the create cannot be recognised as the same.
      if (e instanceof WorkflowNotFoundError || (isGrpcServiceError(e) && e.code === GRPC_NOT_FOUND)) return null;
      throw toProblem(e, `invoice ${number}`) ?? e;
    }
  }

  r.post('/v1/invoices', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'InvoiceCreate');
    const lines = validateLines(b.lines);
    const dates = datesError(b.invoiceDate, b.dueDate);
    if (dates) throw new HttpProblem(422, 'invalid-request', dates, 'dueDate');
    // The invoice's project names its company, and so the provider account that will send it.
    const project = b.projectId ? await findProject(sql, res, b.projectId) : null;
    const c = project ? project.company : companyOf(res, 'projectId');
    const clientId = b.clientId ?? project?.clientId;
    if (!clientId) throw new HttpProblem(422, 'invalid-request', 'clientId is required when no projectId is given', 'clientId');
    if (project && clientId !== project.clientId) {
      throw new HttpProblem(422, 'invalid-request', `client ${clientId} is not the client of project ${project.id} (${project.clientId})`, 'clientId');
    }
    const [client] = await sql`SELECT 1 FROM clients WHERE company_id = ${c.id} AND id = ${clientId}`;
    if (!client) throw new HttpProblem(404, 'not-found', `client ${clientId} not found; register it first`, 'clientId');
    if (c.organisationId) await claimNumber(sql, c, b.number);
    const draft: InvoiceDraft = {
      companyId: c.id,
      number: b.number,
      clientId,
      ...(project ? { projectId: project.id, projectName: project.name } : {}),
      invoiceDate: b.invoiceDate,
      dueDate: b.dueDate,
      currency: c.currency,
      lines,
      prepaymentsApplied: b.prepaymentsApplied,
    };
    const location = `/v1/invoices/${encodeURIComponent(b.number)}`;
    // Before the workflow can write the invoice: the correlation id of its invoice.created event (the first create's).
    await sql`
      INSERT INTO invoice_origins (company_id, number, request_id) VALUES (${c.id}, ${b.number}, ${res.locals.requestId as string})
      ON CONFLICT DO NOTHING`;
    try {
      await temporal.workflow.start('invoiceWorkflow', {
        taskQueue: deps.taskQueue,
        workflowId: invoiceWorkflowId(c.id, b.number),
        args: [{ draft }],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        typedSearchAttributes: new TypedSearchAttributes([
          { key: sa.invoiceNumber, value: b.number },
          { key: sa.clientId, value: clientId },
          { key: sa.companyId, value: c.id },
          { key: sa.status, value: 'Draft' },
        ]),
        staticSummary: `Invoice ${b.number} for ${clientId}${project ? ` on project ${project.id}` : ''} (${c.name})`,
      });
    } catch (e) {
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
      // A retry of the same create (its first answer lost) gets the invoice; another invoice under this number does not.
      if (!isDeepStrictEqual(await createdFrom(c.id, b.number), draft)) {
        throw new HttpProblem(409, 'invoice-exists', `invoice ${b.number} already exists for company ${c.id}`, 'number');
      }
      res
        .status(200)
        .location(location)
        .json(await view(await stateOf(draft)));
      return;
    }
    // The invoice exists from here on: its answer says so even when no worker answers the Query.
    res
      .status(201)
      .location(location)
      .json(await view(await stateOf(draft)));
  });

  r.get('/v1/invoices', mw.erpAuth, async (req, res) => {
    const companies = companyIdsOf(res);
    const { status, limit, clientId, after } = queryOf(req, InvoicesQuery);
    const rows = await sql`
      SELECT number, company_id AS "companyId", client_id AS "clientId", project_id AS "projectId", status, settlement, currency, invoice_date::text AS "invoiceDate",
        due_date::text AS "dueDate", total, prepayments_applied AS "prepaymentsApplied", paid, outstanding,
        CASE WHEN pay_now_url IS NOT NULL AND pay_link_token IS NOT NULL THEN ${payLinkUrl(deps.publicApiUrl, '')} || pay_link_token END AS "payNowUrl",
        pay_now_url AS "providerPaymentUrl", lifecycle_state AS "lifecycleState", classification, held,
        workflow_id AS "workflowId", updated_at AS "updatedAt"
      FROM invoices
      WHERE company_id = ANY(${companies}::text[])
        ${status ? sql`AND status = ${status}` : sql``}
        ${clientId ? sql`AND client_id = ${clientId}` : sql``}
        ${after ? sql`AND number > ${after}` : sql``}
      ORDER BY number LIMIT ${limit + 1}`;
    const hasMore = rows.length > limit;
    const data = rows.slice(0, limit);
    res.json({ data, hasMore, nextCursor: hasMore ? data.at(-1)!.number : null });
  });

  r.get('/v1/invoices/:number', mw.erpAuth, async (req, res) => {
    const { state, saved } = await currentOrSaved(companyOf(res).id, String(req.params.number), (e) => {
      throw e;
    });
    if (saved) res.set(STATE_HEADER, 'saved');
    res.json(await view(state));
  });

  /** The company's reminder days and each due-date reminder this invoice's client was sent. */
  r.get('/v1/invoices/:number/reminders', mw.erpAuth, async (req, res) => {
    const c = companyOf(res);
    const number = String(req.params.number);
    const [inv] = await sql<{ due_date: string; reminder_days: number[] }[]>`
      SELECT i.due_date::text AS due_date, co.reminder_days FROM invoices i JOIN companies co ON co.id = i.company_id
      WHERE i.company_id = ${c.id} AND i.number = ${number}`;
    if (!inv) throw new HttpProblem(404, 'not-found', `invoice ${number} not found`);
    const sent = await sql`
      SELECT revision, days_after_due AS "daysAfterDue", recipient, outstanding, message_id AS "messageId", sent_at AS "sentAt"
      FROM invoice_reminders WHERE company_id = ${c.id} AND invoice_number = ${number} ORDER BY claimed_at`;
    res.json({ dueDate: inv.due_date, reminderDays: inv.reminder_days, sent });
  });

  r.get('/v1/invoices/:number/pdf', mw.erpAuth, async (req, res) => {
    const number = String(req.params.number);
    const companyId = companyOf(res).id;
    // The workflow's own PDF, so a Final's PDF is there as soon as the Final has answered.
    const { state, saved } = await currentOrSaved(companyId, number, (e) => {
      throw e;
    });
    const documentId = state.pdf?.documentId;
    const [doc] = documentId ? await sql<{ bytes: Buffer; sha256: string }[]>`SELECT bytes, sha256 FROM documents WHERE company_id = ${companyId} AND id = ${documentId}` : [];
    if (saved) res.set(STATE_HEADER, 'saved');
    if (!doc) throw new HttpProblem(404, 'not-found', `invoice ${number} has no final PDF`);
    res.type('application/pdf').set('ETag', `"${doc.sha256}"`).set('Content-Disposition', `inline; filename="invoice-${number}.pdf"`).send(doc.bytes);
  });

  r.post('/v1/invoices/:number/status', mw.erpAuth, mw.idempotency, async (req, res) => {
    const body = bodyOf(req, 'StatusChange');
    const c = companyOf(res);
    const number = String(req.params.number);
    const requestId = res.locals.requestId as string;
    const idemKey = req.get('idempotency-key');
    // Backup attachments are kept with the invoice (and emailed with it), never sent to the provider.
    const backupDocumentIds = body.status === 'Final' && !body.dryRun && body.backupAttachments?.length ? await storeBackups(c.id, number, body.backupAttachments) : undefined;
    try {
      const update = await retryAborted(
        () =>
          within(answerMs, () =>
            handle(c.id, number).startUpdate(changeStatusUpdate, {
              args: [{ to: body.status, requestId, dryRun: body.dryRun, ...(backupDocumentIds ? { backupDocumentIds } : {}) }],
              waitForStage: WorkflowUpdateStage.ACCEPTED,
              ...(idemKey ? { updateId: `status:${idemKey}` } : {}),
            }),
          ),
        Date.now() + answerMs,
      );
      try {
        const result = await within(waitMs(req.get('prefer'), deps.updateWaitMs ?? 20_000), () => update.result());
        mw.metrics.statusChanges.inc({ to: body.status, outcome: result.dryRun ? 'dry-run' : 'changed' });
        res.json(result.dryRun ? { dryRun: true, plan: result.plan } : { ...(await view(result.invoice)), plan: result.plan });
      } catch (e) {
        const p = toProblem(e, `invoice ${number}`);
        if (p?.type !== 'worker-unavailable') throw p ?? e;
        mw.metrics.statusChanges.inc({ to: body.status, outcome: 'in-progress' });
        // Accepted, and still working (typically waiting out a provider outage): let it finish.
        res
          .status(202)
          .location(`/v1/invoices/${encodeURIComponent(number)}`)
          .json({
            status: 'in-progress',
            detail: `the change to ${body.status} was accepted and is still running; GET the invoice to see it complete`,
            updateId: update.updateId,
          });
      }
    } catch (e) {
      // A refusal from the wait above is already a problem document.
      const p = e instanceof HttpProblem ? e : toProblem(e, `invoice ${number}`);
      mw.metrics.statusChanges.inc({ to: body.status, outcome: p?.type ?? 'error' });
      throw p ?? e;
    }
  });

  async function storeBackups(companyId: string, number: string, files: { filename: string; contentType: string; contentBase64: string }[]): Promise<string[]> {
    const ids: string[] = [];
    for (const f of files) {
      const bytes = Buffer.from(f.contentBase64, 'base64');
      const sha = createHash('sha256').update(bytes).digest('hex');
      const id = stableUuid(companyId, number, 'backup', f.filename, sha);
      await sql`
        INSERT INTO documents (id, company_id, kind, content_type, sha256, bytes, filename)
        VALUES (${id}, ${companyId}, 'backup', ${f.contentType}, ${sha}, ${bytes}, ${f.filename}) ON CONFLICT (id) DO NOTHING`;
      ids.push(id);
    }
    return ids;
  }

  r.post('/v1/invoices/:number/revision', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'InvoiceRevision');
    const number = String(req.params.number);
    const lines = b.lines === undefined ? undefined : validateLines(b.lines);
    const revision = { ...(lines ? { lines } : {}), ...(b.invoiceDate ? { invoiceDate: b.invoiceDate } : {}), ...(b.dueDate ? { dueDate: b.dueDate } : {}) };
    res.json(await view(await update(companyOf(res).id, number, reviseUpdate, { ...revision, requestId: res.locals.requestId as string }, req.get('idempotency-key'))));
  });

  r.post('/v1/invoices/:number/prepayments', mw.erpAuth, mw.idempotency, async (req, res) => {
    const body = bodyOf(req, 'PrepaymentApply');
    const c = companyOf(res);
    const number = String(req.params.number);
    const [pre] = await sql`SELECT 1 FROM prepayments WHERE company_id = ${c.id} AND id = ${body.prepaymentId}`;
    if (!pre) throw new HttpProblem(404, 'not-found', `prepayment ${body.prepaymentId} not found`, 'prepaymentId');
    // What is left is checked by the workflow, under the prepayment's row lock: a retry of an
    // application that already used it all must reach the workflow, which answers it.
    const arg = { prepaymentId: body.prepaymentId, amount: body.amount, requestId: res.locals.requestId as string, operationKey: operationKey(req, res) };
    res.json(await view(await update(c.id, number, applyPrepaymentUpdate, arg, req.get('idempotency-key'))));
  });

  r.post('/v1/invoices/:number/lifecycle', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'LifecycleChange');
    const arg = { to: b.state, by: b.by, requestId: res.locals.requestId as string };
    res.json(await view(await update(companyOf(res).id, String(req.params.number), lifecycleUpdate, arg, req.get('idempotency-key'))));
  });

  r.post('/v1/invoices/:number/release', mw.erpAuth, mw.idempotency, async (req, res) => {
    const arg = { by: bodyOf(req, 'Release').by, requestId: res.locals.requestId as string };
    const result = await update(companyOf(res).id, String(req.params.number), releaseUpdate, arg, req.get('idempotency-key'));
    res.json({ ...(await view(result.invoice)), plan: result.plan });
  });

  r.post('/v1/invoices/:number/quick-pay', mw.erpAuth, mw.idempotency, async (req, res) => {
    const arg = { ...bodyOf(req, 'QuickPay'), requestId: res.locals.requestId as string, operationKey: operationKey(req, res) };
    res.json(await view(await update(companyOf(res).id, String(req.params.number), quickPayUpdate, arg, req.get('idempotency-key'))));
  });

  return r;
}
