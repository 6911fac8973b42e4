/**
 * Events to the ERP on the real stack: invoices go through their lives (created, Final, held and
 * released, paid, reissued into a prepayment that another invoice takes, drifted at the provider
 * and reconciled) while the ERP's receiver, a real HTTP server, first refuses connections, then
 * answers each message 503, then lets it time out, and only then accepts it. Every accepted
 * delivery's signature is checked with the standardwebhooks package's own verifier; the test
 * counts deliveries, retries and duplicates (by webhook-id) and checks the order per invoice.
 * A second endpoint that never answers is disabled, then enabled again and gets everything.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../domain/events.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';

type Body = Record<string, unknown>;

/** One request as the receiver saw it. */
interface Seen {
  path: string;
  webhookId: string;
  headers: Record<string, string>;
  body: string;
  answer: 'refused' | 'timed-out' | 'accepted' | 'bad-signature';
  /** The secrets (by name) whose signature verified. */
  verifiedWith: string[];
}

/** A port nothing listens on yet (connections to it are refused until a receiver opens it). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function headersOf(req: IncomingMessage): Record<string, string> {
  return Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
}

/**
 * The ERP's receiver. With `flaky`, each message's first request is answered 503, its second is
 * held past the sender's time limit, and later ones are accepted; otherwise every one is accepted.
 * Accepted only with a signature that verifies with one of `secrets[path]`.
 */
function receiver(port: number, secrets: Map<string, Map<string, string>>, flaky: boolean) {
  const seen: Seen[] = [];
  const tries = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = headersOf(req);
      const webhookId = headers['webhook-id'] ?? '';
      const path = req.url ?? '';
      const n = (tries.get(`${path} ${webhookId}`) ?? 0) + 1;
      tries.set(`${path} ${webhookId}`, n);
      const record = (answer: Seen['answer'], verifiedWith: string[] = []) => seen.push({ path, webhookId, headers, body, answer, verifiedWith });
      if (flaky && n === 1) {
        record('refused');
        res.writeHead(503, { 'content-type': 'text/plain' }).end('busy, try later');
        return;
      }
      if (flaky && n === 2) {
        record('timed-out');
        // Never answered: the sender gives up; the socket goes when it does.
        return;
      }
      const verifiedWith = [...(secrets.get(path) ?? new Map<string, string>())].flatMap(([name, secret]) => {
        try {
          new Webhook(secret).verify(body, headers);
          return [name];
        } catch {
          return [];
        }
      });
      record(verifiedWith.length > 0 ? 'accepted' : 'bad-signature', verifiedWith);
      res.writeHead(verifiedWith.length > 0 ? 200 : 400, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: verifiedWith.length > 0 }));
    });
  });
  const listening = new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    seen,
    listening,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

const OPTIONS = { timeoutMs: 1_000, retryFirstMs: 300, retryMaxMs: 2_000, retryForMs: 25_000, disableAfterMs: 15_000, pollMs: 200, concurrency: 8 };

let stack: Stack;
let a: Tenant;
let b: Tenant;
const receivers: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  stack = await startStack({ webhooks: OPTIONS });
  a = await createTenant(stack);
  b = await createTenant(stack);
});

afterAll(async () => {
  for (const r of receivers) await r.close();
  await stack?.stop();
});

const api = <T = Body>(t: Tenant, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  http<T>(stack.apiUrl, method, path, { key: t.apiKey, ...(body !== undefined ? { body } : {}), headers });

async function ok<T = Body>(p: Promise<{ status: number; body: T }>, what: string, status = [200, 201]): Promise<T> {
  const res = await p;
  expect(status, `${what}: ${res.status} ${JSON.stringify(res.body)}`).toContain(res.status);
  return res.body;
}

interface DeliveryView {
  id: string;
  webhookId: string;
  eventType: string;
  requestId: string;
  status: string;
  attemptCount: number;
  event: { id: string; type: string; companyId: string; requestId: string; data: Body & { invoice?: Body } };
  attempts: { attempt: number; statusCode: number | null; error: string | null; responseBody: string | null }[];
}

async function deliveries(t: Tenant, endpointId: string): Promise<DeliveryView[]> {
  const out: DeliveryView[] = [];
  let after: string | null = null;
  for (;;) {
    const page: { data: DeliveryView[]; hasMore: boolean; nextCursor: string } = await ok(
      api(t, 'GET', `/v1/webhook-endpoints/${endpointId}/deliveries?limit=200${after ? `&after=${after}` : ''}`),
      'deliveries',
    );
    out.push(...page.data);
    if (!page.hasMore) return out;
    after = page.nextCursor;
  }
}

/** The webhook-ids of one endpoint's events per ordering key, in the order they were committed. */
async function committedOrder(endpointId: string): Promise<Map<string, string[]>> {
  const rows = await stack.sql<{ id: string; ordering_key: string }[]>`
    SELECT ev.id, ev.ordering_key FROM webhook_deliveries d JOIN webhook_events ev ON ev.seq = d.event_seq WHERE d.endpoint_id = ${endpointId} ORDER BY ev.seq`;
  const byKey = new Map<string, string[]>();
  for (const r of rows) byKey.set(r.ordering_key, [...(byKey.get(r.ordering_key) ?? []), r.id]);
  return byKey;
}

/** The first acceptance of each webhook-id, per ordering key, in the order the receiver accepted them. */
function acceptedOrder(seen: Seen[], path: string, keyOf: Map<string, string>): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  const done = new Set<string>();
  for (const s of seen.filter((x) => x.path === path && x.answer === 'accepted')) {
    if (done.has(s.webhookId)) continue;
    done.add(s.webhookId);
    const key = keyOf.get(s.webhookId) ?? 'unknown';
    byKey.set(key, [...(byKey.get(key) ?? []), s.webhookId]);
  }
  return byKey;
}

function duplicates(seen: Seen[], path: string): number {
  const accepted = seen.filter((x) => x.path === path && x.answer === 'accepted').map((x) => x.webhookId);
  return accepted.length - new Set(accepted).size;
}

describe('events to the ERP (Standard Webhooks)', () => {
  it('delivers every event once, signed, in order per invoice, through refusals, 503s and time-outs; disables an endpoint that fails for long', async () => {
    const secrets = new Map<string, Map<string, string>>();
    const port = await freePort();
    const deadPort = await freePort();
    const mainUrl = `http://127.0.0.1:${port}/erp/a`;

    // Registration answers the secret once; reading the endpoint never shows it.
    const main = await ok(api<{ id: string; secret: string; enabled: boolean }>(a, 'POST', '/v1/webhook-endpoints', { url: mainUrl, description: 'ERP' }), 'endpoint', [201]);
    expect(main.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(await ok(api(a, 'GET', `/v1/webhook-endpoints/${main.id}`), 'endpoint')).not.toHaveProperty('secret');
    // Stored encrypted (as provider keys are), bound to its endpoint.
    const [stored] = await stack.sql<{ secret: string }[]>`SELECT secret FROM webhook_endpoints WHERE id = ${main.id}`;
    expect(stored!.secret).toMatch(/^bfenc:v1:/);
    expect(stored!.secret).not.toContain(main.secret.slice(6, 20));
    secrets.set('/erp/a', new Map([['first', main.secret]]));
    const dead = await ok(api<{ id: string; secret: string }>(a, 'POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${deadPort}/erp/dead` }), 'dead endpoint', [201]);
    secrets.set('/erp/dead', new Map([['dead', dead.secret]]));
    // Company B's endpoint takes only invoice.created, and only B's.
    const onlyCreated = await ok(api<{ id: string; secret: string }>(b, 'POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/erp/b`, events: ['invoice.created'] }), 'B endpoint', [201]);
    secrets.set('/erp/b', new Map([['b', onlyCreated.secret]]));
    expect((await ok(api<{ data: { id: string }[] }>(b, 'GET', '/v1/webhook-endpoints'), 'B list')).data.map((e) => e.id)).toEqual([onlyCreated.id]);
    expect((await api(b, 'GET', `/v1/webhook-endpoints/${main.id}`)).status).toBe(404);

    // The ERP's work: four invoices, one of them exceptional (held), through their lives.
    const tag = randomUUID().slice(0, 6);
    const clientId = `CL-${tag}`;
    await ok(api(a, 'POST', '/v1/clients', { id: clientId, name: 'Riverside Architects' }), 'client');
    await ok(api(a, 'PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 900_000 } }), 'limits');
    const [paid, reissued, held, credited] = ['PAID', 'REISSUE', 'HELD', 'CREDIT'].map((x) => `${x}-${tag}`) as [string, string, string, string];
    const amounts: Record<string, number> = { [paid]: 100_000, [reissued]: 50_000, [held]: 1_000_000, [credited]: 80_000 };
    const finals: Record<string, Body> = {};
    for (const number of [paid, reissued, held, credited]) {
      await ok(
        api(
          a,
          'POST',
          '/v1/invoices',
          { number, clientId, invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'Design', amount: amounts[number] }] },
          { 'x-request-id': `create-${number}` },
        ),
        `create ${number}`,
      );
      finals[number] = await ok(api(a, 'POST', `/v1/invoices/${number}/status`, { status: 'Final' }, { 'x-request-id': `final-${number}` }), `Final ${number}`);
    }
    // The receiver opens once the first connection has been refused.
    await eventually(
      async () =>
        (await stack.sql`SELECT 1 FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = ${main.id} AND a.error = 'ECONNREFUSED'`).length > 0
          ? true
          : undefined,
      'a refused connection',
    );
    const erp = receiver(port, secrets, true);
    receivers.push(erp);
    await erp.listening;

    const pay = async (number: string, amount: number) => {
      const record = await ok(http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${String(finals[number]!.providerInvoiceId)}`, { key: a.account.apiKey }), 'provider record');
      await ok(
        http(stack.sandboxUrl, 'POST', '/v1/payments', {
          key: a.account.apiKey,
          body: { customerId: record.customerId, allocations: [{ invoiceId: finals[number]!.providerInvoiceId, amount }], method: 'card' },
        }),
        'payment',
      );
      await eventually(async () => ((await api<{ paid: number }>(a, 'GET', `/v1/invoices/${number}`)).body.paid === amount ? true : undefined), `${number} paid`);
    };
    await pay(paid, 100_000);
    await pay(reissued, 20_000);
    await ok(api(a, 'POST', `/v1/invoices/${reissued}/status`, { status: 'Reissue' }, { 'x-request-id': `reissue-${reissued}` }), 'Reissue');
    const prepayment = (await ok(api<{ data: { id: string }[] }>(a, 'GET', `/v1/prepayments?clientId=${clientId}`), 'prepayments')).data[0]!;
    await ok(api(a, 'POST', `/v1/invoices/${credited}/prepayments`, { prepaymentId: prepayment.id, amount: 20_000 }, { 'x-request-id': `apply-${credited}` }), 'apply prepayment');
    await ok(api(a, 'POST', `/v1/invoices/${held}/release`, { by: 'ops-anna' }, { 'x-request-id': `release-${held}` }), 'release');
    // Someone edits a record at the provider; a reconciliation finds it.
    const edited = (await ok(api<{ providerInvoiceId: string }>(a, 'GET', `/v1/invoices/${credited}`), 'invoice')).providerInvoiceId;
    await ok(http(stack.sandboxUrl, 'PATCH', `/v1/invoices/${edited}`, { key: a.account.apiKey, body: { amount: 99_000, outstanding: 99_000 } }), 'edit at provider');
    const recon = await ok(api<{ id: string; findingCount: number }>(a, 'POST', '/v1/reconciliations', undefined, { prefer: 'wait=30', 'x-request-id': `reconcile-${tag}` }), 'reconciliation');
    expect(recon.findingCount).toBeGreaterThan(0);
    await ok(
      api(b, 'POST', '/v1/invoices', { number: `B-${tag}`, clientId: await bClient(), invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'B', amount: 1_000 }] }),
      'B invoice',
    );
    await ok(api(b, 'POST', `/v1/invoices/B-${tag}/status`, { status: 'Final' }), 'B Final');

    // Everything the outbox holds for the endpoint is delivered, nothing pending.
    const all = await eventually(
      async () => {
        const ds = await deliveries(a, main.id);
        const types = new Set(ds.map((d) => d.eventType));
        const wanted = EVENT_TYPES.filter((t) => t !== 'reminder.sent');
        return wanted.every((t) => types.has(t)) && ds.every((d) => d.status === 'delivered') ? ds : undefined;
      },
      'every event of company A delivered',
      120_000,
    );
    const keyOf = new Map((await stack.sql<{ id: string; ordering_key: string }[]>`SELECT id, ordering_key FROM webhook_events WHERE company_id = ${a.companyId}`).map((r) => [r.id, r.ordering_key]));

    // Signed (verified by the package's verifier), once each, in order per invoice.
    const onA = erp.seen.filter((s) => s.path === '/erp/a');
    expect(onA.filter((s) => s.answer === 'bad-signature')).toEqual([]);
    const accepted = new Set(onA.filter((s) => s.answer === 'accepted').map((s) => s.webhookId));
    expect(accepted).toEqual(new Set(all.map((d) => d.webhookId)));
    expect(duplicates(erp.seen, '/erp/a')).toBe(0);
    const committed = await committedOrder(main.id);
    expect(acceptedOrder(erp.seen, '/erp/a', keyOf)).toEqual(committed);
    // Every retry of a message carried its webhook-id, and each message was refused, then timed out, then accepted.
    for (const d of all) {
      const tries = onA.filter((s) => s.webhookId === d.webhookId).map((s) => s.answer);
      expect(tries, d.eventType).toEqual(['refused', 'timed-out', 'accepted']);
      expect(d.attempts.map((t) => t.statusCode ?? t.error).slice(-3)).toEqual([503, 'no answer within 1000 ms', 200]);
      expect(d.attempts.at(-3)!.responseBody).toBe('busy, try later');
      expect(d.event.id).toBe(d.webhookId);
    }
    const refusedConnections = all.flatMap((d) => d.attempts).filter((t) => t.error === 'ECONNREFUSED').length;
    expect(refusedConnections).toBeGreaterThan(0);

    // What each event says, with the correlation id of the request that caused it.
    const of = (type: string, number: string) => all.filter((d) => d.eventType === type && (d.event.data.invoice?.number ?? d.event.data.invoiceNumber) === number);
    for (const number of [paid, reissued, held, credited]) {
      expect(of('invoice.created', number).map((d) => d.requestId)).toEqual([`create-${number}`]);
      expect(of('invoice.finalized', number).map((d) => d.requestId)).toEqual([`final-${number}`]);
    }
    expect(of('invoice.finalized', paid)[0]!.event.data.payNowUrl).toBe(finals[paid]!.payNowUrl);
    expect(of('invoice.finalized', held)[0]!.event.data.payNowUrl).toBeNull();
    expect(of('invoice.held', held)).toHaveLength(1);
    expect(of('invoice.released', held)[0]!.event.data).toMatchObject({ releasedBy: 'ops-anna', payNowUrl: expect.stringMatching(/\/pay\//) });
    expect(of('invoice.released', held)[0]!.requestId).toBe(`release-${held}`);
    expect(of('invoice.status_changed', reissued).map((d) => [d.event.data.from, d.event.data.to, d.requestId])).toEqual([
      ['Draft', 'Final', `final-${reissued}`],
      ['Final', 'Reissue', `reissue-${reissued}`],
    ]);
    expect(of('payment.applied', paid)[0]!.event.data).toMatchObject({ amount: 100_000, invoiceNumber: paid });
    expect(
      all
        .filter((d) => d.eventType === 'receipt.created')
        .map((d) => d.event.data.kind)
        .sort(),
    ).toEqual(['payment', 'payment', 'prepayment']);
    expect(all.find((d) => d.eventType === 'prepayment.created')!.event.data).toMatchObject({ prepaymentId: prepayment.id, amount: 20_000, originInvoice: reissued });
    expect(of('prepayment.applied', credited)[0]!).toMatchObject({ requestId: `apply-${credited}`, event: { data: { prepaymentId: prepayment.id, amount: 20_000 } } });
    const drift = all.find((d) => d.eventType === 'reconciliation.drift_found')!;
    expect(drift).toMatchObject({ requestId: `reconcile-${tag}`, event: { data: { reconciliationId: recon.id } } });
    expect(all.every((d) => d.event.companyId === a.companyId)).toBe(true);

    // B's endpoint got B's invoice.created only.
    const onB = await eventually(async () => {
      const ds = await deliveries(b, onlyCreated.id);
      return ds.length > 0 && ds.every((d) => d.status === 'delivered') ? ds : undefined;
    }, "B's event delivered");
    expect(onB.map((d) => [d.eventType, d.event.companyId])).toEqual([['invoice.created', b.companyId]]);

    // The endpoint that never answered: disabled after failing for long, its deliveries kept.
    const disabled = await eventually(
      async () => {
        const e = await ok(api<{ enabled: boolean; disabledReason: string | null }>(a, 'GET', `/v1/webhook-endpoints/${dead.id}`), 'dead endpoint');
        return e.enabled ? undefined : e;
      },
      'the failing endpoint to be disabled',
      60_000,
    );
    expect(disabled.disabledReason).toMatch(/failing since .* without a success; last attempt: ECONNREFUSED/);
    const waiting = await deliveries(a, dead.id);
    expect(waiting.length).toBe(all.length);
    expect(waiting.every((d) => d.status !== 'delivered' && d.attempts.every((t) => t.error === 'ECONNREFUSED'))).toBe(true);
    // Its ERP comes back and enables it: everything arrives, once, in order.
    const back = receiver(deadPort, secrets, false);
    receivers.push(back);
    await back.listening;
    await ok(api(a, 'PATCH', `/v1/webhook-endpoints/${dead.id}`, { enabled: true }), 'enable');
    const recovered = await eventually(
      async () => {
        const ds = await deliveries(a, dead.id);
        return ds.every((d) => d.status === 'delivered') ? ds : undefined;
      },
      'the re-enabled endpoint to get everything',
      60_000,
    );
    expect(back.seen.filter((s) => s.answer !== 'accepted')).toEqual([]);
    expect(duplicates(back.seen, '/erp/dead')).toBe(0);
    expect(acceptedOrder(back.seen, '/erp/dead', keyOf)).toEqual(await committedOrder(dead.id));

    const attempts = all.reduce((n, d) => n + d.attemptCount, 0);
    const deadAttempts = recovered.reduce((n, d) => n + d.attemptCount, 0);
    console.log(
      `webhooks out: ${all.length} events delivered (${new Set(all.map((d) => d.eventType)).size} types), ${attempts - all.length} retries ` +
        `(${refusedConnections} refused connections, ${all.length} 503s, ${all.length} time-outs), ${duplicates(erp.seen, '/erp/a')} duplicates, ` +
        `${[...committed.keys()].length} ordering keys in order; failing endpoint disabled after ${deadAttempts - recovered.length} failed attempts, ` +
        `then ${recovered.length} delivered, ${duplicates(back.seen, '/erp/dead')} duplicates`,
    );
  }, 240_000);

  it('redelivers one delivery with the same webhook-id, and signs with the old and new secret during a rotation', async () => {
    const port = await freePort();
    const secrets = new Map<string, Map<string, string>>();
    const erp = receiver(port, secrets, false);
    receivers.push(erp);
    await erp.listening;
    const endpoint = await ok(api<{ id: string; secret: string }>(a, 'POST', '/v1/webhook-endpoints', { url: `http://127.0.0.1:${port}/r`, events: ['invoice.created'] }), 'endpoint', [201]);
    secrets.set('/r', new Map([['old', endpoint.secret]]));
    const number = `RD-${randomUUID().slice(0, 6)}`;
    await ok(api(a, 'POST', '/v1/invoices', { number, clientId: await aClient(), invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'x', amount: 500 }] }), 'invoice');
    const [first] = await eventually(async () => {
      const ds = await deliveries(a, endpoint.id);
      return ds.length === 1 && ds[0]!.status === 'delivered' ? ds : undefined;
    }, 'the first delivery');

    const rotated = await ok(api<{ secret: string; previousSecretExpiresAt: string }>(a, 'POST', `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {}), 'rotate');
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.previousSecretExpiresAt)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    secrets.get('/r')!.set('new', rotated.secret);
    expect((await api(a, 'POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${first!.id}/redeliver`)).status).toBe(202);
    const again = await eventually(async () => {
      const ds = await deliveries(a, endpoint.id);
      return ds[0]!.status === 'delivered' && ds[0]!.attemptCount === 2 ? ds[0]! : undefined;
    }, 'the redelivery');
    expect(again.webhookId).toBe(first!.webhookId);
    const sent = erp.seen.filter((s) => s.webhookId === first!.webhookId);
    expect(sent.map((s) => [s.answer, s.verifiedWith])).toEqual([
      ['accepted', ['old']],
      ['accepted', ['old', 'new']],
    ]);
    expect(sent[1]!.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(sent[1]!.body).toBe(sent[0]!.body);
    // A redelivery of another endpoint's delivery, or of one that does not exist, is 404.
    expect((await api(b, 'POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/${first!.id}/redeliver`)).status).toBe(404);
    expect((await api(a, 'POST', `/v1/webhook-endpoints/${endpoint.id}/deliveries/999999999/redeliver`)).status).toBe(404);
    // Removed: gone for the ERP, and nothing more is sent to it.
    expect((await api(a, 'DELETE', `/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(204);
    expect((await api(a, 'GET', `/v1/webhook-endpoints/${endpoint.id}`)).status).toBe(404);
  }, 120_000);

  it('gives each receipt what it applies to, per invoice, and a Quick Pay its details, in the feed and in receipt.created', async () => {
    const endpoint = await ok(api<{ id: string }>(a, 'POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/receipts', events: ['receipt.created'] }), 'endpoint', [201]);
    const clientId = await aClient();
    const tag = randomUUID().slice(0, 6);
    const [one, two, quick] = ['ONE', 'TWO', 'QP'].map((x) => `${x}-${tag}`) as [string, string, string];
    const records: Record<string, string> = {};
    for (const [number, amount] of [
      [one, 60_000],
      [two, 40_000],
      [quick, 25_000],
    ] as const) {
      await ok(api(a, 'POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'x', amount }] }), 'invoice');
      records[number] = (await ok(api<{ providerInvoiceId: string }>(a, 'POST', `/v1/invoices/${number}/status`, { status: 'Final' }), 'Final')).providerInvoiceId;
    }
    // One payment over two invoices, with a convenience fee on top.
    const customer = (await ok(http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${records[one]}`, { key: a.account.apiKey }), 'record')).customerId;
    const payment = await ok(
      http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
        key: a.account.apiKey,
        body: {
          customerId: customer,
          allocations: [
            { invoiceId: records[one], amount: 60_000 },
            { invoiceId: records[two], amount: 15_000 },
          ],
          method: 'card',
          fee: 300,
        },
      }),
      'payment',
    );
    const details = { paymentType: 'check', paymentMethod: 'check', issuedOn: '2026-11-30', category: 'Receivables', receivedByUser: 'anna', receivedByUnit: 'Accounts' };
    await ok(api(a, 'POST', `/v1/invoices/${quick}/quick-pay`, details), 'Quick Pay');

    type Receipt = { kind: string; providerPaymentId: string; amount: number; invoiceNumber: string | null; applications: unknown; quickPay: unknown };
    const feed = await eventually(async () => {
      const rows = (await ok(api<{ data: Receipt[] }>(a, 'GET', '/v1/receipts?limit=200'), 'receipts')).data;
      const mine = rows.filter((r) => r.providerPaymentId === payment.id || r.quickPay !== null);
      return mine.length === 3 ? mine : undefined;
    }, 'the receipts');
    const [card, fee, quickPay] = [feed.find((r) => r.kind === 'payment' && r.providerPaymentId === payment.id), feed.find((r) => r.kind === 'fee'), feed.find((r) => r.quickPay !== null)];
    expect(card).toMatchObject({
      amount: 75_000,
      invoiceNumber: null,
      applications: [
        { invoiceNumber: one, amount: 60_000 },
        { invoiceNumber: two, amount: 15_000 },
      ],
      quickPay: null,
    });
    expect(fee).toMatchObject({ amount: 300, applications: [] });
    expect(quickPay).toMatchObject({ kind: 'payment', amount: 25_000, applications: [{ invoiceNumber: quick, amount: 25_000 }], quickPay: details });
    const events = await eventually(async () => {
      const ds = await deliveries(a, endpoint.id);
      return ds.length === 3 ? ds.map((d) => d.event.data) : undefined;
    }, 'the receipt events');
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ applications: card!.applications }), expect.objectContaining({ quickPay: details })]));
  }, 120_000);
});

async function clientOf(t: Tenant): Promise<string> {
  const id = `CL-${randomUUID().slice(0, 6)}`;
  await ok(api(t, 'POST', '/v1/clients', { id, name: 'Client' }), 'client');
  return id;
}
const aClient = () => clientOf(a);
const bClient = () => clientOf(b);
