/**
 * The webhook outbox is purged by the delivery loop: deliveries delivered before the retention
 * go, with their attempts, and so do events no delivery refers to any more; a delivery still
 * pending (its endpoint refuses) and its event stay. On a database of this file's own, so the
 * loops here see only its rows.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../lib/log.js';
import { WebhookDispatcher } from '../worker/webhooks.js';
import { createTenant, eventually, http, privateDatabase, startStack, type Stack, type Tenant } from './harness.js';

let stack: Stack;
let database: Awaited<ReturnType<typeof privateDatabase>>;
let erp: Server;
const received: string[] = [];

beforeAll(async () => {
  database = await privateDatabase();
  // Retries an hour apart: the refused endpoint's delivery stays pending for the whole test.
  stack = await startStack({ databaseUrl: database.url, webhooks: { retryFirstMs: 3_600_000, pollMs: 200 } });
  erp = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received.push(body);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => erp.listen(0, '127.0.0.1', r));
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await new Promise((r) => erp?.close(r));
  await database?.drop();
});

interface Row {
  id: number;
  status: string;
  event_seq: number;
  type: string;
  attempts: number;
}

describe('the outbox purge', () => {
  let tenant: Tenant;
  const rows = () =>
    stack.sql<Row[]>`
      SELECT d.id, d.status, d.event_seq, ev.type, (SELECT count(*)::int FROM webhook_attempts a WHERE a.delivery_id = d.id) AS attempts
      FROM webhook_deliveries d JOIN webhook_events ev ON ev.seq = d.event_seq ORDER BY d.id`;

  it('keeps deliveries within the retention, then purges the delivered ones and their events', async () => {
    tenant = await createTenant(stack);
    const as = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
    const live = `http://127.0.0.1:${(erp.address() as AddressInfo).port}/erp`;
    expect((await as('POST', '/v1/webhook-endpoints', { url: live, events: ['invoice.created'] })).status).toBe(201);
    // Port 9 (discard) on loopback refuses: this endpoint's delivery stays pending.
    expect((await as('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/erp', events: ['invoice.finalized'] })).status).toBe(201);
    await as('POST', '/v1/clients', { id: 'cl-1', name: 'Purge Client' });
    const number = `PUR-${randomUUID().slice(0, 6)}`;
    expect((await as('POST', '/v1/invoices', { number, clientId: 'cl-1', invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Design', amount: 10_000 }] })).status).toBe(201);
    expect((await as('POST', `/v1/invoices/${number}/status`, { status: 'Final' })).status).toBe(200);

    const before = await eventually(async () => {
      const r = await rows();
      const created = r.find((d) => d.type === 'invoice.created');
      const finalized = r.find((d) => d.type === 'invoice.finalized');
      return created?.status === 'delivered' && finalized?.attempts === 1 ? r : undefined;
    }, 'one delivery delivered and one attempted');
    expect(received.some((b) => b.includes(number))).toBe(true);

    // Within a retention of an hour nothing goes.
    const keeping = new WebhookDispatcher(stack.sql, stack.secrets, silentLogger, { retentionMs: 3_600_000 });
    expect(await keeping.purge()).toEqual({ deliveries: 0, events: 0 });
    expect(await rows()).toEqual(before);

    // A delivery loop whose retention is already over for them purges on its own.
    const purging = new WebhookDispatcher(stack.sql, stack.secrets, silentLogger, { retentionMs: 0, purgeEveryMs: 100, retryFirstMs: 3_600_000 });
    await purging.start();
    try {
      const created = before.find((d) => d.type === 'invoice.created')!;
      await eventually(async () => ((await rows()).some((d) => d.id === created.id) ? undefined : true), 'the delivered delivery to be purged');
      const [left] = await stack.sql<{ events: number; attempts: number }[]>`
        SELECT (SELECT count(*)::int FROM webhook_events WHERE seq = ${created.event_seq}) AS events,
               (SELECT count(*)::int FROM webhook_attempts WHERE delivery_id = ${created.id}) AS attempts`;
      expect(left).toEqual({ events: 0, attempts: 0 });
      // The pending one stays, with its event and attempt, in the same purge.
      const after = await rows();
      expect(after.map((d) => [d.type, d.status, d.attempts])).toEqual([['invoice.finalized', 'pending', 1]]);
    } finally {
      await purging.stop();
    }
  });
});
