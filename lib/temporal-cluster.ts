/**
 * A Temporal cluster on PostgreSQL, in the shape production runs it: the server built from
 * go.temporal.io/server (the version docker-compose.yml's `temporalio/auto-setup` image pins),
 * its schemas set up with Temporal's own sql tool, and one process per service (frontend,
 * history, matching, worker) plus the Web UI server, each a Supervisor service that can die and
 * be restarted on its own. The services find each other through the cluster_membership table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { TEMPORAL_DYNAMIC_CONFIG } from './paths.js';
import { ensureSearchAttributes } from './temporal.js';
import { stopProcess, untilReady, type Service, type Supervisor } from './supervisor.js';
import { waitForPort } from './temporal-dev.js';

export interface ClusterTools {
  server: string;
  sqlTool: string;
  /** schema/postgresql/v12 of the server's module. */
  schemaDir: string;
  ui: string;
}

/** The cluster's programs from the tools file `node scripts/setup.mjs --cluster` writes. */
export function clusterTools(found: { temporalServer?: Omit<ClusterTools, 'ui'>; temporalUi?: string }): ClusterTools {
  if (!found.temporalServer || !found.temporalUi) throw new Error('the Temporal server is not built yet: run `node scripts/setup.mjs --cluster` (npm run cluster does)');
  return { ...found.temporalServer, ui: found.temporalUi };
}

const CLUSTER_SERVICES = ['frontend', 'history', 'matching', 'worker'] as const;
type ClusterService = (typeof CLUSTER_SERVICES)[number];

/**
 * Every port of the cluster from the frontend's: Temporal's own defaults when that is 7233
 * (gRPC 7233/7234/7235/7239, membership 6933/6934/6935/6939, frontend HTTP 7243).
 */
function clusterPorts(frontend: number): Record<ClusterService, { grpc: number; membership: number }> & { http: number } {
  const offset = { frontend: 0, history: 1, matching: 2, worker: 6 };
  const ports = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, { grpc: frontend + offset[s], membership: frontend - 300 + offset[s] }]));
  return { ...(ports as Record<ClusterService, { grpc: number; membership: number }>), http: frontend + 10 };
}

/** The two databases, from a postgres:// URL naming the main one (visibility is `<name>_visibility`, as auto-setup names it). */
function temporalDatabases(url: string): { host: string; port: number; user: string; password: string; main: string; visibility: string; tls: boolean } {
  const u = new URL(url);
  const main = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'temporal';
  return {
    host: u.hostname,
    port: Number(u.port || 5432),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    main,
    visibility: `${main}_visibility`,
    tls: ['require', 'verify-ca', 'verify-full'].includes(u.searchParams.get('sslmode') ?? ''),
  };
}

/**
 * Creates both databases if missing and brings their schemas to the module's newest version with
 * Temporal's sql tool, as the auto-setup image does at every start (each step is idempotent).
 */
export function setupTemporalSchemas(tools: ClusterTools, url: string, log: (line: string) => void): void {
  const db = temporalDatabases(url);
  const base = ['--plugin', 'postgres12', '--endpoint', db.host, '--port', String(db.port), '--user', db.user, ...(db.tls ? ['--tls'] : [])];
  const tool = (database: string, args: string[], tolerate?: RegExp) => {
    // The password by environment, not argument: command lines are readable by every user of the machine.
    const r = spawnSync(tools.sqlTool, [...base, '--database', database, ...args], { encoding: 'utf8', env: { ...process.env, SQL_PASSWORD: db.password } });
    const out = `${r.stdout}${r.stderr}`;
    log(out);
    if (r.status !== 0 && !(tolerate && tolerate.test(out))) throw new Error(`temporal sql tool ${args[0]} on ${database} failed: ${out.trim().split('\n').slice(-3).join(' ')}`);
  };
  for (const [database, dir] of [
    [db.main, 'temporal'],
    [db.visibility, 'visibility'],
  ] as const) {
    // A user without CREATEDB works on databases made for it beforehand.
    tool(database, ['create-database'], /already exists|permission denied/);
    tool(database, ['setup-schema', '-v', '0.0']);
    tool(database, ['update-schema', '-d', path.join(tools.schemaDir, dir, 'versioned')]);
  }
}

/** Writes the server's config (one file for every service) and its dynamic config; returns the config folder. */
export function writeClusterConfig(opts: { dir: string; databaseUrl: string; frontendPort: number }): string {
  const db = temporalDatabases(opts.databaseUrl);
  const ports = clusterPorts(opts.frontendPort);
  const configDir = path.join(opts.dir, 'config');
  mkdirSync(configDir, { recursive: true });
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
      ...(db.tls ? { tls: { enabled: true } } : {}),
    },
  });
  const config = {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      // Fixed for the life of the database, as auto-setup's default.
      numHistoryShards: 4,
      datastores: { default: store(db.main, 20), visibility: store(db.visibility, 10) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: Object.fromEntries(
      CLUSTER_SERVICES.map((s) => [s, { rpc: { grpcPort: ports[s].grpc, membershipPort: ports[s].membership, bindOnLocalHost: true, ...(s === 'frontend' ? { httpPort: ports.http } : {}) } }]),
    ),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.frontend.grpc}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: TEMPORAL_DYNAMIC_CONFIG, pollInterval: '10s' },
  };
  // JSON is YAML: the server's loader reads it as is.
  // It holds the database password: readable by its owner only.
  writeFileSync(path.join(configDir, 'cluster.yaml'), `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  return configDir;
}

function processService(name: string, binary: string, args: string[], ready: () => Promise<unknown>, log: (line: string) => void): Service {
  return {
    name,
    start: async (signal) => {
      const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (b: Buffer) => log(b.toString()));
      child.stderr!.on('data', (b: Buffer) => log(b.toString()));
      const stop = () => stopProcess(child, 10_000);
      await untilReady(name, child, ready(), signal, stop);
      return { process: child, stop };
    },
  };
}

/** The four server services, in the order they are started: the worker service is a client of the frontend. */
export function clusterServices(opts: { tools: ClusterTools; configDir: string; frontendPort: number; log: (service: string, line: string) => void }): Service[] {
  const ports = clusterPorts(opts.frontendPort);
  const order: ClusterService[] = ['history', 'matching', 'frontend', 'worker'];
  return order.map((s) =>
    processService(
      `temporal-${s}`,
      opts.tools.server,
      ['--root', path.dirname(opts.configDir), '--config', path.basename(opts.configDir), '--env', 'cluster', '--allow-no-auth', 'start', '--service', s],
      // The worker service serves no gRPC of its own: it is up once it listens for membership.
      () => waitForPort('127.0.0.1', s === 'worker' ? ports[s].membership : ports[s].grpc, 120_000),
      (line) => opts.log(s, line),
    ),
  );
}

/** The Web UI server in front of the frontend, like the `temporalio/ui` image. */
function uiService(opts: { tools: ClusterTools; dir: string; frontendPort: number; uiPort: number; log: (line: string) => void }): Service {
  const configDir = path.join(opts.dir, 'ui-config');
  mkdirSync(configDir, { recursive: true });
  const origins = [`http://127.0.0.1:${opts.uiPort}`, `http://localhost:${opts.uiPort}`];
  writeFileSync(
    path.join(configDir, 'cluster.yaml'),
    `${JSON.stringify({ temporalGrpcAddress: `127.0.0.1:${opts.frontendPort}`, host: '127.0.0.1', port: opts.uiPort, enableUi: true, defaultNamespace: 'default', notifyOnNewVersion: false, cors: { allowOrigins: origins, cookieInsecure: true } }, null, 2)}\n`,
  );
  return processService('temporal-ui', opts.tools.ui, ['--root', opts.dir, '--config', 'ui-config', '--env', 'cluster', 'start'], () => waitForPort('127.0.0.1', opts.uiPort, 60_000), opts.log);
}

/**
 * Registers the namespace (24 h retention, as auto-setup does) and billflow's search attributes,
 * then waits until a workflow can be started and terminated on it: frontend, history and matching
 * all serve, and each knows the namespace.
 */
export async function prepareNamespace(address: string, namespace: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    let registered = false;
    for (;;) {
      try {
        if (!registered) {
          try {
            await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('24h') });
          } catch (e) {
            if ((e as { code?: number }).code !== 6 /* ALREADY_EXISTS */) throw e;
          }
          registered = true;
        }
        await ensureSearchAttributes(connection, namespace);
        const probe = await client.workflow.start('clusterReadyProbe', { taskQueue: 'billflow-cluster-probe', workflowId: `cluster-probe-${randomUUID()}` });
        await probe.terminate('cluster readiness probe');
        return;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`the Temporal cluster at ${address} did not serve namespace ${namespace} within ${timeoutMs} ms: ${String(e)}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    await connection.close();
  }
}

/**
 * The whole cluster under `supervisor`: schemas, the four services (supervised as
 * temporal-frontend, temporal-history, ...), the Web UI server unless `uiPort` is null, and the
 * namespace. `log` gets each program's output by name (temporal-<service>, temporal-ui, temporal-schema).
 */
export async function startTemporalCluster(opts: {
  tools: ClusterTools;
  databaseUrl: string;
  /** Config files go here. */
  dir: string;
  frontendPort: number;
  uiPort: number | null;
  namespace: string;
  supervisor: Supervisor;
  log: (name: string, line: string) => void;
}): Promise<void> {
  // A port another program holds would answer our readiness check while our service fails to bind:
  // the engine would then talk to that program. Refuse instead, naming the ports.
  const ports = clusterPorts(opts.frontendPort);
  const wanted = [...CLUSTER_SERVICES.flatMap((s) => [ports[s].grpc, ports[s].membership]), ports.http, ...(opts.uiPort === null ? [] : [opts.uiPort])];
  const busy = (await Promise.all(wanted.map(async (p) => ((await portFree(p)) ? null : p)))).filter((p) => p !== null);
  if (busy.length) throw new Error(`in use on 127.0.0.1, and the cluster needs them: ports ${busy.join(', ')} (set TEMPORAL_PORT and TEMPORAL_UI_PORT to others)`);
  setupTemporalSchemas(opts.tools, opts.databaseUrl, (line) => opts.log('temporal-schema', line));
  const configDir = writeClusterConfig({ dir: opts.dir, databaseUrl: opts.databaseUrl, frontendPort: opts.frontendPort });
  const services = clusterServices({ tools: opts.tools, configDir, frontendPort: opts.frontendPort, log: (s, line) => opts.log(`temporal-${s}`, line) });
  // One after the other: services starting at once race to write the cluster's metadata record, and the losers exit.
  for (const s of services) await opts.supervisor.add(s);
  if (opts.uiPort !== null) {
    await opts.supervisor.add(uiService({ tools: opts.tools, dir: opts.dir, frontendPort: opts.frontendPort, uiPort: opts.uiPort, log: (line) => opts.log('temporal-ui', line) }));
  }
  await prepareNamespace(`127.0.0.1:${opts.frontendPort}`, opts.namespace);
}

/** Whether nothing listens on `port` on loopback. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A frontend port whose whole cluster (clusterPorts) is free on loopback: for tests that run a cluster of their own. */
export async function freeFrontendPort(): Promise<number> {
  for (;;) {
    // Below 32,768 with room: the cluster_membership table keeps membership ports (frontend - 300) as a smallint.
    const p = 10_300 + Math.floor(Math.random() * 21_000);
    const ports = clusterPorts(p);
    const all = [...CLUSTER_SERVICES.flatMap((s) => [ports[s].grpc, ports[s].membership]), ports.http];
    if ((await Promise.all(all.map(portFree))).every(Boolean)) return p;
  }
}
