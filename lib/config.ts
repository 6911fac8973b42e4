/**
 * Every setting billflow reads, from the environment, in one place. The README's configuration
 * table lists the same variables; `test/compose.test.ts` checks docker-compose against this list.
 */
type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

export interface TemporalConfig {
  address: string;
  namespace: string;
  taskQueue: string;
  /** Temporal Cloud API key; enables TLS. */
  apiKey?: string;
  tls?: { certPath: string; keyPath: string; caPath?: string; serverNameOverride?: string };
}

export function temporalConfig(env: Env = process.env): TemporalConfig {
  const cfg: TemporalConfig = {
    address: env.TEMPORAL_ADDRESS ?? `127.0.0.1:${int(env, 'TEMPORAL_PORT', 7233)}`,
    namespace: env.TEMPORAL_NAMESPACE ?? 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE ?? 'billflow-invoices',
  };
  if (env.TEMPORAL_API_KEY) cfg.apiKey = env.TEMPORAL_API_KEY;
  if (env.TEMPORAL_TLS_CERT && env.TEMPORAL_TLS_KEY) {
    cfg.tls = { certPath: env.TEMPORAL_TLS_CERT, keyPath: env.TEMPORAL_TLS_KEY };
    if (env.TEMPORAL_TLS_CA) cfg.tls.caPath = env.TEMPORAL_TLS_CA;
    if (env.TEMPORAL_TLS_SERVER_NAME) cfg.tls.serverNameOverride = env.TEMPORAL_TLS_SERVER_NAME;
  }
  return cfg;
}

export function databaseUrl(env: Env = process.env): string {
  const url = env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set (npm start sets it for the embedded PostgreSQL)');
  return url;
}

export function sandboxDatabaseUrl(env: Env = process.env): string {
  const url = env.SANDBOX_DATABASE_URL;
  if (!url) throw new Error('SANDBOX_DATABASE_URL is not set (npm start sets it for the embedded PostgreSQL)');
  return url;
}

export function apiPort(env: Env = process.env): number {
  return int(env, 'API_PORT', 3000);
}

/** Bind addresses: loopback unless told otherwise (0.0.0.0 in containers). */
export function apiHost(env: Env = process.env): string {
  return env.API_HOST ?? '127.0.0.1';
}

export function sandboxHost(env: Env = process.env): string {
  return env.SANDBOX_HOST ?? '127.0.0.1';
}

export function sandboxPort(env: Env = process.env): number {
  return int(env, 'SANDBOX_PORT', 4010);
}

/** Stripe's API: where a Stripe company registered without a url is reached. */
export const STRIPE_API_URL = 'https://api.stripe.com';

/** STRIPE_API_URL, for a Stripe-compatible API other than Stripe's own (the sandbox's Stripe mode). */
export function stripeApiUrl(env: Env = process.env): string {
  return env.STRIPE_API_URL || STRIPE_API_URL;
}

/** The port of the sandbox's Stripe-compatible mode. */
export function stripeSandboxPort(env: Env = process.env): number {
  return int(env, 'STRIPE_SANDBOX_PORT', 4011);
}

/** Where the provider can reach billflow's API (webhooks), where payers reach its Pay Now links, and where people reach the sandbox (and its Stripe mode). */
export function publicUrls(env: Env = process.env): { api: string; sandbox: string; stripeSandbox: string } {
  return {
    api: env.API_PUBLIC_URL ?? `http://127.0.0.1:${apiPort(env)}`,
    sandbox: env.SANDBOX_PUBLIC_URL ?? `http://127.0.0.1:${sandboxPort(env)}`,
    stripeSandbox: env.STRIPE_SANDBOX_PUBLIC_URL ?? `http://127.0.0.1:${stripeSandboxPort(env)}`,
  };
}

export function chromiumPath(env: Env = process.env): string {
  return env.CHROMIUM_PATH ?? '/usr/bin/chromium';
}

export function pdfConcurrency(env: Env = process.env): number {
  return Math.max(1, int(env, 'PDF_CONCURRENCY', 2));
}

export interface SmtpConfig {
  host: string;
  port: number;
  /** Implicit TLS (port 465 style); otherwise plain SMTP, upgraded with STARTTLS when offered. */
  secure: boolean;
  /** Plain SMTP without STARTTLS: only for a mail catcher on loopback. */
  ignoreTLS: boolean;
  auth?: { user: string; pass: string };
  from: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The SMTP server invoices are emailed through (npm start: its own mail catcher). */
export function smtpConfig(env: Env = process.env): SmtpConfig {
  const host = env.SMTP_HOST || '127.0.0.1';
  const secure = env.SMTP_SECURE === 'true';
  const cfg: SmtpConfig = {
    host,
    port: int(env, 'SMTP_PORT', 1025),
    secure,
    ignoreTLS: !secure && isLoopback(host),
    from: env.MAIL_FROM || 'billflow <billing@billflow.local>',
  };
  if (env.SMTP_USER) cfg.auth = { user: env.SMTP_USER, pass: env.SMTP_PASS ?? '' };
  return cfg;
}

/** Ports of the mail catcher npm start runs. */
export function mailDevPorts(env: Env = process.env): { smtp: number; web: number } {
  return { smtp: int(env, 'MAILDEV_SMTP_PORT', 1025), web: int(env, 'MAILDEV_WEB_PORT', 1080) };
}

/** How the worker delivers events to the ERP's webhook endpoints (worker/webhooks.ts holds the rest of the schedule). */
export function webhookDelivery(env: Env = process.env): { timeoutMs: number; retryForMs: number; disableAfterMs: number; retentionMs: number } {
  return {
    timeoutMs: Math.max(1, int(env, 'WEBHOOK_TIMEOUT_SECONDS', 15)) * 1000,
    retryForMs: int(env, 'WEBHOOK_RETRY_FOR_SECONDS', 259_200) * 1000,
    disableAfterMs: int(env, 'WEBHOOK_DISABLE_AFTER_SECONDS', 432_000) * 1000,
    retentionMs: int(env, 'WEBHOOK_RETENTION_SECONDS', 2_592_000) * 1000,
  };
}

/** The circuit breaker per provider account (activities/provider/circuit.ts); 0 failures turns it off. */
export function providerCircuit(env: Env = process.env): { failures: number; windowMs: number; cooldownMs: number } {
  return {
    failures: int(env, 'PROVIDER_CIRCUIT_FAILURES', 5),
    windowMs: Math.max(1, int(env, 'PROVIDER_CIRCUIT_WINDOW_SECONDS', 30)) * 1000,
    cooldownMs: Math.max(1, int(env, 'PROVIDER_CIRCUIT_COOLDOWN_SECONDS', 15)) * 1000,
  };
}

/** The Temporal Web UI (the dashboard links to it); npm start sets it for its own Temporal. */
export function temporalUiUrl(env: Env = process.env): string | null {
  return env.TEMPORAL_UI_URL || null;
}

/** Where the worker serves its metrics (the Temporal SDK's and billflow's); port 0 turns them off. */
export function workerMetrics(env: Env = process.env): { host: string; port: number } | null {
  const port = int(env, 'WORKER_METRICS_PORT', 9464);
  return port === 0 ? null : { host: env.WORKER_METRICS_HOST ?? '127.0.0.1', port };
}

export function adminKey(env: Env = process.env): string {
  const key = env.BILLFLOW_ADMIN_KEY;
  if (!key) throw new Error('BILLFLOW_ADMIN_KEY is not set (npm start generates one)');
  return key;
}

export type Role = 'api' | 'worker' | 'sandbox' | 'start';

export interface EnvVar {
  name: string;
  roles: readonly Role[];
  /** Must be set for the role when it runs on its own (npm start sets these itself). */
  required?: boolean;
  default: string;
  description: string;
}

/**
 * Every environment variable billflow reads. The README's table and docker-compose.yml are checked
 * against this list by test/compose.test.ts, and that test also checks the code reads each one.
 */
export const ENVIRONMENT: readonly EnvVar[] = [
  { name: 'DATABASE_URL', roles: ['api', 'worker', 'start'], required: true, default: 'embedded PostgreSQL', description: "billflow's PostgreSQL" },
  { name: 'SANDBOX_DATABASE_URL', roles: ['sandbox', 'start'], required: true, default: 'embedded PostgreSQL, database `sandbox`', description: "the provider sandbox's own PostgreSQL database" },
  {
    name: 'TEMPORAL_ADDRESS',
    roles: ['api', 'worker', 'start'],
    default: '127.0.0.1:7233 (npm start: its own dev server)',
    description: 'Temporal frontend host:port (Temporal Cloud: <ns>.<acct>.tmprl.cloud:7233)',
  },
  { name: 'TEMPORAL_PORT', roles: ['api', 'worker', 'start'], default: '7233', description: 'port of the dev server npm start runs (npm run cluster: its frontend), when TEMPORAL_ADDRESS is unset' },
  { name: 'TEMPORAL_UI_PORT', roles: ['start'], default: '8233', description: "the dev server's Web UI port (npm run cluster: its UI server's)" },
  {
    name: 'TEMPORAL_DATABASE_URL',
    roles: ['start'],
    default: 'embedded PostgreSQL, database `temporal`',
    description: "npm run cluster: the Temporal cluster's PostgreSQL (postgres://user:password@host:port/temporal; visibility in `<database>_visibility`)",
  },
  {
    name: 'TEMPORAL_UI_URL',
    roles: ['api', 'start'],
    default: "none (npm start: its own Temporal's UI)",
    description: 'Temporal Web UI address: the dashboard links each invoice to its workflow there; npm start prints it when TEMPORAL_ADDRESS points at your own cluster',
  },
  { name: 'TEMPORAL_NAMESPACE', roles: ['api', 'worker'], default: 'default', description: 'Temporal namespace' },
  { name: 'TEMPORAL_TASK_QUEUE', roles: ['api', 'worker'], default: 'billflow-invoices', description: 'task queue the worker polls and the API starts workflows on' },
  { name: 'TEMPORAL_API_KEY', roles: ['api', 'worker'], default: 'none', description: 'Temporal Cloud API key (turns on TLS)' },
  { name: 'TEMPORAL_TLS_CERT', roles: ['api', 'worker'], default: 'none', description: 'mTLS client certificate file' },
  { name: 'TEMPORAL_TLS_KEY', roles: ['api', 'worker'], default: 'none', description: 'mTLS client key file' },
  { name: 'TEMPORAL_TLS_CA', roles: ['api', 'worker'], default: 'system CAs', description: 'CA certificate file for the server' },
  { name: 'TEMPORAL_TLS_SERVER_NAME', roles: ['api', 'worker'], default: 'from the address', description: 'TLS server name override' },
  { name: 'API_PORT', roles: ['api', 'start'], default: '3000', description: 'API port' },
  { name: 'API_HOST', roles: ['api'], default: '127.0.0.1', description: 'API bind address (0.0.0.0 in containers)' },
  {
    name: 'API_PUBLIC_URL',
    roles: ['api', 'worker', 'start'],
    default: 'http://127.0.0.1:$API_PORT',
    description: "how the provider reaches our webhooks and payers reach billflow's Pay Now links (`/pay/{token}`, printed on PDFs and emails by the worker)",
  },
  { name: 'BILLFLOW_ADMIN_KEY', roles: ['api', 'start'], required: true, default: 'generated by npm start, kept in data/admin-key', description: 'operator key for /v1/companies' },
  {
    name: 'BILLFLOW_SECRET_KEY',
    roles: ['api', 'worker', 'start'],
    required: true,
    default: 'generated by npm start, kept in data/secret-key',
    description: 'AES-256-GCM key (32 bytes, base64) the provider API keys and webhook secrets are stored under',
  },
  {
    name: 'BILLFLOW_SECRET_KEY_PREVIOUS',
    roles: ['api', 'worker', 'start'],
    default: 'none (npm start: data/secret-key.previous)',
    description: 'the key before a rotation: secrets still sealed under it keep opening; npm run rotate-secret-key re-encrypts them',
  },
  { name: 'SANDBOX_PORT', roles: ['sandbox', 'start'], default: '4010', description: 'provider sandbox port' },
  { name: 'SANDBOX_HOST', roles: ['sandbox'], default: '127.0.0.1', description: 'provider sandbox bind address' },
  { name: 'SANDBOX_PUBLIC_URL', roles: ['sandbox', 'start'], default: 'http://127.0.0.1:$SANDBOX_PORT', description: 'base of Pay Now URLs' },
  {
    name: 'STRIPE_API_URL',
    roles: ['api'],
    default: 'https://api.stripe.com',
    description: "where a Stripe company registered without `provider.url` reaches Stripe (the tests: the sandbox's Stripe mode)",
  },
  { name: 'STRIPE_SANDBOX_PORT', roles: ['sandbox', 'start'], default: '4011', description: "port of the provider sandbox's Stripe-compatible mode" },
  { name: 'STRIPE_SANDBOX_PUBLIC_URL', roles: ['sandbox', 'start'], default: 'http://127.0.0.1:$STRIPE_SANDBOX_PORT', description: "base of the Stripe mode's URLs (API and hosted invoice pages)" },
  { name: 'CHROMIUM_PATH', roles: ['worker', 'start'], default: '/usr/bin/chromium', description: 'Chromium for PDFs' },
  { name: 'PDF_CONCURRENCY', roles: ['worker'], default: '2', description: 'PDF pages rendered at once per worker' },
  {
    name: 'WORKER_METRICS_PORT',
    roles: ['worker'],
    default: '9464',
    description: "Prometheus metrics of the worker at /metrics: the Temporal SDK's and billflow's (provider calls, PDF renders, webhook attempts); 0 turns them off",
  },
  {
    name: 'WORKER_METRICS_HOST',
    roles: ['worker'],
    default: '127.0.0.1',
    description: "the worker metrics' bind address (unauthenticated: keep it on loopback or a private network; 0.0.0.0 in containers)",
  },
  { name: 'WEBHOOK_TIMEOUT_SECONDS', roles: ['worker'], default: '15', description: 'how long one delivery to an ERP webhook endpoint may take, answer included' },
  {
    name: 'WEBHOOK_RETRY_FOR_SECONDS',
    roles: ['worker'],
    default: '259200 (3 days)',
    description: 'how long a failing delivery is retried (backoff from 5 s, doubling, at most 6 h apart) before it is given up',
  },
  {
    name: 'WEBHOOK_DISABLE_AFTER_SECONDS',
    roles: ['worker'],
    default: '432000 (5 days)',
    description: 'an endpoint failing this long without a success is disabled (PATCH it with enabled: true to resume)',
  },
  {
    name: 'PROVIDER_CIRCUIT_FAILURES',
    roles: ['worker'],
    default: '5',
    description: "provider outages (5xx, 429, no answer) in a row, within the window, that open an account's circuit breaker; 0 turns it off",
  },
  { name: 'PROVIDER_CIRCUIT_WINDOW_SECONDS', roles: ['worker'], default: '30', description: 'the window those outages must fall in (counted from the first)' },
  { name: 'PROVIDER_CIRCUIT_COOLDOWN_SECONDS', roles: ['worker'], default: '15', description: 'how long an open circuit refuses provider calls before one call probes the provider' },
  {
    name: 'WEBHOOK_RETENTION_SECONDS',
    roles: ['worker'],
    default: '2592000 (30 days)',
    description: 'delivered events to the ERP are kept (listed with their attempts) this long, then purged by the delivery loop (hourly); failed and pending ones are kept',
  },
  { name: 'SMTP_HOST', roles: ['worker', 'start'], default: '127.0.0.1 (npm start: its mail catcher)', description: 'SMTP server invoices are emailed through' },
  { name: 'SMTP_PORT', roles: ['worker', 'start'], default: '1025 (npm start: its mail catcher)', description: 'SMTP port' },
  { name: 'SMTP_SECURE', roles: ['worker'], default: 'false', description: "'true' for implicit TLS (port 465); otherwise STARTTLS when offered (plain SMTP only to a loopback host)" },
  { name: 'SMTP_USER', roles: ['worker'], default: 'none', description: 'SMTP user (no authentication when unset)' },
  { name: 'SMTP_PASS', roles: ['worker'], default: 'none', description: 'SMTP password' },
  { name: 'MAIL_FROM', roles: ['worker'], default: 'billflow <billing@billflow.local>', description: 'sender of invoice emails' },
  { name: 'MAILDEV_SMTP_PORT', roles: ['start'], default: '1025', description: 'SMTP port of the mail catcher (maildev) npm start runs' },
  { name: 'MAILDEV_WEB_PORT', roles: ['start'], default: '1080', description: "the mail catcher's web page and REST API port" },
  { name: 'EMBEDDED_PG_PORT', roles: ['start'], default: '5433', description: 'port of the embedded PostgreSQL' },
  { name: 'BILLFLOW_DATA_DIR', roles: ['start'], default: './data (npm run cluster: ./data/cluster)', description: 'embedded PostgreSQL, Temporal SQLite file or cluster config, logs' },
  { name: 'BILLFLOW_CACHE_DIR', roles: ['worker', 'start'], default: '~/.cache/billflow', description: 'built tools (Temporal CLI, test server classpath) and workflow bundles' },
  { name: 'TEMPORAL_CLI_PATH', roles: ['start'], default: 'PATH, then the cache', description: 'use this Temporal CLI binary' },
];
