/**
 * The chaos run's own books: what the harness asked for (invoices, their totals, each payment it
 * made and each prepayment it applied), kept apart from billflow. The check compares them with
 * the provider sandbox's records, with what the ERP feed reader received, with billflow's receipts
 * table and with the mailbox; billflow's own answers are only ever one side of a comparison.
 */

export interface LedgerInvoice {
  lifecycle: string;
  companyId: string;
  number: string;
  clientId: string;
  total: number;
  prepaymentsApplied: number;
  /** Invoice emails the client should have got: one per Final that went out (a held Final goes out on release). */
  emails: number;
  /** Provider records the invoice's Finals should have made (a Draft in between makes the next Final a new one). */
  providerRecords: number;
  /** Pay Now URLs that must be dead (the invoice went back to Draft after them) and the one that must work. */
  deadUrls: string[];
  liveUrl: string | null;
  /** Prepayments applied to it: each is a payment created again at the provider. */
  prepaymentRecreations: number;
  quickPays: number;
  /** What Quick Pay settled (billflow's own payment at the provider, not the payer's). */
  quickPaid: number;
}

export interface LedgerPayment {
  lifecycle: string;
  /** The payer's own reference, sent to the provider with the payment. */
  ref: string;
  companyId: string;
  allocations: { number: string; amount: number }[];
  fee: number;
  /** The invoice went back to Reissue or Draft after it: the payment became a prepayment, removed at the provider. */
  converted: boolean;
}

export class Ledger {
  readonly invoices = new Map<string, LedgerInvoice>();
  readonly payments: LedgerPayment[] = [];

  invoice(inv: Omit<LedgerInvoice, 'prepaymentsApplied' | 'emails' | 'providerRecords' | 'deadUrls' | 'liveUrl' | 'prepaymentRecreations' | 'quickPays' | 'quickPaid'>): LedgerInvoice {
    const full: LedgerInvoice = { ...inv, prepaymentsApplied: 0, emails: 0, providerRecords: 0, deadUrls: [], liveUrl: null, prepaymentRecreations: 0, quickPays: 0, quickPaid: 0 };
    this.invoices.set(key(inv.companyId, inv.number), full);
    return full;
  }

  payment(p: Omit<LedgerPayment, 'converted'>): LedgerPayment {
    const full = { ...p, converted: false };
    this.payments.push(full);
    return full;
  }

  /** Payments on the invoice that still count (not converted to prepayments). */
  paid(inv: LedgerInvoice): number {
    let sum = 0;
    for (const p of this.payments) {
      if (p.companyId !== inv.companyId || p.converted) continue;
      for (const a of p.allocations) if (a.number === inv.number) sum += a.amount;
    }
    return sum;
  }

  /** What the client still owes by the harness's own books. */
  outstanding(inv: LedgerInvoice): number {
    return inv.total - inv.prepaymentsApplied - this.paid(inv) - inv.quickPaid;
  }

  /** The invoice left Final: its payments became prepayments. */
  convertPayments(inv: LedgerInvoice): LedgerPayment[] {
    const converted = this.payments.filter((p) => p.companyId === inv.companyId && !p.converted && p.allocations.some((a) => a.number === inv.number));
    for (const p of converted) p.converted = true;
    return converted;
  }
}

export function key(companyId: string, number: string): string {
  return `${companyId}/${number}`;
}

/** The provider's side, read from the sandbox's own tables. */
export interface ProviderRecords {
  /** Every invoice record, live or deleted. */
  invoices: { accountId: string; number: string; id: string; live: boolean; amount: number; outstanding: number; paid: number }[];
  payments: { accountId: string; id: string; method: string; reference: string | null; status: string; amount: number; fee: number; allocations: { invoiceNumber: string; amount: number }[] }[];
}

export interface Receipt {
  companyId: string;
  kind: string;
  providerPaymentId: string;
  invoiceNumber: string | null;
  amount: number;
}

export interface BillflowInvoice {
  status: string;
  total: number;
  prepaymentsApplied: number;
  outstanding: number;
  held: boolean;
  pendingChange: unknown;
  payNowUrl: string | null;
}

export interface CheckInput {
  ledger: Ledger;
  /** The lifecycles that could not finish their steps, with why. */
  failedLifecycles: Map<string, string>;
  lifecycles: number;
  accountOf: Map<string, string>;
  billflow: Map<string, BillflowInvoice | string>;
  provider: ProviderRecords;
  feed: Receipt[];
  receiptsTable: Receipt[];
  /** Message-IDs of every message the mail catcher received. */
  messageIds: string[];
  urlStatus: Map<string, number>;
}

/** The counts of the final line: each must be 0. */
export interface Counts {
  lost: number;
  duplicateInvoices: number;
  duplicatePayments: number;
  feedErrors: number;
  balanceMismatches: number;
  duplicateEmails: number;
}

export interface CheckResult extends Counts {
  /** Not counted in the final line: worth knowing. */
  notes: string[];
  failures: string[];
}

const money = (n: number | undefined) => (n === undefined ? 'none' : (n / 100).toFixed(2));

export function check(input: CheckInput): CheckResult {
  const { ledger } = input;
  const failures: string[] = [];
  const notes: string[] = [];
  const lost = new Set<string>();
  for (const [id, why] of input.failedLifecycles) {
    lost.add(id);
    failures.push(`lost: lifecycle ${id} did not finish its steps: ${why}`);
  }
  let duplicateInvoices = 0;
  let duplicatePayments = 0;
  let feedErrors = 0;
  let balanceMismatches = 0;
  let duplicateEmails = 0;

  const recordsOf = (inv: LedgerInvoice) => input.provider.invoices.filter((r) => r.accountId === input.accountOf.get(inv.companyId) && r.number === inv.number);
  const paymentsOn = (inv: LedgerInvoice) => input.provider.payments.filter((p) => p.accountId === input.accountOf.get(inv.companyId) && p.allocations.some((a) => a.invoiceNumber === inv.number));

  for (const inv of ledger.invoices.values()) {
    const where = `invoice ${inv.number} (company ${inv.companyId}, lifecycle ${inv.lifecycle})`;
    const expectedOutstanding = ledger.outstanding(inv);
    // A lifecycle that stopped part way is lost already; only duplicates are looked for in what it did.
    const finished = !input.failedLifecycles.has(inv.lifecycle);
    const lose = (why: string) => {
      if (!finished) return;
      lost.add(inv.lifecycle);
      failures.push(`lost: ${where}: ${why}`);
    };
    const mismatch = (why: string) => {
      if (!finished) return;
      balanceMismatches += 1;
      failures.push(`balance: ${where}: ${why}`);
    };

    // billflow's view of the invoice, against the ledger.
    const bf = input.billflow.get(key(inv.companyId, inv.number));
    if (bf === undefined || typeof bf === 'string') {
      lose(`GET /v1/invoices/${inv.number} failed: ${bf ?? 'not read'}`);
    } else {
      if (bf.status !== 'Final') lose(`billflow status ${bf.status}, expected Final`);
      if (bf.pendingChange) lose(`billflow still shows a pending change ${JSON.stringify(bf.pendingChange)}`);
      if (bf.held) lose('billflow still holds the bill');
      if (bf.total !== inv.total) lose(`billflow total ${money(bf.total)}, expected ${money(inv.total)}`);
      if (bf.prepaymentsApplied !== inv.prepaymentsApplied) lose(`billflow prepayments applied ${money(bf.prepaymentsApplied)}, expected ${money(inv.prepaymentsApplied)}`);
      if (bf.outstanding !== expectedOutstanding) mismatch(`billflow outstanding ${money(bf.outstanding)}, ledger ${money(expectedOutstanding)}`);
      if (inv.liveUrl && bf.payNowUrl !== inv.liveUrl) lose(`billflow Pay Now URL ${bf.payNowUrl}, expected ${inv.liveUrl}`);
    }

    // The provider's records of the invoice.
    const records = recordsOf(inv);
    const live = records.filter((r) => r.live);
    if (live.length > 1) {
      duplicateInvoices += live.length - 1;
      failures.push(`duplicate provider invoice: ${where}: ${live.length} live records (${live.map((r) => r.id).join(', ')})`);
    }
    if (records.length > inv.providerRecords) {
      duplicateInvoices += records.length - inv.providerRecords - Math.max(0, live.length - 1);
      failures.push(`duplicate provider invoice: ${where}: ${records.length} records made, expected ${inv.providerRecords} (${records.map((r) => `${r.id}${r.live ? '' : ' deleted'}`).join(', ')})`);
    }
    const rec = live[0];
    if (!rec) {
      lose('no live provider record');
    } else {
      if (rec.amount !== inv.total) mismatch(`provider amount ${money(rec.amount)}, expected ${money(inv.total)}`);
      if (rec.outstanding !== Math.max(0, expectedOutstanding)) mismatch(`provider outstanding ${money(rec.outstanding)}, ledger ${money(expectedOutstanding)}`);
      if (rec.amount !== rec.paid + rec.outstanding) mismatch(`provider books do not add up: amount ${money(rec.amount)} != paid ${money(rec.paid)} + outstanding ${money(rec.outstanding)}`);
    }
    for (const url of inv.deadUrls) if (input.urlStatus.get(url) !== 410) lose(`old Pay Now URL ${url} answers ${input.urlStatus.get(url)}, expected 410`);
    if (inv.liveUrl && input.urlStatus.get(inv.liveUrl) !== 200) lose(`Pay Now URL ${inv.liveUrl} answers ${input.urlStatus.get(inv.liveUrl)}, expected 200`);

    // Payments billflow itself makes at the provider: Quick Pay, and each applied prepayment made again.
    const onIt = paymentsOn(inv);
    for (const [method, expected] of [
      ['quickpay', inv.quickPays],
      ['prepayment', inv.prepaymentRecreations],
    ] as const) {
      const made = onIt.filter((p) => p.method === method);
      if (made.length > expected) {
        duplicatePayments += made.length - expected;
        failures.push(`duplicate payment: ${where}: ${made.length} ${method} payments at the provider, expected ${expected} (${made.map((p) => `${p.id} ${money(p.amount)} ${p.status}`).join(', ')})`);
      } else if (made.length < expected) {
        lose(`${expected - made.length} ${method} payment(s) never reached the provider`);
      }
    }
  }

  // The payer's payments: each exactly once at the provider (found by the payer's reference).
  const expectedReceipts = new Map<string, string>();
  for (const p of ledger.payments) {
    const account = input.accountOf.get(p.companyId);
    const made = input.provider.payments.filter((x) => x.accountId === account && x.reference === p.ref);
    const where = `payment ${p.ref} (${p.allocations.map((a) => `${a.number} ${money(a.amount)}`).join(', ')}, fee ${money(p.fee)})`;
    if (made.length > 1) {
      duplicatePayments += made.length - 1;
      failures.push(`duplicate payment: ${where}: ${made.length} at the provider (${made.map((x) => x.id).join(', ')})`);
    }
    const one = made[0];
    if (!one) {
      lost.add(p.lifecycle);
      failures.push(`lost: ${where}: not at the provider`);
      continue;
    }
    const status = p.converted ? 'removed' : 'succeeded';
    if (one.status !== status) {
      balanceMismatches += 1;
      failures.push(`balance: ${where}: provider payment ${one.id} is ${one.status}, expected ${status}`);
    }
    const total = p.allocations.reduce((s, a) => s + a.amount, 0);
    expectedReceipts.set(`${p.companyId}|payment|${one.id}|`, `${where}: payment receipt of ${money(total)}`);
    if (p.fee > 0) expectedReceipts.set(`${p.companyId}|fee|${one.id}|`, `${where}: fee receipt of ${money(p.fee)}`);
    if (p.converted) for (const a of p.allocations) expectedReceipts.set(`${p.companyId}|prepayment|${one.id}|${a.number}`, `${where}: prepayment receipt for ${a.number}`);
  }
  // Quick Pay receipts: one per Quick Pay payment at the provider.
  for (const inv of ledger.invoices.values()) {
    if (inv.quickPays === 0) continue;
    for (const p of paymentsOn(inv)) {
      if (p.method === 'quickpay') expectedReceipts.set(`${inv.companyId}|payment|${p.id}|`, `Quick Pay ${p.id} on ${inv.number}: payment receipt`);
    }
  }

  // The feed, as the ERP reader received it, and billflow's receipts table: every expected receipt once.
  const receiptKey = (r: Receipt) => `${r.companyId}|${r.kind}|${r.providerPaymentId}|${r.kind === 'prepayment' ? (r.invoiceNumber ?? '') : ''}`;
  const countBy = (rs: Receipt[]) => {
    const m = new Map<string, number>();
    for (const r of rs) m.set(receiptKey(r), (m.get(receiptKey(r)) ?? 0) + 1);
    return m;
  };
  const fed = countBy(input.feed);
  const table = countBy(input.receiptsTable);
  for (const [k, what] of expectedReceipts) {
    const n = fed.get(k) ?? 0;
    if (n !== 1) {
      feedErrors += Math.abs(n - 1);
      failures.push(`feed: ${what}: received ${n} times by the feed reader, billflow's receipts table has ${table.get(k) ?? 0}`);
    }
  }
  for (const [k, n] of fed) {
    if (expectedReceipts.has(k)) continue;
    feedErrors += n;
    failures.push(`feed: unexpected receipt ${k} received ${n} times`);
  }
  for (const [k, n] of table) {
    if (!fed.has(k) && !expectedReceipts.has(k)) {
      feedErrors += 1;
      failures.push(`feed: receipt ${k} is in billflow's receipts table (${n}) but the feed reader never got it`);
    }
  }

  // Mail: one invoice email per revision. Message-IDs are `<company.number.rN@billflow>`.
  const perInvoice = new Map<string, Set<string>>();
  const seen = new Map<string, number>();
  for (const id of input.messageIds) {
    seen.set(id, (seen.get(id) ?? 0) + 1);
    const m = /^<([^.]+)\.(.+)\.r(\d+)@billflow>$/.exec(id);
    if (!m) continue;
    const k = key(m[1]!, m[2]!);
    if (!perInvoice.has(k)) perInvoice.set(k, new Set());
    perInvoice.get(k)!.add(m[3]!);
  }
  let missing = 0;
  for (const inv of ledger.invoices.values()) {
    const got = perInvoice.get(key(inv.companyId, inv.number))?.size ?? 0;
    if (got > inv.emails) {
      duplicateEmails += got - inv.emails;
      failures.push(`duplicate email: invoice ${inv.number} (company ${inv.companyId}): ${got} invoice emails with distinct Message-IDs, expected ${inv.emails}`);
    } else if (got < inv.emails && !input.failedLifecycles.has(inv.lifecycle)) {
      missing += inv.emails - got;
      notes.push(`invoice ${inv.number}: ${got} of ${inv.emails} invoice emails arrived`);
    }
  }
  const resent = [...seen.values()].filter((n) => n > 1).reduce((s, n) => s + n - 1, 0);
  notes.unshift(`mail: ${input.messageIds.length} messages, ${missing} expected invoice emails missing, ${resent} resent with the same Message-ID`);

  return { lost: lost.size, duplicateInvoices, duplicatePayments, feedErrors, balanceMismatches, duplicateEmails, notes, failures };
}
