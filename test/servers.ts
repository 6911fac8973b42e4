/**
 * The shared servers of a test run or a benchmark: one embedded PostgreSQL (billflow's and the
 * sandbox's databases, migrated), one Temporal dev server, one mail catcher (maildev) and one
 * workflow bundle. With `cluster`, Temporal is `npm run cluster`'s instead of the dev server: a
 * cluster on that PostgreSQL, one supervised process per service (and its Web UI server).
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { connect, migrate } from '../lib/db.js';
import { startEmbeddedPg } from '../lib/embedded-pg.js';
import { startMailDev } from '../lib/maildev.js';
import { BILLFLOW_MIGRATIONS, ROOT, SANDBOX_MIGRATIONS, WORKFLOWS_ENTRY } from '../lib/paths.js';
import { Supervisor } from '../lib/supervisor.js';
import { clusterTools, freeFrontendPort, startTemporalCluster } from '../lib/temporal-cluster.js';
import { freePort, startTemporalDevServer } from '../lib/temporal-dev.js';
import { readToolsFile } from '../scripts/tools.mjs';

export interface Servers {
  databaseUrl: string;
  sandboxDatabaseUrl: string;
  temporalAddress: string;
  temporalUiUrl: string | null;
  workflowBundlePath: string;
  chromiumPath: string;
  testServerPath: string | undefined;
  /** The mail catcher's SMTP port (on 127.0.0.1) and its web page / REST API. */
  smtpPort: number;
  mailDevUrl: string;
  /** The cluster's processes by supervised name (temporal-history, ...), when it is one; current after restarts. */
  clusterPids?: () => Record<string, number>;
  /** Bundles other workflow code (the benchmark's baseline) into the run's folder. */
  bundle(entry: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
};

const RUN_PREFIX = 'billflow-run-';
const OWNER_FILE = 'owner.json';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A run killed before its teardown (a CI timeout, a SIGKILL) leaves its servers running. Each run
 * records its pid and its servers' pids; the next run stops those of runs whose owner is gone.
 */
function reapLeftovers(): void {
  for (const name of readdirSync(os.tmpdir()).filter((n) => n.startsWith(RUN_PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    let owner: { pid: number; children: number[] };
    try {
      owner = JSON.parse(readFileSync(path.join(dir, OWNER_FILE), 'utf8')) as typeof owner;
    } catch {
      continue;
    }
    if (alive(owner.pid)) continue;
    const postmaster = path.join(dir, 'pg', 'postmaster.pid');
    const pids = [...owner.children, ...(existsSync(postmaster) ? [Number(readFileSync(postmaster, 'utf8').split('\n')[0])] : [])];
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** maildev in a child process (the benchmark: SMTP parsing off the worker's event loop), printing "ready" when it listens. */
async function mailCatcherProcess(smtpPort: number, webPort: number): Promise<{ pid: number; smtpPort: number; webUrl: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'mail-catcher.ts'), String(smtpPort), String(webPort)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`mail catcher exited with ${code}`)));
  });
  return {
    pid: child.pid!,
    smtpPort,
    webUrl: `http://127.0.0.1:${webPort}`,
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The cluster of `npm run cluster` on `pgUrl`'s PostgreSQL, its processes recorded for reaping as they change. */
async function startCluster(tools: Parameters<typeof clusterTools>[0], pgUrl: string, dir: string, webUi: boolean, record: (pids: number[]) => void) {
  const [frontendPort, uiPort] = [await freeFrontendPort(), await freePort()];
  let pids: Record<string, number> = {};
  const supervisor = new Supervisor({
    report: (line) => process.stderr.write(`[cluster] ${line}\n`),
    pids: (p) => {
      pids = p;
      record(Object.values(p));
    },
  });
  const logs = path.join(dir, 'logs');
  mkdirSync(logs, { recursive: true });
  try {
    await startTemporalCluster({
      tools: clusterTools(tools),
      databaseUrl: pgUrl,
      dir,
      frontendPort,
      uiPort: webUi ? uiPort : null,
      namespace: 'default',
      supervisor,
      log: (name, line) => appendFileSync(path.join(logs, `${name}.log`), line),
    });
  } catch (e) {
    await supervisor.stop();
    throw e;
  }
  return { address: `127.0.0.1:${frontendPort}`, uiUrl: webUi ? `http://127.0.0.1:${uiPort}` : null, pids: () => pids, pid: undefined, stop: () => supervisor.stop() };
}

export async function startServers(opts: { webUi: boolean; mailCatcherProcess?: boolean; cluster?: boolean }): Promise<Servers> {
  const tools = readToolsFile() as { temporal: string; chromium: string; testServer?: string } & Parameters<typeof clusterTools>[0];
  reapLeftovers();
  const tmp = mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  const bundle = async (entry: string, name: string) => {
    const { code } = await bundleWorkflowCode({ workflowsPath: entry, logger: quietLogger });
    const file = path.join(tmp, `${name}.js`);
    writeFileSync(file, code);
    return file;
  };
  const [pgPort, temporalPort, uiPort, smtpPort, mailWebPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  let temporalPids: number[] = [];
  let otherPids: number[] = [];
  const recordOwner = () => writeFileSync(path.join(tmp, OWNER_FILE), JSON.stringify({ pid: process.pid, children: [...temporalPids, ...otherPids] }));
  const pgStarted = startEmbeddedPg({ dataDir: path.join(tmp, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] });
  const [pg, temporal, workflowBundlePath, mailDev] = await Promise.all([
    pgStarted,
    opts.cluster
      ? pgStarted.then((p) =>
          startCluster(tools, p.url('temporal'), path.join(tmp, 'temporal'), opts.webUi, (pids) => {
            temporalPids = pids;
            recordOwner();
          }),
        )
      : startTemporalDevServer({ binary: tools.temporal, port: temporalPort, uiPort: opts.webUi ? uiPort : null }).then((t) => ({
          address: t.address,
          uiUrl: t.uiUrl,
          stop: t.stop,
          pids: undefined,
          pid: t.process.pid,
        })),
    bundle(WORKFLOWS_ENTRY, 'workflows'),
    opts.mailCatcherProcess ? mailCatcherProcess(smtpPort, mailWebPort) : startMailDev({ smtpPort, webPort: mailWebPort }),
  ]);
  if (temporal.pid) temporalPids = [temporal.pid];
  otherPids = 'pid' in mailDev && typeof mailDev.pid === 'number' ? [mailDev.pid] : [];
  recordOwner();
  for (const [db, dir] of [
    ['billflow', BILLFLOW_MIGRATIONS],
    ['sandbox', SANDBOX_MIGRATIONS],
  ] as const) {
    const sql = connect(pg.url(db), { max: 1 });
    await migrate(sql, dir);
    await sql.end();
  }
  return {
    databaseUrl: pg.url('billflow'),
    sandboxDatabaseUrl: pg.url('sandbox'),
    temporalAddress: temporal.address,
    temporalUiUrl: temporal.uiUrl,
    workflowBundlePath,
    chromiumPath: tools.chromium,
    testServerPath: tools.testServer,
    ...(temporal.pids ? { clusterPids: temporal.pids } : {}),
    smtpPort: mailDev.smtpPort,
    mailDevUrl: mailDev.webUrl,
    bundle,
    async stop() {
      await mailDev.stop();
      await temporal.stop();
      await pg.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
