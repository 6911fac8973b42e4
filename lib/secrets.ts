/**
 * Secrets at rest: provider API keys, webhook secrets (the provider's, and the signing secrets of
 * the ERP's webhook endpoints) and stored Idempotency-Key answers are stored AES-256-GCM encrypted under
 * BILLFLOW_SECRET_KEY. A stored value is `bfenc:v1:<key id>:<iv>:<ciphertext+tag>` (base64url), the
 * key id being a fingerprint of the key that sealed it, so a value sealed under the previous key
 * still opens during a rotation. Each value is bound (GCM additional data) to its column and
 * row (company, or endpoint): a ciphertext copied onto another row or column does not open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Sql } from './db.js';

const PREFIX = 'bfenc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretKey {
  id: string;
  key: Buffer;
}

export interface Keyring {
  /** Seals every new value. */
  current: SecretKey;
  /** Open values sealed before a rotation. */
  previous: readonly SecretKey[];
}

/** A key from its base64 form (32 bytes). `name` says where it came from in errors. */
export function parseSecretKey(base64: string, name = 'BILLFLOW_SECRET_KEY'): SecretKey {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== 32) throw new Error(`${name} must be 32 bytes, base64-encoded (got ${key.length} bytes)`);
  // The fingerprint names the key without revealing it (SHA-256 of a random 256-bit key).
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 12), key };
}

export function newSecretKey(): string {
  return randomBytes(32).toString('base64');
}

export function keyring(current: string, previous?: string): Keyring {
  return {
    current: parseSecretKey(current),
    previous: previous ? [parseSecretKey(previous, 'BILLFLOW_SECRET_KEY_PREVIOUS')] : [],
  };
}

/** The API's and worker's keyring, from BILLFLOW_SECRET_KEY (and BILLFLOW_SECRET_KEY_PREVIOUS during a rotation). */
export function keyringFromEnv(env: Record<string, string | undefined> = process.env): Keyring {
  const current = env.BILLFLOW_SECRET_KEY;
  if (!current) throw new Error('BILLFLOW_SECRET_KEY is not set (npm start generates one into the data folder)');
  return keyring(current, env.BILLFLOW_SECRET_KEY_PREVIOUS || undefined);
}

/** Where a stored value lives: the additional data its ciphertext is bound to. */
export type SecretField = 'provider_api_key' | 'provider_webhook_secret' | 'provider_webhook_secret_previous';
const SECRET_FIELDS: readonly SecretField[] = ['provider_api_key', 'provider_webhook_secret', 'provider_webhook_secret_previous'];

/** The signing secrets of the ERP's webhook endpoints (columns of webhook_endpoints, bound to the endpoint id). */
export type EndpointSecretField = 'secret' | 'secret_previous';
const ENDPOINT_SECRET_FIELDS: readonly EndpointSecretField[] = ['secret', 'secret_previous'];

/** A stored value's place: `<table>.<column>:<row id>`, the additional data its ciphertext is bound to. */
type Place = string;
const companyPlace = (field: SecretField, companyId: string): Place => `companies.${field}:${companyId}`;
const endpointPlace = (field: EndpointSecretField, endpointId: string): Place => `webhook_endpoints.${field}:${endpointId}`;
const answerPlace = (scope: string, key: string): Place => `idempotency_keys.body:${scope}:${key}`;
/** How errors name a place: "companies.provider_api_key of acme". */
const named = (place: Place) => place.replace(/:/, ' of ');

function isSealed(stored: string): boolean {
  return stored.startsWith(PREFIX);
}

/** The key id a stored value was sealed under (null for plain text). */
export function sealedKeyId(stored: string): string | null {
  return isSealed(stored) ? (stored.slice(PREFIX.length).split(':', 1)[0] ?? null) : null;
}

export function seal(ring: Keyring, field: SecretField, companyId: string, plain: string): string {
  return sealAt(ring, companyPlace(field, companyId), plain);
}

export function open(ring: Keyring, field: SecretField, companyId: string, stored: string): string {
  return openAt(ring, companyPlace(field, companyId), stored);
}

export function sealEndpointSecret(ring: Keyring, field: EndpointSecretField, endpointId: string, plain: string): string {
  return sealAt(ring, endpointPlace(field, endpointId), plain);
}

export function openEndpointSecret(ring: Keyring, field: EndpointSecretField, endpointId: string, stored: string): string {
  return openAt(ring, endpointPlace(field, endpointId), stored);
}

/**
 * An Idempotency-Key's stored answer, sealed as a whole: answers carry secrets (a new company's
 * or organisation's API key) and are kept for a day to be replayed. Bound to its scope and key.
 */
export function sealAnswer(ring: Keyring, scope: string, key: string, body: unknown): string {
  return sealAt(ring, answerPlace(scope, key), JSON.stringify(body ?? null));
}

export function openAnswer(ring: Keyring, scope: string, key: string, stored: string): unknown {
  return JSON.parse(openAt(ring, answerPlace(scope, key), stored));
}

function sealAt(ring: Keyring, place: Place, plain: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', ring.current.key, iv);
  cipher.setAAD(Buffer.from(place, 'utf8'));
  const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return `${PREFIX}${ring.current.id}:${iv.toString('base64url')}:${body.toString('base64url')}`;
}

function openAt(ring: Keyring, place: Place, stored: string): string {
  if (!isSealed(stored)) throw new Error(`${named(place)} is not encrypted (the API encrypts plain values when it starts)`);
  const [keyId, ivText, bodyText] = stored.slice(PREFIX.length).split(':');
  const key = [ring.current, ...ring.previous].find((k) => k.id === keyId)?.key;
  if (!key) {
    throw new Error(`${named(place)} is encrypted under key ${keyId}, which is neither BILLFLOW_SECRET_KEY (${ring.current.id}) nor BILLFLOW_SECRET_KEY_PREVIOUS`);
  }
  const iv = Buffer.from(ivText ?? '', 'base64url');
  const body = Buffer.from(bodyText ?? '', 'base64url');
  if (iv.length !== IV_BYTES || body.length < TAG_BYTES) throw new Error(`${named(place)} is not a valid encrypted value`);
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(Buffer.from(place, 'utf8'));
  decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(body.subarray(0, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    throw new Error(`${named(place)} does not decrypt: it was altered, or belongs to another row or column`);
  }
}

export function openOrNull(ring: Keyring, field: SecretField, companyId: string, stored: string | null): string | null {
  return stored === null ? null : open(ring, field, companyId, stored);
}

/**
 * Seals every stored secret that is not sealed under the keyring's current key: plain text left by
 * an earlier billflow (the API runs this at start; idempotent) or, with `rotate`, values sealed under
 * a previous key (`npm run rotate-secret-key`). One transaction: all or nothing. Returns how many
 * values were sealed.
 */
export async function sealStoredSecrets(sql: Sql, ring: Keyring, opts: { rotate?: boolean } = {}): Promise<number> {
  return sql.begin(async (tx) => {
    // At start only plain values are locked and read; a rotation reads every row.
    const plain = tx`provider_api_key NOT LIKE ${`${PREFIX}%`} OR provider_webhook_secret NOT LIKE ${`${PREFIX}%`}
      OR provider_webhook_secret_previous NOT LIKE ${`${PREFIX}%`}`;
    const rows = await tx<({ id: string } & Record<SecretField, string | null>)[]>`
      SELECT id, ${tx(SECRET_FIELDS as SecretField[])} FROM companies WHERE ${opts.rotate ? tx`true` : plain} ORDER BY id FOR UPDATE`;
    let sealed = 0;
    for (const row of rows) {
      const changed: Partial<Record<SecretField, string>> = {};
      for (const field of SECRET_FIELDS) {
        const stored = row[field];
        if (stored === null) continue;
        if (!isSealed(stored)) changed[field] = seal(ring, field, row.id, stored);
        else if (opts.rotate && sealedKeyId(stored) !== ring.current.id) changed[field] = seal(ring, field, row.id, open(ring, field, row.id, stored));
      }
      if (Object.keys(changed).length === 0) continue;
      await tx`UPDATE companies SET ${tx(changed)} WHERE id = ${row.id}`;
      sealed += Object.keys(changed).length;
    }
    // Endpoint secrets are sealed when made: only a rotation has anything to do.
    const endpoints = opts.rotate ? await tx<({ id: string } & Record<EndpointSecretField, string | null>)[]>`SELECT id, secret, secret_previous FROM webhook_endpoints ORDER BY id FOR UPDATE` : [];
    for (const row of endpoints) {
      const changed: Partial<Record<EndpointSecretField, string>> = {};
      for (const field of ENDPOINT_SECRET_FIELDS) {
        const stored = row[field];
        if (stored !== null && sealedKeyId(stored) !== ring.current.id) {
          changed[field] = sealEndpointSecret(ring, field, row.id, openEndpointSecret(ring, field, row.id, stored));
        }
      }
      if (Object.keys(changed).length === 0) continue;
      await tx`UPDATE webhook_endpoints SET ${tx(changed)} WHERE id = ${row.id}`;
      sealed += Object.keys(changed).length;
    }
    // Stored Idempotency-Key answers (jsonb holding the sealed string): plain ones an earlier
    // billflow kept, and with `rotate` those under a previous key.
    const answers = await tx<{ company_id: string; key: string; body: unknown }[]>`
      SELECT company_id, key, body FROM idempotency_keys
      WHERE body IS NOT NULL AND (${opts.rotate ? tx`true` : tx`false`} OR jsonb_typeof(body) <> 'string' OR body #>> '{}' NOT LIKE ${`${PREFIX}%`})
      ORDER BY company_id, key FOR UPDATE`;
    for (const row of answers) {
      const stored = typeof row.body === 'string' && isSealed(row.body) ? row.body : null;
      if (stored && sealedKeyId(stored) === ring.current.id) continue;
      const plain = stored ? openAnswer(ring, row.company_id, row.key, stored) : row.body;
      await tx`UPDATE idempotency_keys SET body = ${tx.json(sealAnswer(ring, row.company_id, row.key, plain))} WHERE company_id = ${row.company_id} AND key = ${row.key}`;
      sealed += 1;
    }
    return sealed;
  });
}
