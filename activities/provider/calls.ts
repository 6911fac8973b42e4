/** How activities reach a company's provider account, and how provider errors become activity failures. */
import { ApplicationFailure } from '@temporalio/common';
import type { ProviderKind } from '../../domain/provider.js';
import type { Sql } from '../../lib/db.js';
import type { WorkerMetrics } from '../../lib/metrics.js';
import { open, type Keyring } from '../../lib/secrets.js';
import { BillPayClient, billPayWebhooks } from './billpay.js';
import { Circuit, circuitKey, guarded, type CircuitSettings } from './circuit.js';
import { StripeProvider, stripeWebhooks } from './stripe.js';
import { ProviderError, type PaymentProvider, type ProviderAccount, type WebhookVerifier } from './provider.js';

/** The account is read (and its key decrypted) inside the activity, so no secret ever travels in a workflow history. */
async function providerAccount(sql: Sql, secrets: Keyring, companyId: string): Promise<ProviderAccount> {
  const [row] = await sql<{ kind: ProviderKind; url: string | null; account_id: string | null; api_key: string | null }[]>`
    SELECT provider_kind AS kind, provider_url AS url, provider_account_id AS account_id, provider_api_key AS api_key
    FROM companies WHERE id = ${companyId}`;
  // A Stripe account is named by its secret key alone.
  if (!row?.url || !row.api_key || (row.kind !== 'stripe' && !row.account_id)) {
    throw ApplicationFailure.nonRetryable(`company ${companyId} has no provider account configured`, 'NoProviderAccount');
  }
  return { kind: row.kind, url: row.url, accountId: row.account_id ?? '', apiKey: open(secrets, 'provider_api_key', companyId, row.api_key) };
}

/** The adapter for the company's provider kind. */
function providerFor(account: ProviderAccount): PaymentProvider {
  switch (account.kind) {
    case 'billpay':
      return new BillPayClient(account);
    case 'stripe':
      return new StripeProvider(account);
  }
}

/** How the provider kind's webhooks are verified and read. */
export function webhookVerifierFor(kind: ProviderKind): WebhookVerifier {
  switch (kind) {
    case 'billpay':
      return billPayWebhooks;
    case 'stripe':
      return stripeWebhooks;
  }
}

/** The company's provider, ready to call, each call timed; through its account's circuit breaker when `circuit` is given. */
export async function companyProvider(sql: Sql, secrets: Keyring, companyId: string, metrics: WorkerMetrics, circuit?: CircuitSettings): Promise<PaymentProvider> {
  const account = await providerAccount(sql, secrets, companyId);
  // Timed inside the breaker: a call it refuses never reached the provider.
  const api = measured(providerFor(account), metrics);
  return circuit ? guarded(api, new Circuit(sql, circuitKey({ ...account, companyId }), circuit)) : api;
}

/** Every method of the adapter timed by operation (its name), and its failures counted: rejected (final) or unavailable (retried). */
function measured(api: PaymentProvider, metrics: WorkerMetrics): PaymentProvider {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        const labels = { provider: target.kind, operation: prop };
        const end = metrics.providerCallSeconds.startTimer(labels);
        try {
          const result = await method.apply(target, args);
          end({ outcome: 'ok' });
          return result;
        } catch (e) {
          end({ outcome: 'error' });
          metrics.providerCallErrors.inc({ ...labels, error: e instanceof ProviderError && !e.retryable ? 'rejected' : 'unavailable' });
          throw e;
        }
      };
    },
  });
}

/** Final provider refusals stop the retries; outages (5xx, network) keep retrying with backoff. */
export async function provider<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof ProviderError && !e.retryable) {
      throw ApplicationFailure.nonRetryable(`${what}: ${e.message}`, 'ProviderRejected', e.body);
    }
    throw e;
  }
}
