/** How activities reach a company's provider account, and how provider errors become activity failures. */
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../../lib/db.js';
import { ProviderError, type ProviderAccount } from './billpay.js';

export async function providerAccount(sql: Sql, companyId: string): Promise<ProviderAccount> {
  const [row] = await sql<{ url: string | null; account_id: string | null; api_key: string | null; secret: string | null }[]>`
    SELECT provider_url AS url, provider_account_id AS account_id, provider_api_key AS api_key, provider_webhook_secret AS secret
    FROM companies WHERE id = ${companyId}`;
  if (!row?.url || !row.account_id || !row.api_key || !row.secret) {
    throw ApplicationFailure.nonRetryable(`company ${companyId} has no provider account configured`, 'NoProviderAccount');
  }
  return { url: row.url, accountId: row.account_id, apiKey: row.api_key, webhookSecret: row.secret };
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
