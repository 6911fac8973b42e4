/**
 * The shared servers of a test run or a benchmark: one embedded PostgreSQL (billflow's and the
 * sandbox's databases, migrated), one Temporal dev server, one mail catcher (maildev) and one
 * workflow bundle.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { connect, migrate } from '../lib/db.js';
import { startEmbeddedPg } from '../lib/embedded-pg.js';
import { startMailDev } from '../lib/maildev.js';
import { BILLFLOW_MIGRATIONS, ROOT, SANDBOX_MIGRATIONS, WORKFLOWS_ENTRY } from '../lib/paths.js';
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

export async function startServers(opts: { webUi: boolean; mailCatcherProcess?: boolean }): Promise<Servers> {
  const tools = readToolsFile() as { temporal: string; chromium: string; testServer?: string };
  reapLeftovers();
  const tmp = mkdtempSync(path.join(os.tmpdir(), RUN_PREFIX));
  const bundle = async (entry: string, name: string) => {
    const { code } = await bundleWorkflowCode({ workflowsPath: entry, logger: quietLogger });
    const file = path.join(tmp, `${name}.js`);
    writeFileSync(file, code);
    return file;
  };
  const [pgPort, temporalPort, uiPort, smtpPort, mailWebPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const [pg, temporal, workflowBundlePath, mailDev] = await Promise.all([
    startEmbeddedPg({ dataDir: path.join(tmp, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }),
    startTemporalDevServer({ binary: tools.temporal, port: temporalPort, uiPort: opts.webUi ? uiPort : null }),
    bundle(WORKFLOWS_ENTRY, 'workflows'),
    opts.mailCatcherProcess ? mailCatcherProcess(smtpPort, mailWebPort) : startMailDev({ smtpPort, webPort: mailWebPort }),
  ]);
  const children = [temporal.process.pid, ...('pid' in mailDev ? [mailDev.pid] : [])];
  writeFileSync(path.join(tmp, OWNER_FILE), JSON.stringify({ pid: process.pid, children }));
  for (const [db, dir] of [['billflow', BILLFLOW_MIGRATIONS], ['sandbox', SANDBOX_MIGRATIONS]] as const) {
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
