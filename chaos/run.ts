/**
 * The chaos run: billflow's embedded stack as real processes, invoice lifecycles driven through
 * the API while the worker, Temporal and the API are killed and the provider and SMTP misbehave;
 * then the system settles and is checked against the harness's own ledger (chaos/ledger.ts).
 * `runChaos` is used by `npm run chaos` (chaos/main.ts) and by test/chaos.test.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../lib/db.js';
import { startEmbeddedPg, type EmbeddedPg } from '../lib/embedded-pg.js';
import { newSecretKey } from '../lib/secrets.js';
import { clusterServices, clusterTools, freeFrontendPort, prepareNamespace, setupTemporalSchemas, writeClusterConfig, type ClusterTools } from '../lib/temporal-cluster.js';
import { freePort } from '../lib/temporal-dev.js';
import { readToolsFile } from '../scripts/tools.mjs';
import { GaveUp, httpClient, type Json, type RetryStats } from './http.js';
import { check, key, Ledger, type BillflowInvoice, type Counts, type ProviderRecords, type Receipt } from './ledger.js';
import { nodeProcess, serviceProcess, temporalProcess, type Managed } from './processes.js';
import { Lifecycle, MIX, StepFailed, type Company, type Env, type ScenarioKind } from './scenarios.js';
import { startSmtpFront, type SmtpFront } from './smtp-front.js';

export interface ChaosOptions {
  lifecycles: number;
  concurrency: number;
  /** Hard limit for the whole run, start-up to check. */
  timeLimitMs: number;
  companies?: number;
  clientsPerCompany?: number;
  workerKillEveryMs?: number;
  smtpRefuseMs?: number;
  paymentImportSeconds?: number;
  /** The provider sandbox's chaos fault (POST /v1/sandbox/faults). */
  providerFault?: Json;
  /**
   * The Temporal server: the CLI dev server on SQLite (killed once), or the production shape, a
   * cluster on PostgreSQL with a process per service (history and matching killed once each).
   */
  temporal?: 'dev' | 'cluster';
  log?: (line: string) => void;
}

export interface ChaosResult extends Counts {
  lifecycles: number;
  /** The final line, as printed. */
  line: string;
  faults: {
    workerKills: number;
    /** Dev server restarts, or cluster service (history, matching) restarts. */
    temporalRestarts: number;
    apiKills: number;
    smtpRefusals: number;
    provider: { errors: number; delays: number; droppedResponses: number; webhooks: { duplicated: number; held: number; lost: number } };
  };
  failures: string[];
  /** The verdict: every count 0 and no workflow task failed on nondeterminism. */
  passed: boolean;
  /** Workflow tasks as the worker's SDK reported them. */
  workflowTasks: { slow: number; lost: number; nondeterminism: number; queryReplays: number };
  notes: string[];
  /** Logs of every process (kept when something failed). */
  dir: string;
}

const DEFAULT_PROVIDER_FAULT = {
  mode: 'chaos',
  status: 503,
  errorRate: 0.2,
  delayRate: 0.2,
  delayMs: 300,
  dropResponseRate: 0.05,
  webhooks: { duplicateRate: 0.1, holdRate: 0.1, holdMs: 3_000, loseRate: 0.05 },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a process again until it is up (it may fail while Temporal is itself restarting). */
async function startUntilUp(p: Managed, log: (l: string) => void, until: number): Promise<void> {
  for (;;) {
    try {
      return await p.start();
    } catch (e) {
      if (Date.now() > until) throw e;
      log(`chaos: ${p.name} did not start (${e instanceof Error ? e.message : String(e)}); trying again`);
      await sleep(1_000);
    }
  }
}

function utcDate(offsetDays: number): string {
  return new Date(Date.now() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

/** The cluster's four services, started one after the other, each a process of its own; then the namespace. */
async function startCluster(tools: ClusterTools, databaseUrl: string, dir: string, logDir: string, procs: Managed[]) {
  const frontendPort = await freeFrontendPort();
  const logs = new Map<string, WriteStream>();
  const logTo = (name: string) => logs.get(name) ?? logs.set(name, createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' })).get(name)!;
  setupTemporalSchemas(tools, databaseUrl, (line) => logTo('temporal-schema').write(line));
  const configDir = writeClusterConfig({ dir, databaseUrl, frontendPort });
  const services = clusterServices({ tools, configDir, frontendPort, log: (s, line) => logTo(`temporal-${s}`).write(line) }).map(serviceProcess);
  procs.push(...services);
  // One after the other: services starting at once race to write the cluster's metadata record.
  for (const s of services) await s.start();
  const address = `127.0.0.1:${frontendPort}`;
  await prepareNamespace(address, 'default');
  const named = (n: string) => services.find((s) => s.name === `temporal-${n}`)!;
  return { address, history: named('history'), matching: named('matching') };
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const started = Date.now();
  const hardStop = started + opts.timeLimitMs;
  // The lifecycles get 80% of the time (no lifecycle starts after that); settling up to 92%, then the check.
  const lifecyclesStop = started + opts.timeLimitMs * 0.8;
  const stats: RetryStats = { networkErrors: 0, serverErrors: 0, inProgress: 0 };
  const call = httpClient(stats, () => hardStop);
  const found = readToolsFile() as { temporal: string; chromium: string } & Parameters<typeof clusterTools>[0];
  const tools = { ...found, cluster: opts.temporal === 'cluster' ? clusterTools(found) : null };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'billflow-chaos-'));
  const logDir = path.join(dir, 'logs');
  mkdirSync(logDir);
  const timings: string[] = [];
  const phase = (name: string, since: number) => timings.push(`${name} ${((Date.now() - since) / 1000).toFixed(1)} s`);

  const ports: number[] = [];
  // One at a time, so no two ask the OS at the same moment.
  for (let i = 0; i < 9; i++) ports.push(await freePort());
  const [pgPort, temporalPort, sandboxPort, apiPort, frontPort, mailSmtpPort, mailWebPort, workerMetricsPort, stripeSandboxPort] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const sandboxUrl = `http://127.0.0.1:${sandboxPort}`;
  const mailUrl = `http://127.0.0.1:${mailWebPort}`;
  const adminKey = `bf_admin_${randomBytes(12).toString('hex')}`;

  let pg: EmbeddedPg | undefined;
  let front: SmtpFront | undefined;
  const procs: Managed[] = [];
  // Should this process die, nothing it started may outlive it.
  const reap = () => {
    for (const p of procs) {
      const pid = p.pid();
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  };
  process.once('exit', reap);
  let keep = true;
  try {
    const t0 = Date.now();
    const mail = nodeProcess({ name: 'maildev', entry: 'scripts/mail-catcher.ts', args: [String(mailSmtpPort), String(mailWebPort)], env: {}, logDir, ready: { line: /ready/ } });
    procs.push(mail);
    let temporal: { address: string; restarts: () => number; faults: { at: number; what: string; service: Managed }[] };
    if (tools.cluster) {
      [pg] = await Promise.all([startEmbeddedPg({ dataDir: path.join(dir, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }), mail.start()]);
      const cluster = await startCluster(tools.cluster, pg.url('temporal'), dir, logDir, procs);
      temporal = {
        address: cluster.address,
        restarts: () => cluster.history.restarts + cluster.matching.restarts,
        faults: [
          { at: 0.35, what: 'Temporal history service SIGKILL, restarted', service: cluster.history },
          { at: 0.5, what: 'Temporal matching service SIGKILL, restarted', service: cluster.matching },
        ],
      };
    } else {
      const dev = temporalProcess({ binary: tools.temporal, port: temporalPort, dbFile: path.join(dir, 'temporal.db'), logDir });
      procs.push(dev);
      [pg] = await Promise.all([startEmbeddedPg({ dataDir: path.join(dir, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }), dev.start(), mail.start()]);
      temporal = {
        address: dev.address,
        restarts: () => dev.restarts,
        faults: [{ at: 0.35, what: 'Temporal dev server SIGKILL, restarted on the same SQLite file and port', service: dev }],
      };
    }
    front = await startSmtpFront({ port: frontPort, targetPort: mailSmtpPort });
    const common = { DATABASE_URL: pg.url('billflow'), SANDBOX_DATABASE_URL: pg.url('sandbox'), TEMPORAL_ADDRESS: temporal.address, BILLFLOW_ADMIN_KEY: adminKey, BILLFLOW_SECRET_KEY: newSecretKey() };
    const sandbox = nodeProcess({
      name: 'sandbox',
      entry: 'sandbox/main.ts',
      env: { ...common, SANDBOX_PORT: String(sandboxPort), SANDBOX_PUBLIC_URL: sandboxUrl, STRIPE_SANDBOX_PORT: String(stripeSandboxPort) },
      logDir,
      ready: { port: sandboxPort },
    });
    const api = nodeProcess({ name: 'api', entry: 'api/main.ts', env: { ...common, API_PORT: String(apiPort), API_PUBLIC_URL: apiUrl }, logDir, ready: { port: apiPort } });
    const worker = nodeProcess({
      name: 'worker',
      entry: 'worker/main.ts',
      // The chaos faults are independent (about 1 call in 4 fails), not an outage. At the default 5 in
      // a row the circuit breaker would open a few times a run and refuse changes for its cool-down;
      // 12 in a row happens about once in 17 million calls.
      env: {
        ...common,
        CHROMIUM_PATH: tools.chromium,
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(frontPort),
        API_PUBLIC_URL: apiUrl,
        PROVIDER_CIRCUIT_FAILURES: '12',
        WORKER_METRICS_PORT: String(workerMetricsPort),
      },
      logDir,
      ready: { line: /worker started/ },
    });
    procs.push(sandbox, api, worker);
    await sandbox.start();
    await api.start();
    let workerStart = Date.now();
    await worker.start();
    phase('worker start', workerStart);
    phase('stack start', t0);
    log(`chaos: stack up in ${((Date.now() - t0) / 1000).toFixed(1)} s (logs in ${logDir})`);

    // --- companies, clients, provider accounts ------------------------------------------------------
    const companies: Company[] = [];
    const runId = randomUUID().slice(0, 6);
    for (let c = 0; c < (opts.companies ?? 3); c++) {
      const id = `chaos-${runId}-${c}`;
      const fixedFee = 150 + c * 25;
      const acct = await call(sandboxUrl, 'POST', '/v1/accounts', {
        body: { name: `Chaos ${id}`, webhookUrl: `${apiUrl}/webhooks/provider/${id}`, convenienceFee: { fixed: fixedFee } },
        idempotencyKey: `account:${id}`,
      });
      if (acct.status !== 201) throw new Error(`sandbox account: ${acct.status} ${JSON.stringify(acct.body)}`);
      const co = await call(apiUrl, 'POST', '/v1/companies', {
        key: adminKey,
        idempotencyKey: `company:${id}`,
        body: {
          id,
          name: `Chaos Engineering ${c}`,
          reminderDays: [0, 7],
          paymentImportSeconds: opts.paymentImportSeconds ?? 20,
          provider: { enabled: true, url: sandboxUrl, accountId: acct.body.id, apiKey: acct.body.apiKey, webhookSecret: acct.body.webhookSecret },
        },
      });
      if (co.status !== 201) throw new Error(`company: ${co.status} ${JSON.stringify(co.body)}`);
      const company: Company = { id, apiKey: co.body.apiKey as string, account: { id: acct.body.id as string, apiKey: acct.body.apiKey as string }, clients: [], heldAbove: 1_500_000, fixedFee };
      const def = await call(apiUrl, 'PUT', '/v1/billing-run-definition', {
        key: company.apiKey,
        idempotencyKey: `billing-run:${id}`,
        body: { maxCredited: null, maxDebited: { kind: 'fixed', amount: company.heldAbove } },
      });
      if (def.status !== 200) throw new Error(`billing-run definition: ${def.status} ${JSON.stringify(def.body)}`);
      for (let k = 0; k < (opts.clientsPerCompany ?? 4); k++) {
        const client = { id: `CL-${c}-${k}`, email: `ap-${runId}-${c}-${k}@chaos.example` };
        const made = await call(apiUrl, 'POST', '/v1/clients', {
          key: company.apiKey,
          idempotencyKey: `client:${id}:${client.id}`,
          body: { id: client.id, name: `Client ${c}-${k}`, email: client.email },
        });
        if (made.status !== 201) throw new Error(`client: ${made.status} ${JSON.stringify(made.body)}`);
        company.clients.push(client);
      }
      companies.push(company);
    }
    const accountOf = new Map(companies.map((c) => [c.id, c.account.id]));
    const setProviderFault = (fault: Json) =>
      Promise.all(companies.map((c) => call(sandboxUrl, 'POST', '/v1/sandbox/faults', { key: c.account.apiKey, body: fault, idempotencyKey: `fault:${c.id}:${randomUUID()}` })));
    await setProviderFault(opts.providerFault ?? DEFAULT_PROVIDER_FAULT);

    // --- the ERP feed reader ------------------------------------------------------------------------
    const feed: Receipt[] = [];
    const cursors = new Map<string, string | null>(companies.map((c) => [c.id, null]));
    // Receipt ids received on a page whose acknowledge has not answered yet. Until it answers the
    // reader stays at its cursor and reads that page again, as an ERP would: the feed is
    // at-least-once until acknowledged, and the receipt id is what the ERP dedupes by. Any other
    // repeat (a receipt id after its page was acknowledged, or a second id for one payment) counts.
    const unacknowledged = new Map<string, Set<string>>(companies.map((c) => [c.id, new Set()]));
    let redelivered = 0;
    const readFeeds = async () => {
      for (const c of companies) {
        const pending = unacknowledged.get(c.id)!;
        for (;;) {
          const after = cursors.get(c.id);
          const page = await call(apiUrl, 'GET', `/v1/receipts?limit=100${after ? `&after=${after}` : ''}`, { key: c.apiKey, deadlineMs: 30_000 });
          if (page.status !== 200) throw new Error(`GET /v1/receipts: ${page.status}`);
          const rows = page.body.data as (Receipt & { id: string })[];
          for (const r of rows) {
            if (pending.has(r.id)) {
              redelivered += 1;
              continue;
            }
            pending.add(r.id);
            feed.push({ companyId: r.companyId, kind: r.kind, providerPaymentId: r.providerPaymentId, invoiceNumber: r.invoiceNumber, amount: r.amount });
          }
          if (rows.length > 0) {
            const upTo = page.body.nextCursor as string;
            const ack = await call(apiUrl, 'POST', '/v1/receipts/acknowledge', { key: c.apiKey, body: { upTo }, idempotencyKey: `ack:${c.id}:${upTo}`, deadlineMs: 30_000 });
            if (ack.status !== 200) throw new Error(`POST /v1/receipts/acknowledge: ${ack.status}`);
            cursors.set(c.id, upTo);
            pending.clear();
          }
          if (!page.body.hasMore) break;
        }
      }
    };
    let running = true;
    const feedLoop = (async () => {
      while (running) {
        try {
          await readFeeds();
        } catch (e) {
          // The API may be down right now; the reader resumes from its cursor.
          if (!(e instanceof GaveUp)) log(`chaos: feed reader: ${e instanceof Error ? e.message : String(e)}`);
        }
        await sleep(1_000);
      }
    })();

    // --- faults on a timeline -----------------------------------------------------------------------
    const faultLog: string[] = [];
    const note = (what: string) => {
      faultLog.push(`${((Date.now() - started) / 1000).toFixed(1)} s ${what}`);
      log(`chaos: ${what}`);
    };
    const workerStarts: number[] = [];
    const killer = (async () => {
      const every = opts.workerKillEveryMs ?? 10_000;
      while (running) {
        const wake = Date.now() + every;
        while (running && Date.now() < wake) await sleep(200);
        if (!running) break;
        await worker.kill();
        workerStart = Date.now();
        await startUntilUp(worker, log, hardStop);
        workerStarts.push(Date.now() - workerStart);
      }
    })();
    const triggers: { at: number; what: string; run: () => Promise<void> }[] = [
      { at: 0.2, what: `SMTP refuses for ${(opts.smtpRefuseMs ?? 20_000) / 1000} s`, run: async () => front!.refuseFor(opts.smtpRefuseMs ?? 20_000) },
      ...temporal.faults.map(({ at, what, service }) => ({
        at,
        what,
        run: async () => {
          await service.kill();
          await startUntilUp(service, log, hardStop);
        },
      })),
      {
        at: 0.6,
        what: 'API SIGKILL, restarted',
        run: async () => {
          await api.kill();
          await startUntilUp(api, log, hardStop);
        },
      },
      {
        at: 0.85,
        what: 'reconciliation run for every company',
        run: async () => {
          for (const c of companies) {
            const r = await call(apiUrl, 'POST', '/v1/reconciliations', { key: c.apiKey, idempotencyKey: `reconcile:${c.id}`, deadlineMs: 60_000 });
            reconciliations.push(`${c.id}: ${r.status} ${r.body.status ?? r.body.type ?? ''}${Array.isArray(r.body.findings) ? `, ${r.body.findings.length} finding(s)` : ''}`);
          }
        },
      },
    ];
    const reconciliations: string[] = [];
    const fired: Promise<void>[] = [];

    // --- the lifecycles -----------------------------------------------------------------------------
    const t1 = Date.now();
    const ledger = new Ledger();
    const env: Env = { call, apiUrl, sandboxUrl, ledger, today: utcDate(0), dueDate: utcDate(30) };
    const bag: ScenarioKind[] = MIX.flatMap(([kind, weight]) => Array<ScenarioKind>(weight).fill(kind));
    const queue = Array.from({ length: opts.lifecycles }, (_, i) => new Lifecycle(`CH${runId}-${String(i + 1).padStart(4, '0')}`, bag[i % bag.length]!, env, companies[i % companies.length]!));
    const failed = new Map<string, string>();
    const kinds = new Map<ScenarioKind, number>();
    let done = 0;
    let next = 0;
    const onDone = () => {
      done += 1;
      for (const t of triggers) {
        if (t.at >= 0 && done >= Math.ceil(t.at * opts.lifecycles)) {
          t.at = -1;
          note(t.what);
          fired.push(t.run().catch((e: unknown) => void note(`${t.what} failed: ${e instanceof Error ? e.message : String(e)}`)));
        }
      }
      if (done % Math.max(1, Math.round(opts.lifecycles / 10)) === 0) log(`chaos: ${done}/${opts.lifecycles} lifecycles done, ${failed.size} failed`);
    };
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (next < queue.length) {
          const lc = queue[next++]!;
          kinds.set(lc.kind, (kinds.get(lc.kind) ?? 0) + 1);
          if (Date.now() > lifecyclesStop) {
            failed.set(lc.id, 'not started: the time limit was reached');
            onDone();
            continue;
          }
          try {
            await lc.run();
          } catch (e) {
            const why = e instanceof StepFailed || e instanceof GaveUp ? e.message : `${e instanceof Error ? e.stack : String(e)}`;
            lc.problems.push(why);
          }
          if (lc.problems.length) failed.set(lc.id, `${lc.kind}: ${lc.problems.join('; ')}`);
          onDone();
        }
      }),
    );
    phase('lifecycles', t1);

    // --- settle -------------------------------------------------------------------------------------
    const t2 = Date.now();
    running = false;
    await killer;
    await Promise.all(fired);
    const injected = await Promise.all(companies.map((c) => call(sandboxUrl, 'GET', '/v1/sandbox/faults/injected', { key: c.account.apiKey })));
    await setProviderFault({ mode: 'none' });
    await feedLoop;
    const sandboxSql = connect(pg.url('sandbox'), { max: 2 });
    const billflowSql = connect(pg.url('billflow'), { max: 2 });
    const accounts = [...accountOf.values()];
    const companyIds = companies.map((c) => c.id);
    const settleBy = started + opts.timeLimitMs * 0.92;
    let unsettled: string[] = [];
    for (;;) {
      const [outbox] = await sandboxSql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_deliveries WHERE account_id = ANY(${accounts}) AND delivered_at IS NULL AND next_attempt_at IS NOT NULL`;
      const rows = await billflowSql<{ company_id: string; number: string; outstanding: number; pending: boolean }[]>`
        SELECT company_id, number, outstanding, (state->'pendingChange') IS NOT NULL AND state->'pendingChange' <> 'null'::jsonb AS pending
        FROM invoices WHERE company_id = ANY(${companyIds})`;
      const model = new Map(rows.map((r) => [key(r.company_id, r.number), r]));
      unsettled = [...ledger.invoices.values()]
        .filter((inv) => !failed.has(inv.lifecycle))
        .filter((inv) => {
          const r = model.get(key(inv.companyId, inv.number));
          return !r || r.pending || r.outstanding !== ledger.outstanding(inv);
        })
        .map((inv) => inv.number);
      if ((outbox!.n === 0 && unsettled.length === 0) || Date.now() > settleBy) break;
      await sleep(2_000);
    }
    phase('settle', t2);
    if (unsettled.length) log(`chaos: ${unsettled.length} invoice(s) had not settled by the deadline: ${unsettled.slice(0, 20).join(', ')}`);

    // --- read every side and check ------------------------------------------------------------------
    const t3 = Date.now();
    await readFeeds();
    const billflow = new Map<string, BillflowInvoice | string>();
    const byCompany = new Map(companies.map((c) => [c.id, c]));
    const invoices = [...ledger.invoices.values()];
    for (let i = 0; i < invoices.length; i += 8) {
      await Promise.all(
        invoices.slice(i, i + 8).map(async (inv) => {
          try {
            const r = await call(apiUrl, 'GET', `/v1/invoices/${encodeURIComponent(inv.number)}`, { key: byCompany.get(inv.companyId)!.apiKey, deadlineMs: 30_000 });
            billflow.set(key(inv.companyId, inv.number), r.status === 200 ? (r.body as unknown as BillflowInvoice) : `${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
          } catch (e) {
            billflow.set(key(inv.companyId, inv.number), e instanceof Error ? e.message : String(e));
          }
        }),
      );
    }
    const provider: ProviderRecords = {
      invoices: await sandboxSql`
        SELECT account_id AS "accountId", number, id, deleted_at IS NULL AS live, amount, outstanding, paid
        FROM invoice_view WHERE account_id = ANY(${accounts})`,
      payments: await sandboxSql`
        SELECT account_id AS "accountId", id, method, reference, status, amount, fee, allocations
        FROM payment_view WHERE account_id = ANY(${accounts})`,
    };
    const receiptsTable = await billflowSql<Receipt[]>`
      SELECT company_id AS "companyId", kind, provider_payment_id AS "providerPaymentId", invoice_number AS "invoiceNumber", amount
      FROM receipts WHERE company_id = ANY(${companyIds})`;
    const mails = (await (await fetch(`${mailUrl}/email`)).json()) as { headers: Record<string, string> }[];
    const urlStatus = new Map<string, number>();
    for (const inv of invoices) {
      for (const url of [...inv.deadUrls, ...(inv.liveUrl ? [inv.liveUrl] : [])]) {
        const res = await fetch(url);
        await res.body?.cancel();
        urlStatus.set(url, res.status);
      }
    }
    await sandboxSql.end({ timeout: 5 });
    await billflowSql.end({ timeout: 5 });
    const result = check({
      ledger,
      failedLifecycles: failed,
      lifecycles: opts.lifecycles,
      accountOf,
      billflow,
      provider,
      feed,
      receiptsTable,
      messageIds: mails.map((m) => m.headers['message-id'] ?? ''),
      urlStatus,
    });
    phase('check', t3);

    // --- figures ------------------------------------------------------------------------------------
    const sum = (f: (j: Json) => number) => injected.reduce((s, r) => s + f(r.body), 0);
    const faults: ChaosResult['faults'] = {
      workerKills: worker.restarts,
      temporalRestarts: temporal.restarts(),
      apiKills: api.restarts,
      smtpRefusals: front.refused(),
      provider: {
        errors: sum((j) => j.errors),
        delays: sum((j) => j.delays),
        droppedResponses: sum((j) => j.droppedResponses),
        webhooks: { duplicated: sum((j) => j.webhooks.duplicated), held: sum((j) => j.webhooks.held), lost: sum((j) => j.webhooks.lost) },
      },
    };
    // What the SDK said of its workflow tasks: slow ones (a busy worker), ones the server had
    // given to another worker meanwhile, and nondeterminism, which leaves an invoice's workflow
    // stuck and is a defect whatever the ledger says. A Query answered by replaying an uncached
    // invoice can also fail so; the API then answers the saved state, and the run counts it apart.
    const workerLog = readFileSync(path.join(logDir, 'worker.log'), 'utf8');
    const count = (re: RegExp) => workerLog.match(re)?.length ?? 0;
    const tasks = {
      slow: count(/TMPRL1104/g),
      lost: count(/Task not found when completing/g),
      nondeterminism: count(/Failing workflow task[^\n]*Nondeterminism error/g),
      queryReplays: count(/Failing legacy query request[^\n]*Nondeterminism error/g),
    };
    if (tasks.nondeterminism > 0) {
      result.failures.push(`nondeterminism: ${tasks.nondeterminism} workflow task(s) failed replay (grep "Failing workflow task" ${path.join(logDir, 'worker.log')})`);
    }
    for (const f of result.failures) log(`FAIL ${f}`);
    for (const n of result.notes) log(`note: ${n}`);
    log(`mix: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}; ${ledger.invoices.size} invoices, ${ledger.payments.length} payer payments`);
    log(`reconciliation: ${reconciliations.join('; ') || 'not run'}`);
    log(`timeline: ${faultLog.join('; ')}`);
    const starts = workerStarts.length ? `, worker restart ${(workerStarts.reduce((a, b) => a + b, 0) / workerStarts.length / 1000).toFixed(1)} s on average` : '';
    log(`timings: ${timings.join(', ')}${starts}; total ${((Date.now() - started) / 1000).toFixed(1)} s`);
    log(
      `faults: worker SIGKILL ${faults.workerKills}, Temporal restarts ${faults.temporalRestarts}, API SIGKILL ${faults.apiKills}, SMTP refusals ${faults.smtpRefusals}; ` +
        `provider 5xx ${faults.provider.errors}, delays ${faults.provider.delays}, dropped responses ${faults.provider.droppedResponses}; ` +
        `webhooks duplicated ${faults.provider.webhooks.duplicated}, held back ${faults.provider.webhooks.held}, lost ${faults.provider.webhooks.lost}`,
    );
    log(
      `workflow tasks: ${tasks.slow} slow (the SDK's TMPRL1104), ${tasks.lost} completed after the server had given them up, ${tasks.nondeterminism} nondeterminism errors; ${tasks.queryReplays} Queries refused on nondeterminism`,
    );
    log(
      `client retries: ${stats.networkErrors} network errors, ${stats.serverErrors} 5xx, ${stats.inProgress} 409 request-in-progress; feed receipts read again after an unanswered acknowledge ${redelivered}`,
    );
    const line =
      `chaos: ${opts.lifecycles} lifecycles, ${result.lost} lost, ${result.duplicateInvoices} duplicate provider invoices, ${result.duplicatePayments} duplicate payments, ` +
      `${result.feedErrors} feed gaps or duplicates, ${result.balanceMismatches} balance mismatches, ${result.duplicateEmails} duplicate emails`;
    const passed = result.lost + result.duplicateInvoices + result.duplicatePayments + result.feedErrors + result.balanceMismatches + result.duplicateEmails + tasks.nondeterminism === 0;
    keep = !passed;
    if (keep) log(`logs kept in ${logDir}`);
    log(line);
    return {
      lifecycles: opts.lifecycles,
      lost: result.lost,
      duplicateInvoices: result.duplicateInvoices,
      duplicatePayments: result.duplicatePayments,
      feedErrors: result.feedErrors,
      balanceMismatches: result.balanceMismatches,
      duplicateEmails: result.duplicateEmails,
      line,
      faults,
      failures: result.failures,
      passed,
      workflowTasks: tasks,
      notes: result.notes,
      dir,
    };
  } finally {
    for (const p of [...procs].reverse()) await p.stop().catch(() => {});
    await front?.stop();
    await pg?.stop();
    process.removeListener('exit', reap);
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}
