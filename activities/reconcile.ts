/** Activities of the per-company reconciliation (workflows/reconcile.ts) and of the invoice's repair of its own records. */
import { log } from '@temporalio/activity';
import { findDrift, type EngineInvoice, type Finding } from '../domain/reconcile.js';
import type { Sql } from '../lib/db.js';
import type { WorkerMetrics } from '../lib/metrics.js';
import type { Keyring } from '../lib/secrets.js';
import { emitEvents } from './events.js';
import { settleProcessingFees } from './processing-fees.js';
import { companyProvider, provider } from './provider/calls.js';
import type { CircuitSettings } from './provider/circuit.js';

export function createReconcileActivities({ sql, secrets, metrics, circuit }: { sql: Sql; secrets: Keyring; metrics: WorkerMetrics; circuit?: CircuitSettings }) {
  return {
    /** Compares the read model with every live provider record and stores what differs. Safe to repeat. */
    async compareWithProvider(input: { companyId: string; reconciliationId: string; requestId: string }) {
      const { companyId, reconciliationId, requestId } = input;
      // The run is visible (running) from its start, whatever happens to the comparison.
      await sql`
        INSERT INTO reconciliations (id, company_id, request_id, checked_invoices, checked_records, findings)
        VALUES (${reconciliationId}, ${companyId}, ${requestId}, 0, 0, '[]') ON CONFLICT (id) DO NOTHING`;
      const api = await companyProvider(sql, secrets, companyId, metrics, circuit);
      const records = await provider('list provider invoices', () => api.listInvoices(requestId));
      // Fees the provider could not describe when their payment came in are read again here.
      await settleProcessingFees(sql, () => Promise.resolve(api), companyId);
      const engine = await sql<EngineInvoice[]>`
        SELECT number, status, provider_invoice_id AS "providerInvoiceId", total, outstanding, held FROM invoices WHERE company_id = ${companyId}`;
      const findings: Finding[] = findDrift(engine, records);
      await sql.begin(async (tx) => {
        await tx`
          UPDATE reconciliations SET checked_invoices = ${engine.length}, checked_records = ${records.length}, findings = ${tx.json(findings as never)}
          WHERE id = ${reconciliationId}`;
        if (findings.length === 0) return;
        // One event per run (its id made from the run's), however often the comparison is repeated.
        await emitEvents(tx, [
          {
            type: 'reconciliation.drift_found',
            companyId,
            identity: [reconciliationId],
            orderingKey: `reconciliation:${companyId}`,
            requestId,
            data: { reconciliationId, checkedInvoices: engine.length, checkedRecords: records.length, findings },
          },
        ]);
      });
      log.info('reconciliation compared', { companyId, reconciliationId, invoices: engine.length, records: records.length, findings: findings.length, requestId });
      return { checkedInvoices: engine.length, checkedRecords: records.length, findings };
    },

    async finishReconciliation(input: { reconciliationId: string; repairsRequested: string[]; halted: string | null }): Promise<void> {
      await sql`
        UPDATE reconciliations SET repairs_requested = ${input.repairsRequested}, halted = ${input.halted}, finished_at = coalesce(finished_at, now())
        WHERE id = ${input.reconciliationId}`;
    },

    async failReconciliation({ reconciliationId, reason }: { reconciliationId: string; reason: string }): Promise<void> {
      await sql`UPDATE reconciliations SET failed = ${reason}, finished_at = coalesce(finished_at, now()) WHERE id = ${reconciliationId}`;
    },

    /** The invoice's provider record as the provider has it now, or null when it is gone. */
    async getProviderInvoice({ companyId, providerInvoiceId, requestId }: { companyId: string; providerInvoiceId: string; requestId: string }) {
      const api = await companyProvider(sql, secrets, companyId, metrics, circuit);
      const record = await provider('read provider invoice', () => api.getInvoice(providerInvoiceId, requestId));
      return record && { amount: record.amount, outstanding: record.outstanding, customerId: record.customerId };
    },

    async recordRepair(input: { reconciliationId: string; number: string; actions: string[] }): Promise<void> {
      await sql`
        INSERT INTO reconciliation_repairs (reconciliation_id, invoice_number, actions)
        VALUES (${input.reconciliationId}, ${input.number}, ${sql.json(input.actions)}) ON CONFLICT DO NOTHING`;
    },
  };
}
