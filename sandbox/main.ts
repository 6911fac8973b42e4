/**
 * The provider sandbox as its own process (`npm run sandbox`). Environment: SANDBOX_DATABASE_URL
 * (required), SANDBOX_PORT (4010), SANDBOX_HOST (127.0.0.1), SANDBOX_PUBLIC_URL (base of Pay Now
 * links; default http://127.0.0.1:<port>).
 */
import { once } from 'node:events';
import { connect, migrate } from '../lib/db.js';
import { publicUrls, sandboxDatabaseUrl, sandboxHost, sandboxPort } from '../lib/config.js';
import { SANDBOX_MIGRATIONS } from '../lib/paths.js';
import { createSandbox } from './app.js';

// Unprefixed: `npm start` and docker compose both name the process on each line.
const log = (msg: string) => process.stderr.write(`${msg}\n`);

const sql = connect(sandboxDatabaseUrl());
const applied = await migrate(sql, SANDBOX_MIGRATIONS);
if (applied.length) log(`applied migrations: ${applied.join(', ')}`);

const port = sandboxPort();
const host = sandboxHost();
const publicUrl = publicUrls().sandbox;
const sandbox = createSandbox({ sql, publicUrl, log });
const server = sandbox.app.listen(port, host);
await Promise.race([
  once(server, 'listening'),
  once(server, 'error').then(([e]) => {
    throw e;
  }),
]);
process.stdout.write(`provider sandbox listening on http://${host}:${port}\n`);
log(`Pay Now links start with ${publicUrl}/pay/`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: shutting down`);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
  await sandbox.close();
  await sql.end({ timeout: 5 });
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    shutdown(signal).catch((e: unknown) => {
      log(`shutdown failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    });
  });
}
