/**
 * The bill-run slice's contract, written once for the API, the workflow, the activities and the
 * tests: workflow ids, the progress Query, the selection criteria and the shapes they carry.
 *
 * A run is one Temporal workflow, `BillRun:<company>:<runId>`. It selects its bills once (a
 * snapshot of the read model, kept in PostgreSQL, not in the workflow history), then delivers them
 * in batches of `batchSize` bills per activity, a few batches at once. Kinds:
 *  - `send`: each bill goes out by its client's delivery preference: `email` (the bill's PDF
 *    attached to the run's message) or `print` (its PDF goes into the run's merged printout);
 *  - `communicate`: a message template is sent to each bill's client by the template's channel.
 * A retry is a new run whose selection is the failed bills of the run it retries (`retryOf`).
 */
import { defineQuery } from '@temporalio/workflow';

const ID_PREFIX = 'BillRun';

export function billRunWorkflowId(companyId: string, runId: string): string {
  return `${ID_PREFIX}:${companyId}:${runId}`;
}

/** One on-demand bill PDF render at a time per invoice revision of the read model. */
export function billPdfWorkflowId(companyId: string, number: string, version: number): string {
  return `BillPdf:${companyId}:${number}:v${version}`;
}

export const BILL_RUN_KINDS = ['send', 'communicate'] as const;
export type BillRunKind = (typeof BILL_RUN_KINDS)[number];

export const DELIVERY_PREFERENCES = ['email', 'print'] as const;
type DeliveryPreference = (typeof DELIVERY_PREFERENCES)[number];

export const BILL_OUTCOMES = ['pending', 'sent', 'printed', 'skipped-held', 'failed'] as const;
export type BillOutcome = (typeof BILL_OUTCOMES)[number];

/** Which Final bills a run selects (all given criteria must hold). */
export interface BillCriteria {
  invoiceDateFrom?: string;
  invoiceDateTo?: string;
  settlement?: string[];
  clientIds?: string[];
  invoiceNumbers?: string[];
  /** Only bills never delivered yet (emailed with their PDF, or printed). */
  notYetSent?: boolean;
  /** Only bills whose client prefers this delivery. */
  deliveryPreference?: DeliveryPreference;
}

export interface BillRunCounts {
  total: number;
  sent: number;
  printed: number;
  skippedHeld: number;
  failed: number;
}

export interface BillRunInput {
  companyId: string;
  runId: string;
  kind: BillRunKind;
  /** Bills per activity (default 50). */
  batchSize?: number;
  /** Batch activities in flight at once (default 3). */
  parallelBatches?: number;
  /** Continue-as-new after this many batches (default: when Temporal suggests it). */
  continueAsNewAfterBatches?: number;
  /** Carried across continue-as-new. */
  carried?: { total: number; nextSeq: number; counts: BillRunCounts; batchesDone: number; continuedAsNew: number };
}

type BillRunPhase = 'selecting' | 'running' | 'finishing' | 'completed';

export interface BillRunProgress extends BillRunCounts {
  runId: string;
  kind: BillRunKind;
  phase: BillRunPhase;
  /** Bills with an outcome so far (sent + printed + skipped + failed). */
  done: number;
  batchesDone: number;
  continuedAsNew: number;
}

export const billRunProgressQuery = defineQuery<BillRunProgress>('progress');
