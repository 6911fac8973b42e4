/**
 * Bill sending runs: bills selected by criteria go out by each client's delivery preference (email
 * with the bill's PDF, or into the run's merged printout), held exceptional bills are skipped,
 * progress is readable while the run works, a failed bill is reported with its reason and retried
 * alone; and one bill's PDF on demand with its current figures.
 */
import { createHash, randomUUID } from 'node:crypto';
import { PDFDocument } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { billRunProgressQuery, billRunWorkflowId, type BillRunProgress } from '../workflows/bill-run-contract.js';
import type { billRunWorkflow } from '../workflows/bill-run.js';
import { createTenant, eventually, http, startStack, type Stack, type Tenant } from './harness.js';
import { freshAddress, mailbox, type CaughtMessage } from './mail.js';
import { pdfText } from './support.js';

let stack: Stack;
let tenant: Tenant;
const box = mailbox(inject('mailDevUrl'));

beforeAll(async () => {
  stack = await startStack();
  // No provider traffic: bills here are sent by billflow itself.
  tenant = await createTenant(stack, { providerEnabled: false });
  const def = await api('PUT', '/v1/billing-run-definition', { maxCredited: null, maxDebited: { kind: 'fixed', amount: 500_000 } });
  expect(def.status, JSON.stringify(def.body)).toBe(200);
});

afterAll(async () => {
  await stack?.stop();
});

type Body = Record<string, unknown>;
interface Item {
  seq: number;
  invoiceNumber: string;
  delivery: string;
  outcome: string;
  reason: string | null;
  recipient: string | null;
  documentId: string | null;
  documentSha256: string | null;
}
interface Run {
  id: string;
  kind: string;
  status: string;
  retryOf: string | null;
  total: number;
  sent: number;
  printed: number;
  skippedHeld: number;
  failed: number;
  pending: number;
  workflowId: string;
  printoutUrl: string | null;
  progress?: BillRunProgress | null;
}

const api = <T = Body>(method: string, path: string, body?: unknown, headers?: Record<string, string>) =>
  http<T>(stack.apiUrl, method, path, { key: tenant.apiKey, body, ...(headers ? { headers } : {}) });

async function newClient(name: string, opts: { email?: string | null; delivery?: 'email' | 'print' } = {}): Promise<string> {
  const id = `cl-${randomUUID().slice(0, 8)}`;
  const email = opts.email === undefined ? freshAddress() : opts.email;
  expect((await api('POST', '/v1/clients', { id, name, ...(email ? { email } : {}) })).status).toBe(201);
  if (opts.delivery) expect((await api('PATCH', `/v1/clients/${id}`, { deliveryPreference: opts.delivery })).status).toBe(200);
  return id;
}

async function finalBill(clientId: string, amount: number, invoiceDate = '2026-11-05'): Promise<string> {
  const number = `R-${randomUUID().slice(0, 8)}`;
  const created = await api('POST', '/v1/invoices', { number, clientId, invoiceDate, dueDate: '2026-12-20', lines: [{ description: `Design review ${number}`, amount }] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const final = await api('POST', `/v1/invoices/${number}/status`, { status: 'Final' });
  expect(final.status, JSON.stringify(final.body)).toBe(200);
  return number;
}

async function completed(runId: string): Promise<Run> {
  return eventually(
    async () => {
      const r = await api<Run>('GET', `/v1/bill-runs/${runId}`);
      return r.body.status === 'completed' ? r.body : undefined;
    },
    `run ${runId} to complete`,
    45_000,
  );
}

async function items(runId: string): Promise<Item[]> {
  const r = await api<{ data: Item[] }>('GET', `/v1/bill-runs/${runId}/items?limit=1000`);
  expect(r.status).toBe(200);
  return r.body.data;
}

async function billPdf(number: string): Promise<Buffer> {
  const res = await fetch(`${stack.apiUrl}/v1/bills/${number}/pdf`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/pdf');
  return Buffer.from(await res.arrayBuffer());
}

const fromRun = (runId: string) => (m: CaughtMessage) => m.headers['x-billflow-run'] === runId;

describe('a bill sending run', () => {
  it('emails bills with their PDF, prints the print bills into one printout, skips held bills, and retries only the failures', async () => {
    const emailA = freshAddress('alpha');
    const emailP = freshAddress('print');
    const a = await newClient('Alpha Architects', { email: emailA });
    const b = await newClient('Beta Builders');
    const p1 = await newClient('Printed Partners', { email: emailP, delivery: 'print' });
    const p2 = await newClient('Paper Mill Inc', { delivery: 'print' });
    const held = await newClient('Heavy Holdings');
    const noEmail = await newClient('Nomad Surveys', { email: null });

    const billA = await finalBill(a, 120_000);
    const oldA = await finalBill(a, 7_000, '2026-01-15'); // outside the date range
    const billB = await finalBill(b, 45_500);
    const billP1 = await finalBill(p1, 80_000);
    const billP2 = await finalBill(p2, 90_000);
    const billHeld = await finalBill(held, 600_000); // above the 500,000 max debited: exceptional, held
    const billNo = await finalBill(noEmail, 30_000);
    expect((await api('GET', `/v1/invoices/${billHeld}`)).body).toMatchObject({ held: true, classification: 'Max Credit Limit Amount Reached' });

    const clientIds = [a, b, p1, p2, held, noEmail];
    const created = await api<Run>('POST', '/v1/bill-runs', { criteria: { clientIds, invoiceDateFrom: '2026-11-01', invoiceDateTo: '2026-11-30' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/bill-runs/${created.body.id}`);
    expect(created.body.workflowId).toBe(billRunWorkflowId(tenant.companyId, created.body.id));
    const run = await completed(created.body.id);
    expect(run).toMatchObject({ kind: 'send', total: 6, sent: 2, printed: 2, skippedHeld: 1, failed: 1, pending: 0 });

    const results = Object.fromEntries((await items(run.id)).map((i) => [i.invoiceNumber, i]));
    expect(Object.keys(results).sort()).toEqual([billA, billB, billP1, billP2, billHeld, billNo].sort());
    expect(results[billA]).toMatchObject({ delivery: 'email', outcome: 'sent', recipient: emailA });
    expect(results[billP1]).toMatchObject({ delivery: 'print', outcome: 'printed' });
    expect(results[billHeld]).toMatchObject({ outcome: 'skipped-held', reason: expect.stringContaining('Max Credit Limit Amount Reached') });
    expect(results[billNo]).toMatchObject({ outcome: 'failed', reason: expect.stringContaining('has no email address') });

    // The email carries the bill's own PDF (the run recorded which one), reading as the bill's PDF on demand does.
    const msg = await box.waitForMessage((m) => fromRun(run.id)(m) && m.to.some((t) => t.address === emailA));
    expect(msg.subject).toBe(`Bill ${billA} from Company ${tenant.companyId}`);
    expect(msg.text).toContain('The amount due, $1,200.00, is payable by 2026-12-20.');
    const attached = await box.attachment(msg, `invoice-${billA}.pdf`);
    expect(createHash('sha256').update(attached).digest('hex')).toBe(results[billA]!.documentSha256);
    const text = await pdfText(attached);
    expect(text).toContain(billA);
    expect(text).toContain('Alpha Architects');
    expect(text).toMatch(/Amount due\s+\$1,200\.00/);
    expect(text).toBe(await pdfText(await billPdf(billA)));
    // Print-preference and held clients got no email from the run.
    expect((await box.to(emailP)).filter(fromRun(run.id))).toEqual([]);
    expect((await box.messages()).filter(fromRun(run.id))).toHaveLength(2);

    // The printout: both print bills, one page each, in run order, nothing else.
    const printout = await fetch(`${stack.apiUrl}${run.printoutUrl}`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
    expect(printout.status).toBe(200);
    expect(printout.headers.get('content-type')).toBe('application/pdf');
    const merged = Buffer.from(await printout.arrayBuffer());
    expect((await PDFDocument.load(merged)).getPageCount()).toBe(2);
    const printed = await pdfText(merged);
    const [first, second] = [billP1, billP2].sort();
    expect(printed.indexOf(first!)).toBeGreaterThanOrEqual(0);
    expect(printed.indexOf(second!)).toBeGreaterThan(printed.indexOf(first!));
    expect(printed).toContain('Printed Partners');
    expect(printed).toContain('Paper Mill Inc');
    expect(printed).not.toContain(billA);
    expect(printed).not.toContain(billHeld);

    // Retry the failures only, once the client has an address: a new run that sends that one bill.
    const fixedEmail = freshAddress('nomad');
    expect((await api('PATCH', `/v1/clients/${noEmail}`, { email: fixedEmail })).status).toBe(200);
    const retry = await api<Run>('POST', `/v1/bill-runs/${run.id}/retry`);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(retry.body).toMatchObject({ retryOf: run.id, kind: 'send' });
    const retried = await completed(retry.body.id);
    expect(retried).toMatchObject({ total: 1, sent: 1, failed: 0, printed: 0 });
    expect((await items(retried.id)).map((i) => [i.invoiceNumber, i.outcome, i.recipient])).toEqual([[billNo, 'sent', fixedEmail]]);
    const retriedMsg = await box.waitForMessage((m) => fromRun(retried.id)(m) && m.to.some((t) => t.address === fixedEmail));
    expect(retriedMsg.attachments?.map((x) => x.fileName)).toEqual([`invoice-${billNo}.pdf`]);
    expect((await box.messages()).filter(fromRun(retried.id))).toHaveLength(1);
    expect((await api('POST', `/v1/bill-runs/${retried.id}/retry`)).body).toMatchObject({ status: 409, type: expect.stringContaining('nothing-to-retry') });
    expect((await api('GET', `/v1/bill-runs/${retried.id}/printout`)).body).toMatchObject({ status: 409, type: expect.stringContaining('nothing-printed') });

    // Not yet sent: what neither run delivered (the held bill, and the bill outside the dates).
    const rest = await api<Run>('POST', '/v1/bill-runs', { criteria: { clientIds, notYetSent: true } }, { prefer: 'wait=30' });
    expect(rest.status).toBe(201);
    expect(rest.body).toMatchObject({ status: 'completed', total: 2, sent: 1, skippedHeld: 1 });
    expect((await items(rest.body.id)).map((i) => i.invoiceNumber).sort()).toEqual([billHeld, oldA].sort());

    const listed = await api<{ data: Run[] }>('GET', '/v1/bill-runs?limit=200');
    expect(listed.body.data.slice(0, 3).map((r) => r.id)).toEqual([rest.body.id, retried.id, run.id]);
    // Another company's key finds none of it.
    const other = await createTenant(stack, { providerEnabled: false });
    for (const path of [`/v1/bill-runs/${run.id}`, `/v1/bill-runs/${run.id}/items`, `/v1/bill-runs/${run.id}/printout`, `/v1/bills/${billA}/pdf`]) {
      expect((await http(stack.apiUrl, 'GET', path, { key: other.apiKey })).status, path).toBe(404);
    }
  });

  it('keeps its progress readable while it works, from its Query and from the read model', async () => {
    const clients = [await newClient('Gamma Grid'), await newClient('Delta Docks'), await newClient('Pica Print', { delivery: 'print' })];
    const numbers: string[] = [];
    for (let i = 0; i < 24; i += 4) {
      numbers.push(...(await Promise.all([0, 1, 2, 3].map((k) => finalBill(clients[(i + k) % 3]!, 10_000 + i + k)))));
    }
    const created = await api<Run>('POST', '/v1/bill-runs', { criteria: { invoiceNumbers: numbers } });
    expect(created.status).toBe(201);
    const handle = stack.temporal.workflow.getHandle(created.body.workflowId);
    const seen: { api: Run; query: BillRunProgress }[] = [];
    for (;;) {
      // One after the other: Temporal holds a second concurrent Query until the workflow's next task.
      const viaApi = await api<Run>('GET', `/v1/bill-runs/${created.body.id}`);
      const viaQuery = await handle.query(billRunProgressQuery);
      seen.push({ api: viaApi.body, query: viaQuery });
      if (viaApi.body.status === 'completed' && viaQuery.phase === 'completed') break;
      expect(seen.length).toBeLessThan(2_000);
      await new Promise((r) => setTimeout(r, 25));
    }
    // Readings taken while it ran: the Query answered with its phase, and the counters moved bill by bill.
    const running = seen.filter((s) => s.api.status === 'running');
    expect(running.length).toBeGreaterThan(0);
    // The API read the run's Query while it ran; a reading whose Query missed its deadline under
    // load says `progress: null` (documented), never a wrong phase.
    expect(running.some((s) => s.api.progress?.phase === 'running')).toBe(true);
    expect(running.every((s) => s.api.progress === null || s.api.progress?.phase === 'running' || s.api.progress?.phase === 'finishing')).toBe(true);
    expect(running.some((s) => s.query.phase === 'running' && s.query.total === 24)).toBe(true);
    const partial = running.filter((s) => s.api.pending > 0 && s.api.pending < 24);
    expect(partial.length, `readings: ${running.map((s) => 24 - s.api.pending).join(',')}`).toBeGreaterThan(0);
    const done = seen.map((s) => s.api.total - s.api.pending);
    expect(done).toEqual([...done].sort((x, y) => x - y)); // never goes backwards
    expect(seen.at(-1)!.query).toMatchObject({ phase: 'completed', total: 24, done: 24, sent: 16, printed: 8, failed: 0 });
  });
});

describe('a long run', () => {
  it('continues as new between batches, carrying its counts, and delivers each bill once', async () => {
    const emails = [freshAddress('can-a'), freshAddress('can-b')];
    const clients = [await newClient('Cascade One', { email: emails[0]! }), await newClient('Cascade Two', { email: emails[1]! })];
    const numbers = await Promise.all([0, 1, 2, 3, 4, 5, 6].map((i) => finalBill(clients[i % 2]!, 1_000 + i)));
    // Started as the API starts a run, with tiny batches and a history limit of two batches.
    const runId = `run-can-${randomUUID().slice(0, 8)}`;
    const workflowId = billRunWorkflowId(tenant.companyId, runId);
    await stack.sql`
      INSERT INTO bill_runs (company_id, id, kind, status, criteria, workflow_id, request_id)
      VALUES (${tenant.companyId}, ${runId}, 'send', 'selecting', ${stack.sql.json({ invoiceNumbers: numbers })}, ${workflowId}, 'test')`;
    const handle = await stack.temporal.workflow.start<typeof billRunWorkflow>('billRunWorkflow', {
      taskQueue: stack.taskQueue,
      workflowId,
      args: [{ companyId: tenant.companyId, runId, kind: 'send', batchSize: 2, parallelBatches: 2, continueAsNewAfterBatches: 2 }],
    });
    expect(await handle.result()).toEqual({ total: 7, sent: 7, printed: 0, skippedHeld: 0, failed: 0 });
    const progress = await handle.query(billRunProgressQuery);
    expect(progress).toMatchObject({ phase: 'completed', done: 7, batchesDone: 4 });
    expect(progress.continuedAsNew).toBe(1);
    expect((await api<Run>('GET', `/v1/bill-runs/${runId}`)).body).toMatchObject({ status: 'completed', total: 7, sent: 7, pending: 0 });
    const mails = (await box.messages()).filter(fromRun(runId));
    expect(mails.map((m) => m.headers['x-billflow-invoice']).sort()).toEqual([...numbers].sort());
  });
});

describe("a bill's PDF on demand", () => {
  it('shows the current figures (a Quick Pay since Final), unlike the PDF printed at Final', async () => {
    const clientId = await newClient('Quarry Quick');
    const number = await finalBill(clientId, 64_000);
    const before = await pdfText(await billPdf(number));
    expect(before).toMatch(/Amount due\s+\$640\.00/);

    const paid = await api('POST', `/v1/invoices/${number}/quick-pay`, {
      paymentType: 'Receipt',
      paymentMethod: 'Cheque',
      issuedOn: '2026-11-21',
      category: 'Customer payment',
      receivedByUser: 'sam',
      receivedByUnit: 'AR',
    });
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    const now = await pdfText(await billPdf(number));
    expect(now).toMatch(/Payments received\s+-\$640\.00/);
    expect(now).toMatch(/Amount due\s+\$0\.00/);
    const atFinal = await fetch(`${stack.apiUrl}/v1/invoices/${number}/pdf`, { headers: { authorization: `Bearer ${tenant.apiKey}` } });
    expect(await pdfText(Buffer.from(await atFinal.arrayBuffer()))).toMatch(/Amount due\s+\$640\.00/);

    const draftNumber = `R-${randomUUID().slice(0, 8)}`;
    await api('POST', '/v1/invoices', { number: draftNumber, clientId, invoiceDate: '2026-11-05', dueDate: '2026-12-05', lines: [{ description: 'Draft', amount: 100 }] });
    expect((await api('GET', `/v1/bills/${draftNumber}/pdf`)).body).toMatchObject({ status: 409, type: expect.stringContaining('not-a-bill') });
    expect((await api('GET', '/v1/bills/NOPE-9/pdf')).status).toBe(404);
  });
});
