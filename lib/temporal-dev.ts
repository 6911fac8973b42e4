/** Starts the official Temporal CLI dev server as a child process and waits until it answers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTE_FLAGS } from '../workflows/contract.js';
import { TEMPORAL_DYNAMIC_CONFIG } from './paths.js';
import { stopProcess, untilReady } from './supervisor.js';

export interface DevServer {
  address: string;
  uiUrl: string | null;
  process: ChildProcess;
  stop(): Promise<void>;
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing answered on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** temporal-dynamicconfig.yaml as the dev server takes it: one `--dynamic-config-value KEY=JSON` per setting (each has one unconstrained value). */
function dynamicConfigFlags(file = TEMPORAL_DYNAMIC_CONFIG): string[] {
  const settings = parse(readFileSync(file, 'utf8')) as Record<string, { value: unknown; constraints?: unknown }[]>;
  return Object.entries(settings).flatMap(([key, values]) => {
    if (values.length !== 1 || values[0]!.constraints) throw new Error(`${file}: ${key} must have one value without constraints for the dev server`);
    return ['--dynamic-config-value', `${key}=${JSON.stringify(values[0]!.value)}`];
  });
}

export async function startTemporalDevServer(opts: {
  binary: string;
  port: number;
  /** null: no Web UI. */
  uiPort: number | null;
  /** SQLite file; omitted means in memory. */
  dbFile?: string;
  log?: (line: string) => void;
  /** Aborts a start under way (the server is stopped). */
  signal?: AbortSignal;
}): Promise<DevServer> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'error'];
  args.push(...SEARCH_ATTRIBUTE_FLAGS.flatMap((sa) => ['--search-attribute', sa]), ...dynamicConfigFlags());
  if (opts.uiPort === null) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort));
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  const child = spawn(opts.binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = opts.log ?? (() => {});
  child.stdout?.on('data', (b: Buffer) => log(b.toString()));
  child.stderr?.on('data', (b: Buffer) => log(b.toString()));
  // (Ctrl-C reaches the whole process group, so the server may have exited by itself already.)
  const stop = () => stopProcess(child, 5_000);
  // A start that fails (or is aborted) leaves no server behind.
  await untilReady('temporal server', child, waitForPort('127.0.0.1', opts.port, 60_000), opts.signal, stop);
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.uiPort === null ? null : `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    stop,
  };
}

/** Finds a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
