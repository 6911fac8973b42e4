/**
 * Due-date reminders, on Temporal's Java time-skipping test server: weeks of durable timers pass
 * in seconds, never shortened in the code. The reminders follow the invoice: the amount still owed
 * in each, and none once it is paid.
 */
import { randomUUID } from 'node:crypto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { ensureSearchAttributes } from '../lib/temporal.js';
import { remindersWorkflowId } from '../workflows/contract.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox, type CaughtMessage } from './mail.js';
import { timeSkippingEnvironment } from './support.js';

let env: TestWorkflowEnvironment;
let stack: Stack;
let tenant: Tenant;
const box = mailbox(inject('mailDevUrl'));

beforeAll(async () => {
  env = await timeSkippingEnvironment(inject('testServerPath'));
  await ensureSearchAttributes(env.connection, 'default');
  stack = await startStack({ temporal: { client: env.client, nativeConnection: env.nativeConnection } });
  // Reminders on the due date, a week after and two weeks after; payments imported only monthly.
  tenant = await createTenant(stack, { reminderDays: [0, 7, 14], paymentImportSeconds: 30 * 86_400 });
});

afterAll(async () => {
  await stack?.stop();
  await env?.teardown();
});

const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

it('reminds on the due date and a week later with what is still owed, and stops once the invoice is paid', async () => {
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: tenant.apiKey, body });
  const pay = async (amount: number) => {
    const inv = await http<{ customerId: string }>(stack.sandboxUrl, 'GET', `/v1/invoices/${final.body.providerInvoiceId}`, { key: tenant.account.apiKey });
    const paid = await http(stack.sandboxUrl, 'POST', '/v1/payments', {
      key: tenant.account.apiKey,
      body: { customerId: inv.body.customerId, allocations: [{ invoiceId: final.body.providerInvoiceId, amount }], method: 'card' },
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(201);
  };
  const to = freshAddress();
  // The ERP asked for reminder events (this stack sends none: the outbox keeps them as pending deliveries).
  const endpoint = await api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/erp', events: ['reminder.sent'] });
  expect(endpoint.status, JSON.stringify(endpoint.body)).toBe(201);
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  await api('POST', '/v1/clients', { id: clientId, name: 'Lakeside Surveying', email: to });
  const number = `INV-${randomUUID().slice(0, 8)}`;
  expect((await api('POST', '/v1/invoices', { number, clientId, invoiceDate: day(0), dueDate: day(2), lines: [{ description: 'Survey', amount: 80_000 }] })).status).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  const reminders = async () => (await box.to(to)).filter((m) => m.subject.startsWith('Reminder:'));

  // Three days pass: the due date's reminder, with the whole amount and the Pay Now URL.
  await env.sleep('3 days');
  const first: CaughtMessage = await box.waitForMessage((m) => m.subject === `Reminder: invoice ${number} from Company ${tenant.companyId} is due today`);
  expect(first.text).toContain('$800.00 is still outstanding');
  expect(first.text).toContain(String(final.body.payNowUrl));
  expect(first.attachments?.map((a) => a.fileName)).toEqual([`invoice-${number}.pdf`]);

  // Part is paid; a week after the due date the reminder asks for the rest.
  await pay(30_000);
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.outstanding === 50_000 ? true : undefined), 'the payment applied');
  await env.sleep('7 days');
  const second = await box.waitForMessage((m) => m.subject === `Reminder: invoice ${number} from Company ${tenant.companyId} was due 7 days ago`);
  expect(second.text).toContain('$500.00 is still outstanding');

  // Paid in full: the two-week reminder is not sent, and the reminders end.
  await pay(50_000);
  await eventually(async () => ((await api('GET', `/v1/invoices/${number}`)).body.settlement === 'Settled' ? true : undefined), 'settled');
  await env.sleep('7 days');
  const handle = env.client.workflow.getHandle(remindersWorkflowId(tenant.companyId, number, 1));
  expect(await handle.result()).toEqual({ signalled: [0, 7], ended: 'settled' });
  expect((await reminders()).map((m) => m.subject)).toHaveLength(2);
  const listed = await http<{ reminderDays: number[]; sent: { daysAfterDue: number; outstanding: number; recipient: string }[] }>(stack.apiUrl, 'GET', `/v1/invoices/${number}/reminders`, {
    key: tenant.apiKey,
  });
  expect(listed.body.reminderDays).toEqual([0, 7, 14]);
  expect(listed.body.sent).toEqual([
    expect.objectContaining({ daysAfterDue: 0, outstanding: 80_000, recipient: to }),
    expect.objectContaining({ daysAfterDue: 7, outstanding: 50_000, recipient: to }),
  ]);
  // Each reminder sent is a reminder.sent event, written with its record.
  const events = await http<{ data: { eventType: string; event: { data: Record<string, unknown> } }[] }>(stack.apiUrl, 'GET', `/v1/webhook-endpoints/${String(endpoint.body.id)}/deliveries`, {
    key: tenant.apiKey,
  });
  expect(events.body.data.map((d) => [d.eventType, d.event.data.invoiceNumber, d.event.data.daysAfterDue, d.event.data.outstanding, d.event.data.recipient])).toEqual([
    ['reminder.sent', number, 0, 80_000, to],
    ['reminder.sent', number, 7, 50_000, to],
  ]);
});

it('tries a reminder again after a provider outage on its day, and sends it once', async () => {
  const t = await createTenant(stack, { reminderDays: [0], paymentImportSeconds: 30 * 86_400 });
  // The environment's clock, which the test above moved weeks ahead.
  const now = await env.currentTimeMs();
  const envDay = (offset: number) => new Date(now + offset * 86_400_000).toISOString().slice(0, 10);
  const api = (method: string, p: string, body?: unknown) => http<Record<string, unknown>>(stack.apiUrl, method, p, { key: t.apiKey, body });
  const sandbox = (method: string, p: string, body?: unknown) => http<{ data: { path: string; status: number }[] }>(stack.sandboxUrl, method, p, { key: t.account.apiKey, body });
  const to = freshAddress();
  const clientId = `cl-${randomUUID().slice(0, 6)}`;
  await api('POST', '/v1/clients', { id: clientId, name: 'Quarry Road Partners', email: to });
  const number = `INV-${randomUUID().slice(0, 8)}`;
  expect((await api('POST', '/v1/invoices', { number, clientId, invoiceDate: envDay(0), dueDate: envDay(2), lines: [{ description: 'Survey', amount: 20_000 }] })).status).toBe(201);
  expect((await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' })).status).toBe(200);

  // The provider is down when the due date comes: the reminder's import of payments fails.
  await sandbox('POST', '/v1/sandbox/faults', { mode: 'error', status: 503 });
  await env.sleep(Date.parse(`${envDay(2)}T00:00:00Z`) - (await env.currentTimeMs()) + 20_000);
  await eventually(async () => {
    const log = await sandbox('GET', '/v1/sandbox/requests');
    return log.body.data.some((r) => r.path.startsWith('/v1/payments') && r.status === 503) ? true : undefined;
  }, 'the reminder to meet the outage');
  expect((await box.to(to)).filter((m) => m.subject.startsWith('Reminder:'))).toEqual([]);

  // Back a little later: the next try sends it, once.
  await sandbox('POST', '/v1/sandbox/faults', { mode: 'none' });
  await env.sleep('10 minutes');
  await box.waitForMessage((m) => m.subject === `Reminder: invoice ${number} from Company ${t.companyId} is due today`);
  await env.sleep('2 hours');
  const listed = await http<{ sent: { daysAfterDue: number }[] }>(stack.apiUrl, 'GET', `/v1/invoices/${number}/reminders`, { key: t.apiKey });
  expect(listed.body.sent).toEqual([expect.objectContaining({ daysAfterDue: 0 })]);
  expect((await box.to(to)).filter((m) => m.subject.startsWith('Reminder:'))).toHaveLength(1);
});
