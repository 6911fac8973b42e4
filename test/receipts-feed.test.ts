/**
 * The ERP's receipts feed is gap-free for a reader that pages with `after` and acknowledges with
 * `upTo` while writers commit out of order, for a company key and for an organisation key (whose
 * feed spans companies). Writers go through insertReceipts, the one function every receipt
 * writer (payment applied, payment turned into a prepayment) uses, on the run's real PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { insertReceipts, type NewReceipt } from '../activities/receipts.js';
import { connect, type Sql } from '../lib/db.js';
import { ADMIN_KEY, createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

interface FeedRow {
  id: string;
  companyId: string;
  providerPaymentId: string;
  acknowledged: boolean;
}

let stack: Stack;
/** The writers' own pool, apart from the API's, so held transactions never starve the API. */
let writers: Sql;
let orgKey: string;
let east: Tenant;
let west: Tenant;
let solo: Tenant;

beforeAll(async () => {
  stack = await startStack();
  writers = connect(inject('databaseUrl'), { max: 12 });
  const organisationId = `org-${randomUUID().slice(0, 8)}`;
  const org = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id: organisationId, name: 'Feed Group' } });
  expect(org.status, JSON.stringify(org.body)).toBe(201);
  orgKey = org.body.apiKey;
  east = await createTenant(stack, { organisationId, providerEnabled: false });
  west = await createTenant(stack, { organisationId, providerEnabled: false });
  solo = await createTenant(stack, { providerEnabled: false });
});

afterAll(async () => {
  await writers?.end({ timeout: 5 });
  await stack?.stop();
});

function receipt(companyId: string): NewReceipt {
  return {
    companyId,
    kind: 'payment',
    providerPaymentId: `pay-${randomUUID()}`,
    invoiceNumber: null,
    applications: [],
    amount: 10_000,
    currency: 'USD',
    allocations: ['INV-1'],
    paidAt: new Date().toISOString(),
    requestId: `req-${randomUUID()}`,
  };
}

/** A writer whose transaction stays open after its insert until `commit()` is called. */
function heldWriter(r: NewReceipt) {
  let commit!: () => void;
  const released = new Promise<void>((resolve) => (commit = resolve));
  let inserted!: () => void;
  const insertedP = new Promise<void>((resolve) => (inserted = resolve));
  const done = writers.begin(async (tx) => {
    await insertReceipts(tx, [r], `payment:${r.providerPaymentId}`);
    inserted();
    await released;
  });
  return { inserted: insertedP, commit, done };
}

/** A writer that commits as soon as it can; resolves its pid first so a test can see it wait. */
function quickWriter(r: NewReceipt) {
  let pid!: (n: number) => void;
  const pidP = new Promise<number>((resolve) => (pid = resolve));
  let committed = false;
  const done = writers
    .begin(async (tx) => {
      const [row] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      pid(row!.pid);
      await insertReceipts(tx, [r], `payment:${r.providerPaymentId}`);
    })
    .then(() => {
      committed = true;
    });
  return { pid: pidP, done, committed: () => committed };
}

/** Reads every page after `after`; returns the rows and the cursor to continue from. */
async function readAll(key: string, after: string | null): Promise<{ rows: FeedRow[]; cursor: string | null }> {
  const rows: FeedRow[] = [];
  let cursor = after;
  for (;;) {
    const page = await http<{ data: FeedRow[]; hasMore: boolean; nextCursor: string | null }>(stack.apiUrl, 'GET', `/v1/receipts?limit=7${cursor ? `&after=${cursor}` : ''}`, { key });
    expect(page.status, JSON.stringify(page.body)).toBe(200);
    rows.push(...page.body.data);
    cursor = page.body.nextCursor;
    if (!page.body.hasMore) return { rows, cursor };
  }
}

async function acknowledge(key: string, upTo: string | null): Promise<void> {
  if (!upTo) return;
  const ack = await http(stack.apiUrl, 'POST', '/v1/receipts/acknowledge', { key, body: { upTo } });
  expect(ack.status, JSON.stringify(ack.body)).toBe(200);
}

describe('the receipts feed under concurrent writers', () => {
  for (const [who, first, second] of [
    ['a company key', () => solo, () => solo],
    ['an organisation key (two companies)', () => east, () => west],
  ] as const) {
    it(`never lets a receipt that commits late slip behind the cursor of a reader with ${who}`, async () => {
      const key = who.startsWith('a company') ? solo.apiKey : orgKey;
      // One receipt already in the feed, so the reader below has something to read and acknowledge.
      const seeded = receipt(first().companyId);
      await writers.begin((tx) => insertReceipts(tx, [seeded], `payment:${seeded.providerPaymentId}`));
      const start = await readAll(key, null);
      expect(start.rows.map((r) => r.providerPaymentId)).toContain(seeded.providerPaymentId);
      const before = new Set(start.rows.map((r) => r.providerPaymentId));
      const early = receipt(first().companyId);
      const late = receipt(second().companyId);

      // Writer 1 inserts and holds its transaction open; writer 2 then tries to commit.
      const w1 = heldWriter(early);
      await w1.inserted;
      const w2 = quickWriter(late);
      const pid = await w2.pid;
      // Wait until writer 2 has either committed or is queued behind writer 1 (either could expose a gap).
      await eventually(async () => {
        if (w2.committed()) return true;
        const [waiting] = await writers`SELECT 1 FROM pg_locks WHERE pid = ${pid} AND NOT granted`;
        return waiting ? true : undefined;
      }, 'writer 2 to commit or wait');

      // The reader reads (from the start) and acknowledges everything it was shown.
      const seen = await readAll(key, null);
      await acknowledge(key, seen.cursor);

      w1.commit();
      await Promise.all([w1.done, w2.done]);
      const after = await readAll(key, seen.cursor);
      const got = [...seen.rows, ...after.rows].map((r) => r.providerPaymentId).filter((id) => !before.has(id));
      expect(got.sort()).toEqual([early.providerPaymentId, late.providerPaymentId].sort());
      // What the reader acknowledged it had been shown; the rest waits for its next acknowledgement.
      for (const r of after.rows) expect(r.acknowledged, `receipt ${r.id} acknowledged before it was read`).toBe(false);
    });
  }

  it('gives a paging, acknowledging reader every receipt exactly once while many writers commit in parallel', async () => {
    const WRITERS = 150;
    const orgStart = await readAll(orgKey, null);
    const soloStart = await readAll(solo.apiKey, null);
    const written: NewReceipt[] = [];
    let writing = true;
    const companies = [east, west, solo];
    const writes = Promise.all(
      Array.from({ length: WRITERS }, async (_, i) => {
        await new Promise((r) => setTimeout(r, Math.random() * 1_500));
        const r = receipt(companies[i % companies.length]!.companyId);
        written.push(r);
        await writers.begin(async (tx) => {
          await insertReceipts(tx, [r], `payment:${r.providerPaymentId}`);
          // Commit a little later, so transactions overlap and finish out of insert order.
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 50));
        });
      }),
    ).finally(() => {
      writing = false;
    });

    /** Pages and acknowledges until the writers are done and one more pass finds nothing new. */
    async function reader(key: string, cursor: string | null): Promise<FeedRow[]> {
      const got: FeedRow[] = [];
      for (;;) {
        const last = !writing;
        const page = await readAll(key, cursor);
        got.push(...page.rows);
        await acknowledge(key, page.cursor);
        cursor = page.cursor;
        if (last) return got;
      }
    }
    const [, orgRows, soloRows] = await Promise.all([writes, reader(orgKey, orgStart.cursor), reader(solo.apiKey, soloStart.cursor)]);

    const count = (rows: FeedRow[]) => {
      const n = new Map<string, number>();
      for (const r of rows) n.set(r.providerPaymentId, (n.get(r.providerPaymentId) ?? 0) + 1);
      return n;
    };
    const expectOnce = (rows: FeedRow[], expected: NewReceipt[]) => {
      const n = count(rows);
      expect(n.size).toBe(expected.length);
      for (const r of expected) expect(n.get(r.providerPaymentId), `receipt for ${r.providerPaymentId}`).toBe(1);
    };
    expectOnce(
      orgRows,
      written.filter((r) => r.companyId !== solo.companyId),
    );
    expectOnce(
      soloRows,
      written.filter((r) => r.companyId === solo.companyId),
    );

    // Every receipt was acknowledged by the reader that read it.
    const ids = written.map((r) => r.providerPaymentId);
    const unacked = await writers`SELECT provider_payment_id FROM receipts WHERE provider_payment_id = ANY(${ids}::text[]) AND acknowledged_at IS NULL`;
    expect(unacked).toEqual([]);
  });
});
