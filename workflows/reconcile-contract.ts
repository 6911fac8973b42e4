/**
 * The reconciliation slice's contract: a Temporal Schedule per company (`Reconcile:<company>`)
 * starts `reconcileCompanyWorkflow` every `reconcileSeconds`; the ERP or an operator can also run
 * one now. A run compares billflow's invoices with the provider's records (domain/reconcile.ts),
 * stores what it found, and asks each affected invoice's workflow to repair its own records (the
 * invoice workflow is the only writer of them) with `resyncSignal`.
 */
import { defineSignal } from '@temporalio/workflow';
import type { Finding } from '../domain/reconcile.js';

export const RECONCILE_WORKFLOW_TYPE = 'reconcileCompanyWorkflow';

export function reconcileScheduleId(companyId: string): string {
  return `Reconcile:${companyId}`;
}

export function reconcileWorkflowId(companyId: string, reconciliationId: string): string {
  return `Reconcile:${companyId}:${reconciliationId}`;
}

export interface ReconcileInput {
  companyId: string;
  /** Given for a run asked for through the API; a scheduled run makes its own. */
  reconciliationId?: string;
  requestId?: string;
}

export interface ReconcileResult {
  reconciliationId: string;
  checkedInvoices: number;
  checkedRecords: number;
  findings: Finding[];
  /** Invoices whose workflows were asked to repair; they record what they did themselves. */
  repairsRequested: string[];
  /** Why no repair was asked for although there were findings (too much drift at once), or null. */
  halted: string | null;
}

export interface ResyncRequest {
  reconciliationId: string;
  requestId: string;
  /** Provider records for this invoice's number that it does not point at: removed when they are safely its own (same customer, no payments). */
  staleRecordIds: string[];
}

export const resyncSignal = defineSignal<[ResyncRequest]>('resync');
