/**
 * The provider sandbox as its own process (`npm run sandbox`). Environment: SANDBOX_DATABASE_URL
 * (required), SANDBOX_PORT (4010), SANDBOX_HOST (127.0.0.1), SANDBOX_PUBLIC_URL (base of Pay Now
 * links; default http://127.0.0.1:<port>); the Stripe-compatible mode on STRIPE_SANDBOX_PORT (4011),
 * its hosted invoice pages under STRIPE_SANDBOX_PUBLIC_URL.
 */
import { once } from 'node:events';
import { connect, migrate } from '../lib/db.js';
import { publicUrls, sandboxDatabaseUrl, sandboxHost, sandboxPort, stripeSandboxPort } from '../lib/config.js';
import { SANDBOX_MIGRATIONS } from '../lib/paths.js';
import { createSandbox } from './app.js';

// Unprefixed: `npm start` and docker compose both name the process on each line.
const log = (msg: string) => process.stderr.write(`${msg}\n`);

const sql = connect(sandboxDatabaseUrl());
const applied = await migrate(sql, SANDBOX_MIGRATIONS);
if (applied.length) log(`applied migrations: ${applied.join(', ')}`);

const port = sandboxPort();
const host = sandboxHost();
const { sandbox: publicUrl, stripeSandbox: stripePublicUrl } = publicUrls();
const sandbox = createSandbox({ sql, publicUrl, stripePublicUrl, log });

async function serve(app: typeof sandbox.app, p: number) {
  const s = app.listen(p, host);
  await Promise.race([
    once(s, 'listening'),
    once(s, 'error').then(([e]) => {
      throw e;
    }),
  ]);
  return s;
}
const server = await serve(sandbox.app, port);
const stripePort = stripeSandboxPort();
const stripeServer = await serve(sandbox.stripeApp, stripePort);
process.stdout.write(`provider sandbox listening on http://${host}:${port}\n`);
process.stdout.write(`provider sandbox (Stripe-compatible) listening on http://${host}:${stripePort}\n`);
log(`Pay Now links start with ${publicUrl}/pay/, Stripe hosted invoice pages with ${stripePublicUrl}/i/`);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: shutting down`);
  const closed = [server, stripeServer].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
  server.closeIdleConnections();
  stripeServer.closeIdleConnections();
  await Promise.all(closed);
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
