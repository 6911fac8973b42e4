/**
 * Communicating bills: message templates with #tags (unknown ones refused when saved, naming them),
 * the company's custom tags, a preview with one bill's current values, and a message sent to
 * several bills as one durable run, each email read back from the mail catcher.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox, type CaughtMessage } from './mail.js';

let stack: Stack;
let tenant: Tenant;
const box = mailbox(inject('mailDevUrl'));

beforeAll(async () => {
  stack = await startStack();
  tenant = await createTenant(stack);
});

afterAll(async () => {
  await stack?.stop();
});

type Body = Record<string, unknown>;
interface Run {
  id: string;
  kind: string;
  status: string;
  total: number;
  sent: number;
  failed: number;
  skippedHeld: number;
  items?: { invoiceNumber: string; outcome: string; reason: string | null; recipient: string | null }[];
}

const api = <T = Body>(method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body, ...(headers ? { headers } : {}) });
const provider = <T = Body>(method: string, path: string, body?: unknown) => http<T>(stack.sandboxUrl, method, path, { key: tenant.account.apiKey, body });

async function newClient(name: string, email: string | null): Promise<string> {
  const id = `cl-${randomUUID().slice(0, 8)}`;
  const r = await api('POST', '/v1/clients', { id, name, ...(email ? { email } : {}) });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return id;
}

async function finalBill(clientId: string, amount: number): Promise<{ number: string; payNowUrl: string | null; providerInvoiceId: string | null }> {
  const number = `B-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate: '2026-11-03', dueDate: '2026-12-03', lines: [{ description: 'Surveying', amount }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const final = await api<{ payNowUrl: string | null; providerInvoiceId: string | null }>('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  return { number, ...final.body };
}

const fromRun = (runId: string) => (m: CaughtMessage) => m.headers['x-billflow-run'] === runId;

describe('message templates', () => {
  it('refuses an unknown tag when saved, naming it, and accepts custom tags once the company defines them', async () => {
    const unknown = await api('POST', '/v1/message-templates', { name: 'Broken', subject: 'Bill #bill.number', body: 'You owe #bill.amount_due, see #bill.nonsense.' });
    expect(unknown.status).toBe(422);
    expect(unknown.body).toMatchObject({ type: expect.stringContaining('unknown-tag'), field: 'body', detail: expect.stringContaining('#bill.nonsense') });
    expect((unknown.body as { detail: string }).detail).toContain('#bill.amount_due'); // the known tags are listed

    const undefinedCustom = await api('POST', '/v1/message-templates', { name: 'Support', subject: 'Questions about #bill.number?', body: 'Call #custom.support_phone.' });
    expect(undefinedCustom.status).toBe(422);
    expect(undefinedCustom.body).toMatchObject({ field: 'body', detail: expect.stringContaining('#custom.support_phone') });

    expect((await api('PUT', '/v1/custom-tags/Support-Phone', { value: 'x' })).status).toBe(422);
    const created = await api('PUT', '/v1/custom-tags/support_phone', { value: '+1 555 0100' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ tag: '#custom.support_phone', value: '+1 555 0100' });
    expect((await api('PUT', '/v1/custom-tags/support_phone', { value: '+1 555 0199' })).status).toBe(200);
    expect((await api<{ data: { name: string; value: string }[] }>('GET', '/v1/custom-tags')).body.data).toEqual([expect.objectContaining({ name: 'support_phone', value: '+1 555 0199' })]);
    const tags = await api<{ data: { tag: string }[] }>('GET', '/v1/message-tags');
    expect(tags.body.data.map((t) => t.tag)).toEqual(expect.arrayContaining(['#bill.number', '#bill.amount_due', '#bill.pay_now_url', '#client.name', '#custom.support_phone']));

    const saved = await api<{ id: string; tags: string[] }>('POST', '/v1/message-templates', { name: 'Support', subject: 'Questions about #bill.number?', body: 'Call #custom.support_phone.' });
    expect(saved.status, JSON.stringify(saved.body)).toBe(201);
    expect(saved.headers.get('location')).toBe(`/v1/message-templates/${saved.body.id}`);
    expect(saved.body.tags).toEqual(['#bill.number', '#custom.support_phone']);
    expect((await api('POST', '/v1/message-templates', { name: 'Support', subject: 's', body: 'b' })).status).toBe(409);

    // A change with an unknown tag is refused and changes nothing.
    const badEdit = await api('PUT', `/v1/message-templates/${saved.body.id}`, { name: 'Support', subject: 'About #bil.number', body: 'Call us.' });
    expect(badEdit.status).toBe(422);
    expect(badEdit.body).toMatchObject({ field: 'subject', detail: expect.stringContaining('#bil.number') });
    expect((await api('GET', `/v1/message-templates/${saved.body.id}`)).body).toMatchObject({ subject: 'Questions about #bill.number?' });

    // The tag cannot disappear under a template that uses it.
    const inUse = await api('DELETE', '/v1/custom-tags/support_phone');
    expect(inUse.status).toBe(409);
    expect(inUse.body).toMatchObject({ type: expect.stringContaining('tag-in-use'), detail: expect.stringContaining('"Support"') });
    expect((await api('PUT', `/v1/message-templates/${saved.body.id}`, { name: 'Support', subject: 'Questions about #bill.number?', body: 'Call us.' })).status).toBe(200);
    expect((await api('DELETE', '/v1/custom-tags/support_phone')).status).toBe(200);
    expect((await api('DELETE', '/v1/custom-tags/support_phone')).status).toBe(404);
    expect((await api('GET', '/v1/message-templates/tpl-nope')).status).toBe(404);
    // Another company sees neither the template nor the tags.
    const other = await createTenant(stack, { providerEnabled: false });
    expect((await http(stack.apiUrl, 'GET', `/v1/message-templates/${saved.body.id}`, { key: other.apiKey })).status).toBe(404);
    expect((await http<{ data: unknown[] }>(stack.apiUrl, 'GET', '/v1/message-templates', { key: other.apiKey })).body.data).toEqual([]);
  });

  it("previews a template with one bill's current values and sends nothing", async () => {
    await api('PUT', '/v1/custom-tags/office_hours', { value: 'weekdays 9-17' });
    const template = await api<{ id: string }>('POST', '/v1/message-templates', {
      name: `Reminder ${randomUUID().slice(0, 4)}`,
      subject: 'Reminder: #bill.number, #bill.amount_due due #bill.due_date',
      body: 'Dear #client.name,\n#bill.amount_due of #bill.total is still open. Pay now: #bill.pay_now_url\nQuestions? #custom.office_hours. Ref \\#bill.number.\n#company.name',
    });
    expect(template.status, JSON.stringify(template.body)).toBe(201);
    const email = freshAddress('preview');
    const clientId = await newClient('Juniper Landscapes', email);
    const bill = await finalBill(clientId, 123_456);
    // A payment since Final: the preview shows what is owed now.
    const customer = (await provider<{ customerId: string }>('GET', `/v1/invoices/${bill.providerInvoiceId}`)).body.customerId;
    await provider('POST', '/v1/payments', { customerId: customer, allocations: [{ invoiceId: bill.providerInvoiceId, amount: 23_456 }], method: 'card' });
    await eventually(async () => ((await api<{ outstanding: number }>('GET', `/v1/invoices/${bill.number}`)).body.outstanding === 100_000 ? true : undefined), 'the payment');

    const preview = await api<{ subject: string; body: string; recipient: string }>('POST', `/v1/message-templates/${template.body.id}/preview`, { invoiceNumber: bill.number });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expect(preview.body.subject).toBe(`Reminder: ${bill.number}, $1,000.00 due 2026-12-03`);
    expect(preview.body.body).toBe(
      `Dear Juniper Landscapes,\n$1,000.00 of $1,234.56 is still open. Pay now: ${bill.payNowUrl}\nQuestions? weekdays 9-17. Ref #bill.number.\nCompany ${tenant.companyId}`,
    );
    expect(preview.body.recipient).toBe(email);
    expect(bill.payNowUrl).toMatch(/\/pay\//);

    const draftNumber = `D-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number: draftNumber, clientId, invoiceDate: '2026-11-03', dueDate: '2026-12-03', lines: [{ description: 'Later', amount: 1_000 }] });
    expect((await api('POST', `/v1/message-templates/${template.body.id}/preview`, { invoiceNumber: draftNumber })).body).toMatchObject({ status: 409, type: expect.stringContaining('not-a-bill') });
    expect((await api('POST', `/v1/message-templates/${template.body.id}/preview`, { invoiceNumber: 'NOPE-1' })).status).toBe(404);

    // The previews sent nothing. Sending the message for real, through the same channel to the same
    // client, is what a preview's email would have come with; once it has arrived, it is the only
    // message with that subject.
    const sent = await api<Run>('POST', `/v1/message-templates/${template.body.id}/send`, { invoiceNumbers: [bill.number] }, { prefer: 'wait=30' });
    expect(sent.body, JSON.stringify(sent.body)).toMatchObject({ status: 'completed', sent: 1 });
    const real = await box.waitForMessage(fromRun(sent.body.id));
    expect(real.subject).toBe(preview.body.subject);
    expect((await box.to(email)).filter((m) => m.subject === preview.body.subject).map((m) => m.id)).toEqual([real.id]);
  });
});

describe('sending a message to several bills', () => {
  it("emails each bill's client with its own values, as one run with a result per bill", async () => {
    await api('PUT', '/v1/custom-tags/support_line', { value: '+1 555 0142' });
    const template = await api<{ id: string }>('POST', '/v1/message-templates', {
      name: `Statement ${randomUUID().slice(0, 4)}`,
      subject: 'Bill #bill.number: #bill.amount_due open',
      body: 'Hello #client.name, bill #bill.number (#bill.settlement) has #bill.amount_due due by #bill.due_date. Call #custom.support_line.',
    });
    const people = [
      { name: 'Alder Works', email: freshAddress('alder'), amount: 25_000 },
      { name: 'Birch & Co', email: freshAddress('birch'), amount: 310_050 },
      { name: 'Cedar Partners', email: freshAddress('cedar'), amount: 999 },
    ];
    const bills = [];
    for (const p of people) bills.push({ ...p, ...(await finalBill(await newClient(p.name, p.email), p.amount)) });
    // A client without an email address: that bill fails, with the reason, and the others go.
    const noEmail = await finalBill(await newClient('Dogwood Ltd', null), 5_000);

    expect((await api('POST', `/v1/message-templates/${template.body.id}/send`, {})).body).toMatchObject({ status: 422, field: 'invoiceNumbers' });
    expect((await api('POST', `/v1/message-templates/${template.body.id}/send`, { invoiceNumbers: ['NOPE-2'] })).body).toMatchObject({ status: 404, field: 'invoiceNumbers' });

    const numbers = [...bills.map((b) => b.number), noEmail.number];
    const sent = await api<Run>('POST', `/v1/message-templates/${template.body.id}/send`, { invoiceNumbers: numbers }, { prefer: 'wait=30' });
    expect(sent.status, JSON.stringify(sent.body)).toBe(201);
    expect(sent.headers.get('preference-applied')).toBe('wait=30');
    expect(sent.headers.get('location')).toBe(`/v1/bill-runs/${sent.body.id}`);
    expect(sent.body).toMatchObject({ kind: 'communicate', status: 'completed', total: 4, sent: 3, failed: 1, skippedHeld: 0 });
    expect(sent.body.items!.find((i) => i.invoiceNumber === noEmail.number)).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('has no email address') });

    for (const b of bills) {
      const msg = await box.waitForMessage((m) => fromRun(sent.body.id)(m) && m.to.some((t) => t.address === b.email));
      const due = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' }).format(b.amount / 100);
      expect(msg.subject).toBe(`Bill ${b.number}: ${due} open`);
      expect(msg.text?.trim()).toBe(`Hello ${b.name}, bill ${b.number} (Unsettled) has ${due} due by 2026-12-03. Call +1 555 0142.`);
      expect(msg.headers['x-billflow-invoice']).toBe(b.number);
      expect(msg.attachments ?? []).toEqual([]);
      expect((await box.to(b.email)).filter(fromRun(sent.body.id))).toHaveLength(1);
    }
    const items = await api<{ data: { invoiceNumber: string; outcome: string; recipient: string | null }[] }>('GET', `/v1/bill-runs/${sent.body.id}/items?outcome=sent`);
    expect(items.body.data.map((i) => [i.invoiceNumber, i.recipient]).sort()).toEqual(bills.map((b) => [b.number, b.email]).sort());
  });

  it('selects the bills by criteria when no numbers are given, and the run is followed to its end', async () => {
    const template = await api<{ id: string }>('POST', '/v1/message-templates', {
      name: `Notice ${randomUUID().slice(0, 4)}`,
      subject: 'Notice for #bill.number',
      body: '#bill.amount_due, #client.name',
    });
    const email = freshAddress('criteria');
    const clientId = await newClient('Elm Street Dental', email);
    const a = await finalBill(clientId, 1_000);
    const b = await finalBill(clientId, 2_000);
    const started = await api<Run>('POST', `/v1/message-templates/${template.body.id}/send`, { criteria: { clientIds: [clientId], settlement: ['Unsettled'] } });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const done = await eventually(async () => {
      const r = await api<Run>('GET', `/v1/bill-runs/${started.body.id}`);
      return r.body.status === 'completed' ? r.body : undefined;
    }, 'the run to complete');
    expect(done).toMatchObject({ total: 2, sent: 2, failed: 0 });
    const subjects = (await box.to(email))
      .filter(fromRun(started.body.id))
      .map((m) => m.subject)
      .sort();
    expect(subjects).toEqual([`Notice for ${a.number}`, `Notice for ${b.number}`].sort());
  });
});
