import type { Client } from '@temporalio/client';
import type { RequestHandler } from 'express';
import type { Sql } from '../lib/db.js';
import type { Logger } from '../lib/log.js';
import type { ApiMetrics } from '../lib/metrics.js';
import type { Keyring } from '../lib/secrets.js';

export interface ApiDeps {
  sql: Sql;
  temporal: Client;
  taskQueue: string;
  adminKey: string;
  /** Seals and opens the provider secrets stored in companies. */
  secrets: Keyring;
  /** Base URL the provider uses to reach our webhooks. */
  publicApiUrl: string;
  log: Logger;
  /** Where a Stripe company registered without a url reaches Stripe (`STRIPE_API_URL`; Stripe's own API by default). */
  stripeApiUrl?: string;
  /** The Temporal Web UI the dashboard links each invoice's workflow to (none: no links). */
  temporalUiUrl?: string | null;
  /** How long a status change may take before the API answers 202 and lets it finish. */
  updateWaitMs?: number;
  /** How long a worker has to answer a Query or accept an Update before the API answers 503. */
  workerAnswerMs?: number;
}

/** Middleware built once in app.ts and shared by the routers. */
export interface ApiMiddleware {
  erpAuth: RequestHandler;
  idempotency: RequestHandler;
  /** The app's metrics, for routes that count what they did. */
  metrics: ApiMetrics;
}
