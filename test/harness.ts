/** The stack of test/stack.ts on the run's shared servers (from the global setup). */
import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { connect, migrate } from '../lib/db.js';
import { BILLFLOW_MIGRATIONS } from '../lib/paths.js';
import { startStack as start, type Stack, type StackOptions } from './stack.js';

export { createTenant, eventually, http, invoicePdf, ADMIN_KEY, type Stack, type Tenant } from './stack.js';

export function startStack(opts: Partial<StackOptions> = {}): Promise<Stack> {
  return start({
    databaseUrl: inject('databaseUrl'),
    sandboxDatabaseUrl: inject('sandboxDatabaseUrl'),
    temporalAddress: inject('temporalAddress'),
    chromiumPath: inject('chromiumPath'),
    workflowBundlePath: inject('workflowBundlePath'),
    smtpPort: inject('smtpPort'),
    temporalUiUrl: inject('temporalUiUrl'),
    ...opts,
  });
}

/**
 * A billflow database of the test file's own on the run's PostgreSQL, migrated. For a stack whose
 * webhook delivery loop must not take other test files' deliveries (it takes any endpoint's).
 */
export async function privateDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const shared = inject('databaseUrl');
  const name = `billflow_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const admin = connect(shared, { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(shared);
  url.pathname = `/${name}`;
  const sql = connect(url.toString(), { max: 1 });
  await migrate(sql, BILLFLOW_MIGRATIONS);
  await sql.end({ timeout: 5 });
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end({ timeout: 5 });
    },
  };
}
