/**
 * `npm run cluster` as a user runs it (scripts/engine.ts --cluster on its own data folder and
 * ports): Temporal as a cluster on PostgreSQL (frontend, history, matching and worker processes,
 * the Web UI server), two workers and two APIs behind the front. Three waves of invoice
 * lifecycles (draft, Final, for half of them Reissue and Final again, paid in full at the
 * provider) run through the front; a second into each wave the history process, then the matching
 * process, then one API process is SIGKILLed. The engine restarts each, and every lifecycle
 * completes exactly once: one provider record per invoice, one receipt per payment, each invoice
 * found by its search attributes in the cluster's PostgreSQL visibility. SIGINT then stops
 * everything, leaving no process behind. Runs with BILLFLOW_CLUSTER=1 (npm test's cluster step).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../lib/paths.js';
import { freeFrontendPort, portFree } from '../lib/temporal-cluster.js';
import { freePort } from '../lib/temporal-dev.js';
import { call, waiter } from './engine-process.js';
import { alive, childrenOf, cmdline, descendants } from './procs.js';

const ADMIN = 'bf_admin_cluster_test';
const WAVE = 6;
let dataDir = '';
let engine: ChildProcess;
let output = '';
let api = '';
let sandbox = '';
let temporalAddress = '';
/** Why the ERP had to send requests again (refused while a process was down, or cut off by a kill), and how often. */
const retried = new Map<string, number>();
const retry = (why: string) => retried.set(why, (retried.get(why) ?? 0) + 1);

const until = waiter(() => output, 250);

/**
 * A change as an ERP sends it: with an Idempotency-Key, sent again while the answer says to try later
 * (503; 409 request-in-progress while the first attempt still runs) or the connection was cut.
 */
async function erp(key: string, method: string, p: string, body: unknown, idempotencyKey: string): Promise<Record<string, unknown>> {
  return until(`${method} ${p}`, 150_000, async () => {
    let r: Awaited<ReturnType<typeof call>>;
    try {
      r = await call(method, `${api}${p}`, key, body, { 'idempotency-key': idempotencyKey });
    } catch (e) {
      retry(String(e));
      return undefined;
    }
    if (r.status >= 200 && r.status < 300) return r.body!;
    if (r.status === 503 || (r.status === 409 && String(r.body?.type).endsWith('request-in-progress'))) {
      retry(`${r.status} ${String(r.body?.type).split('/').pop()}`);
      // A key leased by a request that died stays so for up to 60 s: no need to ask four times a second.
      if (r.status === 409) await new Promise((resolve) => setTimeout(resolve, 2_000));
      return undefined;
    }
    throw new Error(`${method} ${p} answered ${r.status}: ${JSON.stringify(r.body)}`);
  });
}

/** The supervised process `name` as the engine's pids.json has it, checked against /proc. */
function pidOf(name: string): number | undefined {
  const pids = JSON.parse(readFileSync(path.join(dataDir, 'pids.json'), 'utf8')) as Record<string, number>;
  const pid = pids[name];
  return pid && childrenOf(engine.pid!).includes(pid) ? pid : undefined;
}

/** Kills `name` with SIGKILL; resolves with the time until the engine has a new one running. */
async function kill(name: string, marker: string): Promise<number> {
  const pid = pidOf(name)!;
  expect(cmdline(pid)).toContain(marker);
  const at = Date.now();
  process.kill(pid, 'SIGKILL');
  await until(`a new ${name}`, 90_000, () => {
    const now = pidOf(name);
    return now && now !== pid ? now : undefined;
  });
  return Date.now() - at;
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A free port `p` with `p + 1` and `p + 2` free too: the front and its two APIs. */
async function apiPorts(): Promise<number> {
  for (;;) {
    const p = 10_000 + Math.floor(Math.random() * 20_000);
    if ((await Promise.all([p, p + 1, p + 2].map(portFree))).every(Boolean)) return p;
  }
}

describe.runIf(process.env.BILLFLOW_CLUSTER === '1')('npm run cluster', () => {
  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'billflow-cluster-'));
    const apiPort = await apiPorts();
    // Two workers' metrics: this port and the next, clear of the front and its APIs.
    let metricsPort = await apiPorts();
    while (Math.abs(metricsPort - apiPort) < 3) metricsPort = await apiPorts();
    const ports = {
      API_PORT: apiPort,
      SANDBOX_PORT: await freePort(),
      STRIPE_SANDBOX_PORT: await freePort(),
      TEMPORAL_PORT: await freeFrontendPort(),
      TEMPORAL_UI_PORT: await freePort(),
      EMBEDDED_PG_PORT: await freePort(),
      MAILDEV_SMTP_PORT: await freePort(),
      MAILDEV_WEB_PORT: await freePort(),
      WORKER_METRICS_PORT: metricsPort,
    };
    api = `http://127.0.0.1:${ports.API_PORT}`;
    sandbox = `http://127.0.0.1:${ports.SANDBOX_PORT}`;
    temporalAddress = `127.0.0.1:${ports.TEMPORAL_PORT}`;
    // Only this engine's own settings: nothing pointing at the test run's shared servers.
    const env: Record<string, string | undefined> = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
    for (const k of ['DATABASE_URL', 'SANDBOX_DATABASE_URL', 'TEMPORAL_DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_UI_URL', 'SMTP_HOST', 'SMTP_PORT', 'API_PUBLIC_URL', 'SANDBOX_PUBLIC_URL'])
      delete env[k];
    Object.assign(env, { BILLFLOW_DATA_DIR: dataDir, BILLFLOW_ADMIN_KEY: ADMIN });
    engine = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'engine.ts'), '--cluster'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    engine.stdout!.on('data', (b: Buffer) => (output += b.toString()));
    engine.stderr!.on('data', (b: Buffer) => (output += b.toString()));
    await until('cluster ready', 280_000, () => {
      if (engine.exitCode !== null) throw new Error(`engine exited with code ${engine.exitCode}`);
      return output.includes('[billflow] ready in') ? true : undefined;
    });
  }, 300_000);

  afterAll(async () => {
    // Only if a test failed before stopping it: leave nothing running.
    if (engine?.exitCode === null && engine.signalCode === null) {
      const all = descendants(engine.pid!);
      engine.kill('SIGINT');
      await until('engine stopped', 30_000, () => (engine.exitCode !== null || engine.signalCode !== null ? true : undefined)).catch(() => {});
      for (const pid of all.filter(alive)) process.kill(pid, 'SIGKILL');
    }
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('keeps every lifecycle exactly once while history, matching and an API are killed, then stops leaving nothing behind', async () => {
    expect(output).toContain(`API              ${api}   (front over API processes on ports`);
    expect(output).toContain(`Temporal         ${temporalAddress}   (cluster on PostgreSQL`);
    for (const s of ['history', 'matching', 'frontend', 'worker']) expect(cmdline(pidOf(`temporal-${s}`)!)).toContain(`--service ${s}`);
    for (const p of ['worker-1', 'worker-2', 'api-1', 'api-2']) expect(cmdline(pidOf(p)!)).toContain(p.startsWith('api') ? 'api/main.ts' : 'worker/main.ts');
    const ui = await fetch(`http://127.0.0.1:${new URL(output.match(/Temporal Web UI {2}(\S+)/)![1]!).port}/api/v1/namespaces/default`);
    expect(ui.status).toBe(200);

    const acct = (await call('POST', `${sandbox}/v1/accounts`, null, { name: 'Acme Engineering', webhookUrl: `${api}/webhooks/provider/acme` })).body!;
    const company = await call('POST', `${api}/v1/companies`, ADMIN, {
      id: 'acme',
      name: 'Acme Engineering',
      provider: { enabled: true, url: sandbox, accountId: acct.id, apiKey: acct.apiKey, webhookSecret: acct.webhookSecret },
    });
    expect(company.status).toBe(201);
    const key = company.body!.apiKey as string;
    expect((await call('POST', `${api}/v1/clients`, key, { id: 'CL-1', name: 'Riverside Architects', email: 'ap@riverside.example' })).status).toBe(201);
    const payments = new Map<string, string>();

    const untilInvoice = (number: string, what: string, ok: (inv: Record<string, unknown>) => boolean) =>
      until(`${number} ${what}`, 150_000, async () => {
        const r = await call('GET', `${api}/v1/invoices/${number}`, key);
        return r.status === 200 && ok(r.body!) ? r.body! : undefined;
      });
    const lifecycle = async (number: string, reissue: boolean) => {
      await erp(key, 'POST', '/v1/invoices', { number, clientId: 'CL-1', invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines: [{ description: 'Design', amount: 150_000 }] }, `create-${number}`);
      const moves = reissue ? ['Final', 'Reissue', 'Final'] : ['Final'];
      for (const [i, status] of moves.entries()) {
        await erp(key, 'POST', `/v1/invoices/${number}/status`, { status }, `${number}-${i}-${status}`);
        await untilInvoice(number, `is ${status}`, (inv) => inv.status === status && !inv.pendingChange);
      }
      const inv = await untilInvoice(number, 'has its provider record', (b) => typeof b.providerInvoiceId === 'string');
      // The payer pays once, at the provider; billflow hears of it by webhook (sent again until billflow takes it).
      const remote = (await call('GET', `${sandbox}/v1/invoices/${String(inv.providerInvoiceId)}`, acct.apiKey as string)).body!;
      const paid = await call('POST', `${sandbox}/v1/payments`, acct.apiKey as string, {
        customerId: remote.customerId,
        allocations: [{ invoiceId: inv.providerInvoiceId, amount: 150_000 }],
        method: 'card',
      });
      expect(paid.status, JSON.stringify(paid.body)).toBe(201);
      payments.set(number, paid.body!.id as string);
      await untilInvoice(number, 'is settled', (b) => b.outstanding === 0 && b.settlement === 'Settled');
    };
    const wave = async (name: string, fault: () => Promise<number>) => {
      const numbers = Array.from({ length: WAVE }, (_, i) => `${name}-${i + 1}`);
      const started = Date.now();
      const running = Promise.all(numbers.map((n, i) => lifecycle(n, i % 2 === 0)));
      await new Promise((r) => setTimeout(r, 1_000));
      const restart = await fault();
      await running;
      return { numbers, restart, took: Date.now() - started };
    };

    const history = await wave('H', () => kill('temporal-history', '--service history'));
    const matching = await wave('M', () => kill('temporal-matching', '--service matching'));
    const apiKill = await wave('A', () => kill('api-1', 'api/main.ts'));
    const numbers = [...history.numbers, ...matching.numbers, ...apiKill.numbers];

    // Exactly once: each invoice Final and paid, one provider record each, one receipt per payment.
    for (const number of numbers) {
      const inv = (await call('GET', `${api}/v1/invoices/${number}`, key)).body!;
      expect(inv, number).toMatchObject({ status: 'Final', outstanding: 0, settlement: 'Settled', payments: [expect.objectContaining({ paymentId: payments.get(number) })] });
      const records = (await call('GET', `${sandbox}/v1/invoices?number=${number}`, acct.apiKey as string)).body!.data as unknown[];
      expect(records, number).toHaveLength(1);
    }
    const feed = (await call('GET', `${api}/v1/receipts?limit=200`, key)).body!.data as { kind: string; providerPaymentId: string }[];
    for (const [number, paymentId] of payments)
      expect(
        feed.filter((r) => r.kind === 'payment' && r.providerPaymentId === paymentId),
        number,
      ).toHaveLength(1);

    // Operators find them in the cluster's visibility (PostgreSQL) by billflow's search attributes.
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const client = new Client({ connection });
      await until('every invoice visible as Final and settled', 60_000, async () => {
        const { count } = await client.workflow.count(`CompanyId="acme" AND InvoiceStatus="Final" AND SettlementStatus="Settled"`);
        return count === numbers.length ? true : undefined;
      });
      const found = [];
      for await (const w of client.workflow.list({ query: `InvoiceNumber="${numbers[0]}"` })) found.push(w.workflowId);
      expect(found).toEqual([`Invoice:acme:${numbers[0]}`]);
    } finally {
      await connection.close();
    }
    for (const s of ['temporal-history', 'temporal-matching', 'api-1']) expect(output).toMatch(new RegExp(`\\[billflow\\] ${s} exited \\(signal SIGKILL\\); restarting in 0\\.5 s \\(restart 1\\)`));

    // SIGINT stops it all.
    const all = descendants(engine.pid!);
    const stopping = Date.now();
    engine.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => (engine.exitCode !== null ? resolve(engine.exitCode) : engine.once('exit', resolve)));
    const stopTime = Date.now() - stopping;
    expect(code).toBe(0);
    await until('every process of the engine has exited', 5_000, () => (all.some(alive) ? undefined : true)).catch(() => {
      throw new Error(
        `left running: ${all
          .filter(alive)
          .map((p) => `${p} ${cmdline(p)}`)
          .join('; ')}`,
      );
    });
    expect(existsSync(path.join(dataDir, 'billflow.pid'))).toBe(false);

    const report = (w: typeof history) => `restarted in ${secs(w.restart)}, its ${WAVE} lifecycles done in ${secs(w.took)}`;
    console.log(
      `cluster: history killed -> ${report(history)}; matching killed -> ${report(matching)}; api-1 killed -> ${report(apiKill)}; ` +
        `requests sent again: ${[...retried].map(([why, n]) => `${n} x ${why}`).join(', ') || 'none'}; stopped ${all.length} processes in ${secs(stopTime)}`,
    );
  }, 900_000);
});
