/**
 * The chaos run's stack as real processes it owns: each can be killed (SIGKILL, as a crash) and
 * started again as a new process with the same settings. Every process logs to a file of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../lib/paths.js';
import type { Running, Service } from '../lib/supervisor.js';
import { startTemporalDevServer, waitForPort, type DevServer } from '../lib/temporal-dev.js';

export interface Managed {
  readonly name: string;
  /** How often it was killed and started again. */
  readonly restarts: number;
  kill(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
  pid(): number | undefined;
}

function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

async function terminate(proc: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const done = exited(proc);
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * A billflow process (`node --import tsx <entry>`). `ready` says when a new process may be used:
 * a port that answers, or a line it prints.
 */
export function nodeProcess(opts: {
  name: string;
  entry: string;
  args?: string[];
  env: Record<string, string>;
  logDir: string;
  ready: { port: number } | { line: RegExp };
  startTimeoutMs?: number;
}): Managed {
  let proc: ChildProcess | undefined;
  let restarts = 0;
  let starts = 0;
  const log: WriteStream = createWriteStream(path.join(opts.logDir, `${opts.name}.log`), { flags: 'a' });
  const timeout = opts.startTimeoutMs ?? 90_000;

  const start = async () => {
    starts += 1;
    log.write(`\n--- chaos: start #${starts} at ${new Date().toISOString()}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, opts.entry), ...(opts.args ?? [])], {
      cwd: ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = child;
    const early = exited(child).then(() => {
      throw new Error(`${opts.name} exited during start (code ${child.exitCode}, signal ${child.signalCode}); see ${opts.logDir}/${opts.name}.log`);
    });
    let seen = '';
    const lineSeen =
      'line' in opts.ready
        ? new Promise<void>((resolve) => {
            const re = (opts.ready as { line: RegExp }).line;
            child.stdout!.on('data', (b: Buffer) => {
              seen = (seen + b.toString()).slice(-4096);
              if (re.test(seen)) resolve();
            });
          })
        : waitForPort('127.0.0.1', opts.ready.port, timeout);
    child.stdout!.pipe(log, { end: false });
    child.stderr!.pipe(log, { end: false });
    let timer: NodeJS.Timeout | undefined;
    const tooSlow = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${opts.name} did not get ready within ${timeout} ms`)), timeout);
    });
    try {
      await Promise.race([lineSeen, early, tooSlow]);
    } finally {
      clearTimeout(timer);
      early.catch(() => {});
    }
  };

  return {
    name: opts.name,
    get restarts() {
      return restarts;
    },
    start,
    async kill() {
      if (!proc) return;
      const done = exited(proc);
      proc.kill('SIGKILL');
      await done;
      restarts += 1;
      log.write(`--- chaos: SIGKILL at ${new Date().toISOString()}\n`);
    },
    async stop() {
      await terminate(proc, 5_000);
      await new Promise<void>((resolve) => log.end(() => resolve()));
    },
    pid: () => proc?.pid,
  };
}

/** The Temporal CLI dev server on a SQLite file; killed, it comes back on the same file and port. */
export function temporalProcess(opts: { binary: string; port: number; dbFile: string; logDir: string }): Managed & { address: string } {
  let server: DevServer | undefined;
  let restarts = 0;
  const log = createWriteStream(path.join(opts.logDir, 'temporal.log'), { flags: 'a' });
  return {
    name: 'temporal',
    address: `127.0.0.1:${opts.port}`,
    get restarts() {
      return restarts;
    },
    async start() {
      log.write(`\n--- chaos: start at ${new Date().toISOString()}\n`);
      server = await startTemporalDevServer({ binary: opts.binary, port: opts.port, uiPort: null, dbFile: opts.dbFile, log: (l) => log.write(l) });
    },
    async kill() {
      if (!server) return;
      const done = exited(server.process);
      server.process.kill('SIGKILL');
      await done;
      restarts += 1;
      log.write(`--- chaos: SIGKILL at ${new Date().toISOString()}\n`);
    },
    async stop() {
      await server?.stop();
      await new Promise<void>((resolve) => log.end(() => resolve()));
    },
    pid: () => server?.process.pid,
  };
}

/** A Temporal cluster service (lib/temporal-cluster.ts: history, matching, ...) as a process the run can kill and start again. */
export function serviceProcess(service: Service): Managed {
  let running: Running | undefined;
  let restarts = 0;
  return {
    name: service.name,
    get restarts() {
      return restarts;
    },
    async start() {
      running = await service.start(new AbortController().signal);
    },
    async kill() {
      if (!running) return;
      const done = exited(running.process);
      running.process.kill('SIGKILL');
      await done;
      restarts += 1;
    },
    async stop() {
      await running?.stop();
    },
    pid: () => running?.process.pid,
  };
}
