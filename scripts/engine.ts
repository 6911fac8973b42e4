/**
 * The whole engine on one machine: embedded PostgreSQL, the Temporal dev server (SQLite file, Web
 * UI), a mail catcher (maildev), the provider sandbox, the worker and the API, each a real process.
 * Data stays in ./data between starts; Ctrl-C stops everything and leaves no process behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { apiPort, mailDevPorts, publicUrls, sandboxPort, smtpConfig } from '../lib/config.js';
import { connect, migrate } from '../lib/db.js';
import { startEmbeddedPg, type EmbeddedPg } from '../lib/embedded-pg.js';
import { startMailDev, type MailDev } from '../lib/maildev.js';
import { BILLFLOW_MIGRATIONS, ROOT, SANDBOX_MIGRATIONS } from '../lib/paths.js';
import { startTemporalDevServer, waitForPort, type DevServer } from '../lib/temporal-dev.js';
import { readToolsFile } from './tools.mjs';

const env = process.env;
const dataDir = path.resolve(env.BILLFLOW_DATA_DIR ?? path.join(ROOT, 'data'));
const logDir = path.join(dataDir, 'logs');
mkdirSync(logDir, { recursive: true });
const started = Date.now();
const say = (msg: string) => process.stdout.write(`[billflow] ${msg}\n`);

/** The operator key: from the environment, else generated once and kept in the data folder. */
function operatorKey(): string {
  if (env.BILLFLOW_ADMIN_KEY) return env.BILLFLOW_ADMIN_KEY;
  const file = path.join(dataDir, 'admin-key');
  if (!existsSync(file)) writeFileSync(file, `bf_admin_${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

const children: { name: string; proc: ChildProcess }[] = [];
let pg: EmbeddedPg | undefined;
let temporal: DevServer | undefined;
let mailDev: MailDev | undefined;
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (stopping) return new Promise<never>(() => {});
  stopping = true;
  const since = Date.now();
  say('stopping...');
  // Reverse start order: API and worker first, the servers they use last.
  for (const { proc } of [...children].reverse()) {
    if (proc.exitCode !== null || proc.signalCode !== null) continue;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  await mailDev?.stop();
  await temporal?.stop();
  await pg?.stop();
  say(`stopped in ${((Date.now() - since) / 1000).toFixed(1)} s`);
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function startChild(name: string, entry: string, childEnv: Record<string, string>): ChildProcess {
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], {
    cwd: ROOT,
    env: { ...env, ...childEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.pipe(log);
  proc.stderr!.on('data', (b: Buffer) => {
    log.write(b);
    process.stderr.write(`[${name}] ${b.toString()}`);
  });
  proc.on('exit', (code, signal) => {
    if (stopping) return;
    say(`${name} exited unexpectedly (code ${code}, signal ${signal}); see ${path.join(logDir, `${name}.log`)}`);
    void stopAll(1);
  });
  children.push({ name, proc });
  return proc;
}

try {
  const tools = readToolsFile() as { temporal: string; chromium: string };
  const temporalPort = Number(env.TEMPORAL_PORT ?? 7233);
  const uiPort = Number(env.TEMPORAL_UI_PORT ?? 8233);
  const pgPort = Number(env.EMBEDDED_PG_PORT ?? 5433);
  const urls = publicUrls();

  const external = env.DATABASE_URL;
  const temporalLog = createWriteStream(path.join(logDir, 'temporal.log'), { flags: 'a' });
  const [pgStarted, devStarted] = await Promise.all([
    external ? undefined : startEmbeddedPg({ dataDir: path.join(dataDir, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }),
    env.TEMPORAL_ADDRESS
      ? undefined
      : startTemporalDevServer({
          binary: tools.temporal,
          port: temporalPort,
          uiPort,
          dbFile: path.join(dataDir, 'temporal.db'),
          log: (l) => temporalLog.write(l),
        }),
  ]);
  pg = pgStarted;
  temporal = devStarted;
  const databaseUrl = external ?? pg!.url('billflow');
  const sandboxDatabaseUrl = env.SANDBOX_DATABASE_URL ?? pg?.url('sandbox');
  if (!sandboxDatabaseUrl) throw new Error('SANDBOX_DATABASE_URL must be set when DATABASE_URL is');
  for (const [url, dir] of [[databaseUrl, BILLFLOW_MIGRATIONS], [sandboxDatabaseUrl, SANDBOX_MIGRATIONS]] as const) {
    const sql = connect(url, { max: 1 });
    await migrate(sql, dir);
    await sql.end();
  }

  // The mail catcher, unless SMTP_HOST names a real SMTP server.
  const mail: Record<string, string> = {};
  if (!env.SMTP_HOST) {
    const ports = mailDevPorts();
    mailDev = await startMailDev({ smtpPort: ports.smtp, webPort: ports.web });
    Object.assign(mail, { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(mailDev.smtpPort) });
  }

  const adminKey = operatorKey();
  const common = {
    DATABASE_URL: databaseUrl,
    SANDBOX_DATABASE_URL: sandboxDatabaseUrl,
    TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS ?? temporal!.address,
    CHROMIUM_PATH: env.CHROMIUM_PATH ?? tools.chromium,
    BILLFLOW_ADMIN_KEY: adminKey,
  };
  startChild('sandbox', 'sandbox/main.ts', common);
  startChild('worker', 'worker/main.ts', { ...common, ...mail });
  startChild('api', 'api/main.ts', common);
  await Promise.all([waitForPort('127.0.0.1', apiPort(), 60_000), waitForPort('127.0.0.1', sandboxPort(), 60_000)]);

  const ui = temporal?.uiUrl ?? env.TEMPORAL_UI_URL ?? '(your Temporal cluster UI)';
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(
    [
      '',
      `  API              ${urls.api}`,
      `  API docs         ${urls.api}/docs   (OpenAPI: ${urls.api}/openapi.json)`,
      `  Temporal Web UI  ${ui}`,
      `  Provider sandbox ${urls.sandbox}`,
      mailDev ? `  Mail catcher     ${mailDev.webUrl}` : `  Mail (SMTP)      ${smtpConfig().host}:${smtpConfig().port}`,
      `  Operator key     ${adminKey}`,
      `  Data and logs    ${dataDir}`,
      '',
      '  Try it: npm run demo      Stop: Ctrl-C',
      '',
    ].join('\n'),
  );
} catch (e) {
  say(`start failed: ${e instanceof Error ? e.message : String(e)}`);
  await stopAll(1);
}
