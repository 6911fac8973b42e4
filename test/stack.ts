/**
 * A whole billflow stack per test file (and per benchmark), on the run's shared PostgreSQL and Temporal dev server:
 * the real provider sandbox, a real worker (own task queue) and the real Express API, both over
 * HTTP on loopback. Tests drive it as the ERP and a payer would.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type RequestListener, type Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type LogEntry, type Worker, type WorkerOptions } from '@temporalio/worker';
import { createMailer } from '../activities/email/mailer.js';
import type { CircuitSettings } from '../activities/provider/circuit.js';
import { createApp } from '../api/app.js';
import { smtpConfig } from '../lib/config.js';
import { connect, type Sql } from '../lib/db.js';
import { silentLogger, type Logger } from '../lib/log.js';
import { keyring, newSecretKey, type Keyring } from '../lib/secrets.js';
import { createSandbox } from '../sandbox/app.js';
import type { StripeAnswer } from '../sandbox/stripe/app.js';
import { createWorker } from '../worker/create.js';
import { WebhookDispatcher, type DispatchOptions } from '../worker/webhooks.js';
import { answerMismatches } from './answers.js';

export const ADMIN_KEY = 'test-operator-key';

/** The URLs of the billflow APIs this process runs: `http` checks their answers against the description. */
const billflowApis = new Set<string>();

/** Listens first, then builds the handler, so the handler can know its own URL. */
function listen(build: (url: string) => RequestListener): Promise<{ server: Server; url: string }> {
  let handler: RequestListener = (_req, res) => res.writeHead(503).end();
  const server = createServer((req, res) => handler(req, res));
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      handler = build(url);
      resolve({ server, url });
    });
  });
}

/** The provider sandbox alone, in this process, on the run's sandbox database; `log` gets its log lines. */
export async function startSandbox(databaseUrl: string, log: (line: string) => void = () => undefined): Promise<{ url: string; stop(): Promise<void> }> {
  const sql = connect(databaseUrl, { max: 4 });
  let sandbox: ReturnType<typeof createSandbox> | undefined;
  const http = await listen((url) => {
    sandbox = createSandbox({ sql, publicUrl: url, log });
    return sandbox.app;
  });
  return {
    url: http.url,
    async stop() {
      http.server.closeAllConnections();
      await new Promise((resolve) => http.server.close(resolve));
      await sandbox?.close();
      await sql.end({ timeout: 5 });
    },
  };
}

export interface Stack {
  apiUrl: string;
  sandboxUrl: string;
  /** The sandbox's Stripe-compatible mode (API and hosted invoice pages). */
  stripeUrl: string;
  sql: Sql;
  sandboxSql: Sql;
  temporal: Client;
  taskQueue: string;
  /** The in-process worker (null when the test runs worker/main.ts as its own process). */
  worker: Worker | null;
  /** The keyring the API and worker store provider secrets under (a fresh BILLFLOW_SECRET_KEY per stack). */
  secrets: Keyring;
  stop(): Promise<void>;
}

export interface StackOptions {
  databaseUrl: string;
  sandboxDatabaseUrl: string;
  temporalAddress: string;
  chromiumPath: string;
  workflowBundlePath: string;
  /** Worker options (the benchmark raises the workflow cache). */
  workerOptions?: Partial<WorkerOptions>;
  /** SMTP port of the run's mail catcher on 127.0.0.1, for the worker's mailer. */
  smtpPort: number;
  /** Another Temporal (the time-skipping environment); by default the run's dev server. */
  temporal?: { client: Client; nativeConnection: NativeConnection };
  /** The API's logger (silent by default). */
  log?: Logger;
  /** The worker's circuit breaker per provider account (off by default, as the tests that inject provider faults were written without it). */
  circuit?: CircuitSettings;
  /** The Temporal Web UI the dashboard links to. */
  temporalUiUrl?: string | null;
  /** false: no worker in this process (the test starts worker/main.ts on the stack's task queue itself). */
  worker?: boolean;
  /** Runs the worker's webhook dispatcher too, with these settings (off by default: only tests of events to the ERP send them). */
  webhooks?: Partial<DispatchOptions>;
  /** Sees every answer of the sandbox's Stripe mode. */
  onStripeAnswer?: (answer: StripeAnswer) => void;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const taskQueue = `billflow-test-${randomUUID()}`;
  const sql = connect(opts.databaseUrl, { max: 4 });
  const sandboxSql = connect(opts.sandboxDatabaseUrl, { max: 4 });
  const secrets = keyring(newSecretKey());

  let sandbox: ReturnType<typeof createSandbox> | undefined;
  let stripeUrl = '';
  const stripeHttp = await listen((url) => {
    stripeUrl = url;
    return (req, res) => sandbox!.stripeApp(req, res);
  });
  const sandboxHttp = await listen((url) => {
    sandbox = createSandbox({ sql: sandboxSql, publicUrl: url, stripePublicUrl: stripeUrl, ...(opts.onStripeAnswer ? { onStripeAnswer: opts.onStripeAnswer } : {}) });
    return sandbox.app;
  });

  const owned = !opts.temporal;
  const temporal = opts.temporal?.client ?? new Client({ connection: await Connection.connect({ address: opts.temporalAddress }) });
  // The API listens first: the worker prints its URL into every Pay Now link.
  const apiHttp = await listen((publicApiUrl) =>
    createApp({
      sql,
      temporal,
      taskQueue,
      adminKey: ADMIN_KEY,
      secrets,
      publicApiUrl,
      log: opts.log ?? silentLogger,
      temporalUiUrl: opts.temporalUiUrl ?? null,
      // A Stripe company registered without a url reaches the sandbox's Stripe mode, not the internet.
      stripeApiUrl: stripeUrl,
    }),
  );
  const workerConnection = opts.temporal?.nativeConnection ?? (await NativeConnection.connect({ address: opts.temporalAddress }));
  const mailer = createMailer(smtpConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(opts.smtpPort) }));
  const { worker, renderer } =
    opts.worker === false
      ? { worker: null, renderer: null }
      : await createWorker({
          connection: workerConnection,
          namespace: 'default',
          taskQueue,
          sql,
          mailer,
          secrets,
          publicApiUrl: apiHttp.url,
          ...(opts.circuit ? { circuit: opts.circuit } : {}),
          chromiumPath: opts.chromiumPath,
          pdfConcurrency: 2,
          workflowBundlePath: opts.workflowBundlePath,
          ...(opts.workerOptions ? { options: opts.workerOptions } : {}),
        });
  const running = worker?.run();
  const webhooks = opts.webhooks ? new WebhookDispatcher(sql, secrets, silentLogger, opts.webhooks) : null;
  await webhooks?.start();

  billflowApis.add(apiHttp.url);
  return {
    apiUrl: apiHttp.url,
    sandboxUrl: sandboxHttp.url,
    stripeUrl,
    sql,
    sandboxSql,
    temporal,
    taskQueue,
    worker,
    secrets,
    async stop() {
      await webhooks?.stop();
      worker?.shutdown();
      await running;
      await renderer?.close();
      mailer.close();
      await sandbox?.close();
      billflowApis.delete(apiHttp.url);
      apiHttp.server.closeAllConnections();
      sandboxHttp.server.closeAllConnections();
      stripeHttp.server.closeAllConnections();
      await new Promise((r) => apiHttp.server.close(r));
      await new Promise((r) => sandboxHttp.server.close(r));
      await new Promise((r) => stripeHttp.server.close(r));
      if (owned) {
        await temporal.connection.close();
        await workerConnection.close();
      }
      await sql.end({ timeout: 5 });
      await sandboxSql.end({ timeout: 5 });
    },
  };
}

export interface HttpResult<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

/**
 * A JSON request; `key` is the Authorization bearer. An answer of a billflow API started here that
 * the description does not allow (status, media type or body schema) throws, naming the operation.
 */
export async function http<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  opts: { key?: string; body?: unknown; headers?: Record<string, string>; raw?: string } = {},
): Promise<HttpResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) headers.authorization = `Bearer ${opts.key}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const parsed: unknown = type.includes('json') && text ? JSON.parse(text) : text;
  if (billflowApis.has(base)) {
    const mismatches = answerMismatches(method, path, res.status, type, parsed);
    if (mismatches.length > 0) throw new Error(`answer off the description:\n${mismatches.join('\n')}\nbody: ${text.slice(0, 2_000)}`);
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** An invoice's PDF as the ERP gets it (GET /v1/invoices/{number}/pdf), and its sha256 (the ETag). */
export async function invoicePdf(stack: Pick<Stack, 'apiUrl'>, key: string, number: string): Promise<{ bytes: Buffer; sha256: string }> {
  const res = await fetch(`${stack.apiUrl}/v1/invoices/${number}/pdf`, { headers: { authorization: `Bearer ${key}` } });
  if (res.status !== 200) throw new Error(`PDF of ${number}: ${res.status} ${await res.text()}`);
  return { bytes: Buffer.from(await res.arrayBuffer()), sha256: (res.headers.get('etag') ?? '').replaceAll('"', '') };
}

export interface Tenant {
  companyId: string;
  apiKey: string;
  account: { id: string; apiKey: string; webhookSecret: string };
}

/** A fresh company with its own sandbox account whose webhooks point at this stack's API. */
export async function createTenant(
  stack: Stack,
  opts: {
    providerEnabled?: boolean;
    paymentImportSeconds?: number;
    convenienceFee?: { fixed?: number; percentBps?: number };
    organisationId?: string;
    reminderDays?: number[];
    currency?: string;
  } = {},
): Promise<Tenant> {
  const companyId = `co-${randomUUID().slice(0, 8)}`;
  const account = await http<{ id: string; apiKey: string; webhookSecret: string }>(stack.sandboxUrl, 'POST', '/v1/accounts', {
    body: {
      name: `Company ${companyId}`,
      webhookUrl: `${stack.apiUrl}/webhooks/provider/${companyId}`,
      ...(opts.convenienceFee ? { convenienceFee: opts.convenienceFee } : {}),
    },
  });
  if (account.status !== 201) throw new Error(`sandbox account: ${account.status} ${JSON.stringify(account.body)}`);
  const company = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/companies', {
    key: ADMIN_KEY,
    body: {
      id: companyId,
      name: `Company ${companyId}`,
      ...(opts.organisationId ? { organisationId: opts.organisationId } : {}),
      ...(opts.reminderDays ? { reminderDays: opts.reminderDays } : {}),
      ...(opts.currency ? { currency: opts.currency } : {}),
      paymentImportSeconds: opts.paymentImportSeconds ?? 3600,
      provider: {
        enabled: opts.providerEnabled ?? true,
        url: stack.sandboxUrl,
        accountId: account.body.id,
        apiKey: account.body.apiKey,
        webhookSecret: account.body.webhookSecret,
      },
    },
  });
  if (company.status !== 201) throw new Error(`company: ${company.status} ${JSON.stringify(company.body)}`);
  return { companyId, apiKey: company.body.apiKey, account: account.body };
}

/** Polls until `check` returns a value (not undefined), or fails with the last value seen. */
export async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const workerLogSinks = new Set<(entry: LogEntry) => void>();

/** Hands every worker log entry of this process (at INFO and above, as worker/main.ts logs) to `sink` until the returned function is called. */
export function onWorkerLog(sink: (entry: LogEntry) => void): () => void {
  workerLogSinks.add(sink);
  return () => workerLogSinks.delete(sink);
}

// The SDK logs every worker state change at INFO; tests print only warnings, and hand the rest to whoever listens.
const printed = new DefaultLogger('WARN');
Runtime.install({
  logger: new DefaultLogger('INFO', (entry) => {
    for (const sink of workerLogSinks) sink(entry);
    if (entry.level === 'WARN' || entry.level === 'ERROR') printed.log(entry.level, entry.message, entry.meta);
  }),
});
