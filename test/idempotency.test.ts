/**
 * Idempotency-Key never locks a key for good: a request that died leaves a lease that runs out,
 * after which one retry (of several at once) takes the key over; an answer is stored even when
 * its client has gone away; answers are kept 24 h, then purged; a key stays tied to its request;
 * a stored answer (which may carry a new API key) is encrypted at rest.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect as connectTcp, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app.js';
import { idempotencyRequestHash } from '../api/middleware.js';
import { silentLogger } from '../lib/log.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

let stack: Stack;
let tenant: Tenant;

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack, { providerEnabled: false });
});

afterAll(async () => {
  await stack?.stop();
});

const newClient = () => ({ id: `cl-${randomUUID().slice(0, 8)}`, name: 'Harbour Works' });
const createClient = (key: string, body: unknown, base = stack.apiUrl) => http(base, 'POST', '/v1/clients', { key: tenant.apiKey, body, headers: { 'idempotency-key': key } });

/** The row a request leaves behind when it dies after claiming its key (its lease given). */
async function diedInProgress(key: string, body: unknown, leaseEndsInSeconds: number): Promise<void> {
  await stack.sql`
    INSERT INTO idempotency_keys (company_id, key, method, path, request_hash, lease_token, locked_until)
    VALUES (${tenant.companyId}, ${key}, 'POST', '/v1/clients', ${idempotencyRequestHash('POST', '/v1/clients', undefined, body)},
      ${randomUUID()}, now() + ${`${leaseEndsInSeconds} seconds`}::interval)`;
}

/** A second API process on the same database, whose server the test can watch and close. */
async function secondApi(): Promise<{ url: string; server: Server }> {
  const app = createApp({ sql: stack.sql, temporal: stack.temporal, taskQueue: stack.taskQueue, adminKey: ADMIN_KEY, secrets: stack.secrets, publicApiUrl: 'http://127.0.0.1:9', log: silentLogger });
  const server = createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function closeApi(api: { server: Server }): Promise<void> {
  api.server.closeAllConnections();
  await new Promise((r) => api.server.close(r));
}

describe('Idempotency-Key', () => {
  it('lets the retry of a request that died take its key over once the lease ran out; a live lease still answers 409', async () => {
    const live = newClient();
    const liveKey = `k-${randomUUID()}`;
    await diedInProgress(liveKey, live, 60);
    const busy = await createClient(liveKey, live);
    expect(busy.status).toBe(409);
    expect(busy.body).toMatchObject({ type: expect.stringContaining('request-in-progress') });

    const body = newClient();
    const key = `k-${randomUUID()}`;
    await diedInProgress(key, body, -1);
    const retry = await createClient(key, body);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBeNull();
    const again = await createClient(key, body);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(retry.body);
  });

  it('gives an expired lease to exactly one of several retries at once', async () => {
    const body = newClient();
    const key = `k-${randomUUID()}`;
    await diedInProgress(key, body, -1);
    const answers = await Promise.all(Array.from({ length: 6 }, () => createClient(key, body)));
    const worked = answers.filter((a) => a.status === 201 && a.headers.get('idempotent-replayed') === null);
    expect(worked, JSON.stringify(answers.map((a) => [a.status, a.body]))).toHaveLength(1);
    // The others wait for it or replay its answer; none runs the create a second time.
    for (const a of answers) {
      if (a !== worked[0]) expect([409, 201]).toContain(a.status);
      if (a.status === 409) expect(a.body).toMatchObject({ type: expect.stringContaining('request-in-progress') });
    }
    const rows = await stack.sql`SELECT 1 FROM clients WHERE company_id = ${tenant.companyId} AND id = ${body.id}`;
    expect(rows).toHaveLength(1);
  });

  it('stores the answer of a request whose client disconnected before it was sent, and replays it to the retry', async () => {
    const api = await secondApi();
    try {
      const body = newClient();
      const key = `k-${randomUUID()}`;
      // Hold the request inside the API: its insert waits for a lock the test holds.
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = stack.sql.begin(async (tx) => {
        await tx`LOCK TABLE clients IN EXCLUSIVE MODE`;
        locked();
        await released;
      });
      await isLocked;
      try {
        // A raw connection, so the test decides when the client is gone.
        const payload = JSON.stringify(body);
        const url = new URL(api.url);
        const socket = connectTcp(Number(url.port), url.hostname);
        await new Promise((r) => socket.once('connect', r));
        socket.write(
          `POST /v1/clients HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${tenant.apiKey}\r\nContent-Type: application/json\r\n` +
            `Idempotency-Key: ${key}\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
        );
        let answered = false;
        socket.on('data', () => (answered = true));
        await eventually(async () => {
          const [w] = await stack.sql`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query ILIKE '%INSERT INTO clients%'`;
          return w ? true : undefined;
        }, 'the API to wait on the clients lock');
        socket.destroy();
        expect(answered).toBe(false);
        // The API has seen its client go before it answers.
        await eventually(() => new Promise<true | undefined>((r) => api.server.getConnections((_e, n) => r(n === 0 ? true : undefined))), 'the API to see the client disconnect');
      } finally {
        release();
        await holder;
      }

      const [stored] = await eventually(async () => {
        const rows = await stack.sql<{ status: number | null }[]>`
          SELECT status FROM idempotency_keys WHERE company_id = ${tenant.companyId} AND key = ${key} AND status IS NOT NULL`;
        return rows.length ? rows : undefined;
      }, 'the answer to be stored');
      expect(stored!.status).toBe(201);
      const retry = await createClient(key, body);
      expect(retry.status, JSON.stringify(retry.body)).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      expect(retry.body).toMatchObject({ id: body.id, name: body.name });
    } finally {
      await closeApi(api);
    }
  });

  it('purges answers older than 24 h, after which the key may name a new request', async () => {
    const body = newClient();
    const key = `k-${randomUUID()}`;
    expect((await createClient(key, body)).status).toBe(201);
    const old = newClient();
    const oldKey = `k-${randomUUID()}`;
    expect((await createClient(oldKey, old)).status).toBe(201);
    await stack.sql`UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE company_id = ${tenant.companyId} AND key IN ${stack.sql([key, oldKey])}`;

    // An expired key is free again: another request under it is done afresh, not refused.
    const other = newClient();
    const fresh = await createClient(key, other);
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(201);
    expect(fresh.headers.get('idempotent-replayed')).toBeNull();
    expect(fresh.body).toMatchObject({ id: other.id });

    // An API process purges expired answers (at most once a minute; a new process at its first keyed request).
    const api = await secondApi();
    try {
      expect((await createClient(`k-${randomUUID()}`, newClient(), api.url)).status).toBe(201);
      const left = await stack.sql`SELECT key FROM idempotency_keys WHERE created_at < now() - interval '24 hours'`;
      expect(left).toEqual([]);
      const [kept] = await stack.sql`SELECT 1 FROM idempotency_keys WHERE company_id = ${tenant.companyId} AND key = ${key}`;
      expect(kept).toBeDefined();
    } finally {
      await closeApi(api);
    }
  });

  it('still refuses a key reused for another request, finished or in progress', async () => {
    const body = newClient();
    const key = `k-${randomUUID()}`;
    expect((await createClient(key, body)).status).toBe(201);
    const reused = await createClient(key, newClient());
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ type: expect.stringContaining('idempotency-key-reused'), field: 'Idempotency-Key' });

    const dead = `k-${randomUUID()}`;
    await diedInProgress(dead, newClient(), -1);
    const other = await createClient(dead, newClient());
    expect(other.status).toBe(422);
    expect(other.body).toMatchObject({ type: expect.stringContaining('idempotency-key-reused') });
  });

  it('keeps a stored answer encrypted, though it carries a new API key, and replays it whole', async () => {
    const key = `k-${randomUUID()}`;
    const id = `idem-${randomUUID().slice(0, 8)}`;
    const create = () => http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body: { id, name: 'Keyed Co' }, headers: { 'idempotency-key': key } });
    const first = await create();
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    const apiKey = (first.body as { apiKey: string }).apiKey;
    const [row] = await stack.sql<{ body: unknown }[]>`SELECT body FROM idempotency_keys WHERE key = ${key}`;
    expect(JSON.stringify(row!.body)).not.toContain(apiKey);
    expect(row!.body).toMatch(/^bfenc:v1:/);

    const replay = await create();
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect((await http(stack.apiUrl, 'GET', '/v1/companies', { key: apiKey })).status).toBe(200);
  });
});
