/**
 * Secrets at rest: provider API keys and webhook secrets are stored AES-256-GCM encrypted under
 * BILLFLOW_SECRET_KEY; plain values an earlier billflow stored are sealed at the API's start;
 * `npm run rotate-secret-key` re-encrypts everything under a new key; a rotated webhook secret keeps
 * verifying for its overlap window, proven with the real provider sandbox's deliveries.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connect, migrate, type Sql } from '../lib/db.js';
import { BILLFLOW_MIGRATIONS, ROOT } from '../lib/paths.js';
import { keyring, newSecretKey, open, openAnswer, openEndpointSecret, parseSecretKey, seal, sealAnswer, sealEndpointSecret, sealedKeyId, sealStoredSecrets } from '../lib/secrets.js';
import { SIGNATURE_HEADER, signPayload } from '../lib/signature.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { webhookDeliveries } from './settled.js';

describe('seal and open', () => {
  const ring = keyring(newSecretKey());

  it('round-trips with a fresh IV each time, bound to its company and column', () => {
    const a = seal(ring, 'provider_api_key', 'co-a', 'sk_test_123');
    const b = seal(ring, 'provider_api_key', 'co-a', 'sk_test_123');
    expect(a).not.toBe(b);
    expect(a).not.toContain('sk_test_123');
    expect(a.startsWith(`bfenc:v1:${ring.current.id}:`)).toBe(true);
    expect(open(ring, 'provider_api_key', 'co-a', a)).toBe('sk_test_123');
    // A 96-bit IV: 12 bytes, 16 characters of base64url.
    expect(a.split(':')[3]).toHaveLength(16);
    expect(() => open(ring, 'provider_api_key', 'co-b', a)).toThrow(/does not decrypt/);
    expect(() => open(ring, 'provider_webhook_secret', 'co-a', a)).toThrow(/does not decrypt/);
    // The tag's second-to-last character changed for another (1 in 64 seals had an 'A' there already).
    const flipped = a.slice(0, -2) + (a.at(-2) === 'A' ? 'B' : 'A') + a.slice(-1);
    expect(() => open(ring, 'provider_api_key', 'co-a', flipped)).toThrow(/does not decrypt|not a valid/);
    expect(() => open(keyring(newSecretKey()), 'provider_api_key', 'co-a', a)).toThrow(/encrypted under key/);
    expect(() => open(ring, 'provider_api_key', 'co-a', 'sk_test_plain')).toThrow(/not encrypted/);
  });

  it('opens values under the previous key during a rotation, and refuses keys that are not 32 bytes', () => {
    const old = newSecretKey();
    const sealedOld = seal(keyring(old), 'provider_api_key', 'co-a', 'sk_old');
    const rotated = keyring(newSecretKey(), old);
    expect(open(rotated, 'provider_api_key', 'co-a', sealedOld)).toBe('sk_old');
    expect(sealedKeyId(seal(rotated, 'provider_api_key', 'co-a', 'x'))).toBe(rotated.current.id);
    expect(() => parseSecretKey(Buffer.alloc(16).toString('base64'))).toThrow(/32 bytes/);
  });
});

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
});

const row = async (companyId: string) =>
  (
    await stack.sql<{ api_key: string; secret: string; previous: string | null; expires: Date | null }[]>`
      SELECT provider_api_key AS api_key, provider_webhook_secret AS secret, provider_webhook_secret_previous AS previous,
        provider_webhook_secret_previous_expires_at AS expires
      FROM companies WHERE id = ${companyId}`
  )[0]!;

describe('stored provider secrets', () => {
  it('are encrypted in the database, and the provider account still works through them', async () => {
    const r = await row(tenant.companyId);
    for (const [stored, plain, field] of [
      [r.api_key, tenant.account.apiKey, 'provider_api_key'],
      [r.secret, tenant.account.webhookSecret, 'provider_webhook_secret'],
    ] as const) {
      expect(stored).toMatch(/^bfenc:v1:/);
      expect(stored).not.toContain(plain);
      expect(open(stack.secrets, field, tenant.companyId, stored)).toBe(plain);
    }
    // A provider call made with the decrypted key: an invoice printed to Final gets its Pay Now URL.
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Key Test Ltd', email: 'ap@key.example' } })).status).toBe(201);
    const number = `SEC-${randomUUID().slice(0, 8)}`;
    const body = { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Audit', amount: 10_000 }] };
    expect((await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, body })).status).toBe(201);
    const final = await http<{ payNowUrl: string | null }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: tenant.apiKey, body: { status: 'Final' } });
    expect(final.status, JSON.stringify(final.body)).toBe(200);
    expect(final.body.payNowUrl).toMatch(/^http/);
  });

  it('a new API key given by PATCH is stored encrypted too', async () => {
    const t = await createTenant(stack);
    const patched = await http(stack.apiUrl, 'PATCH', `/v1/companies/${t.companyId}`, { key: ADMIN_KEY, body: { provider: { apiKey: 'sk_test_rotated_key' } } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(JSON.stringify(patched.body)).not.toContain('sk_test_rotated_key');
    const r = await row(t.companyId);
    expect(r.api_key).not.toContain('sk_test_rotated_key');
    expect(open(stack.secrets, 'provider_api_key', t.companyId, r.api_key)).toBe('sk_test_rotated_key');
    // The webhook secret was not given: it stays as it was.
    expect(open(stack.secrets, 'provider_webhook_secret', t.companyId, r.secret)).toBe(t.account.webhookSecret);
    expect(r.previous).toBeNull();
  });
});

describe('a rotated webhook secret', () => {
  /** A payment at the sandbox on a Final invoice; the sandbox signs its webhook with the account's (old) secret. */
  async function providerPayment(t: Tenant): Promise<string> {
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await http(stack.apiUrl, 'POST', '/v1/clients', { key: t.apiKey, body: { id: clientId, name: 'Overlap Co', email: 'ap@overlap.example' } })).status).toBe(201);
    const number = `ROT-${randomUUID().slice(0, 8)}`;
    const body = { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Survey', amount: 20_000 }] };
    expect((await http(stack.apiUrl, 'POST', '/v1/invoices', { key: t.apiKey, body })).status).toBe(201);
    const final = await http<{ providerInvoiceId: string }>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: t.apiKey, body: { status: 'Final' } });
    expect(final.status).toBe(200);
    const acct = { key: t.account.apiKey };
    const customer = (await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct)).body.data[0]!;
    const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
      ...acct,
      body: { customerId: customer.id, method: 'card', allocations: [{ invoiceId: final.body.providerInvoiceId, amount: 20_000 }] },
    });
    expect(paid.status).toBe(201);
    return paid.body.id;
  }

  it('keeps the old secret verifying during the overlap window, the new one from the start, and only the new one after', async () => {
    const t = await createTenant(stack);
    const newSecret = `whsec_${randomUUID().replaceAll('-', '')}`;
    const rotated = await http(stack.apiUrl, 'PATCH', `/v1/companies/${t.companyId}`, {
      key: ADMIN_KEY,
      body: { provider: { webhookSecret: newSecret, webhookSecretOverlapSeconds: 3600 } },
    });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const r = await row(t.companyId);
    expect(open(stack.secrets, 'provider_webhook_secret', t.companyId, r.secret)).toBe(newSecret);
    expect(open(stack.secrets, 'provider_webhook_secret_previous', t.companyId, r.previous!)).toBe(t.account.webhookSecret);
    expect(r.expires!.getTime() - Date.now()).toBeGreaterThan(3500_000);

    // The sandbox still signs with the old secret (it cannot roll its own): its delivery is accepted.
    const during = await providerPayment(t);
    const accepted = await webhookDeliveries(stack, t, during, (ds) => ds.some((d) => d.deliveredAt !== null), 'the old-secret webhook to be delivered');
    expect(accepted[0]).toMatchObject({ attempts: 1, lastStatus: 200 });
    // A delivery signed with the new secret verifies as well.
    const event = accepted[0]!.body.replace(/"id":"evt_[^"]+"/, `"id":"evt_new_${randomUUID()}"`);
    const withNew = await http(stack.apiUrl, 'POST', `/webhooks/provider/${t.companyId}`, { raw: event, headers: { [SIGNATURE_HEADER]: signPayload(newSecret, event) } });
    expect(withNew.status, JSON.stringify(withNew.body)).toBe(200);

    // The window closes (a 1-second overlap from a second rotation, waited out in the database's clock).
    const newest = `whsec_${randomUUID().replaceAll('-', '')}`;
    expect((await http(stack.apiUrl, 'PATCH', `/v1/companies/${t.companyId}`, { key: ADMIN_KEY, body: { provider: { webhookSecret: newest, webhookSecretOverlapSeconds: 1 } } })).status).toBe(200);
    await eventually(async () => {
      const [{ expired } = { expired: false }] = await stack.sql<{ expired: boolean }[]>`
        SELECT provider_webhook_secret_previous_expires_at <= now() AS expired FROM companies WHERE id = ${t.companyId}`;
      return expired ? true : undefined;
    }, 'the overlap window to close');
    const stale = `{"id":"evt_after_${randomUUID()}"${event.slice(event.indexOf(','))}`;
    const afterNew = await http(stack.apiUrl, 'POST', `/webhooks/provider/${t.companyId}`, { raw: stale, headers: { [SIGNATURE_HEADER]: signPayload(newSecret, stale) } });
    expect(afterNew.status).toBe(400);
    expect(afterNew.body).toMatchObject({ type: expect.stringContaining('invalid-signature') });
    // And the sandbox, still on the first secret, is refused now.
    const after = await providerPayment(t);
    const refused = await webhookDeliveries(stack, t, after, (ds) => ds.some((d) => d.lastStatus !== null), 'the old-secret webhook to be attempted');
    expect(refused[0]!.lastStatus).toBe(400);
    expect(refused[0]!.deliveredAt).toBeNull();
    const withNewest = await http(stack.apiUrl, 'POST', `/webhooks/provider/${t.companyId}`, { raw: refused[0]!.body, headers: { [SIGNATURE_HEADER]: signPayload(newest, refused[0]!.body) } });
    expect(withNewest.status, JSON.stringify(withNewest.body)).toBe(200);
  });

  it('with an overlap of 0, cuts the old secret off at once', async () => {
    const t = await createTenant(stack);
    const newSecret = `whsec_${randomUUID().replaceAll('-', '')}`;
    const body = { provider: { webhookSecret: newSecret, webhookSecretOverlapSeconds: 0 } };
    expect((await http(stack.apiUrl, 'PATCH', `/v1/companies/${t.companyId}`, { key: ADMIN_KEY, body })).status).toBe(200);
    expect((await row(t.companyId)).previous).toBeNull();
    const event = JSON.stringify({ id: `evt_${randomUUID()}`, type: 'payment.succeeded', data: { payment: { id: 'pay_x', allocations: [] } } });
    const old = await http(stack.apiUrl, 'POST', `/webhooks/provider/${t.companyId}`, { raw: event, headers: { [SIGNATURE_HEADER]: signPayload(t.account.webhookSecret, event) } });
    expect(old.status).toBe(400);
  });
});

describe('on a database of its own', () => {
  let admin: Sql;
  let db: { name: string; url: string; sql: Sql };

  beforeAll(async () => {
    admin = connect(inject('databaseUrl'), { max: 1 });
    const name = `secrets_${randomUUID().slice(0, 8)}`;
    await admin.unsafe(`CREATE DATABASE ${name}`);
    const url = inject('databaseUrl').replace(/\/[^/]+$/, `/${name}`);
    db = { name, url, sql: connect(url, { max: 2 }) };
    await migrate(db.sql, BILLFLOW_MIGRATIONS);
  });

  afterAll(async () => {
    await db?.sql.end({ timeout: 5 });
    await admin?.unsafe(`DROP DATABASE IF EXISTS ${db.name}`);
    await admin?.end({ timeout: 5 });
  });

  const insertCompany = (id: string, apiKey: string, secret: string) =>
    db.sql`INSERT INTO companies (id, name, api_key_hash, provider_enabled, provider_api_key, provider_webhook_secret)
      VALUES (${id}, ${id}, ${randomUUID()}, true, ${apiKey}, ${secret})`;
  const stored = async (id: string) => (await db.sql<{ k: string; s: string }[]>`SELECT provider_api_key AS k, provider_webhook_secret AS s FROM companies WHERE id = ${id}`)[0]!;

  it('seals plain values an earlier billflow stored, once (as the API does at start)', async () => {
    const ring = keyring(newSecretKey());
    await insertCompany('legacy', 'sk_test_legacy', 'whsec_legacy');
    expect(await sealStoredSecrets(db.sql, ring)).toBe(2);
    const first = await stored('legacy');
    expect(first.k).not.toContain('sk_test_legacy');
    expect(open(ring, 'provider_api_key', 'legacy', first.k)).toBe('sk_test_legacy');
    expect(open(ring, 'provider_webhook_secret', 'legacy', first.s)).toBe('whsec_legacy');
    expect(await sealStoredSecrets(db.sql, ring)).toBe(0);
    expect(await stored('legacy')).toEqual(first);
    await db.sql`DELETE FROM companies`;
  });

  it('seals stored Idempotency-Key answers left in plain text, and re-seals them on rotation', async () => {
    const oldRing = keyring(newSecretKey());
    const answer = { id: 'co-x', apiKey: 'bf_live_secret' };
    await db.sql`INSERT INTO idempotency_keys (company_id, key, method, path, request_hash, status, body)
      VALUES ('__operator__', 'plain-key', 'POST', '/v1/companies', 'h1', 201, ${db.sql.json(answer)}),
             ('__operator__', 'old-key', 'POST', '/v1/companies', 'h2', 201, ${db.sql.json(sealAnswer(oldRing, '__operator__', 'old-key', answer))})`;
    const body = async (key: string) => (await db.sql<{ body: string }[]>`SELECT body FROM idempotency_keys WHERE key = ${key}`)[0]!.body;
    expect(await sealStoredSecrets(db.sql, oldRing)).toBe(1);
    expect(await body('plain-key')).not.toContain('bf_live_secret');
    expect(openAnswer(oldRing, '__operator__', 'plain-key', await body('plain-key'))).toEqual(answer);
    // Bound to its scope and key: moved onto another key, it does not open.
    const sealed = await body('plain-key');
    expect(() => openAnswer(oldRing, '__operator__', 'old-key', sealed)).toThrow(/does not decrypt/);
    expect(() => openAnswer(oldRing, 'co-x', 'plain-key', sealed)).toThrow(/does not decrypt/);

    const newRing = keyring(newSecretKey(), undefined);
    const rotating = { current: newRing.current, previous: [oldRing.current] };
    expect(await sealStoredSecrets(db.sql, rotating, { rotate: true })).toBe(2);
    for (const key of ['plain-key', 'old-key']) {
      expect(sealedKeyId(await body(key))).toBe(newRing.current.id);
      expect(openAnswer(newRing, '__operator__', key, await body(key))).toEqual(answer);
    }
    await db.sql`DELETE FROM idempotency_keys`;
  });

  const rotate = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'rotate-secret-key.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, ...env },
    });

  it('npm run rotate-secret-key re-encrypts every stored secret under a new key kept in the data folder', async () => {
    const oldKey = newSecretKey();
    const old = keyring(oldKey);
    for (const id of ['rot-a', 'rot-b']) {
      await insertCompany(id, seal(old, 'provider_api_key', id, `sk_${id}`), seal(old, 'provider_webhook_secret', id, `whsec_${id}`));
    }
    // A webhook endpoint's signing secret and the one a rotation keeps signing for a while.
    await db.sql`
      INSERT INTO webhook_endpoints (id, company_id, url, secret, secret_previous)
      VALUES ('we_rot', 'rot-a', 'http://127.0.0.1:9/', ${sealEndpointSecret(old, 'secret', 'we_rot', 'whsec_new')}, ${sealEndpointSecret(old, 'secret_previous', 'we_rot', 'whsec_old')})`;
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'billflow-rotate-'));
    try {
      writeFileSync(path.join(dataDir, 'secret-key'), `${oldKey}\n`);
      const out = await rotate({ BILLFLOW_DATA_DIR: dataDir });
      expect(out.stdout).toContain('6 stored secret(s) re-encrypted');
      const newKey = readFileSync(path.join(dataDir, 'secret-key'), 'utf8').trim();
      expect(readFileSync(path.join(dataDir, 'secret-key.previous'), 'utf8').trim()).toBe(oldKey);
      const now = keyring(newKey);
      for (const id of ['rot-a', 'rot-b']) {
        const s = await stored(id);
        expect(sealedKeyId(s.k)).toBe(now.current.id);
        expect(open(now, 'provider_api_key', id, s.k)).toBe(`sk_${id}`);
        expect(open(now, 'provider_webhook_secret', id, s.s)).toBe(`whsec_${id}`);
        expect(() => open(old, 'provider_api_key', id, s.k)).toThrow(/encrypted under key/);
      }
      const [endpoint] = await db.sql<{ secret: string; secret_previous: string }[]>`SELECT secret, secret_previous FROM webhook_endpoints WHERE id = 'we_rot'`;
      expect(openEndpointSecret(now, 'secret', 'we_rot', endpoint!.secret)).toBe('whsec_new');
      expect(openEndpointSecret(now, 'secret_previous', 'we_rot', endpoint!.secret_previous)).toBe('whsec_old');
      expect(() => openEndpointSecret(now, 'secret_previous', 'we_rot', endpoint!.secret)).toThrow(/does not decrypt/);

      // Keys from the environment: BILLFLOW_SECRET_KEY the new one, BILLFLOW_SECRET_KEY_PREVIOUS the old.
      const third = newSecretKey();
      const again = await rotate({ BILLFLOW_SECRET_KEY: third, BILLFLOW_SECRET_KEY_PREVIOUS: newKey });
      expect(again.stdout).toContain('6 stored secret(s) re-encrypted');
      expect(open(keyring(third), 'provider_api_key', 'rot-a', (await stored('rot-a')).k)).toBe('sk_rot-a');

      // A key that opens nothing stored: the transaction rolls back, every value stays as it was.
      const before = await stored('rot-b');
      await expect(rotate({ BILLFLOW_SECRET_KEY: newSecretKey(), BILLFLOW_SECRET_KEY_PREVIOUS: newSecretKey() })).rejects.toThrow(/encrypted under key/);
      expect(await stored('rot-b')).toEqual(before);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
