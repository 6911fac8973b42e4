/**
 * One workflow per ERP invoice, from draft through final, reissue and payment. The state lives in
 * the workflow; the rules come from domain/ (a status change is planned by `planStatusChange` and
 * executed here step by step); every side effect is an activity whose idempotency key comes from
 * business identity (company, invoice, revision, operation).
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Activities, SendOutcome } from '../activities/index.js';
import { classifyBill, lifecycleMoveError, quickPayError, releaseError, type Classification, type LifecycleState } from '../domain/bill.js';
import { datesError, invoiceTotal, isOverdue, outstandingAmount, overdueFrom, owedAtProvider, prepaymentError, revisionError, settlementStatus, transitionError } from '../domain/invoice.js';
import { importsBeforeChange, planStatusChange, type Step } from '../domain/plan.js';
import { reminderRefusal } from '../domain/reminders.js';
import {
  applyPrepaymentUpdate,
  changeStatusUpdate,
  contentKey,
  lifecycleUpdate,
  remindersWorkflowId,
  paymentSignal,
  quickPayKeyOf,
  quickPayUpdate,
  reminderSignal,
  releaseUpdate,
  reviseUpdate,
  searchAttributes as sa,
  stateQuery,
  type ApplyPrepaymentRequest,
  type ChangeStatusRequest,
  type InvoiceState,
  type InvoiceWorkflowInput,
  type ProviderPayment,
  type QuickPayRequest,
  type ReleaseRequest,
  type ReminderRequest,
  type ReviseRequest,
  type StatusChangeResult,
} from './contract.js';
import { Lock } from './lock.js';
import { resyncSignal, type ResyncRequest } from './reconcile-contract.js';
import { invoiceRemindersWorkflow } from './reminders.js';
import { initialState } from './state.js';

/** Finals from this version on make their record, PDF and email in one activity (finalizeAtProvider). */
const FINAL_IN_ONE = 'final-in-one-activity';

/** Whether the steps after a record's creation are what finalizeAtProvider does: the PDF, its attach, the email. */
function finalsInOne(rest: Step[]): boolean {
  const kinds = rest.map((s) => s.kind).filter((k) => k !== 'attach-pdf' && k !== 'email-invoice');
  return rest[0]?.kind === 'render-pdf' && kinds.length === 1 && rest.filter((s) => s.kind === 'email-invoice').length <= 1;
}

/** Changes made from this version on read their context, create the provider record, and render and attach the PDF in one activity each. */
const FEWER_ROUND_TRIPS = 'fewer-round-trips';

/** From this version on, a failed Final's undo leaves out what cannot be undone (a voided record), and says so. */
const UNDO_IRREVERSIBLE_STEPS = 'undo-irreversible-steps';

/** From this version on, an undo step the provider refuses is reported in lastFailure instead of failing the change. */
const UNDO_FAILURE_REPORTED = 'undo-failure-reported';

/** Invoices from this version on carry PendingChange while a status change runs. */
const PENDING_CHANGE_ATTRIBUTE = 'pending-change-attribute';

/** Invoices from this version on carry DueDate and Overdue, and wake when their due date is over. */
const DUE_DATE_ATTRIBUTES = 'due-date-search-attributes';

const acts = proxyActivities<Activities>({
  // Every call is idempotent, so a worker killed mid-call costs seconds before another worker
  // tries again: the worker heartbeats for each activity (worker/create.ts) and a missed beat
  // ends the attempt (provider calls time out after 15 s themselves).
  startToCloseTimeout: '20 seconds',
  heartbeatTimeout: '5 seconds',
  // Provider outages are waited out here, visibly, as a retrying activity in the Web UI. At most
  // 10 s apart: a long outage opens the account's circuit breaker, whose refusals never reach the
  // provider, so a tighter ceiling costs the provider nothing and ends the wait soon after the
  // outage (a change waited up to a minute more; a retry policy is not replayed, so this is safe).
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds' },
});

/**
 * billflow's own PostgreSQL reads and writes (settings, read model, payments and prepayments
 * booked, life-cycle moves, repairs) as local activities, as runs recorded between the
 * local-db-steps and regular-db-steps markers made them: kept so those histories replay (see
 * REGULAR_DB_STEPS). New changes run these steps as regular activities (acts).
 */
const localDb = proxyLocalActivities<Activities>({
  startToCloseTimeout: '15 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});

/** From this version on, database steps are local activities (localDb); runs before replay with regular ones. */
const LOCAL_DB_STEPS = 'local-db-steps';

/**
 * From this version on, database steps are regular activities again. Under the chaos run's worker
 * kills, histories with a local activity between an Update's step and a timer failed to replay on
 * this SDK (1.24: "Update machine does not handle this event: TimerStarted"; an Update completed
 * one task after the local activity's marker), leaving invoices stuck; it was not seen without
 * them. Runs recorded with local-db-steps replay with localDb up to this marker.
 */
const REGULAR_DB_STEPS = 'regular-db-steps';

/**
 * From this version on, which deadline ended a wait (payment import, due date) is read from the
 * deadlines set before it, not from the clock after it. A worker that replays a workflow to answer
 * a Query while its next task waits applies the timer's firing under the previous task's time, and
 * then saw the import as not yet due; the task's own replay later saw it due (nondeterminism, a
 * stuck invoice, found by the chaos run).
 */
const DEADLINE_FROM_WAIT = 'deadline-from-wait';

/**
 * From this version on, the read model (and a life-cycle move's record) is written by the main
 * loop after the handler that changed the invoice has answered: the Update's completion and that
 * write's scheduling go to the server in one workflow task completion, so the write is as durable
 * as the answer (retried until it lands; versions keep the newest) and the ERP does not wait for
 * it. A change that calls no provider answers in its first workflow task. Lists read from the read
 * model see the change a moment later; GET of one invoice asks the workflow and is current at once.
 */
const RECORD_AFTER_ANSWER = 'record-after-answer';

/** A life-cycle move as the read model records it. */
type LifecycleRecord = Parameters<Activities['recordLifecycleChange']>[0];

/** A reconciliation's repair tries the provider a few times; the next reconciliation tries again. */
const repairActs = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 4 },
});

/**
 * Before an invoice leaves Final every provider payment must be imported; if the provider cannot
 * be reached after a few quick tries, the change is refused rather than left waiting.
 */
const importBeforeChange = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumAttempts: 3 },
}).importProviderPayments;

/** A reminder that failed (provider or SMTP outage) is tried again after 1, 2, 4 ... minutes, at most hourly, 12 times in all. */
const REMINDER_ATTEMPTS = 12;
const REMINDER_RETRY_FIRST_MS = 60_000;
const REMINDER_RETRY_MAX_MS = 3_600_000;

/** How often a repair imports and sets the provider's figures again when payments land during it. */
const REPAIR_RECHECKS = 3;

/** How many Quick Pay request keys an invoice remembers (a retry comes within hours, not after hundreds of payments). */
const KEPT_REQUEST_KEYS = 50;

/** The reason behind an activity failure, as a person reads it. */
function failureMessage(e: unknown): string {
  return e instanceof ActivityFailure && e.cause ? e.cause.message : e instanceof Error ? e.message : String(e);
}

/** The rule type behind a failure (ProviderRejected, ...), so the API maps it to its problem type. */
function failureType(e: unknown): string {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    if (c instanceof ApplicationFailure && c.type) return c.type;
  }
  return 'ChangeFailed';
}

export async function invoiceWorkflow(input: InvoiceWorkflowInput): Promise<void> {
  const state = input.state ?? initialState(input.draft);
  // Runs recorded before the lock excluded for real replay with the lock they ran with.
  const lock = new Lock(patched('exclusive-lock'));
  const inbox: ProviderPayment[] = [...(input.pending ?? [])];
  const resyncs: ResyncRequest[] = [...(input.pendingResyncs ?? [])];
  const remindersDue: ReminderRequest[] = [...(input.pendingReminders ?? [])];
  // Code from ec105e9 on repairs through repairRecords: it wrote the 'resync-signal' marker when a
  // repair was signalled and passes pendingReminders on continue-as-new. Runs of earlier code
  // replay their repairs with legacyResync.
  let carefulRepair = input.pendingReminders !== undefined;
  /** Where database steps run: regular activities, or local ones where a run recorded them so (see REGULAR_DB_STEPS). */
  const db = (): typeof acts => (patched(REGULAR_DB_STEPS) ? acts : patched(LOCAL_DB_STEPS) ? localDb : acts);
  /** Reminder days of a Final whose reminders the main loop starts next (see remindersAfter). */
  let remindersToStart: number[] | null = input.pendingReminderStart ?? null;
  /** The read model's write the main loop makes next, with the life-cycle moves it records (see RECORD_AFTER_ANSWER); null: none due. */
  let unrecorded: LifecycleRecord[] | null = null;

  setHandler(stateQuery, () => state);
  setHandler(changeStatusUpdate, (req) => lock.run(() => changeStatus(req)), {
    validator: (req) => {
      const err = transitionError(state.status, req.to);
      if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalTransition');
    },
  });
  setHandler(
    reviseUpdate,
    (req) =>
      lock.run(async () => {
        checkRevision(req);
        if (req.lines) state.lines = req.lines;
        if (req.invoiceDate) state.invoiceDate = req.invoiceDate;
        if (req.dueDate) state.dueDate = req.dueDate;
        await publish();
        return state;
      }),
    { validator: (req) => checkRevision(req) },
  );
  setHandler(
    lifecycleUpdate,
    (req) =>
      lock.run(async () => {
        const err = lifecycleMoveError(state.status, state.lifecycleState, req.to);
        if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalLifecycleMove');
        const fewer = patched(FEWER_ROUND_TRIPS);
        const moved = await moveLifecycle(req.to, req.by, req.requestId, fewer);
        await publish(moved);
        return state;
      }),
    {
      validator: (req) => {
        const err = lifecycleMoveError(state.status, state.lifecycleState, req.to);
        if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalLifecycleMove');
      },
    },
  );
  setHandler(releaseUpdate, (req) => lock.run(() => release(req)), { validator: (_req) => checkRelease() });
  setHandler(quickPayUpdate, (req) => lock.run(() => quickPay(req)), {
    validator: (req) => {
      if (quickPayDone(req)) return;
      const err = quickPayError(state);
      if (err) throw ApplicationFailure.nonRetryable(err, 'QuickPayRefused');
    },
  });
  setHandler(applyPrepaymentUpdate, (req) => lock.run(() => applyPrepayment(req)), {
    validator: (req) => checkPrepayment(req),
  });
  setHandler(paymentSignal, (p) => {
    inbox.push(p);
  });
  setHandler(resyncSignal, (r) => {
    // Every version since reconciliation began acts on this signal; only how it repairs changed.
    if (patched('resync-signal')) carefulRepair = true;
    resyncs.push(r);
  });
  setHandler(reminderSignal, (r) => {
    if (patched('reminder-signal')) remindersDue.push(r);
  });

  /**
   * Recomputes every derived figure from the rows, then writes the read model and search
   * attributes; with a life-cycle move to record, both in one activity.
   */
  async function publish(lifecycle: LifecycleRecord | null = null): Promise<void> {
    state.total = invoiceTotal(state.lines);
    state.outstanding = outstandingAmount(state.total, state.prepaymentsApplied, state.payments);
    state.paid = state.payments.reduce((s, p) => s + p.amount, 0);
    state.settlement = settlementStatus(state.total, state.prepaymentsApplied, state.payments);
    state.version += 1;
    upsertSearchAttributes([
      { key: sa.status, value: state.status },
      { key: sa.outstanding, value: state.outstanding },
      { key: sa.settlement, value: state.settlement },
      { key: sa.lifecycle, value: state.lifecycleState },
      { key: sa.classification, value: state.classification },
      ...(patched(DUE_DATE_ATTRIBUTES)
        ? [
            { key: sa.dueDate, value: new Date(`${state.dueDate}T00:00:00Z`) },
            { key: sa.overdue, value: isOverdue(state, Date.now()) },
          ]
        : []),
      ...(patched(PENDING_CHANGE_ATTRIBUTE) ? [{ key: sa.pendingChange, value: state.pendingChange?.to ?? null }] : []),
    ]);
    if (patched(RECORD_AFTER_ANSWER)) unrecorded = [...(unrecorded ?? []), ...(lifecycle ? [lifecycle] : [])];
    else if (lifecycle) await db().recordChange({ invoice: state, lifecycle });
    else await db().saveInvoice(state);
  }

  /**
   * Writes the read model as it is now, with the life-cycle moves published since the last write,
   * whenever a change was published (a loop of its own, so the main loop's timers are not
   * disturbed). Not under the lock: it changes nothing, its input is taken when it is scheduled,
   * and a change that lands meanwhile is written by the next round.
   */
  let recording = false;
  async function recordLoop(): Promise<never> {
    for (;;) {
      await condition(() => unrecorded !== null);
      const lifecycles = unrecorded ?? [];
      unrecorded = null;
      recording = true;
      await acts.recordChange({ invoice: state, lifecycle: null, lifecycles });
      recording = false;
    }
  }
  void recordLoop();

  /** Provider payments this invoice must never apply: already applied, converted, or re-created prepayments. */
  function known(paymentId: string): boolean {
    return (
      state.payments.some((x) => x.paymentId === paymentId) ||
      state.convertedPayments.some((x) => x.paymentId === paymentId) ||
      state.prepaymentApplications.some((a) => a.providerPaymentId === paymentId)
    );
  }

  async function applyOne(p: ProviderPayment): Promise<void> {
    await db().recordPayment({ companyId: state.companyId, number: state.number, currency: state.currency, payment: p });
    state.payments.push({ paymentId: p.paymentId, amount: p.amount, fee: p.fee, paidAt: p.paidAt, source: p.source, coveredInvoices: p.coveredInvoices });
  }

  /** Applies each provider payment once, whichever path (webhook or import) brought it first. */
  async function applyPayments(payments: ProviderPayment[]): Promise<void> {
    let changed = false;
    for (const p of payments) {
      if (known(p.paymentId) || p.method === 'prepayment') continue;
      // A Quick Pay whose answer was lost (its workflow task failed after the provider call) comes back this way.
      const quickPayKey = p.method === 'quickpay' ? quickPayKeyOf(p.reference) : null;
      if (quickPayKey) rememberQuickPay(quickPayKey);
      await applyOne(p);
      changed = true;
    }
    if (changed) await publish();
  }

  /** Imports the provider's payments for this invoice's record and applies the new ones; `via` sets how hard it tries. */
  async function importPayments(via: typeof importBeforeChange = acts.importProviderPayments, requestId?: string): Promise<void> {
    if (!state.providerInvoiceId) return;
    const found = await via({ companyId: state.companyId, providerInvoiceId: state.providerInvoiceId, requestId: requestId ?? `import-${uuid4()}` });
    await applyPayments(found);
  }

  /**
   * A reconciliation found this invoice's provider records out of step. Under the lock, so no
   * status change runs meanwhile: look at records of its number it does not point at, re-create
   * its record if the provider lost it, import missed payments, and set the record's figures back
   * to billflow's. Provider calls retry a few times only; what was done (or why not) is recorded
   * with the reconciliation, and a failure never ends this workflow.
   */
  async function resync(req: ResyncRequest): Promise<void> {
    if (!carefulRepair) return legacyResync(req);
    const actions: string[] = [];
    try {
      await repairRecords(req, actions);
    } catch (e) {
      if (isCancellation(e)) throw e;
      const why = failureMessage(e);
      log.warn('resync failed', { number: state.number, reconciliationId: req.reconciliationId, error: why });
      actions.push(`could not finish the repair: ${why}`);
    }
    if (actions.length === 0) actions.push('nothing to repair: already in step');
    log.info('resynced with the provider', { number: state.number, reconciliationId: req.reconciliationId, actions, requestId: req.requestId });
    await db().recordRepair({ reconciliationId: req.reconciliationId, number: state.number, actions });
    await publish();
  }

  /** The repair as runs before ec105e9 made it (activities retried until they succeeded), so their histories replay. */
  async function legacyResync(req: ResyncRequest): Promise<void> {
    const { companyId, number } = state;
    const { requestId } = req;
    const key = (op: string) => revisionKey(`${op}:${req.reconciliationId}`);
    const actions: string[] = [];
    for (const id of req.staleRecordIds.filter((x) => x !== state.providerInvoiceId)) {
      await acts.deleteProviderInvoice({ companyId, providerInvoiceId: id, idempotencyKey: key(`delete-stale-${id}`), requestId });
      actions.push(`deleted provider record ${id}, which this invoice does not use`);
    }
    if (state.sentToProvider && state.providerInvoiceId && state.status !== 'Draft') {
      const remote = await acts.getProviderInvoice({ companyId, providerInvoiceId: state.providerInvoiceId, requestId });
      if (!remote && state.status === 'Final') {
        const lost = state.providerInvoiceId;
        const created = await createRecord(acts, state.outstanding, key('recreate-invoice'), requestId);
        if (state.pdf) {
          await acts.attachProviderInvoicePdf({ companyId, providerInvoiceId: created.providerInvoiceId, documentId: state.pdf.documentId, idempotencyKey: key('recreate-pdf'), requestId });
        }
        actions.push(`re-created provider record ${lost}, which the provider had lost, as ${created.providerInvoiceId} with a new Pay Now URL`);
      } else if (!remote) {
        actions.push(`forgot provider record ${state.providerInvoiceId}, which the provider had lost; the next Final creates a new one`);
        state.providerInvoiceId = null;
        state.payNowUrl = null;
        state.sentToProvider = false;
        state.paymentImportSeconds = null;
      } else if (state.status === 'Final') {
        const before = state.payments.length;
        await importPayments();
        if (state.payments.length > before) actions.push(`imported ${state.payments.length - before} payment(s) billflow had missed`);
        if (remote.amount !== state.total || remote.outstanding !== state.outstanding) {
          await acts.updateProviderInvoice({
            companyId,
            providerInvoiceId: state.providerInvoiceId,
            number,
            invoiceDate: state.invoiceDate,
            amount: state.total,
            outstanding: state.outstanding,
            idempotencyKey: key('resync-invoice'),
            requestId,
          });
          actions.push(`set provider amount/outstanding ${remote.amount}/${remote.outstanding} to ${state.total}/${state.outstanding}`);
        }
      }
    }
    if (actions.length === 0) actions.push('nothing to repair: already in step');
    log.info('resynced with the provider', { number, reconciliationId: req.reconciliationId, actions, requestId });
    await acts.recordRepair({ reconciliationId: req.reconciliationId, number, actions });
    await publish();
  }

  /**
   * A reminder's day has come: if this revision is still Final and unpaid once the provider's
   * payments are imported, the client is emailed. Skipped (and logged) when the provider cannot
   * be asked, rather than dunning a client who may have paid.
   */
  async function remind(r: ReminderRequest): Promise<void> {
    if (reminderRefusal(state, r.revision)) return;
    const requestId = `reminder-${state.number}-r${r.revision}-d${r.daysAfterDue}`;
    try {
      await importPayments(importBeforeChange, requestId);
      if (state.outstanding <= 0) return;
      const outcome = await repairActs.sendReminder({ invoice: state, daysAfterDue: r.daysAfterDue, requestId });
      log.info('reminder', { number: state.number, revision: r.revision, daysAfterDue: r.daysAfterDue, outcome });
    } catch (e) {
      if (isCancellation(e)) throw e;
      const attempts = (r.attempts ?? 1) + 1;
      // Invoices that dropped a failed reminder replay as they ran; now it is tried again later.
      if (attempts <= REMINDER_ATTEMPTS && patched('reminder-retry')) {
        const waitMs = Math.min(REMINDER_RETRY_MAX_MS, REMINDER_RETRY_FIRST_MS * 2 ** (attempts - 2));
        log.warn('reminder not sent yet; trying again later', { number: state.number, daysAfterDue: r.daysAfterDue, attempts, waitMs, error: failureMessage(e) });
        remindersDue.push({ ...r, attempts, notBefore: Date.now() + waitMs });
      } else {
        log.warn('reminder not sent', { number: state.number, daysAfterDue: r.daysAfterDue, error: failureMessage(e) });
      }
    }
  }

  async function repairRecords(req: ResyncRequest, actions: string[]): Promise<void> {
    const { companyId, number } = state;
    const { requestId } = req;
    const key = (op: string) => revisionKey(`${op}:${req.reconciliationId}`);
    if (state.held) {
      actions.push('held exceptional bill: left for the operator to release');
      return;
    }
    for (const id of req.staleRecordIds.filter((x) => x !== state.providerInvoiceId)) {
      // Only a record that is surely this invoice's own and holds no money is removed.
      const record = await repairActs.getProviderInvoice({ companyId, providerInvoiceId: id, requestId });
      if (!record) continue;
      if (!state.providerCustomerId || record.customerId !== state.providerCustomerId) {
        actions.push(`left provider record ${id}: it is not for this invoice's client at the provider; review it there`);
        continue;
      }
      const paid = await repairActs.importProviderPayments({ companyId, providerInvoiceId: id, requestId });
      if (paid.length > 0) {
        actions.push(`left provider record ${id}: it has ${paid.length} payment(s); review it there`);
        continue;
      }
      await repairActs.deleteProviderInvoice({ companyId, providerInvoiceId: id, idempotencyKey: key(`delete-stale-${id}`), requestId });
      actions.push(`deleted provider record ${id}, which this invoice does not use`);
    }
    if (!state.sentToProvider || !state.providerInvoiceId || state.status === 'Draft') return;
    const record = await repairActs.getProviderInvoice({ companyId, providerInvoiceId: state.providerInvoiceId, requestId });
    if (!record) {
      const lost = state.providerInvoiceId;
      const owed = owedAtProvider(state.outstanding);
      if (state.status === 'Final' && owed > 0) {
        const created = await createRecord(repairActs, owed, key('recreate-invoice'), requestId);
        // The PDF prints the Pay Now URL, so the new record gets a PDF with the new one.
        state.pdf = await acts.renderInvoicePdf({ invoice: state, requestId });
        await repairActs.attachProviderInvoicePdf({
          companyId,
          providerInvoiceId: created.providerInvoiceId,
          documentId: state.pdf.documentId,
          idempotencyKey: pdfKey(key('recreate-pdf')),
          requestId,
        });
        actions.push(`re-created provider record ${lost}, which the provider had lost, as ${created.providerInvoiceId} with a new Pay Now URL`);
      } else {
        // A Reissue keeps its record only for the next Final (which now creates one); nothing owed is never sent.
        state.providerInvoiceId = null;
        state.payNowUrl = null;
        state.sentToProvider = false;
        state.paymentImportSeconds = null;
        // Their payments went with the lost record: the next Final re-creates them on the new one.
        for (const a of state.prepaymentApplications) a.providerPaymentId = null;
        actions.push(`forgot provider record ${lost}, which the provider had lost; ${state.status === 'Final' ? 'nothing is owed, so none is re-created' : 'the next Final creates one'}`);
      }
      return;
    }
    if (state.status !== 'Final') return;
    const before = state.payments.length;
    await importPayments(repairActs.importProviderPayments, requestId);
    if (state.payments.length > before) actions.push(`imported ${state.payments.length - before} payment(s) billflow had missed`);
    // Read again after the import, so a payment made meanwhile is not undone by the update below.
    const now = await repairActs.getProviderInvoice({ companyId, providerInvoiceId: state.providerInvoiceId, requestId });
    const providerInvoiceId = state.providerInvoiceId;
    /** Sets the record's figures to billflow's when they differ; says whether it did. */
    const setFigures = async (record: { amount: number; outstanding: number } | null, op: string): Promise<boolean> => {
      const owed = owedAtProvider(state.outstanding);
      if (!record || (record.amount === state.total && record.outstanding === owed)) return false;
      await repairActs.updateProviderInvoice({ companyId, providerInvoiceId, number, invoiceDate: state.invoiceDate, amount: state.total, outstanding: owed, idempotencyKey: key(op), requestId });
      actions.push(`set provider amount/outstanding ${record.amount}/${record.outstanding} to ${state.total}/${owed}`);
      return true;
    };
    if (await setFigures(now, 'resync-invoice')) {
      // A payment the payer made between the read and the update was overwritten by it: import
      // again, and while that finds payments, set the figures again. Repairs before this replay as they ran.
      if (!patched('repair-rechecks-payments')) return;
      for (let round = 1; round <= REPAIR_RECHECKS; round++) {
        const had = state.payments.length;
        await importPayments(repairActs.importProviderPayments, requestId);
        if (state.payments.length === had) return;
        const again = await repairActs.getProviderInvoice({ companyId, providerInvoiceId, requestId });
        actions.push(`imported ${state.payments.length - had} payment(s) made during the repair`);
        if (!(await setFigures(again, `resync-invoice-${round}`))) return;
      }
      actions.push('payments kept arriving during the repair; the next reconciliation checks the figures again');
    }
  }

  async function changeStatus(req: ChangeStatusRequest): Promise<StatusChangeResult> {
    // Re-check under the lock: another change may have landed while this one waited.
    const err = transitionError(state.status, req.to);
    if (err) throw ApplicationFailure.nonRetryable(err, 'IllegalTransition');
    const { companyId, number } = state;
    // One activity for what the change needs to know; invoices changed before read it in three.
    const fewer = patched(FEWER_ROUND_TRIPS);
    const context = fewer ? await db().changeContext({ companyId, clientId: state.clientId, to: req.to }) : null;
    const company = context?.company ?? (await acts.getCompanySettings({ companyId }));

    // Invoices that left Final before payments were imported on leaving a reissue too replay as they ran.
    const importFirst = importsBeforeChange(state, req.to) && (state.status === 'Final' || patched('import-before-leaving-reissue'));
    let found: ProviderPayment[] = [];
    if (importFirst) {
      try {
        found = (await importBeforeChange({ companyId, providerInvoiceId: state.providerInvoiceId!, requestId: req.requestId })).filter((p) => !known(p.paymentId) && p.method !== 'prepayment');
      } catch (e) {
        if (isCancellation(e)) throw e;
        const reason = `payments could not be imported from the provider, so the change to ${req.to} was refused and nothing changed: ${failureMessage(e)}`;
        // An ERP whose request was answered 202 (still running) learns of the refusal from the
        // invoice itself; invoices refused before replay as they ran.
        if (patched('refusal-recorded')) {
          state.lastFailure = { to: req.to, requestId: req.requestId, at: new Date().toISOString(), reason, undone: [] };
          await publish();
        }
        throw ApplicationFailure.nonRetryable(reason, 'ProviderUnavailable');
      }
    }
    const leaving = req.to !== 'Final';
    const paymentIds = leaving ? [...state.payments, ...found].map((p) => p.paymentId) : [];
    // Histories from before this shortcut asked even for no payments; they replay as they ran.
    const stillHeldBy = paymentIds.length === 0 && patched('skip-empty-payment-holds') ? {} : await db().paymentHolds({ companyId, number, paymentIds });
    const email = req.to === 'Final' ? (context ? context.email : await acts.getEmailSettings({ companyId, clientId: state.clientId })) : null;
    let classification: Classification | null = null;
    if (req.to === 'Final') {
      const limits = context?.limits ?? (await acts.getBillingLimits({ companyId, clientId: state.clientId }));
      classification = classifyBill(invoiceTotal(state.lines), limits.maxCredited, limits.maxDebited);
    }
    const plan = planStatusChange({
      invoice: state,
      to: req.to,
      providerEnabled: company.providerEnabled,
      importedFirst: importFirst,
      found,
      stillHeldBy,
      email,
      hold: classification,
      // Invoices whose prepayments were left off the provider's books replay as they ran.
      prepaymentsAtProvider: state.prepaymentApplications.length > 0 && patched('prepayments-at-provider'),
      ...(company.capabilities ? { capabilities: company.capabilities } : {}),
    });
    if (req.dryRun) return { invoice: state, plan, dryRun: true };

    log.info('status change', { number, from: state.status, to: req.to, requestId: req.requestId, steps: plan.steps.map((s) => s.kind) });
    const from = state.status;
    const before = recordSnapshot();
    if (req.to === 'Final') {
      state.revision += 1;
      state.backupDocumentIds = req.backupDocumentIds ?? [];
      state.classification = classification;
      state.held = false;
    }
    state.pendingChange = { to: req.to, requestId: req.requestId, since: new Date().toISOString() };
    // Sent with the plan's first step: no round trip of its own.
    if (patched(PENDING_CHANGE_ATTRIBUTE)) upsertSearchAttributes([{ key: sa.pendingChange, value: req.to }]);
    const executed = await executePlan(plan.steps, req.to, req.requestId, found, company.paymentImportSeconds, before, fewer);
    state.status = req.to;
    state.pendingChange = null;
    state.lastFailure = null;
    state.history.push({ at: new Date().toISOString(), from, to: req.to, requestId: req.requestId });
    // A bill exists only while Final: it is Posted again each time the invoice becomes Final.
    let posted: LifecycleRecord | null = null;
    if (req.to === 'Final') posted = await moveLifecycle('Posted', 'billflow', req.requestId, fewer);
    else {
      state.lifecycleState = null;
      // A held bill that leaves Final is no longer waiting for release: its next Final decides again.
      state.held = false;
    }
    await publish(posted);
    await remindersAfter(company.reminderDays ?? [], fewer);
    return { invoice: state, plan: { ...plan, steps: executed }, dryRun: false };
  }

  /** What a change to Final may alter at the provider, kept so a failed change can be undone. */
  function recordSnapshot() {
    return {
      providerInvoiceId: state.providerInvoiceId,
      payNowUrl: state.payNowUrl,
      sentToProvider: state.sentToProvider,
      paymentImportSeconds: state.paymentImportSeconds,
      pdf: state.pdf,
      classification: state.classification,
      held: state.held,
      backupDocumentIds: state.backupDocumentIds,
      applications: state.prepaymentApplications.map((a) => a.providerPaymentId),
    };
  }

  /**
   * Runs a plan's steps in order. When one fails for good (a provider refusal; outages are waited
   * out by the activities' retries), what the change did at the provider is undone (a record it
   * created is deleted, a payment it re-created is removed), the invoice stays in its status with
   * the failure recorded on it, and the caller gets the reason. A change that leaves Final keeps
   * the steps it finished (payments already converted stay converted) and continues when retried.
   */
  async function executePlan(
    steps: Step[],
    to: ChangeStatusRequest['to'],
    requestId: string,
    found: ProviderPayment[],
    importSeconds: number,
    before: ReturnType<typeof recordSnapshot>,
    fewer: boolean,
  ): Promise<Step[]> {
    const executed: Step[] = [];
    try {
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        const next = steps[i + 1];
        const rest = steps.slice(i + 1);
        if (fewer && step.kind === 'create-provider-invoice' && finalsInOne(rest) && patched(FINAL_IN_ONE)) {
          // The record, the PDF (attached) and the email in one activity; older changes replay in three.
          executed.push(step);
          await finalizeAtProvider(step, rest, requestId, importSeconds);
          executed.push(...rest);
          break;
        }
        if (fewer && step.kind === 'render-pdf' && next?.kind === 'attach-pdf') {
          // Rendered and attached in one activity.
          await renderPdf(requestId, state.providerInvoiceId);
          executed.push(step, next);
          i++;
          continue;
        }
        executed.push(await execute(step, requestId, found, importSeconds, fewer));
      }
      return executed;
    } catch (e) {
      if (isCancellation(e) || !patched('undo-failed-change')) throw e;
      const reason = failureMessage(e);
      const undone = to === 'Final' ? await undoFinal(executed, before, requestId) : [];
      state.pendingChange = null;
      state.lastFailure = { to, requestId, at: new Date().toISOString(), reason, undone };
      log.warn('status change failed', { number: state.number, to, requestId, reason, undone });
      await publish();
      throw ApplicationFailure.nonRetryable(`the change to ${to} failed and the invoice stays ${state.status}${undone.length ? ` (undone: ${undone.join('; ')})` : ''}: ${reason}`, failureType(e));
    }
  }

  /**
   * One step of an undo. The provider refusing it for good (an outage is waited out) is reported
   * with the rest, so the failed change still ends and the invoice says what is left at the
   * provider (reconciliation finds such a record); runs before this version failed the change.
   */
  async function undoing(what: string, undone: string[], fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (isCancellation(e) || !patched(UNDO_FAILURE_REPORTED)) throw e;
      undone.push(`could not ${what}: ${failureMessage(e)}`);
    }
  }

  /** Takes back, newest first, what a failed change to Final did at the provider. */
  async function undoFinal(executed: Step[], before: ReturnType<typeof recordSnapshot>, requestId: string): Promise<string[]> {
    const { companyId, number } = state;
    const undone: string[] = [];
    for (const step of [...executed].reverse()) {
      if (step.kind === 'recreate-prepayment-payment') {
        const a = state.prepaymentApplications[step.application]!;
        if (a.providerPaymentId && a.providerPaymentId !== before.applications[step.application]) {
          const paymentId = a.providerPaymentId;
          await undoing(`remove the prepayment's provider payment ${paymentId}`, undone, async () => {
            await acts.removeProviderPayment({ companyId, paymentId, number, requestId });
            undone.push(`removed the prepayment's provider payment ${paymentId}`);
          });
        }
      } else if (step.kind === 'create-provider-invoice' && state.providerInvoiceId && state.providerInvoiceId !== before.providerInvoiceId) {
        const providerInvoiceId = state.providerInvoiceId;
        await undoing(`delete provider record ${providerInvoiceId}`, undone, async () => {
          await acts.deleteProviderInvoice({ companyId, providerInvoiceId, idempotencyKey: revisionKey('undo-create-invoice'), requestId });
          undone.push(`deleted provider record ${providerInvoiceId} (its Pay Now URL no longer works)`);
        });
      }
    }
    state.providerInvoiceId = before.providerInvoiceId;
    state.payNowUrl = before.payNowUrl;
    state.sentToProvider = before.sentToProvider;
    state.paymentImportSeconds = before.paymentImportSeconds;
    state.pdf = before.pdf;
    state.classification = before.classification;
    state.held = before.held;
    state.backupDocumentIds = before.backupDocumentIds;
    state.prepaymentApplications.forEach((a, i) => (a.providerPaymentId = before.applications[i] ?? null));
    if (patched(UNDO_IRREVERSIBLE_STEPS)) {
      // A record deleted or voided before the failure cannot come back (Stripe keeps a voided
      // invoice void), nor a credit note once voided: the invoice is left without them, so its
      // Pay Now link says there is no page right now, the next Final makes new ones, and the ERP
      // reads what could not be undone in lastFailure.
      if (before.providerInvoiceId && executed.some((s) => s.kind === 'delete-provider-invoice' && s.providerInvoiceId === before.providerInvoiceId)) {
        undone.push(`could not restore provider record ${before.providerInvoiceId}, taken out of use before the failure: the next Final makes a new one`);
        state.providerInvoiceId = null;
        state.payNowUrl = null;
        state.sentToProvider = false;
        state.paymentImportSeconds = null;
      }
      for (const s of executed) {
        if (s.kind === 'remove-prepayment-payment') state.prepaymentApplications[s.application]!.providerPaymentId = null;
      }
    }
    return undone;
  }

  /** Makes the invoice's record at the provider (its client's customer first) and points the invoice at it. */
  async function createRecord(via: typeof acts, outstanding: number, idempotencyKey: string, requestId: string, inOne = false): Promise<{ providerInvoiceId: string }> {
    const { companyId, number } = state;
    const invoice = { companyId, number, invoiceDate: state.invoiceDate, dueDate: state.dueDate, currency: state.currency, amount: state.total, outstanding, idempotencyKey, requestId };
    let created: { providerInvoiceId: string; payNowUrl: string };
    if (inOne) {
      const made = await via.createProviderRecord({ ...invoice, clientId: state.clientId });
      state.providerCustomerId = made.customerId;
      created = made;
    } else {
      state.providerCustomerId = (await via.ensureProviderCustomer({ companyId, clientId: state.clientId, requestId })).customerId;
      created = await via.createProviderInvoice({ ...invoice, customerId: state.providerCustomerId });
    }
    state.providerInvoiceId = created.providerInvoiceId;
    state.payNowUrl = created.payNowUrl;
    return created;
  }

  /** The provider idempotency key of an operation of this revision of the invoice. */
  function revisionKey(op: string): string {
    return `${state.companyId}:${state.number}:${state.revision}:${op}`;
  }

  /**
   * A Final's record, PDF and email in one activity (see finalizeAtProvider in
   * activities/combined.ts). A refusal for good after the record exists is thrown here, with the
   * record known, so the failed change undoes it.
   */
  async function finalizeAtProvider(step: Extract<Step, { kind: 'create-provider-invoice' }>, rest: Step[], requestId: string, importSeconds: number): Promise<void> {
    const { companyId, number } = state;
    const email = rest.find((s): s is Extract<Step, { kind: 'email-invoice' }> => s.kind === 'email-invoice');
    const done = await acts.finalizeAtProvider({
      record: {
        companyId,
        number,
        clientId: state.clientId,
        invoiceDate: state.invoiceDate,
        dueDate: state.dueDate,
        currency: state.currency,
        amount: state.total,
        outstanding: step.outstanding,
        idempotencyKey: revisionKey('create-invoice'),
        requestId,
      },
      invoice: { ...state, status: 'Final', outstanding: outstandingAmount(state.total, state.prepaymentsApplied, state.payments) },
      attachKey: rest.some((s) => s.kind === 'attach-pdf') ? revisionKey('attach-pdf') : null,
      email: email !== undefined,
      requestId,
    });
    state.providerCustomerId = done.customerId;
    state.providerInvoiceId = done.providerInvoiceId;
    state.payNowUrl = done.payNowUrl;
    state.sentToProvider = true;
    state.paymentImportSeconds = importSeconds;
    if (done.refused) throw ApplicationFailure.nonRetryable(done.refused.message, done.refused.type);
    state.pdf = done.pdf;
    if (email && done.email) recordEmail(email, done.email, requestId);
  }

  /** Renders the invoice PDF, attaching it to `attachTo` at the provider in the same activity; it shows the figures as they will be once the change is done. */
  async function renderPdf(requestId: string, attachTo: string | null): Promise<void> {
    const invoice = { ...state, status: 'Final' as const, outstanding: outstandingAmount(state.total, state.prepaymentsApplied, state.payments) };
    state.pdf = attachTo
      ? await acts.renderAndAttachPdf({ invoice, providerInvoiceId: attachTo, attachKey: revisionKey('attach-pdf'), requestId })
      : await acts.renderInvoicePdf({ invoice, requestId });
  }

  /** Carries out one planned step; returns the step as it actually happened. */
  async function execute(step: Step, requestId: string, found: ProviderPayment[], importSeconds: number, fewer: boolean): Promise<Step> {
    const { companyId, number } = state;
    switch (step.kind) {
      case 'import-payments':
        return step;
      case 'apply-payment':
        await applyOne(found.find((p) => p.paymentId === step.paymentId)!);
        return step;
      case 'convert-to-prepayment': {
        const p = state.payments.find((x) => x.paymentId === step.paymentId)!;
        await db().convertToPrepayment({ companyId, clientId: state.clientId, number, currency: state.currency, payment: p, requestId });
        state.payments = state.payments.filter((x) => x.paymentId !== p.paymentId);
        state.convertedPayments.push(p);
        return step;
      }
      case 'hold-provider-payment':
      case 'remove-provider-payment': {
        // Decided again now: another invoice of the same payment may have changed meanwhile.
        const heldBy = (await db().paymentHolds({ companyId, number, paymentIds: [step.paymentId] }))[step.paymentId] ?? [];
        if (heldBy.length > 0) return { kind: 'hold-provider-payment', paymentId: step.paymentId, heldBy };
        await acts.removeProviderPayment({ companyId, paymentId: step.paymentId, number, requestId });
        return { kind: 'remove-provider-payment', paymentId: step.paymentId };
      }
      case 'delete-provider-invoice':
        await acts.deleteProviderInvoice({ companyId, providerInvoiceId: step.providerInvoiceId, idempotencyKey: revisionKey('delete-invoice'), requestId });
        state.providerInvoiceId = null;
        state.payNowUrl = null;
        state.sentToProvider = false;
        state.paymentImportSeconds = null;
        return step;
      case 'create-provider-invoice': {
        // One activity for the customer and the record; changes from before made them in two.
        await createRecord(acts, step.outstanding, revisionKey('create-invoice'), requestId, fewer);
        state.sentToProvider = true;
        state.paymentImportSeconds = importSeconds;
        return step;
      }
      case 'update-provider-invoice': {
        const updated = await acts.updateProviderInvoice({
          companyId,
          providerInvoiceId: step.providerInvoiceId,
          number,
          invoiceDate: state.invoiceDate,
          amount: state.total,
          outstanding: step.outstanding,
          idempotencyKey: revisionKey('update-invoice'),
          requestId,
        });
        state.payNowUrl = updated.payNowUrl;
        state.paymentImportSeconds = importSeconds;
        return step;
      }
      case 'render-pdf':
        await renderPdf(requestId, null);
        return step;
      case 'attach-pdf':
        await acts.attachProviderInvoicePdf({
          companyId,
          providerInvoiceId: state.providerInvoiceId!,
          documentId: state.pdf!.documentId,
          idempotencyKey: pdfKey(revisionKey('attach-pdf')),
          requestId,
        });
        return step;
      case 'recreate-prepayment-payment': {
        const a = state.prepaymentApplications[step.application]!;
        a.providerPaymentId = (
          await acts.recreatePrepaymentPayment({
            companyId,
            customerId: state.providerCustomerId!,
            providerInvoiceId: state.providerInvoiceId!,
            prepaymentId: a.prepaymentId,
            amount: a.amount,
            applicationKey: applicationKey(step.application),
            // One payment per provider record: a record made after a Draft gets its own.
            idempotencyKey: `${applicationKey(step.application)}:${state.providerInvoiceId}:provider-payment`,
            requestId,
          })
        ).providerPaymentId;
        return step;
      }
      case 'remove-prepayment-payment': {
        await acts.removeProviderPayment({ companyId, paymentId: step.paymentId, number, requestId });
        state.prepaymentApplications[step.application]!.providerPaymentId = null;
        return step;
      }
      case 'email-invoice':
        await emailInvoice(step, requestId);
        return step;
      case 'keep-provider-payment':
        return step;
      case 'hold-exceptional':
        state.held = true;
        return step;
      case 'skip-provider':
        return step;
    }
  }

  /**
   * The email goes last: nothing after it could need undoing. A mail server's refusal for good
   * (an unknown mailbox) never fails the Final: it is recorded on the invoice for the ERP to see.
   */
  async function emailInvoice(step: Extract<Step, { kind: 'email-invoice' }>, requestId: string): Promise<void> {
    try {
      const { outcome } = await acts.sendInvoiceEmail({ invoice: { ...state, status: 'Final' }, requestId });
      recordEmail(step, { outcome }, requestId);
    } catch (e) {
      if (isCancellation(e) || !patched('email-outcome')) throw e;
      recordEmail(step, { failed: failureMessage(e) }, requestId);
    }
  }

  /** What became of this revision's email: how the send ended, or why the mail server refused it for good. */
  function recordEmail(step: Extract<Step, { kind: 'email-invoice' }>, result: { outcome?: SendOutcome } | { failed: string }, requestId: string): void {
    const at = new Date().toISOString();
    const { revision } = state;
    if ('failed' in result) {
      log.warn('invoice email refused', { number: state.number, revision, to: step.to, detail: result.failed, requestId });
      state.emailDelivery = { revision, status: 'failed', to: step.to, detail: result.failed, at };
    } else if (result.outcome === 'unconfirmed') {
      state.emailDelivery = { revision, status: 'unconfirmed', to: step.to, detail: 'a crash cut an earlier send off: it may not have gone out, and is not sent twice', at };
    } else {
      state.emailDelivery = { revision, status: 'sent', to: step.to, detail: 'sent', at };
    }
  }

  /** The idempotency key of the n-th prepayment application: by the ERP's request when it gave one. */
  function prepaymentKey(operationKey: string | undefined, n: number): string {
    return `${state.companyId}:${state.number}:prepayment:${operationKey ?? n + 1}`;
  }

  function applicationKey(n: number): string {
    return prepaymentKey(state.prepaymentApplications[n]?.operationKey, n);
  }

  /** The attach key of the current PDF (see contentKey). */
  function pdfKey(base: string): string {
    return contentKey(base, state.pdf!.sha256);
  }

  /** Moves the bill's life-cycle; `deferred`: the move is returned for the next publish to record, else recorded now. */
  async function moveLifecycle(to: LifecycleState, by: string, requestId: string, deferred = false): Promise<LifecycleRecord | null> {
    const from = state.lifecycleState;
    const record = { companyId: state.companyId, number: state.number, from, to, by, requestId, seq: state.lifecycleHistory.length + 1 };
    if (!deferred) await db().recordLifecycleChange(record);
    state.lifecycleState = to;
    state.lifecycleHistory.push({ at: new Date().toISOString(), from, to, by, requestId });
    return deferred ? record : null;
  }

  /**
   * The reminders of a change that made the invoice Final: started by the main loop once the
   * change has answered (a child workflow's start is a round trip the ERP need not wait for), or,
   * for invoices changed before, at once.
   */
  async function remindersAfter(reminderDays: number[], fewer: boolean): Promise<void> {
    if (fewer) remindersToStart = reminderDays;
    else await startReminders(reminderDays);
  }

  /**
   * Starts the due-date reminders of this Final revision (a workflow of their own, left running
   * when this one continues as new); they end by themselves once the invoice is paid or changes.
   */
  async function startReminders(reminderDays: number[]): Promise<void> {
    if (reminderDays.length === 0 || state.status !== 'Final' || state.held || state.outstanding <= 0) return;
    // Invoices that became Final before reminders existed replay as they ran.
    if (!patched('due-date-reminders')) return;
    const { companyId, number, revision, dueDate } = state;
    try {
      await startChild(invoiceRemindersWorkflow, {
        workflowId: remindersWorkflowId(companyId, number, revision),
        args: [{ companyId, number, revision, dueDate, reminderDays }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        typedSearchAttributes: [
          { key: sa.invoiceNumber, value: number },
          { key: sa.companyId, value: companyId },
        ],
        staticSummary: `Due-date reminders for invoice ${number}, revision ${revision} (days ${reminderDays.join(', ')})`,
      });
    } catch (e) {
      if (!(e instanceof WorkflowExecutionAlreadyStartedError)) throw e;
    }
  }

  /** An operator releases a held exceptional bill: the Final's provider steps and email run now. */
  async function release(req: ReleaseRequest): Promise<StatusChangeResult> {
    checkRelease();
    const fewer = patched(FEWER_ROUND_TRIPS);
    const context = fewer ? await db().changeContext({ companyId: state.companyId, clientId: state.clientId, to: 'Final' }) : null;
    const company = context?.company ?? (await acts.getCompanySettings({ companyId: state.companyId }));
    const email = context ? context.email : await acts.getEmailSettings({ companyId: state.companyId, clientId: state.clientId });
    const plan = planStatusChange({
      invoice: state,
      to: 'Final',
      providerEnabled: company.providerEnabled,
      importedFirst: false,
      found: [],
      stillHeldBy: {},
      email,
      hold: null,
      prepaymentsAtProvider: state.prepaymentApplications.length > 0 && patched('prepayments-at-provider'),
      ...(company.capabilities ? { capabilities: company.capabilities } : {}),
    });
    const executed = await executePlan(plan.steps, 'Final', req.requestId, [], company.paymentImportSeconds, recordSnapshot(), fewer);
    state.held = false;
    state.lastFailure = null;
    state.history.push({ at: new Date().toISOString(), from: 'Final', to: 'Final', requestId: req.requestId, releasedBy: req.by });
    await publish();
    await remindersAfter(company.reminderDays ?? [], fewer);
    return { invoice: state, plan: { ...plan, steps: executed }, dryRun: false };
  }

  function checkRelease(): void {
    const err = releaseError(state);
    if (err) throw ApplicationFailure.nonRetryable(err, 'NotHeld');
  }

  /** True when this ERP request's Quick Pay was already applied: its retry gets the invoice, not a second payment. */
  function quickPayDone(req: QuickPayRequest): boolean {
    return req.operationKey !== undefined && (state.quickPayKeys ?? []).includes(req.operationKey);
  }

  function rememberQuickPay(operationKey: string): void {
    state.quickPayKeys = [...(state.quickPayKeys ?? []), operationKey].slice(-KEPT_REQUEST_KEYS);
  }

  /** Quick Pay: settles the whole unsettled balance in one payment, recorded at the provider like any other. */
  async function quickPay(req: QuickPayRequest): Promise<InvoiceState> {
    if (quickPayDone(req)) return state;
    const err = quickPayError(state);
    if (err) throw ApplicationFailure.nonRetryable(err, 'QuickPayRefused');
    const amount = state.outstanding;
    // Keyed by the ERP's request, so a retry that reaches a new run (continue-as-new) cannot pay twice.
    const key = req.operationKey ? `${state.companyId}:${state.number}:quickpay:${req.operationKey}` : `${state.companyId}:${state.number}:${state.revision}:quickpay:${state.payments.length}`;
    const atProvider = state.sentToProvider && state.providerInvoiceId !== null && state.providerCustomerId !== null;
    const paid = await acts.recordQuickPay({
      companyId: state.companyId,
      number: state.number,
      amount,
      details: req,
      provider: atProvider ? { customerId: state.providerCustomerId!, providerInvoiceId: state.providerInvoiceId! } : null,
      idempotencyKey: key,
    });
    await applyOne({
      paymentId: paid.paymentId,
      amount,
      fee: 0,
      paidAt: paid.paidAt,
      coveredInvoices: [state.number],
      totalAmount: amount,
      method: 'quickpay',
      source: 'quickpay',
      requestId: req.requestId,
    });
    if (req.operationKey) rememberQuickPay(req.operationKey);
    await publish();
    return state;
  }

  function prepaymentDone(req: ApplyPrepaymentRequest): boolean {
    return req.operationKey !== undefined && state.prepaymentApplications.some((a) => a.operationKey === req.operationKey);
  }

  function checkPrepayment(req: ApplyPrepaymentRequest): void {
    if (prepaymentDone(req)) return;
    const err = prepaymentError(state.number, req.amount, outstandingAmount(state.total, state.prepaymentsApplied, state.payments));
    if (err) throw ApplicationFailure.nonRetryable(err, 'InvalidPrepayment');
  }

  function checkRevision(req: ReviseRequest): void {
    const notEditable = revisionError(state.status);
    if (notEditable) throw ApplicationFailure.nonRetryable(notEditable, 'NotEditable');
    const dates = datesError(req.invoiceDate ?? state.invoiceDate, req.dueDate ?? state.dueDate);
    if (dates) throw ApplicationFailure.nonRetryable(dates, 'InvalidRevision');
  }

  /** Applies a client prepayment; at the provider the payment is created again against this invoice. */
  async function applyPrepayment(req: ApplyPrepaymentRequest): Promise<InvoiceState> {
    if (prepaymentDone(req)) return state;
    checkPrepayment(req);
    const { companyId, number } = state;
    const applicationKey = prepaymentKey(req.operationKey, state.prepaymentApplications.length);
    await db().reservePrepayment({ companyId, clientId: state.clientId, prepaymentId: req.prepaymentId, number, amount: req.amount, applicationKey, requestId: req.requestId });
    let providerPaymentId: string | null = null;
    if (state.status === 'Final' && state.sentToProvider && state.providerInvoiceId && state.providerCustomerId) {
      providerPaymentId = (
        await acts.recreatePrepaymentPayment({
          companyId,
          customerId: state.providerCustomerId,
          providerInvoiceId: state.providerInvoiceId,
          prepaymentId: req.prepaymentId,
          amount: req.amount,
          applicationKey,
          requestId: req.requestId,
        })
      ).providerPaymentId;
    }
    state.prepaymentApplications.push({
      prepaymentId: req.prepaymentId,
      amount: req.amount,
      providerPaymentId,
      requestId: req.requestId,
      ...(req.operationKey ? { operationKey: req.operationKey } : {}),
    });
    state.prepaymentsApplied += req.amount;
    await publish();
    return state;
  }

  if (!input.state) await lock.run(publish);

  async function startPendingReminders(): Promise<void> {
    if (remindersToStart === null) return;
    await lock.run(async () => {
      const days = remindersToStart;
      remindersToStart = null;
      if (days) await startReminders(days);
    });
  }

  const historyIsLong = () => workflowInfo().continueAsNewSuggested || (input.continueAsNewAfterEvents !== undefined && workflowInfo().historyLength > input.continueAsNewAfterEvents);
  const importing = () => state.status === 'Final' && state.outstanding > 0 && state.paymentImportSeconds !== null;
  /** A reminder is due now unless it waits to be tried again after a failure. */
  const reminderReady = (r: ReminderRequest) => (r.notBefore ?? 0) <= Date.now();
  for (;;) {
    // Wake for payments, for continue-as-new, when a status change starts or stops the import
    // timer, and when a reminder that failed is due to be tried again.
    const wasImporting = importing();
    const wake = () => inbox.length > 0 || resyncs.length > 0 || remindersDue.some(reminderReady) || remindersToStart !== null || historyIsLong() || importing() !== wasImporting;
    const importAt = wasImporting ? Date.now() + state.paymentImportSeconds! * 1000 : Infinity;
    const retryAt = Math.min(...remindersDue.map((r) => r.notBefore ?? Infinity));
    // Overdue is shown when the due date is over, whether or not a payment or reminder wakes it then.
    const turnsOverdue = state.status === 'Final' && state.outstanding > 0 && workflowInfo().typedSearchAttributes.get(sa.overdue) !== true;
    const overdueAt = turnsOverdue && patched(DUE_DATE_ATTRIBUTES) ? overdueFrom(state.dueDate) : Infinity;
    const wakeAt = Math.min(importAt, retryAt, overdueAt);
    let timedOut = false;
    if (wakeAt === Infinity) await condition(wake);
    else timedOut = !(await condition(wake, wakeAt - Date.now()));
    const fromWait = timedOut && patched(DEADLINE_FROM_WAIT);
    const importDue = timedOut && (fromWait ? importAt <= wakeAt : Date.now() >= importAt);
    if (timedOut && (fromWait ? overdueAt <= wakeAt : Date.now() >= overdueAt)) {
      const at = fromWait ? Math.max(Date.now(), overdueAt) : Date.now();
      await lock.run(async () => upsertSearchAttributes([{ key: sa.overdue, value: isOverdue(state, at) }]));
    }
    await startPendingReminders();
    if (inbox.length > 0) await lock.run(() => applyPayments(inbox.splice(0)));
    else if (importDue) await lock.run(() => importPayments());
    if (resyncs.length > 0) {
      await lock.run(async () => {
        for (const r of resyncs.splice(0)) await resync(r);
      });
    }
    if (remindersDue.some(reminderReady)) {
      await lock.run(async () => {
        const ready = remindersDue.filter(reminderReady);
        remindersDue.splice(0, remindersDue.length, ...remindersDue.filter((r) => !reminderReady(r)));
        for (const r of ready) await remind(r);
      });
    }
    if (historyIsLong()) {
      // Let running Updates finish first; their callers get their answers from this run.
      await startPendingReminders();
      await condition(allHandlersFinished);
      // The last change's read model is written before the run ends.
      await condition(() => unrecorded === null && !recording && allHandlersFinished());
      log.info('continuing as new', { historyLength: workflowInfo().historyLength });
      // Signals that arrived meanwhile travel along, so no payment is lost.
      await continueAsNew<typeof invoiceWorkflow>({
        ...input,
        state,
        pending: inbox,
        pendingResyncs: resyncs,
        pendingReminders: remindersDue,
        ...(remindersToStart ? { pendingReminderStart: remindersToStart } : {}),
      });
    }
  }
}
