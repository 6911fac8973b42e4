/**
 * The mix of invoice lifecycles, each driven through billflow's HTTP API as an ERP would, with
 * payers paying through the provider's payments API. Every step is written into the ledger as
 * intended before it is asked for, so a step that billflow loses shows up in the check.
 */
import type { Call, Json } from './http.js';
import type { Ledger, LedgerInvoice } from './ledger.js';

export interface Company {
  id: string;
  apiKey: string;
  account: { id: string; apiKey: string };
  clients: { id: string; email: string }[];
  /** Bills above this total are exceptional and held. */
  heldAbove: number;
  fixedFee: number;
}

export interface Env {
  call: Call;
  apiUrl: string;
  sandboxUrl: string;
  ledger: Ledger;
  today: string;
  dueDate: string;
}

export type ScenarioKind = 'paid-in-full' | 'partial' | 'multi-invoice' | 'reissue-prepayment' | 'draft-final' | 'quick-pay' | 'held-release';

/** How often each kind appears in the mix. */
export const MIX: [ScenarioKind, number][] = [
  ['paid-in-full', 3],
  ['partial', 2],
  ['multi-invoice', 2],
  ['reissue-prepayment', 2],
  ['draft-final', 1],
  ['quick-pay', 2],
  ['held-release', 1],
];

/** A step billflow answered in a way an ERP cannot go on from. */
export class StepFailed extends Error {}

function expectStatus(what: string, got: { status: number; body: Json }, ...ok: number[]): Json {
  if (!ok.includes(got.status))
    throw new StepFailed(
      `${what} answered ${got.status} ${String(got.body.type ?? '')
        .split('/')
        .pop()}: ${String(got.body.detail ?? got.body.text ?? JSON.stringify(got.body)).slice(0, 300)}`,
    );
  return got.body;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
/** A whole number of dollars between lo and hi, in cents. */
const dollars = (lo: number, hi: number) => (lo + Math.floor(Math.random() * (hi - lo + 1))) * 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Lifecycle {
  /** Answers an ERP could not have gone on from, that the run stepped over to see the rest. */
  readonly problems: string[] = [];

  constructor(
    readonly id: string,
    readonly kind: ScenarioKind,
    private readonly env: Env,
    private readonly co: Company,
  ) {}

  private erp(method: string, path: string, body?: unknown, idempotencyKey?: string) {
    return this.env.call(this.env.apiUrl, method, path, {
      key: this.co.apiKey,
      body,
      headers: { 'x-request-id': `${this.id}-${method}-${path.split('/').pop()}`.replace(/[^\w.:-]/g, '_').slice(0, 120) },
      ...(idempotencyKey ? { idempotencyKey } : {}),
    });
  }

  private async create(n: number, clientId: string, total: number): Promise<LedgerInvoice> {
    const number = `${this.id}-${n}`;
    const inv = this.env.ledger.invoice({ lifecycle: this.id, companyId: this.co.id, number, clientId, total });
    const body = { number, clientId, invoiceDate: this.env.today, dueDate: this.env.dueDate, lines: [{ description: `Engineering services (${this.kind})`, amount: total }] };
    const created = await this.erp('POST', '/v1/invoices', body, `create:${number}`);
    if (created.status === 409 && String(created.body.type).endsWith('invoice-exists')) {
      // Only this lifecycle uses the number: its own earlier attempt made it, and the retry with the same key was refused.
      // An ERP would stop here; the run notes it and goes on, so that the rest of the lifecycle is still exercised.
      this.problems.push(`POST /v1/invoices ${number}: a retry with the same Idempotency-Key answered 409 invoice-exists (the first attempt had created it)`);
      return inv;
    }
    // 200: a retry of a create whose first answer was lost gets the invoice it made.
    expectStatus(`POST /v1/invoices ${number}`, created, 201, 200);
    return inv;
  }

  /**
   * A status change; a 202 (still running, e.g. waiting out the provider) is followed until it
   * completes. A change refused because the provider could not be reached (503
   * provider-unavailable, or a 202 whose invoice then shows the refusal in lastFailure) changed
   * nothing: as an ERP would, it is asked again later as a new request (a new Idempotency-Key).
   */
  private async status(inv: LedgerInvoice, to: 'Final' | 'Draft' | 'Reissue', step: number): Promise<Json> {
    const what = `POST /v1/invoices/${inv.number}/status ${to}`;
    for (let attempt = 0; attempt < 5; attempt++) {
      const asked = new Date().toISOString();
      const answer = await this.erp('POST', `/v1/invoices/${inv.number}/status`, { status: to }, `status:${inv.number}:${step}:${to}${attempt ? `:again-${attempt}` : ''}`);
      if (answer.status === 200) {
        if (answer.body.status !== to) throw new StepFailed(`${what} answered 200 with status ${answer.body.status}`);
        return answer.body;
      }
      if (answer.status === 503) {
        await sleep(2_000);
        continue;
      }
      expectStatus(what, answer, 202);
      const deadline = Date.now() + 180_000;
      for (;;) {
        const now = await this.erp('GET', `/v1/invoices/${inv.number}`);
        if (now.status === 200 && now.body.status === to && !now.body.pendingChange) return now.body;
        const failure = now.body.lastFailure as { to?: string; at?: string } | null | undefined;
        if (now.status === 200 && !now.body.pendingChange && failure?.to === to && String(failure.at) >= asked) break;
        if (Date.now() > deadline) throw new StepFailed(`${what} answered 202 and had not completed 180 s later (status ${now.body.status}, pendingChange ${JSON.stringify(now.body.pendingChange)})`);
        await sleep(1_000);
      }
      await sleep(2_000);
    }
    throw new StepFailed(`${what} was refused 5 times (the provider could not be reached)`);
  }

  private async final(inv: LedgerInvoice, step: number, opts: { held?: boolean } = {}): Promise<Json> {
    // Intended before it is asked for: a Final that half happens still owes its email and provider record.
    if (!opts.held) {
      inv.emails += 1;
      if (inv.liveUrl === null) inv.providerRecords += 1;
    }
    const body = await this.status(inv, 'Final', step);
    if (Boolean(body.held) !== Boolean(opts.held)) throw new StepFailed(`Final of ${inv.number} answered held=${body.held}, expected ${Boolean(opts.held)}`);
    if (!opts.held) {
      if (typeof body.payNowUrl !== 'string') throw new StepFailed(`Final of ${inv.number} answered without a Pay Now URL`);
      inv.liveUrl = body.payNowUrl;
    }
    return body;
  }

  /** The payer pays at the provider, as the Pay Now page does: one payment over one or more invoices. */
  private async pay(parts: { inv: LedgerInvoice; amount: number }[], fee: number, n: number): Promise<void> {
    const ref = `${this.id}-pay${n}`;
    const records: { id: string; customerId: string }[] = [];
    for (const { inv } of parts) {
      const found = await this.env.call(this.env.sandboxUrl, 'GET', `/v1/invoices?number=${encodeURIComponent(inv.number)}`, { key: this.co.account.apiKey });
      const rec = (expectStatus(`provider GET /v1/invoices?number=${inv.number}`, found, 200).data as { id: string; customerId: string }[])[0];
      if (!rec) throw new StepFailed(`the provider has no live record of ${inv.number} for the payer to pay`);
      records.push(rec);
    }
    this.env.ledger.payment({ lifecycle: this.id, ref, companyId: this.co.id, allocations: parts.map((p) => ({ number: p.inv.number, amount: p.amount })), fee });
    const body = { customerId: records[0]!.customerId, allocations: parts.map((p, i) => ({ invoiceId: records[i]!.id, amount: p.amount })), method: 'card', fee, reference: ref };
    const paid = await this.env.call(this.env.sandboxUrl, 'POST', '/v1/payments', { key: this.co.account.apiKey, body, idempotencyKey: `payer:${ref}` });
    expectStatus(`provider POST /v1/payments ${ref}`, paid, 201);
  }

  async run(): Promise<void> {
    const client = pick(this.co.clients).id;
    const total = dollars(200, 9_000);
    switch (this.kind) {
      case 'paid-in-full': {
        const inv = await this.create(1, client, total);
        await this.final(inv, 1);
        await this.pay([{ inv, amount: total }], 0, 1);
        return;
      }
      case 'partial': {
        const inv = await this.create(1, client, total);
        await this.final(inv, 1);
        const first = Math.round(total * 0.3);
        await this.pay([{ inv, amount: first }], this.co.fixedFee, 1);
        await this.pay([{ inv, amount: Math.round(total * 0.25) }], 0, 2);
        return;
      }
      case 'multi-invoice': {
        const invs: LedgerInvoice[] = [];
        for (let i = 1; i <= 3; i++) invs.push(await this.create(i, client, dollars(100, 3_000)));
        for (const inv of invs) await this.final(inv, 1);
        await this.pay(
          invs.map((inv) => ({ inv, amount: inv.total })),
          this.co.fixedFee,
          1,
        );
        return;
      }
      case 'reissue-prepayment': {
        const inv = await this.create(1, client, total);
        await this.final(inv, 1);
        const paid = Math.round(total * 0.4);
        await this.pay([{ inv, amount: paid }], 0, 1);
        await this.status(inv, 'Reissue', 2);
        this.env.ledger.convertPayments(inv);
        const revised = total + dollars(10, 500);
        const rev = await this.erp('POST', `/v1/invoices/${inv.number}/revision`, { lines: [{ description: 'Engineering services (revised)', amount: revised }] }, `revise:${inv.number}`);
        expectStatus(`POST /v1/invoices/${inv.number}/revision`, rev, 200);
        inv.total = revised;
        const pre = expectStatus('GET /v1/prepayments', await this.erp('GET', `/v1/prepayments?clientId=${encodeURIComponent(client)}`), 200);
        const credit = (pre.data as { id: string; remaining: number; origin: { invoiceNumber: string } }[]).find((p) => p.origin.invoiceNumber === inv.number);
        if (!credit || credit.remaining !== paid) throw new StepFailed(`no prepayment of ${paid} from ${inv.number} (found ${JSON.stringify(credit)})`);
        inv.prepaymentsApplied += paid;
        inv.prepaymentRecreations += 1;
        const applied = await this.erp('POST', `/v1/invoices/${inv.number}/prepayments`, { prepaymentId: credit.id, amount: paid }, `prepay:${inv.number}:${credit.id}`);
        expectStatus(`POST /v1/invoices/${inv.number}/prepayments`, applied, 200);
        await this.final(inv, 3);
        return;
      }
      case 'draft-final': {
        const inv = await this.create(1, client, total);
        await this.final(inv, 1);
        const first = inv.liveUrl!;
        await this.status(inv, 'Draft', 2);
        inv.deadUrls.push(first);
        inv.liveUrl = null;
        await this.final(inv, 3);
        if (inv.liveUrl === first) throw new StepFailed(`Final after Draft kept the old Pay Now URL ${first}`);
        await this.pay([{ inv, amount: Math.round(total / 2) }], 0, 1);
        return;
      }
      case 'quick-pay': {
        const inv = await this.create(1, client, total);
        await this.final(inv, 1);
        await this.pay([{ inv, amount: Math.round(total * 0.25) }], 0, 1);
        // Quick Pay settles whatever is unsettled once billflow knows of the payment; wait for that, as a clerk would look first.
        await this.until(inv, (b) => b.outstanding === this.env.ledger.outstanding(inv));
        inv.quickPays += 1;
        inv.quickPaid = this.env.ledger.outstanding(inv);
        const body = { paymentType: 'Check', paymentMethod: 'check', issuedOn: this.env.today, category: 'Receivable', receivedByUser: 'chaos', receivedByUnit: 'AR' };
        expectStatus(`POST /v1/invoices/${inv.number}/quick-pay`, await this.erp('POST', `/v1/invoices/${inv.number}/quick-pay`, body, `quickpay:${inv.number}`), 200);
        return;
      }
      case 'held-release': {
        const inv = await this.create(1, client, this.co.heldAbove + dollars(100, 2_000));
        await this.final(inv, 1, { held: true });
        inv.emails += 1;
        inv.providerRecords += 1;
        const released = await this.erp('POST', `/v1/invoices/${inv.number}/release`, { by: 'chaos operator' }, `release:${inv.number}`);
        const body = expectStatus(`POST /v1/invoices/${inv.number}/release`, released, 200);
        inv.liveUrl = body.payNowUrl as string;
        await this.pay([{ inv, amount: inv.total }], this.co.fixedFee, 1);
        return;
      }
    }
  }

  private async until(inv: LedgerInvoice, ok: (b: Json) => boolean): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const now = await this.erp('GET', `/v1/invoices/${inv.number}`);
      if (now.status === 200 && ok(now.body)) return;
      if (Date.now() > deadline) throw new StepFailed(`invoice ${inv.number} did not show the payment within 120 s (outstanding ${now.body.outstanding}, ledger ${this.env.ledger.outstanding(inv)})`);
      await sleep(1_000);
    }
  }
}
