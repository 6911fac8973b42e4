/** How activities reach a company's provider account, and how provider errors become activity failures. */
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../../lib/db.js';
import { open, type Keyring } from '../../lib/secrets.js';
import { ProviderError, type ProviderAccount } from './billpay.js';

/** The account is read (and its key decrypted) inside the activity, so no secret ever travels in a workflow history. */
export async function providerAccount(sql: Sql, secrets: Keyring, companyId: string): Promise<ProviderAccount> {
  const [row] = await sql<{ url: string | null; account_id: string | null; api_key: string | null }[]>`
    SELECT provider_url AS url, provider_account_id AS account_id, provider_api_key AS api_key
    FROM companies WHERE id = ${companyId}`;
  if (!row?.url || !row.account_id || !row.api_key) {
    throw ApplicationFailure.nonRetryable(`company ${companyId} has no provider account configured`, 'NoProviderAccount');
  }
  return { url: row.url, accountId: row.account_id, apiKey: open(secrets, 'provider_api_key', companyId, row.api_key) };
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
