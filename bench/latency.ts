/**
 * `BENCH_ONLY=latency`: how fast ERP calls answer, against the cheapest Updates the same Temporal
 * server (dev server or cluster) answers in the same run (bench/latency-workflow.ts). Every sample is sequential, after a warm-up.
 * The baselines are sampled half before and half after billflow's samples, so load that drifts on
 * a shared machine during the section moves both sides alike.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import proto from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { UpdateDefinition } from '@temporalio/common';
import { ROOT } from '../lib/paths.js';
import { invoiceWorkflowId, reviseUpdate } from '../workflows/contract.js';
import type { Servers } from '../test/servers.js';
import { createTenant, http, type Stack, type Tenant } from '../test/stack.js';
import {
  latencyWorkflow,
  localThenChildUpdate,
  noopUpdate,
  oneActivityUpdate,
  oneLocalActivityUpdate,
  stopSignal,
  tenActivitiesUpdate,
  twoLocalActivitiesUpdate,
  upsertUpdate,
  type LatencyActivities,
} from './latency-workflow.js';
import { cpuBy, cpuSnap, draftBody, ms, newClients, out, payAtProvider, timed, untilSettled } from './support.js';

const SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES ?? 40);
const WARM = 5;
/** Ten activities take a second a sample; fewer samples say as much. */
const TEN_SAMPLES = Math.max(4, Math.round(SAMPLES / 4));
/** The CPU pass: calls per kind (CPU time is counted in 10 ms ticks, so it needs a block of calls). */
const CPU_CALLS = 40;
const CPU_FINALS = 10;

/** Nearest-rank percentile of the samples (ms). */
function pct(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(p * s.length) - 1)]!;
}

const summary = (samples: number[]) => `p50 ${ms(pct(samples, 0.5))}, p90 ${ms(pct(samples, 0.9))} (${samples.length} samples)`;
const verdict = (ok: boolean) => (ok ? 'PASS' : 'FAIL');

type Baselines = { noop: number[]; one: number[]; local: number[]; ten: number[]; twoLocal: number[]; upsert: number[]; child: number[] };
const noBaselines = (): Baselines => ({ noop: [], one: [], local: [], ten: [], twoLocal: [], upsert: [], child: [] });

async function sampleBaselines(handle: WorkflowHandle, into: Baselines, n: number, nTen: number): Promise<void> {
  const run = (def: UpdateDefinition<void, []>) => timed(() => handle.executeUpdate(def));
  // Round-robin, so every kind sees the same machine.
  for (let i = 0; i < n; i++) {
    into.noop.push(await run(noopUpdate));
    into.one.push(await run(oneActivityUpdate));
    into.local.push(await run(oneLocalActivityUpdate));
    into.twoLocal.push(await run(twoLocalActivitiesUpdate));
    into.upsert.push(await run(upsertUpdate));
    into.child.push(await run(localThenChildUpdate));
    if (i < nTen) into.ten.push(await run(tenActivitiesUpdate));
  }
}

/** An ERP request that must answer 200; its time. */
async function call(stack: Stack, tenant: Tenant, p: string, body: unknown, opts: { idempotencyKey?: boolean; method?: string } = {}): Promise<number> {
  let status = 0;
  let answer: unknown;
  // As an ERP calls: an Idempotency-Key on every change (craft.md, Stripe's habit).
  const headers: Record<string, string> = opts.idempotencyKey === false ? {} : { 'idempotency-key': randomUUID() };
  const t = await timed(async () => {
    const res = await http(stack.apiUrl, opts.method ?? 'POST', p, { key: tenant.apiKey, ...(body === undefined ? {} : { body }), headers });
    status = res.status;
    answer = res.body;
  });
  if (status !== 200) throw new Error(`${p}: ${status} ${JSON.stringify(answer)}`);
  return t;
}

export async function benchLatency(stack: Stack, servers: Servers): Promise<void> {
  out(`\n## Latency of ERP calls, ${SAMPLES} sequential samples each after ${WARM} warm-up, against bare Updates on the same Temporal server`);
  const taskQueue = `bench-latency-${randomUUID()}`;
  const connection = await NativeConnection.connect({ address: servers.temporalAddress });
  const activities: LatencyActivities = { noop: async () => {} };
  const worker = await Worker.create({
    connection,
    taskQueue,
    activities,
    workflowBundle: { codePath: await servers.bundle(path.join(ROOT, 'bench', 'latency-workflow.ts'), 'latency') },
  });
  const running = worker.run();
  try {
    const base = await stack.temporal.workflow.start(latencyWorkflow, { taskQueue, workflowId: `Latency:${randomUUID()}` });
    await sampleBaselines(base, noBaselines(), WARM, 1);
    const baselines = noBaselines();
    await sampleBaselines(base, baselines, Math.ceil(SAMPLES / 2), Math.ceil(TEN_SAMPLES / 2));

    const figures = await sampleBillflow(stack);

    await sampleBaselines(base, baselines, Math.floor(SAMPLES / 2), Math.floor(TEN_SAMPLES / 2));
    const cpu = await cpuPass(stack, base, figures);
    await base.signal(stopSignal);
    await base.result();

    out(`bare no-op Update:                 ${summary(baselines.noop)}`);
    out(`Update running one activity:       ${summary(baselines.one)}`);
    out(`Update running one local activity: ${summary(baselines.local)}`);
    out(`Update running ten activities:     ${summary(baselines.ten)}`);
    out(
      `  parts of a change: two local activities ${summary(baselines.twoLocal)}; one search attribute upsert ${summary(baselines.upsert)}; a local activity then a child workflow started ${summary(baselines.child)}`,
    );
    const noop = pct(baselines.noop, 0.5);
    const roundTrip = pct(baselines.one, 0.5) - noop;
    out(`one bare activity round trip (one-activity p50 - no-op p50): ${ms(roundTrip)}; one local activity adds ${ms(pct(baselines.local, 0.5) - noop)}`);
    out(`billflow, life-cycle move (POST /lifecycle, Posted -> Presented): ${summary(figures.lifecycle)}`);
    out(`billflow, revision of a Draft (POST /revision):                   ${summary(figures.revision)}`);
    out(`billflow, prepayment applied to a Draft (POST /prepayments):      ${summary(figures.prepayment)}`);
    out(`billflow, print to Final (provider, Chromium, SMTP, reminders):   ${summary(figures.final)}`);
    out(`  the same at a company without reminders (no child workflow start): ${summary(figures.finalNoReminders)}`);
    out(
      `  where a no-provider change's time goes (revision): a bare client Update, no API: ${summary(figures.revisionDirect)}; through the API without Idempotency-Key: ${summary(figures.revisionNoKey)}; an API read with no Temporal call (GET /v1/clients/{id}): ${summary(figures.apiRead)}`,
    );
    for (const line of cpu) out(line);
    await workflowTaskTails(stack, base.workflowId, figures);
    await describeUpdate(stack, figures.finalWorkflowId, 'changeStatus', "one Final's Update");
    await describeUpdate(stack, figures.finalNoRemindersIds.at(-1)!, 'changeStatus', "one Final's Update at a company without reminders");
    await describeUpdate(stack, figures.finalWorkflowId, 'setLifecycleState', "one life-cycle move's Update");

    for (const [what, samples] of [
      ['life-cycle move', figures.lifecycle],
      ['revision', figures.revision],
      ['prepayment on a Draft', figures.prepayment],
    ] as const) {
      const r = pct(samples, 0.5) / noop;
      out(`RATIO no-provider change (${what}) p50 / bare no-op Update p50: ${r.toFixed(2)}x (target <= 1.50) ${verdict(r <= 1.5)}`);
    }
    // A Final is one Update through the API: it pays what a bare no-op Update costs once (the
    // Update's own admission and answer, through the same server), and on top of that its real
    // work, counted in activity round trips. A round trip is what one regular activity adds to an
    // Update (one-activity p50 - no-op p50: schedule, dispatch to the worker, complete, a new
    // workflow task); the issue's "today 12" is 993 ms over that increment. So the target,
    // "within the time of 3 bare activity round trips", is Final p50 <= no-op p50 + 3 x round trip,
    // printed as the Final's increment over a no-op Update in round trips.
    const trips = (pct(figures.final, 0.5) - noop) / roundTrip;
    out(`RATIO print to Final p50 in bare activity round trips, (Final p50 - no-op p50) / round trip: ${trips.toFixed(2)} (target <= 3.00; budget ${ms(noop + 3 * roundTrip)}) ${verdict(trips <= 3)}`);
    // Once a round trip costs a few milliseconds (temporal-dynamicconfig.yaml), the Final's own
    // work (the provider record, Chromium's PDF, the SMTP send: finalizeAtProvider's run time)
    // alone is many round trips; what billflow adds around that work is the part it can shrink.
    const work = pct(await finalizeRunTimes(stack, figures.finalWorkflowIds), 0.5);
    const beyond = (pct(figures.final, 0.5) - noop - work) / roundTrip;
    out(`  the Final's own work (finalizeAtProvider's run time, server clock) p50 ${ms(work)}, ${(work / roundTrip).toFixed(1)} round trips`);
    out(`RATIO print to Final beyond its own work, (Final p50 - no-op p50 - work p50) / round trip: ${beyond.toFixed(2)} (target <= 3.00) ${verdict(beyond <= 3)}`);
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
  }
}

interface BillflowFigures {
  lifecycle: number[];
  revision: number[];
  prepayment: number[];
  final: number[];
  /** Where a no-provider change's time goes: the same revision as a bare client Update, through the API without Idempotency-Key, and an API read. */
  revisionDirect: number[];
  revisionNoKey: number[];
  apiRead: number[];
  /** One Final's workflow, whose history is read afterwards. */
  finalWorkflowId: string;
  /** Every sampled Final's workflow. */
  finalWorkflowIds: string[];
  tenant: Tenant;
  /** Drafts kept for the CPU pass's Finals. */
  spareDrafts: string[];
  /** Print to Final at a company without reminders (no child workflow to start), and those workflows. */
  finalNoReminders: number[];
  finalNoRemindersIds: string[];
}

async function sampleBillflow(stack: Stack): Promise<BillflowFigures> {
  // A company set up as the README's quickstart: provider on, reminders on the due date and a week later.
  const tenant = await createTenant(stack, { reminderDays: [0, 7] });
  const clients = await newClients(stack, tenant, 5);
  const n = WARM + SAMPLES;
  const create = async (number: string, clientId: string) => {
    const r = await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, body: draftBody(number, clientId) });
    if (r.status !== 201) throw new Error(`create ${number}: ${r.status} ${JSON.stringify(r.body)}`);
  };
  const spareDrafts = Array.from({ length: CPU_FINALS }, (_, i) => `LAT-C-${i}`);
  for (const number of spareDrafts) await create(number, clients[0]!);
  for (let i = 0; i < n; i++) {
    await create(`LAT-F-${i}`, clients[i % clients.length]!);
    // The Drafts that are revised and get a prepayment: the prepayment's client.
    await create(`LAT-D-${i}`, clients[0]!);
  }
  const prepaymentId = await makePrepayment(stack, tenant, clients[0]!);

  const final: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = await call(stack, tenant, `/v1/invoices/LAT-F-${i}/status`, { status: 'Final' });
    if (i >= WARM) final.push(t);
  }
  const lifecycle: number[] = [];
  const revision: number[] = [];
  const prepayment: number[] = [];
  const revisionDirect: number[] = [];
  const revisionNoKey: number[] = [];
  const apiRead: number[] = [];
  const lines = (quantity: number) => [{ description: 'Engineering services, revised', quantity, unitPrice: 12_500, amount: quantity * 12_500 }];
  for (let i = 0; i < n; i++) {
    const keep = (into: number[], t: number) => i >= WARM && into.push(t);
    const draft = stack.temporal.workflow.getHandle(invoiceWorkflowId(tenant.companyId, `LAT-D-${i}`));
    keep(revisionDirect, await timed(() => draft.executeUpdate(reviseUpdate, { args: [{ lines: lines(10), requestId: randomUUID() }] })));
    keep(revisionNoKey, await call(stack, tenant, `/v1/invoices/LAT-D-${i}/revision`, { lines: lines(11) }, { idempotencyKey: false }));
    keep(apiRead, await call(stack, tenant, `/v1/clients/${clients[0]!}`, undefined, { method: 'GET', idempotencyKey: false }));
    keep(lifecycle, await call(stack, tenant, `/v1/invoices/LAT-F-${i}/lifecycle`, { state: 'Presented', by: 'bench' }));
    keep(revision, await call(stack, tenant, `/v1/invoices/LAT-D-${i}/revision`, { lines: lines(9) }));
    keep(prepayment, await call(stack, tenant, `/v1/invoices/LAT-D-${i}/prepayments`, { prepaymentId, amount: 100 }));
  }
  // The same Final at a company without reminders: no child workflow start on the path.
  const plain = await createTenant(stack);
  const plainClients = await newClients(stack, plain, 5);
  const plainN = WARM + Math.ceil(SAMPLES / 2);
  const finalNoReminders: number[] = [];
  for (let i = 0; i < plainN; i++) {
    const r = await http(stack.apiUrl, 'POST', '/v1/invoices', { key: plain.apiKey, body: draftBody(`LAT-N-${i}`, plainClients[i % plainClients.length]!) });
    if (r.status !== 201) throw new Error(`create LAT-N-${i}: ${r.status}`);
    const t = await call(stack, plain, `/v1/invoices/LAT-N-${i}/status`, { status: 'Final' });
    if (i >= WARM) finalNoReminders.push(t);
  }
  const finalNoRemindersIds = Array.from({ length: plainN - WARM }, (_, i) => invoiceWorkflowId(plain.companyId, `LAT-N-${WARM + i}`));
  const finalWorkflowIds = Array.from({ length: SAMPLES }, (_, i) => invoiceWorkflowId(tenant.companyId, `LAT-F-${WARM + i}`));
  return {
    lifecycle,
    revision,
    prepayment,
    final,
    revisionDirect,
    revisionNoKey,
    apiRead,
    finalWorkflowId: finalWorkflowIds.at(-1)!,
    finalWorkflowIds,
    tenant,
    spareDrafts,
    finalNoReminders,
    finalNoRemindersIds,
  };
}

/** A client credit, as the ERP gets one: an invoice paid at the provider, then changed to Reissue. */
async function makePrepayment(stack: Stack, tenant: Tenant, clientId: string): Promise<string> {
  await http(stack.apiUrl, 'POST', '/v1/invoices', { key: tenant.apiKey, body: draftBody('LAT-PRE', clientId) });
  const final = await http<{ providerInvoiceId: string }>(stack.apiUrl, 'POST', '/v1/invoices/LAT-PRE/status', { key: tenant.apiKey, body: { status: 'Final' } });
  if (final.status !== 200) throw new Error(`prepayment source: ${final.status} ${JSON.stringify(final.body)}`);
  await payAtProvider(stack, tenant, final.body.providerInvoiceId);
  await untilSettled(stack, tenant.companyId, 'LAT-PRE');
  const reissue = await http(stack.apiUrl, 'POST', '/v1/invoices/LAT-PRE/status', { key: tenant.apiKey, body: { status: 'Reissue' } });
  if (reissue.status !== 200) throw new Error(`reissue: ${reissue.status} ${JSON.stringify(reissue.body)}`);
  const list = await http<{ data: { id: string }[] }>(stack.apiUrl, 'GET', `/v1/prepayments?clientId=${clientId}`, { key: tenant.apiKey });
  return list.body.data[0]!.id;
}

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

/** finalizeAtProvider's run time in each workflow (its task's start to its completion, server clock; the last attempt). */
async function finalizeRunTimes(stack: Stack, workflowIds: string[]): Promise<number[]> {
  const times: number[] = [];
  for (const id of workflowIds) {
    const events = (await stack.temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'finalizeAtProvider');
    if (!scheduled) continue;
    const of = (e: HistoryEvent, attr: 'activityTaskStartedEventAttributes' | 'activityTaskCompletedEventAttributes') => String(e[attr]?.scheduledEventId ?? '') === String(scheduled.eventId);
    const started = events.find((e) => of(e, 'activityTaskStartedEventAttributes'));
    const completed = events.find((e) => of(e, 'activityTaskCompletedEventAttributes'));
    if (started && completed) times.push(toMs(completed.eventTime) - toMs(started.eventTime));
  }
  return times;
}

const toMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6);

/**
 * A local activity's marker data (as the SDK's core writes it): what ran, and its completion in
 * workflow time: the workflow task's start plus the run times of the task's local activities so
 * far (core advances workflow time by each one's run time), not the wall clock. So consecutive
 * markers' difference is one local activity's run time, and a task's time beyond the sum is what
 * the local activities' dispatch, the activations around them and the task's completion cost.
 */
function markerData(e: HistoryEvent): { activity?: string; patch?: string; completedMs?: number } {
  const data = e.markerRecordedEventAttributes?.details?.data?.payloads?.[0]?.data;
  if (!data) return {};
  try {
    const d = JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown>;
    const done = d.complete_time ?? d.completeTime;
    const completedMs = typeof done === 'string' ? Date.parse(done) : done && typeof done === 'object' ? toMs(done as { seconds?: unknown; nanos?: number }) : undefined;
    const activity = (d.activity_type ?? d.activityType) as string | undefined;
    const patch = (d.patch_id ?? d.patchId) as string | undefined;
    return { ...(activity ? { activity } : {}), ...(patch ? { patch } : {}), ...(completedMs ? { completedMs } : {}) };
  } catch {
    // a patch marker's data is not JSON of this shape
    return {};
  }
}

/** What one event is, for a person: its type and, for activities, markers and children, what ran. */
function eventName(e: HistoryEvent): string {
  const type = (proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? String(e.eventType)).replace(/^EVENT_TYPE_/, '');
  const marker = e.markerRecordedEventAttributes;
  if (marker) {
    const d = markerData(e);
    return `${type} ${marker.markerName ?? ''} ${d.activity ?? d.patch ?? ''}`.trim();
  }
  const what = e.activityTaskScheduledEventAttributes?.activityType?.name ?? e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name;
  return what ? `${type} ${what}` : type;
}

/**
 * One Update in its workflow's history: how many workflow tasks and round trips it took, and where
 * the time went (offsets from the workflow task that took it up, server clock; a local activity
 * shows its own run time, see markerData).
 */
async function describeUpdate(stack: Stack, workflowId: string, updateName: string, what: string): Promise<void> {
  const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
  const events = history.events ?? [];
  const accepted = events.findIndex((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === updateName);
  const end = events.findIndex((e, i) => i > accepted && e.workflowExecutionUpdateCompletedEventAttributes);
  if (accepted < 0 || end < 0) {
    out(`history of ${what} (${workflowId}): its Update was not found`);
    return;
  }
  // The workflow task that accepted the Update, from when it was scheduled.
  let start = accepted;
  while (start > 0 && !events[start]!.workflowTaskScheduledEventAttributes) start--;
  const window = events.slice(start, end + 1);
  const t0 = toMs(window[0]!.eventTime);
  const count = (f: (e: HistoryEvent) => unknown) => window.filter(f).length;
  const localActivities = window.filter((e) => markerData(e).activity).length;
  out(
    `history of ${what} (${workflowId}): ${ms(toMs(window.at(-1)!.eventTime) - t0)} from its workflow task's scheduling to its completion (server clock); ` +
      `${count((e) => e.workflowTaskScheduledEventAttributes)} workflow tasks, ` +
      `${count((e) => e.activityTaskScheduledEventAttributes)} regular activities, ${localActivities} local activities, ` +
      `${count((e) => e.startChildWorkflowExecutionInitiatedEventAttributes)} child workflow starts, ` +
      `${count((e) => e.upsertWorkflowSearchAttributesEventAttributes)} search attribute upserts, ` +
      `${count((e) => e.markerRecordedEventAttributes) - localActivities} other markers`,
  );
  let ranUntil = t0;
  for (const e of window) {
    if (e.workflowTaskStartedEventAttributes) ranUntil = toMs(e.eventTime);
    const done = markerData(e).completedMs;
    out(`  +${String(toMs(e.eventTime) - t0).padStart(4)} ms  ${eventName(e)}${done ? ` (ran ${done - ranUntil} ms)` : ''}`);
    if (done) ranUntil = done;
  }
}

/**
 * CPU time per call, by process, over a block of calls of one kind: unlike wall time it hardly
 * moves with the machine's load, so it says what a call costs where (this process: API, worker,
 * sandbox and client; postgres; the Temporal dev server; Chromium; the mail catcher).
 */
async function cpuPass(stack: Stack, base: WorkflowHandle, f: BillflowFigures): Promise<string[]> {
  const lines: string[] = [];
  const measure = async (what: string, n: number, fn: (i: number) => Promise<unknown>) => {
    const a = cpuSnap();
    const t = await timed(async () => {
      for (let i = 0; i < n; i++) await fn(i);
    });
    const by = Object.entries(cpuBy(a, cpuSnap()))
      .filter(([, v]) => v > 0)
      .sort(([, x], [, y]) => y - x)
      .map(([k, v]) => `${k === 'node' ? 'bench process (API, worker, sandbox)' : k} ${ms((v * 1000) / n)}`);
    lines.push(`  CPU per call, ${what} (${n} in a row, ${ms(t / n)} wall each): ${by.join(', ') || 'under one tick'}`);
  };
  await measure('bare no-op Update', CPU_CALLS, () => base.executeUpdate(noopUpdate));
  await measure('bare one-local-activity Update', CPU_CALLS, () => base.executeUpdate(oneLocalActivityUpdate));
  await measure('bare one-activity Update', CPU_CALLS, () => base.executeUpdate(oneActivityUpdate));
  const lines1 = [{ description: 'Engineering services, CPU pass', quantity: 2, unitPrice: 12_500, amount: 25_000 }];
  await measure('revision as a bare client Update', CPU_CALLS, (i) =>
    stack.temporal.workflow.getHandle(invoiceWorkflowId(f.tenant.companyId, `LAT-D-${i % (WARM + SAMPLES)}`)).executeUpdate(reviseUpdate, { args: [{ lines: lines1, requestId: randomUUID() }] }),
  );
  await measure('revision through the API', CPU_CALLS, (i) => call(stack, f.tenant, `/v1/invoices/LAT-D-${i % (WARM + SAMPLES)}/revision`, { lines: lines1 }));
  await measure('print to Final through the API', f.spareDrafts.length, (i) => call(stack, f.tenant, `/v1/invoices/${f.spareDrafts[i]!}/status`, { status: 'Final' }));
  return lines;
}

/**
 * For each Update of a kind: how long its workflow tasks took in the worker (started to completed,
 * summed), and of that the time outside its local activities' own run time (see markerData);
 * medians over the samples. The bare Updates are the yardstick.
 */
async function workflowTaskTails(stack: Stack, baseWorkflowId: string, f: BillflowFigures): Promise<void> {
  const collect = async (workflowIds: string[], updateName: string) => {
    const tasks: number[] = [];
    const inWorker: number[] = [];
    const tails: number[] = [];
    for (const id of workflowIds) {
      const events = (await stack.temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
      events.forEach((e, i) => {
        if (e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name !== updateName) return;
        const end = events.findIndex((x, k) => k > i && x.workflowExecutionUpdateCompletedEventAttributes);
        let start = i;
        while (start > 0 && !events[start]!.workflowTaskScheduledEventAttributes) start--;
        const w = events.slice(start, end + 1);
        let started = 0;
        let busy = 0;
        let n = 0;
        for (const x of w) {
          if (x.workflowTaskStartedEventAttributes) started = toMs(x.eventTime);
          if (x.workflowTaskCompletedEventAttributes) {
            busy += toMs(x.eventTime) - started;
            n++;
          }
        }
        tasks.push(n);
        inWorker.push(busy);
        const completed = w.filter((x) => x.workflowTaskCompletedEventAttributes);
        const lastLocal = Math.max(...w.map((x) => markerData(x).completedMs ?? 0));
        // The workflow task that ran the local activities completed after their (workflow-time) completion.
        const taskAfter = completed.map((x) => toMs(x.eventTime)).find((t) => t >= lastLocal);
        if (lastLocal > 0 && taskAfter !== undefined) tails.push(taskAfter - lastLocal);
      });
    }
    const tail = tails.length ? `, of which outside the local activities' run time p50 ${ms(pct(tails, 0.5))}` : '';
    return `${pct(tasks, 0.5)} workflow task(s), in the worker p50 ${ms(pct(inWorker, 0.5))}${tail} (${tasks.length} Updates)`;
  };
  out(`  workflow tasks per Update (server clock): bare no-op: ${await collect([baseWorkflowId], 'noop')}`);
  out(`    bare one local activity: ${await collect([baseWorkflowId], 'oneLocalActivity')}`);
  out(`    bare two local activities: ${await collect([baseWorkflowId], 'twoLocalActivities')}`);
  out(`    bare local activity then a child started: ${await collect([baseWorkflowId], 'localActivityThenChild')}`);
  out(`    bare one activity: ${await collect([baseWorkflowId], 'oneActivity')}`);
  out(`    billflow life-cycle move: ${await collect(f.finalWorkflowIds, 'setLifecycleState')}`);
  const drafts = Array.from({ length: SAMPLES }, (_, i) => invoiceWorkflowId(f.tenant.companyId, `LAT-D-${WARM + i}`));
  out(`    billflow revision: ${await collect(drafts, 'revise')}`);
  out(`    billflow print to Final: ${await collect(f.finalWorkflowIds, 'changeStatus')}`);
  out(`    billflow print to Final, no reminders: ${await collect(f.finalNoRemindersIds, 'changeStatus')}`);
}
