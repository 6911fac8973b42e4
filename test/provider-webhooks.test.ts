/**
 * Provider webhooks under attack: forged, replayed (the same event id), stale and reordered
 * deliveries are refused or applied once. Signatures are checked against known-answer vectors
 * (computed with `openssl dgst -sha256 -hmac`, pasted below) and signed in the tests with
 * node:crypto directly, never only with billflow's own signer.
 */
import { createHmac, randomUUID } from 'node:crypto';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEADER, verifySignature } from '../lib/signature.js';
import { invoiceWorkflowId, paymentSignal } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { workflowIdle, type WebhookDelivery } from './settled.js';

type Invoice = { number: string; status: string; outstanding: number; providerInvoiceId: string; payments: { paymentId: string; amount: number }[] };

// Known answer: printf '%s' '1764633600.{"id":"evt_kat_1","type":"payment.succeeded"}' | openssl dgst -sha256 -hmac 'whsec_known_answer_secret'
const KAT = {
  secret: 'whsec_known_answer_secret',
  body: '{"id":"evt_kat_1","type":"payment.succeeded"}',
  t: 1_764_633_600,
  v1: '166bdd5988befa19863a01cd006008a427cc41864380cf97003ebe99a964cf98',
  // The same body and time under 'whsec_rotated_secret' (openssl, as above).
  rotatedV1: 'a240b4635faef6c51bdb0643d3504f81fd8be901f7f50714ca04c077e04bdacb',
};
const atKat = { now: KAT.t * 1000 };

describe('verifySignature (known-answer vectors)', () => {
  it('accepts the vector, with either secret of a rotation', () => {
    expect(verifySignature(KAT.secret, KAT.body, `t=${KAT.t},v1=${KAT.v1}`, atKat)).toBeNull();
    expect(verifySignature(['whsec_rotated_secret', KAT.secret], KAT.body, `t=${KAT.t},v1=${KAT.v1}`, atKat)).toBeNull();
    expect(verifySignature(['whsec_rotated_secret', KAT.secret], KAT.body, `t=${KAT.t},v1=${KAT.rotatedV1}`, atKat)).toBeNull();
    // Several v1 values (a provider signing with two secrets during its own rotation): one match is enough.
    expect(verifySignature(KAT.secret, KAT.body, `t=${KAT.t},v1=${KAT.rotatedV1},v1=${KAT.v1}`, atKat)).toBeNull();
  });

  it('refuses a forged, altered, re-timed, malleated or stale signature', () => {
    const refused = (header: string | undefined, body = KAT.body, secret: string | string[] = KAT.secret, now = atKat.now) => verifySignature(secret, body, header, { now });
    expect(refused(`t=${KAT.t},v1=${KAT.v1}`, KAT.body, 'whsec_other')).toMatch(/does not match/);
    expect(refused(`t=${KAT.t},v1=${KAT.v1}`, KAT.body.replace('evt_kat_1', 'evt_kat_2'))).toMatch(/does not match/);
    expect(refused(`t=${KAT.t + 1},v1=${KAT.v1}`)).toMatch(/does not match/);
    expect(refused(`t=${KAT.t},v1=${KAT.v1.slice(0, -2)}00`)).toMatch(/does not match/);
    // Extra characters after a valid signature, or another spelling of the timestamp, are not the signed header.
    expect(refused(`t=${KAT.t},v1=${KAT.v1}zz`)).not.toBeNull();
    expect(refused(`t=${KAT.t}.0,v1=${KAT.v1}`)).toMatch(/malformed/);
    expect(refused(`t=0x${KAT.t.toString(16)},v1=${KAT.v1}`)).toMatch(/malformed/);
    expect(refused(`v1=${KAT.v1}`)).toMatch(/malformed/);
    expect(refused(`t=${KAT.t}`)).toMatch(/malformed/);
    expect(refused(undefined)).toMatch(/missing/);
    // Stale: more than 5 minutes either way.
    expect(refused(`t=${KAT.t},v1=${KAT.v1}`, KAT.body, KAT.secret, atKat.now + 301_000)).toMatch(/stale/);
    expect(refused(`t=${KAT.t},v1=${KAT.v1}`, KAT.body, KAT.secret, atKat.now - 301_000)).toMatch(/stale/);
    expect(refused(`t=${KAT.t},v1=${KAT.v1}`, KAT.body, KAT.secret, atKat.now + 299_000)).toBeNull();
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

/** Signed here with node:crypto, as the provider signs: HMAC-SHA256(secret, "<t>.<body>"). */
function sign(secret: string, body: string, t = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
}

const deliver = (body: string, signature: string, companyId = tenant.companyId) =>
  http<Record<string, unknown>>(stack.apiUrl, 'POST', `/webhooks/provider/${companyId}`, { raw: body, headers: { [SIGNATURE_HEADER]: signature } });

async function finalInvoice(clientId: string, amount: number): Promise<Invoice> {
  const number = `WH-${randomUUID().slice(0, 8)}`;
  const created = await http(stack.apiUrl, 'POST', '/v1/invoices', {
    key: tenant.apiKey,
    body: { number, clientId, invoiceDate: '2026-11-20', dueDate: '2026-12-20', lines: [{ description: 'Survey', amount }] },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const final = await http<Invoice>(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key: tenant.apiKey, body: { status: 'Final' } });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  return final.body;
}

/**
 * Payments made at the provider whose webhooks never reach billflow by themselves (the account's
 * webhook URL points at a closed port), so the test delivers the provider's own event bodies in the
 * order it chooses.
 */
async function undeliveredPayments(inv: Invoice, amounts: number[]): Promise<WebhookDelivery[]> {
  const acct = { key: tenant.account.apiKey };
  const clientId = (await http<{ clientId: string }>(stack.apiUrl, 'GET', `/v1/invoices/${inv.number}`, { key: tenant.apiKey })).body.clientId;
  const customer = (await http<{ data: { id: string }[] }>(stack.sandboxUrl, 'GET', `/v1/customers?externalId=${clientId}`, acct)).body.data[0]!;
  expect((await http(stack.sandboxUrl, 'PATCH', `/v1/accounts/${tenant.account.id}`, { ...acct, body: { webhookUrl: 'http://127.0.0.1:9/closed' } })).status).toBe(200);
  try {
    const events: WebhookDelivery[] = [];
    for (const amount of amounts) {
      const paid = await http<{ id: string }>(stack.sandboxUrl, 'POST', '/v1/payments', {
        ...acct,
        body: { customerId: customer.id, method: 'card', allocations: [{ invoiceId: inv.providerInvoiceId, amount }] },
      });
      expect(paid.status, JSON.stringify(paid.body)).toBe(201);
      const d = await http<{ data: WebhookDelivery[] }>(stack.sandboxUrl, 'GET', `/v1/sandbox/webhook-deliveries?paymentId=${paid.body.id}`, acct);
      events.push(d.body.data[0]!);
    }
    return events;
  } finally {
    await http(stack.sandboxUrl, 'PATCH', `/v1/accounts/${tenant.account.id}`, { ...acct, body: { webhookUrl: `${stack.apiUrl}/webhooks/provider/${tenant.companyId}` } });
  }
}

/** The payment signals the invoice's workflow received, by payment id. */
async function paymentSignals(number: string): Promise<string[]> {
  const T = proto.temporal.api.enums.v1.EventType;
  const history = await stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, number)).fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.eventType === T.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED && e.workflowExecutionSignaledEventAttributes?.signalName === paymentSignal.name)
    .map((e) => {
      const data = e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!.data!;
      return (JSON.parse(Buffer.from(data).toString('utf8')) as { paymentId: string }).paymentId;
    });
}

describe('POST /webhooks/provider/{companyId}', () => {
  let clientId: string;
  beforeAll(async () => {
    clientId = `cl-${randomUUID().slice(0, 6)}`;
    expect((await http(stack.apiUrl, 'POST', '/v1/clients', { key: tenant.apiKey, body: { id: clientId, name: 'Harbour Works', email: 'ap@harbour.example' } })).status).toBe(201);
  });

  it('refuses forged, stale and foreign-signed deliveries of a real event, and applies none of them', async () => {
    const inv = await finalInvoice(clientId, 40_000);
    const [event] = await undeliveredPayments(inv, [40_000]);
    const { body } = event!;
    const now = Math.floor(Date.now() / 1000);
    const other = await createTenant(stack);
    for (const [what, signature] of [
      ['a guessed secret', sign('whsec_guess', body)],
      ["another company's secret", sign(other.account.webhookSecret, body)],
      ['a stale timestamp', sign(tenant.account.webhookSecret, body, now - 360)],
      ['a timestamp from the future', sign(tenant.account.webhookSecret, body, now + 360)],
      ['no signature', ''],
    ] as const) {
      const r = await deliver(body, signature);
      expect(r.status, what).toBe(400);
      expect(r.body, what).toMatchObject({ type: expect.stringContaining('invalid-signature') });
    }
    // The body altered after signing.
    const altered = body.replace('"amount":40000', '"amount":4000000');
    expect(altered).not.toBe(body);
    expect((await deliver(altered, sign(tenant.account.webhookSecret, body))).status).toBe(400);
    // Then the genuine delivery: the one and only payment signal the workflow sees.
    const genuine = await deliver(body, sign(tenant.account.webhookSecret, body));
    expect(genuine.status, JSON.stringify(genuine.body)).toBe(200);
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, inv.number));
    expect(await paymentSignals(inv.number)).toEqual([event!.paymentId]);
  });

  it('answers a replay of an event 200 with the first answer, and passes it on once', async () => {
    const inv = await finalInvoice(clientId, 50_000);
    const [event] = await undeliveredPayments(inv, [50_000]);
    const signature = sign(tenant.account.webhookSecret, event!.body);
    const first = await deliver(event!.body, signature);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({ received: event!.eventId, invoices: [inv.number] });
    // The captured request again, byte for byte, and the same event freshly signed (a provider redelivery).
    const replayed = await deliver(event!.body, signature);
    const redelivered = await deliver(event!.body, sign(tenant.account.webhookSecret, event!.body));
    for (const r of [replayed, redelivered]) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ ...first.body, duplicate: true });
    }
    const paid = await eventually(async () => {
      const r = await http<Invoice>(stack.apiUrl, 'GET', `/v1/invoices/${inv.number}`, { key: tenant.apiKey });
      return r.body.outstanding === 0 ? r.body : undefined;
    }, 'the invoice to be paid');
    expect(paid.payments).toEqual([expect.objectContaining({ paymentId: event!.paymentId, amount: 50_000 })]);
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, inv.number));
    expect(await paymentSignals(inv.number)).toEqual([event!.paymentId]);
    const [recorded] = await stack.sql`SELECT count(*)::int AS n FROM provider_webhook_events WHERE company_id = ${tenant.companyId} AND event_id = ${event!.eventId}`;
    expect(recorded!.n).toBe(1);
  });

  it('applies payments delivered out of order, each once', async () => {
    const inv = await finalInvoice(clientId, 100_000);
    const events = await undeliveredPayments(inv, [30_000, 70_000]);
    // The second payment's event first, then the first's, then the second's again.
    for (const e of [events[1]!, events[0]!, events[1]!]) {
      const r = await deliver(e.body, sign(tenant.account.webhookSecret, e.body));
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    const paid = await eventually(async () => {
      const r = await http<Invoice>(stack.apiUrl, 'GET', `/v1/invoices/${inv.number}`, { key: tenant.apiKey });
      return r.body.outstanding === 0 ? r.body : undefined;
    }, 'the invoice to be paid');
    expect(paid.payments.map((p) => [p.paymentId, p.amount]).sort()).toEqual(
      [
        [events[0]!.paymentId, 30_000],
        [events[1]!.paymentId, 70_000],
      ].sort(),
    );
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, inv.number));
    expect(await paymentSignals(inv.number)).toEqual([events[1]!.paymentId, events[0]!.paymentId]);
  });

  it("finds the invoice of a payment that arrives before the invoice's read model names its provider record", async () => {
    // The read model is written a moment after a Final answers; the record's own reference is
    // written when the record is made. Here the read model is as it was before the Final.
    const inv = await finalInvoice(clientId, 40_000);
    const [event] = await undeliveredPayments(inv, [40_000]);
    await workflowIdle(stack.temporal, invoiceWorkflowId(tenant.companyId, inv.number));
    await stack.sql`UPDATE invoices SET provider_invoice_id = NULL WHERE company_id = ${tenant.companyId} AND number = ${inv.number}`;
    const r = await deliver(event!.body, sign(tenant.account.webhookSecret, event!.body));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ invoices: [inv.number], unknown: [] });
    await eventually(async () => ((await http<Invoice>(stack.apiUrl, 'GET', `/v1/invoices/${inv.number}`, { key: tenant.apiKey })).body.outstanding === 0 ? true : undefined), 'the payment applied');
    expect(await paymentSignals(inv.number)).toEqual([event!.paymentId]);
  });
});
