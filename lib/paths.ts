/** Folders of the checkout that code at several depths needs to find. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BILLFLOW_MIGRATIONS = path.join(ROOT, 'db', 'migrations');
export const SANDBOX_MIGRATIONS = path.join(ROOT, 'sandbox', 'migrations');
/** The Temporal server's dynamic config billflow runs with (dev server, cluster, compose). */
export const TEMPORAL_DYNAMIC_CONFIG = path.join(ROOT, 'temporal-dynamicconfig.yaml');
export const WORKFLOWS_ENTRY = path.join(ROOT, 'workflows', 'index.ts');
