/**
 * The whole engine on one machine: embedded PostgreSQL, the Temporal dev server (SQLite file, Web
 * UI), a mail catcher (maildev), the provider sandbox (Bill & Pay- and Stripe-compatible, a port each), the worker and the API, each a real process.
 * Each process but PostgreSQL is supervised: one that dies is restarted with backoff while the
 * rest stays up. Data stays in ./data between starts; the engine's pid is in data/billflow.pid and
 * its processes' in data/pids.json. Ctrl-C (or SIGINT/SIGTERM to that pid) stops everything and
 * leaves no process behind.
 *
 * With --cluster (`npm run cluster`), the production shape instead: Temporal as a cluster on
 * PostgreSQL (frontend, history, matching and worker services and the Web UI server, each its own
 * process), two workers, and two API processes behind a small front on API_PORT; data in data/cluster.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { apiPort, mailDevPorts, publicUrls, sandboxPort, smtpConfig, stripeSandboxPort, temporalConfig, workerMetrics } from '../lib/config.js';
import { connect, migrate } from '../lib/db.js';
import { startEmbeddedPg, type EmbeddedPg } from '../lib/embedded-pg.js';
import { createLogger } from '../lib/log.js';
import { newSecretKey } from '../lib/secrets.js';
import { BILLFLOW_MIGRATIONS, ROOT, SANDBOX_MIGRATIONS } from '../lib/paths.js';
import { cachedWorkflowBundle } from '../worker/bundle.js';
import { stopProcess, Supervisor, untilReady, type Service } from '../lib/supervisor.js';
import { connectClient } from '../lib/temporal.js';
import { clusterTools, startTemporalCluster } from '../lib/temporal-cluster.js';
import { startTemporalDevServer, waitForPort } from '../lib/temporal-dev.js';
import { readToolsFile } from './tools.mjs';

const env = process.env;
const cluster = process.argv.includes('--cluster');
const dataDir = path.resolve(env.BILLFLOW_DATA_DIR ?? path.join(ROOT, 'data', ...(cluster ? ['cluster'] : [])));
const logDir = path.join(dataDir, 'logs');
mkdirSync(logDir, { recursive: true });
const started = Date.now();
const say = (msg: string) => process.stdout.write(`[billflow] ${msg}\n`);
const engineLog = createLogger('engine', createWriteStream(path.join(logDir, 'engine.log'), { flags: 'a' }));
const pidFile = path.join(dataDir, 'billflow.pid');
const pidsFile = path.join(dataDir, 'pids.json');

/** A live engine's pid (pids are reused: a live process that is not an engine does not count). */
function liveEngine(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('engine.ts');
  } catch {
    return true; // no /proc to tell: alive is enough
  }
}

/** Claims the data folder for this engine, or exits at once naming the engine that has it. */
function claimDataDir(): void {
  for (;;) {
    try {
      writeFileSync(pidFile, `${process.pid}\n`, { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    if (liveEngine(pid)) {
      say(`billflow is already running on ${dataDir} (pid ${pid}); stop it with: kill -INT ${pid}`);
      process.exit(1);
    }
    rmSync(pidFile, { force: true }); // left by an engine that was killed
  }
}
claimDataDir();

/**
 * An engine that was killed (SIGKILL) could not stop its processes; they would hold the ports.
 * Its pids.json names them: stop those still running the same program (a pid may have been reused).
 */
function stopLeftovers(): void {
  let pids: Record<string, number>;
  try {
    pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as Record<string, number>;
  } catch {
    return;
  }
  for (const [name, pid] of Object.entries(pids)) {
    if (name === 'engine') continue;
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone, or no /proc to tell
    }
    if (!cmd.includes(name.startsWith('temporal') ? dataDir : ROOT)) continue;
    say(`stopping ${name} (pid ${pid}), left running by an engine that was killed`);
    process.kill(pid, 'SIGKILL');
  }
}
stopLeftovers();

/** The operator key: from the environment, else generated once and kept in the data folder. */
function operatorKey(): string {
  if (env.BILLFLOW_ADMIN_KEY) return env.BILLFLOW_ADMIN_KEY;
  const file = path.join(dataDir, 'admin-key');
  if (!existsSync(file)) writeFileSync(file, `bf_admin_${randomBytes(18).toString('base64url')}\n`, { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

/**
 * The key provider secrets are stored under, like the operator key: from the environment, else
 * generated once into the data folder. After `npm run rotate-secret-key`, the key it replaced is
 * in secret-key.previous and still opens values sealed under it.
 */
function secretKeys(): Record<string, string> {
  if (env.BILLFLOW_SECRET_KEY) {
    return { BILLFLOW_SECRET_KEY: env.BILLFLOW_SECRET_KEY, ...(env.BILLFLOW_SECRET_KEY_PREVIOUS ? { BILLFLOW_SECRET_KEY_PREVIOUS: env.BILLFLOW_SECRET_KEY_PREVIOUS } : {}) };
  }
  const file = path.join(dataDir, 'secret-key');
  if (!existsSync(file)) writeFileSync(file, `${newSecretKey()}\n`, { mode: 0o600 });
  const previous = path.join(dataDir, 'secret-key.previous');
  return {
    BILLFLOW_SECRET_KEY: readFileSync(file, 'utf8').trim(),
    ...(existsSync(previous) ? { BILLFLOW_SECRET_KEY_PREVIOUS: readFileSync(previous, 'utf8').trim() } : {}),
  };
}

const supervisor = new Supervisor({
  report: (line, fields) => {
    say(line);
    engineLog('restart', fields);
  },
  // Written whole and renamed, so a reader never sees half a file.
  pids: (pids) => {
    writeFileSync(`${pidsFile}.tmp`, `${JSON.stringify({ engine: process.pid, ...pids })}\n`);
    renameSync(`${pidsFile}.tmp`, pidsFile);
  },
});
let pg: EmbeddedPg | undefined;
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (stopping) return new Promise<never>(() => {});
  stopping = true;
  const since = Date.now();
  say('stopping...');
  // Reverse start order: API and worker first, the servers they use last.
  await supervisor.stop();
  await pg?.stop();
  rmSync(pidsFile, { force: true });
  rmSync(pidFile, { force: true });
  say(`stopped in ${((Date.now() - since) / 1000).toFixed(1)} s`);
  process.exit(code);
}
// SIGHUP too: a closed terminal must not leave the processes running without their supervisor.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));

/** A Node process of ours (tsx), logging to logs/<name>.log; ready once each of `ports` answers. */
function nodeService(name: string, entry: string[], childEnv: Record<string, string>, ports: number[]): Service {
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  return {
    name,
    start: async (signal) => {
      const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, entry[0]!), ...entry.slice(1)], {
        cwd: ROOT,
        env: { ...env, ...childEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      proc.stdout!.pipe(log, { end: false });
      proc.stderr!.on('data', (b: Buffer) => {
        log.write(b);
        process.stderr.write(`[${name}] ${b.toString()}`);
      });
      const stop = () => stopProcess(proc, 10_000);
      await untilReady(name, proc, Promise.all(ports.map((p) => waitForPort('127.0.0.1', p, 60_000))), signal, stop);
      return { process: proc, stop };
    },
  };
}

/**
 * TEMPORAL_ADDRESS names a Temporal of the operator's own: the engine starts none, says so, and
 * refuses to start when nothing answers there, rather than leaving the worker to die of it later.
 */
async function useOwnTemporal(address: string): Promise<void> {
  say(`TEMPORAL_ADDRESS is set: using the Temporal at ${address}; the embedded Temporal ${cluster ? 'cluster' : 'dev server'} is not started (unset TEMPORAL_ADDRESS for it)`);
  try {
    const { connection } = await connectClient(temporalConfig(env), 5_000);
    await connection.close();
  } catch (e) {
    throw new Error(
      `no Temporal answers at TEMPORAL_ADDRESS=${address} (${e instanceof Error ? e.message : String(e)}). ` +
        `Start that Temporal, or run \`unset TEMPORAL_ADDRESS\` and start again to use the embedded one.`,
    );
  }
}

try {
  const tools = readToolsFile() as { temporal: string; chromium: string };
  const temporalPort = Number(env.TEMPORAL_PORT ?? 7233);
  const uiPort = Number(env.TEMPORAL_UI_PORT ?? 8233);
  const pgPort = Number(env.EMBEDDED_PG_PORT ?? 5433);
  const urls = publicUrls();

  const external = env.DATABASE_URL;
  const ownTemporal = !env.TEMPORAL_ADDRESS;
  // First, before anything starts: a wrong address is the whole answer.
  if (env.TEMPORAL_ADDRESS) await useOwnTemporal(env.TEMPORAL_ADDRESS);
  // The cluster's own databases live in the embedded PostgreSQL too, unless TEMPORAL_DATABASE_URL names others.
  const temporalOnPg = cluster && ownTemporal && !env.TEMPORAL_DATABASE_URL;
  let temporalLog: ReturnType<typeof createWriteStream> | undefined;
  // Restarted on the same SQLite file and ports, so workflows and clients carry on where they were.
  const temporal: Service = {
    name: 'temporal',
    start: (signal) =>
      startTemporalDevServer({
        binary: tools.temporal,
        port: temporalPort,
        uiPort,
        dbFile: path.join(dataDir, 'temporal.db'),
        log: (l) => (temporalLog ??= createWriteStream(path.join(logDir, 'temporal.log'), { flags: 'a' })).write(l),
        signal,
      }),
  };
  // The workflow bundle is built (or found in the cache) while the servers start; every start of
  // the worker then loads it instead of running webpack.
  const bundled = cachedWorkflowBundle();
  // All settle before a failure is thrown, so a PostgreSQL that did start is stopped too.
  const [pgStarted, ...others] = await Promise.allSettled([
    external && !temporalOnPg ? undefined : startEmbeddedPg({ dataDir: path.join(dataDir, 'pg'), port: pgPort, databases: ['billflow', 'sandbox'] }),
    ownTemporal && !cluster ? supervisor.add(temporal) : undefined,
    bundled,
  ]);
  if (pgStarted.status === 'fulfilled') pg = pgStarted.value;
  for (const r of [pgStarted, ...others]) if (r.status === 'rejected') throw r.reason;
  if (cluster && ownTemporal) {
    const logs = new Map<string, (line: string) => void>();
    await startTemporalCluster({
      tools: clusterTools(readToolsFile()),
      databaseUrl: env.TEMPORAL_DATABASE_URL ?? pg!.url('temporal'),
      dir: path.join(dataDir, 'temporal'),
      frontendPort: temporalPort,
      uiPort,
      namespace: env.TEMPORAL_NAMESPACE ?? 'default',
      supervisor,
      // logs/temporal-frontend.log, temporal-history.log, ..., temporal-ui.log, temporal-schema.log
      log: (name, line) => {
        if (!logs.has(name)) {
          const stream = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
          logs.set(name, (l) => stream.write(l));
        }
        logs.get(name)!(line);
      },
    });
  }
  const databaseUrl = external ?? pg!.url('billflow');
  const sandboxDatabaseUrl = env.SANDBOX_DATABASE_URL ?? pg?.url('sandbox');
  if (!sandboxDatabaseUrl) throw new Error('SANDBOX_DATABASE_URL must be set when DATABASE_URL is');
  for (const [url, dir] of [
    [databaseUrl, BILLFLOW_MIGRATIONS],
    [sandboxDatabaseUrl, SANDBOX_MIGRATIONS],
  ] as const) {
    const sql = connect(url, { max: 1 });
    await migrate(sql, dir);
    await sql.end();
  }

  // The mail catcher in a process of its own (so it can be restarted), unless SMTP_HOST names a real SMTP server.
  const mail: Record<string, string> = {};
  const mailPorts = mailDevPorts();
  if (!env.SMTP_HOST) {
    await supervisor.add(nodeService('maildev', ['scripts/mail-catcher.ts', String(mailPorts.smtp), String(mailPorts.web)], {}, [mailPorts.smtp, mailPorts.web]));
    Object.assign(mail, { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(mailPorts.smtp) });
  }

  const adminKey = operatorKey();
  const common = {
    DATABASE_URL: databaseUrl,
    SANDBOX_DATABASE_URL: sandboxDatabaseUrl,
    TEMPORAL_ADDRESS: env.TEMPORAL_ADDRESS ?? `127.0.0.1:${temporalPort}`,
    CHROMIUM_PATH: env.CHROMIUM_PATH ?? tools.chromium,
    BILLFLOW_ADMIN_KEY: adminKey,
  };
  // The sandbox keeps its own secrets: it never gets billflow's key.
  const keys = secretKeys();
  // The worker prints billflow's Pay Now links (on the API's public URL) into PDFs and emails.
  const workerEnv = { ...common, ...mail, ...keys, API_PUBLIC_URL: urls.api };
  const ui = !ownTemporal ? (env.TEMPORAL_UI_URL ?? '(your Temporal cluster UI)') : `http://127.0.0.1:${uiPort}`;
  // The dashboard links invoices to their workflows in this UI.
  const uiEnv: Record<string, string> = ownTemporal ? { TEMPORAL_UI_URL: ui } : {};
  // Each worker serves its metrics on its own port (the next one for a second worker); ready once they answer.
  const metricsAt = workerMetrics();
  const worker = (name: string, n: number) => {
    const port = metricsAt ? metricsAt.port + n : 0;
    return nodeService(name, ['worker/main.ts'], { ...workerEnv, WORKER_METRICS_PORT: String(port) }, port ? [port] : []);
  };
  if (!cluster) {
    await Promise.all([
      supervisor.add(nodeService('sandbox', ['sandbox/main.ts'], common, [sandboxPort(), stripeSandboxPort()])),
      supervisor.add(worker('worker', 0)),
      supervisor.add(nodeService('api', ['api/main.ts'], { ...common, ...keys, ...uiEnv }, [apiPort()])),
    ]);
  } else {
    // Two of each on the same task queue; the APIs listen on the next two ports, the front on API_PORT.
    const apiPorts = [apiPort() + 1, apiPort() + 2];
    const apiEnv = (port: number) => ({ ...common, ...keys, ...uiEnv, API_PORT: String(port), API_PUBLIC_URL: urls.api });
    await Promise.all([
      supervisor.add(nodeService('sandbox', ['sandbox/main.ts'], common, [sandboxPort(), stripeSandboxPort()])),
      supervisor.add(worker('worker-1', 0)),
      supervisor.add(worker('worker-2', 1)),
      // One after the other: each registers missing search attributes and schedules at start.
      (async () => {
        for (const [i, port] of apiPorts.entries()) await supervisor.add(nodeService(`api-${i + 1}`, ['api/main.ts'], apiEnv(port), [port]));
      })(),
    ]);
    await supervisor.add(nodeService('front', ['scripts/front.ts', String(apiPort()), ...apiPorts.map(String)], {}, [apiPort()]));
  }

  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(
    [
      '',
      `  API              ${urls.api}${cluster ? `   (front over API processes on ports ${apiPort() + 1} and ${apiPort() + 2}; 2 workers)` : ''}`,
      `  API docs         ${urls.api}/docs   (OpenAPI: ${urls.api}/openapi.json)`,
      `  Dashboard        ${urls.api}/dashboard   (sign in with the operator key, or a company's key)`,
      `  Metrics          ${urls.api}/metrics (operator key)${metricsAt ? `; worker${cluster ? 's' : ''} http://${metricsAt.host}:${metricsAt.port}/metrics${cluster ? ` and :${metricsAt.port + 1}` : ''}` : ''}`,
      ...(cluster && ownTemporal ? [`  Temporal         127.0.0.1:${temporalPort}   (cluster on PostgreSQL: frontend, history, matching, worker; logs/temporal-*.log)`] : []),
      `  Temporal Web UI  ${ui}`,
      `  Provider sandbox ${urls.sandbox}   (Bill & Pay-compatible)`,
      `  Stripe sandbox   ${urls.stripeSandbox}   (Stripe-compatible: point a Stripe company's provider.url here; its key is a sandbox account's apiKey)`,
      env.SMTP_HOST ? `  Mail (SMTP)      ${smtpConfig().host}:${smtpConfig().port}` : `  Mail catcher     http://127.0.0.1:${mailPorts.web}`,
      `  Operator key     ${adminKey}`,
      `  Data and logs    ${dataDir}`,
      '',
      `  Try it: npm run demo      Stop: Ctrl-C (or kill -INT ${process.pid}, also in ${pidFile})`,
      '',
    ].join('\n'),
  );
} catch (e) {
  // Ctrl-C during the start fails what was still starting: that is no start failure.
  if (!stopping) say(`start failed: ${e instanceof Error ? e.message : String(e)}`);
  await stopAll(1);
}
