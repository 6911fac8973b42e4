/**
 * One reconciliation of a company's invoices against its provider account. The comparison and the
 * report are activities; repairs are left to each invoice's own workflow (signalled), so two
 * writers never race on one provider record.
 */
import { ActivityFailure, getExternalWorkflowHandle, log, proxyActivities, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { repairHalt, repairsByInvoice } from '../domain/reconcile.js';
import { invoiceWorkflowId } from './contract.js';
import { resyncSignal, type ReconcileInput, type ReconcileResult } from './reconcile-contract.js';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  // A worker killed under a run of many minutes is noticed at the missed heartbeat (worker/create.ts
  // beats for it); generous, as a comparison of thousands of invoices keeps the event loop busy.
  heartbeatTimeout: '15 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

export async function reconcileCompanyWorkflow(input: ReconcileInput): Promise<ReconcileResult> {
  const reconciliationId = input.reconciliationId ?? uuid4();
  const requestId = input.requestId ?? `reconcile-${reconciliationId}`;
  const { companyId } = input;
  let snapshot: Awaited<ReturnType<typeof acts.compareWithProvider>>;
  try {
    snapshot = await acts.compareWithProvider({ companyId, reconciliationId, requestId });
  } catch (e) {
    // Recorded with the run, so the ERP reads why (e.g. the provider refused the account's key).
    await acts.failReconciliation({ reconciliationId, reason: e instanceof ActivityFailure && e.cause ? e.cause.message : String(e) });
    throw e;
  }
  const repairsRequested: string[] = [];
  const repairs = repairsByInvoice(snapshot.findings);
  const halted = repairHalt(repairs.size, snapshot.checkedInvoices);
  for (const [number, { staleRecordIds }] of halted ? [] : repairs) {
    try {
      await getExternalWorkflowHandle(invoiceWorkflowId(companyId, number)).signal(resyncSignal, { reconciliationId, requestId, staleRecordIds });
      repairsRequested.push(number);
    } catch (e) {
      // The invoice's workflow is gone (e.g. terminated by an operator): reported, not repaired.
      log.warn('invoice workflow not reachable for repair', { number, error: String(e) });
    }
  }
  await acts.finishReconciliation({ reconciliationId, repairsRequested, halted });
  log.info('reconciled', { companyId, reconciliationId, findings: snapshot.findings.length, repairsRequested: repairsRequested.length });
  return { reconciliationId, ...snapshot, repairsRequested, halted };
}
