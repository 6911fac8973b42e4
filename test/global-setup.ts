/**
 * One PostgreSQL, one Temporal dev server (with its Web UI), one mail catcher (maildev) and one
 * workflow bundle for the whole run. Test files reach them through `inject(...)` and use fresh ids
 * (fresh recipient addresses for mail), so they never share state. With BILLFLOW_CLUSTER=1 the
 * run's Temporal is `npm run cluster`'s cluster on PostgreSQL (and its Web UI server) instead.
 */
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { startServers, type Servers } from './servers.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    sandboxDatabaseUrl: string;
    temporalAddress: string;
    temporalUiUrl: string;
    workflowBundlePath: string;
    chromiumPath: string;
    testServerPath: string;
    /** SMTP port of the run's mail catcher (maildev, 127.0.0.1). */
    smtpPort: number;
    /** The mail catcher's web page and REST API (read with test/mail.ts). */
    mailDevUrl: string;
  }
}

let servers: Servers | undefined;

export async function setup(project: TestProject): Promise<void> {
  servers = await startServers({ webUi: true, cluster: process.env.BILLFLOW_CLUSTER === '1' });
  if (!servers.testServerPath) {
    await servers.stop();
    throw new Error('the time-skipping test server is not set up: run `node scripts/setup.mjs --for-tests`');
  }
  project.provide('databaseUrl', servers.databaseUrl);
  project.provide('sandboxDatabaseUrl', servers.sandboxDatabaseUrl);
  project.provide('temporalAddress', servers.temporalAddress);
  project.provide('temporalUiUrl', servers.temporalUiUrl!);
  project.provide('workflowBundlePath', servers.workflowBundlePath);
  project.provide('chromiumPath', servers.chromiumPath);
  project.provide('testServerPath', servers.testServerPath);
  project.provide('smtpPort', servers.smtpPort);
  project.provide('mailDevUrl', servers.mailDevUrl);
}

export async function teardown(): Promise<void> {
  await servers?.stop();
}
