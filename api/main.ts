/** The API process. */
import { adminKey, apiHost, apiPort, databaseUrl, publicUrls, stripeApiUrl, temporalConfig, temporalUiUrl } from '../lib/config.js';
import { connect, migrate } from '../lib/db.js';
import { createLogger } from '../lib/log.js';
import { keyringFromEnv, sealStoredSecrets } from '../lib/secrets.js';
import { BILLFLOW_MIGRATIONS } from '../lib/paths.js';
import { connectClient, ensureSearchAttributes } from '../lib/temporal.js';
import { createApp } from './app.js';
import { ensureAllReconcileSchedules } from './schedules.js';

const log = createLogger('api');
const cfg = temporalConfig();
const sql = connect(databaseUrl());
const applied = await migrate(sql, BILLFLOW_MIGRATIONS);
if (applied.length) log('migrations applied', { applied });
const secrets = keyringFromEnv();
// Provider secrets stored in plain text by an earlier billflow are encrypted now (idempotent).
const sealed = await sealStoredSecrets(sql, secrets);
if (sealed) log('stored provider secrets encrypted', { count: sealed });
const { client: temporal, connection } = await connectClient(cfg);
try {
  const added = await ensureSearchAttributes(connection, cfg.namespace);
  if (added.length) log('search attributes registered', { added });
} catch (e) {
  log('could not register search attributes; create them on the namespace yourself', { error: String(e) });
}
await ensureAllReconcileSchedules(sql, temporal, cfg.taskQueue, log);
const app = createApp({ sql, temporal, taskQueue: cfg.taskQueue, adminKey: adminKey(), secrets, publicApiUrl: publicUrls().api, log, temporalUiUrl: temporalUiUrl(), stripeApiUrl: stripeApiUrl() });
const port = apiPort();
const server = app.listen(port, apiHost(), () => log('api listening', { url: publicUrls().api }));

async function shutdown(signal: string) {
  log('api stopping', { signal });
  server.close();
  server.closeAllConnections();
  await sql.end({ timeout: 5 });
  await connection.close();
  process.exit(0);
}
process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
