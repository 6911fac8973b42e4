/**
 * A local mail catcher from the `maildev` package (2.x): an SMTP server that keeps every message,
 * a web page to read them and a REST API (`GET /email`, `GET /email/:id/attachment/:file`) for
 * tests. Loopback only, no outgoing relay, silent.
 *
 * maildev keeps its state in module singletons, so one process runs at most one mail catcher.
 * Its programmatic entry point also installs SIGINT/SIGTERM handlers that exit the process, and
 * throws from its SMTP error handler; both are undone here so the caller keeps control.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export interface MailDev {
  smtpPort: number;
  /** The web page; the REST API is under the same address. */
  webUrl: string;
  stop(): Promise<void>;
}

/** The parts of maildev's (untyped, CommonJS) modules used here. */
interface MailServerModule {
  smtp: {
    listen(port: number, host: string, cb: () => void): unknown;
    close(cb: () => void): void;
    on(event: 'error', fn: (e: NodeJS.ErrnoException) => void): void;
    removeListener(event: 'error', fn: unknown): void;
    options: { closeTimeout?: number };
  };
  store: unknown[];
  onSmtpError: unknown;
  close(cb: () => void): void;
  removeListener(event: string, fn: unknown): void;
}
interface WebModule {
  server: Server | null;
  close(cb: () => void): void;
}
type MailDevFactory = new (config: Record<string, unknown>) => MailServerModule;

const require = createRequire(import.meta.url);
const HOST = '127.0.0.1';
let running = false;

function listening(server: Server): Promise<void> {
  if (server.listening) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.removeListener('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.removeListener('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
}

export async function startMailDev(opts: { smtpPort: number; webPort: number }): Promise<MailDev> {
  if (running) throw new Error('maildev is already running in this process (it keeps its state in module singletons)');
  running = true;
  const mailDir = mkdtempSync(path.join(os.tmpdir(), 'billflow-maildev-'));
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));

  let mailserver: MailServerModule | undefined;
  let web: WebModule | undefined;
  let startError: ((e: Error) => void) | undefined;
  const cleanup = async () => {
    if (web?.server) {
      const w = web;
      await new Promise<void>((r) => w.close(() => r()));
    }
    if (mailserver) {
      const m = mailserver;
      // smtp-server waits up to 30 s for open sessions; a mail catcher need not.
      m.smtp.options.closeTimeout = 1000;
      await new Promise<void>((r) => m.close(() => r()));
      m.store.length = 0;
    }
    rmSync(mailDir, { recursive: true, force: true });
    running = false;
  };

  try {
    const MailDevCtor = require('maildev') as MailDevFactory;
    web = require('maildev/lib/web') as WebModule;
    mailserver = new MailDevCtor({
      smtp: opts.smtpPort,
      web: opts.webPort,
      ip: HOST,
      webIp: HOST,
      mailDirectory: mailDir,
      silent: true,
    });
    // maildev's own shutdown handlers call process.exit(); the caller stops it instead.
    for (const s of signals) for (const fn of process.listeners(s)) if (!before.get(s)!.has(fn)) process.removeListener(s, fn);
    // We close the web server ourselves, once.
    mailserver.removeListener('close', web.close);
    // maildev throws from its SMTP error handler (an uncaught exception); report instead.
    mailserver.smtp.removeListener('error', mailserver.onSmtpError);
    mailserver.smtp.on('error', (e) => {
      if (startError) startError(e);
      else if (e.code !== 'ECONNRESET') process.stderr.write(`[maildev] ${e.message}\n`);
    });
    const m = mailserver;
    const smtpListening = new Promise<void>((resolve, reject) => {
      startError = reject;
      m.smtp.listen(opts.smtpPort, HOST, () => resolve());
    });
    // Both settle before any cleanup: closing a server whose listen is still under way would leak it.
    const results = await Promise.allSettled([smtpListening, listening(web.server!)]);
    startError = undefined;
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  } catch (e) {
    startError = undefined;
    await cleanup().catch(() => {});
    throw new Error(`maildev did not start (SMTP ${opts.smtpPort}, web ${opts.webPort}): ${e instanceof Error ? e.message : String(e)}`);
  }

  let stopped: Promise<void> | undefined;
  return {
    smtpPort: opts.smtpPort,
    webUrl: `http://${HOST}:${opts.webPort}`,
    stop: () => (stopped ??= cleanup()),
  };
}
