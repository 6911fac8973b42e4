/**
 * A bill sending run (or a communication to many bills): one workflow per run. The selection is
 * snapshotted once into PostgreSQL (`bill_run_items`, numbered 1..total); the workflow then hands
 * out disjoint ranges of `batchSize` bills to activities, `parallelBatches` at a time, so a
 * 1,000-bill run is ~20 activities and a history of ~100 events, whatever the bills' outcomes.
 * Every activity reports the counts of its whole range (read back from PostgreSQL), so a retried
 * batch never counts a bill twice. A batch that keeps failing has its undecided bills marked
 * failed with the reason; a retry run picks them up. Progress is a Query, and the read model
 * (`bill_runs`, `bill_run_items`) is written per bill as it happens.
 */
import { allHandlersFinished, ApplicationFailure, condition, continueAsNew, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BillActivities } from '../activities/bills.js';
import { billRunProgressQuery, type BillRunCounts, type BillRunInput, type BillRunProgress } from './bill-run-contract.js';

// Short activities (one query, one render, one merge): a worker that dies under one is noticed within a minute.
const acts = proxyActivities<BillActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

/**
 * Each bill's outcome is written as it happens, so a retried batch resumes where it stopped. A
 * batch heartbeats per bill: one whose worker died is retried by another worker 30 s after its
 * last bill, not at the 20 minutes that bound a live one.
 */
const batchActs = proxyActivities<BillActivities>({
  startToCloseTimeout: '20 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 4 },
});

const ZERO: BillRunCounts = { total: 0, sent: 0, printed: 0, skippedHeld: 0, failed: 0 };

function why(e: unknown): string {
  for (let x: unknown = e; x instanceof Error; x = x.cause) {
    if (x instanceof ApplicationFailure) return x.message;
    if (!x.cause) return x.message;
  }
  return String(e);
}

export async function billRunWorkflow(input: BillRunInput): Promise<BillRunCounts> {
  const { companyId, runId } = input;
  const batchSize = Math.max(1, input.batchSize ?? 50);
  const parallel = Math.max(1, input.parallelBatches ?? 3);
  const carried = input.carried;
  const counts: BillRunCounts = { ...(carried?.counts ?? ZERO) };
  const progress: BillRunProgress = {
    runId,
    kind: input.kind,
    phase: carried ? 'running' : 'selecting',
    ...counts,
    done: 0,
    batchesDone: carried?.batchesDone ?? 0,
    continuedAsNew: carried?.continuedAsNew ?? 0,
  };
  const refresh = () => {
    Object.assign(progress, counts);
    progress.done = counts.sent + counts.printed + counts.skippedHeld + counts.failed;
  };
  refresh();
  setHandler(billRunProgressQuery, () => progress);

  if (!carried) {
    const { total } = await acts.selectBills({ companyId, runId });
    counts.total = total;
    progress.phase = 'running';
    refresh();
  }
  const total = counts.total;

  const add = (c: BillRunCounts) => {
    counts.sent += c.sent;
    counts.printed += c.printed;
    counts.skippedHeld += c.skippedHeld;
    counts.failed += c.failed;
    progress.batchesDone += 1;
    refresh();
  };

  async function runBatch(fromSeq: number, toSeq: number): Promise<void> {
    let c: BillRunCounts;
    try {
      c = await batchActs.deliverBillBatch({ companyId, runId, fromSeq, toSeq });
    } catch (e) {
      const reason = why(e);
      log.warn('bill batch failed; its undecided bills are marked failed', { runId, fromSeq, toSeq, reason });
      c = await acts.failBillBatch({ companyId, runId, fromSeq, toSeq, reason });
    }
    add(c);
  }

  let nextSeq = carried?.nextSeq ?? 1;
  let started = 0;
  const inFlight = new Set<Promise<void>>();
  const timeToContinue = () => workflowInfo().continueAsNewSuggested || (input.continueAsNewAfterBatches !== undefined && started >= input.continueAsNewAfterBatches);
  while (nextSeq <= total) {
    await condition(() => inFlight.size < parallel);
    if (timeToContinue()) break;
    const from = nextSeq;
    const to = Math.min(total, from + batchSize - 1);
    nextSeq = to + 1;
    started += 1;
    const p: Promise<void> = runBatch(from, to).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await condition(() => inFlight.size === 0);

  if (nextSeq <= total) {
    await condition(allHandlersFinished);
    log.info('bill run continuing as new', { runId, nextSeq, historyLength: workflowInfo().historyLength });
    await continueAsNew<typeof billRunWorkflow>({
      ...input,
      carried: { total, nextSeq, counts, batchesDone: progress.batchesDone, continuedAsNew: progress.continuedAsNew + 1 },
    });
  }

  progress.phase = 'finishing';
  const final = await acts.finishBillRun({ companyId, runId });
  Object.assign(counts, final);
  refresh();
  progress.phase = 'completed';
  await condition(allHandlersFinished);
  return final;
}

/** Renders one bill's PDF with its current figures (kept, keyed by content, so a repeat is free). */
export async function billPdfWorkflow(input: { companyId: string; number: string }): Promise<{ documentId: string; sha256: string }> {
  return acts.renderBillPdf(input);
}
