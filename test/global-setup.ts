/**
 * One PostgreSQL, one Temporal dev server (with its Web UI) and one workflow bundle for the whole
 * run. Test files connect to them through `inject(...)` and use fresh ids, so they never share state.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { connect, migrate } from '../lib/db.js';
import { startEmbeddedPg, type EmbeddedPg } from '../lib/embedded-pg.js';
import { BILLFLOW_MIGRATIONS, SANDBOX_MIGRATIONS, WORKFLOWS_ENTRY } from '../lib/paths.js';
import { freePort, startTemporalDevServer, type DevServer } from '../lib/temporal-dev.js';
import { readToolsFile } from '../scripts/tools.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    sandboxDatabaseUrl: string;
    temporalAddress: string;
    temporalUiUrl: string;
    workflowBundlePath: string;
    chromiumPath: string;
    testServerPath: string;
  }
}

let pg: EmbeddedPg | undefined;
let temporal: DevServer | undefined;
let tmp: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const tools = readToolsFile() as { temporal: string; chromium: string; testServer: string };
  tmp = mkdtempSync(path.join(os.tmpdir(), 'billflow-test-'));
  const [pgPort, temporalPort, uiPort] = [await freePort(), await freePort(), await freePort()];
  const [pgStarted, devStarted, bundle] = await Promise.all([
    startEmbeddedPg({ dataDir: path.join(tmp, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }),
    startTemporalDevServer({ binary: tools.temporal, port: temporalPort, uiPort }),
    bundleWorkflowCode({ workflowsPath: WORKFLOWS_ENTRY, logger: quietLogger }),
  ]);
  pg = pgStarted;
  temporal = devStarted;
  for (const [db, dir] of [['billflow', BILLFLOW_MIGRATIONS], ['sandbox', SANDBOX_MIGRATIONS]] as const) {
    const sql = connect(pg.url(db), { max: 1 });
    await migrate(sql, dir);
    await sql.end();
  }
  const bundlePath = path.join(tmp, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  project.provide('databaseUrl', pg.url('billflow'));
  project.provide('sandboxDatabaseUrl', pg.url('sandbox'));
  project.provide('temporalAddress', temporal.address);
  project.provide('temporalUiUrl', temporal.uiUrl!);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('chromiumPath', tools.chromium);
  project.provide('testServerPath', tools.testServer);
}

export async function teardown(): Promise<void> {
  await temporal?.stop();
  await pg?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
  error: (m: string) => process.stderr.write(`[bundle] ${m}\n`),
};
