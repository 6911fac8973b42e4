/** Connections to Temporal for the API (client) and the worker, local, self-hosted or Cloud. */
import { readFileSync } from 'node:fs';
import { Client, Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { searchAttributes } from '../workflows/contract.js';
import type { TemporalConfig } from './config.js';

function tlsOptions(cfg: TemporalConfig): ConnectionOptions['tls'] {
  if (cfg.tls) {
    return {
      clientCertPair: { crt: readFileSync(cfg.tls.certPath), key: readFileSync(cfg.tls.keyPath) },
      ...(cfg.tls.caPath ? { serverRootCACertificate: readFileSync(cfg.tls.caPath) } : {}),
      ...(cfg.tls.serverNameOverride ? { serverNameOverride: cfg.tls.serverNameOverride } : {}),
    };
  }
  return cfg.apiKey ? true : undefined;
}

/** Connects, and fails when the frontend does not answer within `connectTimeoutMs` (the SDK's default: 10 s). */
export async function connectClient(cfg: TemporalConfig, connectTimeoutMs?: number): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({
    address: cfg.address,
    tls: tlsOptions(cfg),
    ...(cfg.apiKey ? { apiKey: cfg.apiKey } : {}),
    ...(connectTimeoutMs ? { connectTimeout: connectTimeoutMs } : {}),
  });
  return { client: new Client({ connection, namespace: cfg.namespace }), connection };
}

export function connectWorker(cfg: TemporalConfig): Promise<NativeConnection> {
  const opts: NativeConnectionOptions = { address: cfg.address, tls: tlsOptions(cfg) };
  if (cfg.apiKey) opts.apiKey = cfg.apiKey;
  return NativeConnection.connect(opts);
}

/**
 * Registers billflow's search attributes on a self-hosted cluster or the time-skipping test server
 * when they are missing (the dev server gets them as start flags; on Temporal Cloud they are
 * created per namespace in the Cloud console or tcld, and this call is refused and reported).
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const wanted = Object.values(searchAttributes);
  let existing: Record<string, unknown> = {};
  try {
    existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (e) {
    // The time-skipping test server cannot list them, but can add them.
    if ((e as { code?: number }).code !== 12 /* UNIMPLEMENTED */) throw e;
  }
  const missing = wanted.filter((k) => !(k.name in existing));
  if (missing.length === 0) return [];
  const { INDEXED_VALUE_TYPE_INT, INDEXED_VALUE_TYPE_KEYWORD, INDEXED_VALUE_TYPE_DATETIME, INDEXED_VALUE_TYPE_BOOL } = proto.temporal.api.enums.v1.IndexedValueType;
  const types: Record<string, number> = { INT: INDEXED_VALUE_TYPE_INT, KEYWORD: INDEXED_VALUE_TYPE_KEYWORD, DATETIME: INDEXED_VALUE_TYPE_DATETIME, BOOL: INDEXED_VALUE_TYPE_BOOL };
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((k) => [k.name, types[k.type]!])),
  });
  return missing.map((k) => k.name);
}
