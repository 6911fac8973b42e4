/**
 * Reconciliation: what differs between billflow's invoices and the provider's records of one
 * company, and who repairs it. Pure, so the rule is in one place and tested without servers.
 */
import { owedAtProvider, type InvoiceStatus } from './invoice.js';
import type { Minor } from './money.js';

/** An invoice as billflow's read model has it. */
export interface EngineInvoice {
  number: string;
  status: InvoiceStatus;
  providerInvoiceId: string | null;
  total: Minor;
  outstanding: Minor;
  /** A held exceptional bill: its record (if any) waits for the operator's release, so it is not compared. */
  held: boolean;
}

/** A live invoice record at the provider. */
export interface ProviderRecord {
  id: string;
  number: string;
  amount: Minor;
  outstanding: Minor;
}

export type Finding =
  /** billflow sent this invoice, but the provider no longer has the record. */
  | { kind: 'missing-at-provider'; number: string; providerInvoiceId: string }
  /** A Final invoice whose amount or outstanding balance differs at the provider (a lost payment, an edit there). */
  | {
      kind: 'figures-differ';
      number: string;
      providerInvoiceId: string;
      billflow: { amount: Minor; outstanding: Minor };
      provider: { amount: Minor; outstanding: Minor };
    }
  /** A record for one of billflow's invoices that the invoice does not point at (left over, or made by hand). */
  | { kind: 'stale-at-provider'; number: string; providerInvoiceId: string }
  /** A record whose number billflow does not know: made at the provider by hand. Reported, never touched. */
  | { kind: 'unknown-at-provider'; number: string; providerInvoiceId: string };

export function findDrift(engine: readonly EngineInvoice[], provider: readonly ProviderRecord[]): Finding[] {
  const records = new Map(provider.map((r) => [r.id, r]));
  const invoices = new Map(engine.map((i) => [i.number, i]));
  const findings: Finding[] = [];
  for (const inv of engine) {
    if (!inv.providerInvoiceId || inv.status === 'Draft' || inv.held) continue;
    const record = records.get(inv.providerInvoiceId);
    if (!record) {
      findings.push({ kind: 'missing-at-provider', number: inv.number, providerInvoiceId: inv.providerInvoiceId });
    } else if (inv.status === 'Final' && (record.amount !== inv.total || record.outstanding !== owedAtProvider(inv.outstanding))) {
      // A Reissue keeps its record's last Final figures until it is Final again, so only Final is compared.
      findings.push({
        kind: 'figures-differ',
        number: inv.number,
        providerInvoiceId: record.id,
        billflow: { amount: inv.total, outstanding: owedAtProvider(inv.outstanding) },
        provider: { amount: record.amount, outstanding: record.outstanding },
      });
    }
  }
  for (const record of provider) {
    const inv = invoices.get(record.number);
    if (!inv) findings.push({ kind: 'unknown-at-provider', number: record.number, providerInvoiceId: record.id });
    else if (inv.providerInvoiceId !== record.id) findings.push({ kind: 'stale-at-provider', number: record.number, providerInvoiceId: record.id });
  }
  return findings;
}

/**
 * Automatic repair stops when most of an account looks wrong at once (swapped credentials, an
 * account shared by mistake, a provider-side incident): that needs a person, not mass re-creation.
 */
export function repairHalt(invoicesToRepair: number, checkedInvoices: number): string | null {
  if (invoicesToRepair > 10 && invoicesToRepair > checkedInvoices / 2) {
    return `${invoicesToRepair} of ${checkedInvoices} invoices differ from the provider account: too many to repair automatically; check the account's configuration`;
  }
  return null;
}

/** The invoices whose workflows are asked to repair their own records, with the stale records each must look at. */
export function repairsByInvoice(findings: readonly Finding[]): Map<string, { staleRecordIds: string[] }> {
  const out = new Map<string, { staleRecordIds: string[] }>();
  for (const f of findings) {
    if (f.kind === 'unknown-at-provider') continue;
    const entry = out.get(f.number) ?? { staleRecordIds: [] };
    if (f.kind === 'stale-at-provider') entry.staleRecordIds.push(f.providerInvoiceId);
    out.set(f.number, entry);
  }
  return out;
}
