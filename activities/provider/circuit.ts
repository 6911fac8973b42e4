/**
 * A circuit breaker per provider account, in the activity layer so the workflows are unchanged.
 * After `failures` outages in a row (5xx, 429, no answer) within `windowMs`, the circuit opens:
 * provider calls then fail fast with a retryable activity failure without reaching the provider,
 * and Temporal's retry backoff waits (a change shows as `pendingChange`, answered 202, as with a
 * slow provider). Once `cooldownMs` has passed, one call is let through as a probe (half-open): its
 * success closes the circuit, its failure opens it again. The state is a PostgreSQL row per
 * account (`provider_circuits`), so every worker sees the same circuit.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../../lib/db.js';
import { ProviderError, type PaymentProvider } from './provider.js';

export interface CircuitSettings {
  /** Outages in a row that open the circuit; 0 turns the breaker off. */
  failures: number;
  windowMs: number;
  cooldownMs: number;
}

/** Longer than a provider call may take (15 s), so a probe's lease outlives it; a probe whose worker died is replaced after it. */
const PROBE_LEASE_SECONDS = 30;

type CircuitState = 'closed' | 'open' | 'half-open';

/**
 * The breaker's key: the provider account. A Stripe account is named by its secret key alone, so
 * its key is the company's (a digest of the key would change with every key rotation).
 */
export function circuitKey(a: { kind: string; url: string | null; accountId: string | null; companyId: string }): string {
  const account = a.kind !== 'stripe' && a.accountId ? `account ${a.accountId}` : `company ${a.companyId}`;
  return `${a.kind} ${a.url ?? ''} ${account}`;
}

/** An outage, as opposed to the provider's answer (a 4xx is an answer: the provider is up). */
function isOutage(e: unknown): boolean {
  return e instanceof ProviderError && e.retryable;
}

interface Row {
  state: CircuitState;
  failures: number;
  opened_at: Date | null;
  probe_after: Date | null;
}

export class Circuit {
  constructor(
    private readonly sql: Sql,
    private readonly key: string,
    private readonly settings: CircuitSettings,
  ) {}

  /** Runs one provider call through the breaker. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.settings.failures <= 0) return fn();
    const clean = await this.admit();
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      if (isOutage(e)) await this.failed(e as Error);
      else if (!clean) await this.close();
      throw e;
    }
    if (!clean) await this.close();
    return result;
  }

  /** Lets the call through (true when the circuit is closed with no failure counted), or refuses it. */
  private async admit(): Promise<boolean> {
    const [row] = await this.sql<Row[]>`SELECT state, failures, opened_at, probe_after FROM provider_circuits WHERE account_key = ${this.key}`;
    if (!row || row.state === 'closed') return !row || row.failures === 0;
    // Open past its cool-down, or half-open with a probe that has outlived its lease: this call is the probe.
    const [probe] = await this.sql`
      UPDATE provider_circuits SET state = 'half-open', probe_until = now() + make_interval(secs => ${PROBE_LEASE_SECONDS}), updated_at = now()
      WHERE account_key = ${this.key}
        AND ((state = 'open' AND probe_after <= now()) OR (state = 'half-open' AND probe_until < now()))
      RETURNING 1`;
    if (probe) return false;
    const [refused] = await this.sql<{ failures: number; last_failure: string | null }[]>`
      UPDATE provider_circuits SET refused = refused + 1 WHERE account_key = ${this.key} RETURNING failures, last_failure`;
    const why = row.state === 'half-open' ? 'a probe call is under way' : `it opened at ${row.opened_at?.toISOString()}; the first call after ${row.probe_after?.toISOString()} probes it`;
    throw ApplicationFailure.retryable(
      `provider circuit open (${refused?.failures ?? row.failures} outages in a row, the last: ${refused?.last_failure ?? 'unknown'}): not called, ${why}`,
      'ProviderCircuitOpen',
    );
  }

  private async failed(e: Error): Promise<void> {
    const windowSecs = this.settings.windowMs / 1000;
    const why = e.message.slice(0, 500);
    await this.sql.begin(async (tx) => {
      await tx`
        INSERT INTO provider_circuits (account_key, failures, window_started_at, last_failure, last_failure_at)
        VALUES (${this.key}, 1, now(), ${why}, now())
        ON CONFLICT (account_key) DO UPDATE SET
          failures = CASE WHEN provider_circuits.failures = 0 OR provider_circuits.window_started_at < now() - make_interval(secs => ${windowSecs})
            THEN 1 ELSE provider_circuits.failures + 1 END,
          window_started_at = CASE WHEN provider_circuits.failures = 0 OR provider_circuits.window_started_at < now() - make_interval(secs => ${windowSecs})
            THEN now() ELSE provider_circuits.window_started_at END,
          last_failure = EXCLUDED.last_failure, last_failure_at = now(), updated_at = now()`;
      // A failed probe opens it again; so do enough outages in a row while closed. An open one keeps its time.
      await tx`
        UPDATE provider_circuits SET state = 'open', opened_at = now(), probe_after = now() + make_interval(secs => ${this.settings.cooldownMs / 1000}),
          probe_until = NULL, refused = 0, times_opened = times_opened + 1, updated_at = now()
        WHERE account_key = ${this.key} AND (state = 'half-open' OR (state = 'closed' AND failures >= ${this.settings.failures}))`;
    });
  }

  /** The provider answered: the outages in a row are over. */
  private async close(): Promise<void> {
    await this.sql`
      UPDATE provider_circuits SET state = 'closed', failures = 0, window_started_at = NULL, opened_at = NULL, probe_after = NULL, probe_until = NULL, updated_at = now()
      WHERE account_key = ${this.key} AND (state <> 'closed' OR failures > 0)`;
  }
}

/** The provider with every call of the interface going through the account's circuit. */
export function guarded(p: PaymentProvider, circuit: Circuit): PaymentProvider {
  const through =
    <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
    (...args: A) =>
      circuit.call(() => fn.apply(p, args));
  return {
    kind: p.kind,
    capabilities: p.capabilities,
    ensureCustomer: through(p.ensureCustomer),
    createInvoice: through(p.createInvoice),
    attachPdf: through(p.attachPdf),
    updateInvoice: through(p.updateInvoice),
    removeInvoice: through(p.removeInvoice),
    getInvoice: through(p.getInvoice),
    listInvoices: through(p.listInvoices),
    listPayments: through(p.listPayments),
    recordPayment: through(p.recordPayment),
    removePayment: through(p.removePayment),
    processingFee: through(p.processingFee),
  };
}

/** The circuit of a company's account as the API shows it. */
export interface CircuitView {
  state: CircuitState;
  failures: number;
  openedAt: string | null;
  /** When an open circuit lets its next call through as a probe. */
  probeAfter: string | null;
  lastFailure: string | null;
  lastFailureAt: string | null;
  /** Calls refused without reaching the provider since it last opened. */
  refused: number;
  timesOpened: number;
}

export async function circuitView(sql: Sql, key: string): Promise<CircuitView> {
  const [row] = await sql<
    { state: CircuitState; failures: number; opened_at: Date | null; probe_after: Date | null; last_failure: string | null; last_failure_at: Date | null; refused: string; times_opened: number }[]
  >`
    SELECT state, failures, opened_at, probe_after, last_failure, last_failure_at, refused, times_opened FROM provider_circuits WHERE account_key = ${key}`;
  if (!row) return { state: 'closed', failures: 0, openedAt: null, probeAfter: null, lastFailure: null, lastFailureAt: null, refused: 0, timesOpened: 0 };
  return {
    state: row.state,
    failures: row.failures,
    openedAt: row.opened_at?.toISOString() ?? null,
    probeAfter: row.probe_after?.toISOString() ?? null,
    lastFailure: row.last_failure,
    lastFailureAt: row.last_failure_at?.toISOString() ?? null,
    refused: Number(row.refused),
    timesOpened: row.times_opened,
  };
}
