/**
 * `npm start`'s engine (scripts/engine.ts) as a user runs it, on its own data folder and ports:
 * the worker (under a bill run's batch) and then the Temporal dev server are killed with SIGKILL,
 * and the engine brings each back while the API stays up; a Final the kill interrupts inside a
 * provider call completes once (its attempt ended at the missed heartbeat, not the start-to-close
 * timeout), the interrupted batch is retried within seconds of its heartbeat timeout, and the
 * invoice is still there (and changes again) after Temporal's restart on its SQLite file.
 * The README's stop command (`kill -INT $(cat data/billflow.pid)`, run as written from the folder
 * above the data folder) then stops everything, leaving no process behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../lib/paths.js';
import { freePort } from '../lib/temporal-dev.js';
import { invoiceWorkflowId } from '../workflows/contract.js';
import { call, waiter } from './engine-process.js';
import { alive, childrenOf, cmdline, descendants } from './procs.js';

const ADMIN = 'bf_admin_supervisor_test';
const BILLS = 60;
// A folder named `data`, as in the README's commands, which are then run as written from its parent.
const home = mkdtempSync(path.join(os.tmpdir(), 'billflow-supervise-'));
const dataDir = path.join(home, 'data');
let engine: ChildProcess;
let output = '';
let api = '';
let sandbox = '';
let temporalAddress = '';

/** The engine's child whose command line contains `marker` (found from /proc, not from what the engine says). */
function child(marker: string): number | undefined {
  return childrenOf(engine.pid!).find((p) => cmdline(p).includes(marker));
}

const until = waiter(() => output, 200);

/** A status change as an ERP would send it: retried with its Idempotency-Key until the API takes it (no worker: 503). */
async function changeStatus(key: string, number: string, status: string): Promise<void> {
  await until(`${number} -> ${status} accepted`, 90_000, async () => {
    const r = await call('POST', `${api}/v1/invoices/${number}/status`, key, { status }, { 'idempotency-key': `${number}-${status}` });
    if (r.status === 200 || r.status === 202) return true;
    if (r.status !== 503) throw new Error(`status change answered ${r.status}: ${JSON.stringify(r.body)}`);
    return undefined;
  });
  await until(`${number} is ${status}`, 90_000, async () => {
    const r = await call('GET', `${api}/v1/invoices/${number}`, key);
    return r.body?.status === status ? true : undefined;
  });
}

/** Polls /healthz all along; every answer that is not 200 is counted. */
function watchHealth(): { failures: string[]; stop(): Promise<void> } {
  const failures: string[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      try {
        const r = await fetch(`${api}/healthz`, { signal: AbortSignal.timeout(5_000) });
        if (r.status !== 200) failures.push(`${new Date().toISOString()} ${r.status}`);
      } catch (e) {
        failures.push(`${new Date().toISOString()} ${String(e)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    failures,
    stop: async () => {
      on = false;
      await loop;
    },
  };
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

beforeAll(async () => {
  const ports = {
    API_PORT: await freePort(),
    SANDBOX_PORT: await freePort(),
    STRIPE_SANDBOX_PORT: await freePort(),
    TEMPORAL_PORT: await freePort(),
    TEMPORAL_UI_PORT: await freePort(),
    EMBEDDED_PG_PORT: await freePort(),
    MAILDEV_SMTP_PORT: await freePort(),
    MAILDEV_WEB_PORT: await freePort(),
    WORKER_METRICS_PORT: await freePort(),
  };
  api = `http://127.0.0.1:${ports.API_PORT}`;
  sandbox = `http://127.0.0.1:${ports.SANDBOX_PORT}`;
  temporalAddress = `127.0.0.1:${ports.TEMPORAL_PORT}`;
  // Only this engine's own settings: nothing pointing at the test run's shared servers.
  const env: Record<string, string | undefined> = { ...process.env, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
  for (const k of ['DATABASE_URL', 'SANDBOX_DATABASE_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_UI_URL', 'SMTP_HOST', 'SMTP_PORT', 'API_PUBLIC_URL', 'SANDBOX_PUBLIC_URL']) delete env[k];
  Object.assign(env, { BILLFLOW_DATA_DIR: dataDir, BILLFLOW_ADMIN_KEY: ADMIN });
  engine = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'engine.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  engine.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  engine.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  await until('engine ready', 170_000, () => {
    if (engine.exitCode !== null) throw new Error(`engine exited with code ${engine.exitCode}`);
    return output.includes('[billflow] ready in') ? true : undefined;
  });
}, 180_000);

afterAll(async () => {
  // Only if a test failed before stopping it: leave nothing running.
  if (engine?.exitCode === null && engine.signalCode === null) {
    const all = descendants(engine.pid!);
    engine.kill('SIGINT');
    await until('engine stopped', 30_000, () => (engine.exitCode !== null || engine.signalCode !== null ? true : undefined)).catch(() => {});
    for (const pid of all.filter(alive)) process.kill(pid, 'SIGKILL');
  }
  rmSync(home, { recursive: true, force: true });
}, 60_000);

describe('npm start supervises its processes', () => {
  it('restarts a killed worker and Temporal dev server while the API stays up, then stops leaving nothing behind', async () => {
    // The README's Quickstart: a provider account, the company, a client, two draft invoices.
    const acct = (await call('POST', `${sandbox}/v1/accounts`, null, { name: 'Acme Engineering', webhookUrl: `${api}/webhooks/provider/acme` })).body!;
    const company = await call('POST', `${api}/v1/companies`, ADMIN, {
      id: 'acme',
      name: 'Acme Engineering',
      provider: { enabled: true, url: sandbox, accountId: acct.id, apiKey: acct.apiKey, webhookSecret: acct.webhookSecret },
    });
    expect(company.status).toBe(201);
    const key = company.body!.apiKey as string;
    expect((await call('POST', `${api}/v1/clients`, key, { id: 'CL-1', name: 'Riverside Architects', email: 'ap@riverside.example' })).status).toBe(201);
    const draft = async (number: string) => {
      const created = await call('POST', `${api}/v1/invoices`, key, {
        number,
        clientId: 'CL-1',
        invoiceDate: '2026-11-24',
        dueDate: '2026-12-24',
        lines: [{ description: 'Design, 10 h', quantity: 10, unitPrice: 15000, amount: 150000 }],
      });
      expect(created.status).toBe(201);
    };
    await draft('INV-1');
    await draft('INV-2');
    // A first Final, so the worker has its Chromium running when it is killed.
    await changeStatus(key, 'INV-1', 'Final');
    // Final bills for a sending run, whose batch (one activity for all of them) the kill interrupts.
    const bills = Array.from({ length: BILLS }, (_, i) => `B-${i + 1}`);
    for (let i = 0; i < bills.length; i += 8) {
      await Promise.all(
        bills.slice(i, i + 8).map(async (n) => {
          await draft(n);
          await changeStatus(key, n, 'Final');
        }),
      );
    }

    const health = watchHealth();

    // 1. The worker dies (with its Chromium) under a bill run's batch and a Final; both complete on the restarted worker.
    const worker = child('worker/main.ts')!;
    const chromiums = descendants(worker).filter((p) => cmdline(p).includes('chromium'));
    expect(chromiums.length).toBeGreaterThan(0);
    const run = await call('POST', `${api}/v1/bill-runs`, key, { criteria: { invoiceNumbers: bills } });
    expect(run.status).toBe(201);
    const runUrl = `${api}/v1/bill-runs/${String(run.body!.id)}`;
    await until("the run's batch under way", 60_000, async () => {
      const r = (await call('GET', runUrl, key)).body!;
      if (r.status === 'completed') throw new Error('the run finished before the worker could be killed under its batch');
      return Number(r.sent) > 0 && Number(r.pending) > 0 ? true : undefined;
    });
    // INV-2's Final under way too: the provider holds its record's creation, so the kill lands in that activity.
    const injected = async () => Number((await call('GET', `${sandbox}/v1/sandbox/faults/injected`, acct.apiKey as string)).body!.delays);
    const delaysBefore = await injected();
    const held = await call(
      'POST',
      `${sandbox}/v1/sandbox/faults`,
      acct.apiKey as string,
      { mode: 'delay', delayMs: 8_000, count: 1, match: 'POST /v1/invoices' },
      { 'idempotency-key': 'hold-INV-2' },
    );
    expect(held.status).toBe(200);
    const asked = call('POST', `${api}/v1/invoices/INV-2/status`, key, { status: 'Final' }, { 'idempotency-key': 'INV-2-Final' });
    await until("INV-2's record creation held at the provider", 30_000, async () => ((await injected()) > delaysBefore ? true : undefined));
    const workerStarts = () => readFileSync(path.join(dataDir, 'logs', 'worker.log'), 'utf8').split('"msg":"worker started"').length - 1;
    const startsBefore = workerStarts();
    const killedWorker = Date.now();
    process.kill(worker, 'SIGKILL');
    let workerBack = 0;
    const back = until('the restarted worker polling', 90_000, () => (workerStarts() > startsBefore ? (workerBack = Date.now() - killedWorker) : undefined));
    expect([200, 202, 503]).toContain((await asked).status);
    await changeStatus(key, 'INV-2', 'Final');
    const workerRecovery = Date.now() - killedWorker;
    // The attempt the dead worker held ended at its missed heartbeat (seconds), not at its 20 s start-to-close timeout.
    const connection = await Connection.connect({ address: temporalAddress });
    try {
      const history = await new Client({ connection }).workflow.getHandle(invoiceWorkflowId('acme', 'INV-2')).fetchHistory();
      const retried = (history.events ?? []).map((e) => e.activityTaskStartedEventAttributes).filter((a) => a?.lastFailure);
      expect(retried.map((a) => a!.lastFailure!.timeoutFailureInfo?.timeoutType)).toContain(proto.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT);
    } finally {
      await connection.close();
    }
    const records = (await call('GET', `${sandbox}/v1/invoices?number=INV-2`, acct.apiKey as string)).body!.data as unknown[];
    expect(records).toHaveLength(1);
    await back;
    // The interrupted batch is retried once its heartbeat times out, by the restarted worker.
    const finished = await until('the bill run completed', 180_000, async () => {
      const r = (await call('GET', runUrl, key)).body!;
      return r.status === 'completed' ? r : undefined;
    });
    const batchRecovery = Date.now() - killedWorker;
    expect(finished).toMatchObject({ total: BILLS, sent: BILLS, failed: 0 });
    expect(batchRecovery).toBeLessThan(75_000);
    expect(child('worker/main.ts')).not.toBe(worker);
    // The dead worker's Chromium went with it (no browser per restart left behind).
    await until("the killed worker's Chromium has exited", 10_000, () => (chromiums.some(alive) ? undefined : true));

    // 2. The Temporal dev server dies; it comes back on the same SQLite file, and the invoice with it.
    const temporal = child('start-dev')!;
    const killedTemporal = Date.now();
    process.kill(temporal, 'SIGKILL');
    await until('a new Temporal dev server', 60_000, () => {
      const pid = child('start-dev');
      return pid && pid !== temporal ? pid : undefined;
    });
    const invoice = await until('INV-2 readable again', 90_000, async () => {
      const r = await call('GET', `${api}/v1/invoices/INV-2`, key);
      return r.status === 200 ? r.body! : undefined;
    });
    expect(invoice.status).toBe('Final');
    expect(invoice.payNowUrl).toMatch(/\/pay\//);
    await changeStatus(key, 'INV-1', 'Draft');
    const temporalRecovery = Date.now() - killedTemporal;

    await health.stop();
    expect(health.failures).toEqual([]);
    expect(output).toMatch(/\[billflow\] worker exited \(signal SIGKILL\); restarting in 0\.5 s \(restart 1\)/);
    expect(output).toMatch(/\[billflow\] temporal exited \(signal SIGKILL\); restarting in 0\.5 s \(restart 1\)/);
    // What the engine says of itself agrees with /proc.
    expect(Number(readFileSync(path.join(dataDir, 'billflow.pid'), 'utf8'))).toBe(engine.pid);
    const pids = JSON.parse(readFileSync(path.join(dataDir, 'pids.json'), 'utf8')) as Record<string, number>;
    expect(pids).toMatchObject({ engine: engine.pid, worker: child('worker/main.ts'), temporal: child('start-dev'), api: child('api/main.ts') });

    // 3. A second engine on the same data folder refuses at once, naming the first.
    const second = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'engine.ts')], {
      cwd: ROOT,
      env: { ...process.env, BILLFLOW_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let secondOut = '';
    second.stdout!.on('data', (b: Buffer) => (secondOut += b.toString()));
    const secondCode = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    expect(secondCode).toBe(1);
    expect(secondOut).toContain(`already running on ${dataDir} (pid ${engine.pid})`);

    // 4. The README's stop command stops it all: it names this engine's pid, no other process.
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const stopCommand = /stop this billflow \(and no other on the machine\) with `([^`]+)`/.exec(readme)?.[1];
    expect(stopCommand).toBe('kill -INT $(cat data/billflow.pid)');
    const all = descendants(engine.pid!);
    const stopping = Date.now();
    execFileSync('sh', ['-c', stopCommand!], { cwd: home });
    const code = await new Promise<number | null>((resolve) => (engine.exitCode !== null ? resolve(engine.exitCode) : engine.once('exit', resolve)));
    const stopTime = Date.now() - stopping;
    expect(code).toBe(0);
    // Grandchildren that exit when their parent's pipe closes get a moment.
    await until('every process of the engine has exited', 5_000, () => (all.some(alive) ? undefined : true)).catch(() => {
      throw new Error(
        `left running: ${all
          .filter(alive)
          .map((p) => `${p} ${cmdline(p)}`)
          .join('; ')}`,
      );
    });
    expect(existsSync(path.join(dataDir, 'billflow.pid'))).toBe(false);

    console.log(
      `supervision: worker killed -> polling again after ${secs(workerBack)}, Final sent after the kill completed in ${secs(workerRecovery)}, ` +
        `interrupted bill run completed in ${secs(batchRecovery)}; ` +
        `Temporal killed -> invoice read and changed again in ${secs(temporalRecovery)}; stopped ${all.length} processes in ${secs(stopTime)}`,
    );
  }, 400_000);
});
