/**
 * The workflow bundle, built once per version of the workflow code and kept in the cache folder:
 * a restarted worker (after a crash, a deploy, a chaos kill) loads it in a moment instead of
 * running webpack again for ten seconds while its invoices wait.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { ROOT, WORKFLOWS_ENTRY } from '../lib/paths.js';

/** What the bundle is made of: the workflow code, the rules it imports, and the locked SDK version. */
const INPUTS = ['workflows', 'domain'];

function files(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const p = path.join(dir, name);
      return statSync(p).isDirectory() ? files(p) : /\.[cm]?[jt]s$/.test(name) ? [p] : [];
    });
}

function bundleKey(): string {
  const h = createHash('sha256');
  for (const f of [...INPUTS.flatMap((d) => files(path.join(ROOT, d))), path.join(ROOT, 'package-lock.json')]) {
    h.update(path.relative(ROOT, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/** The path of a bundle of today's workflow code, built now only if no worker built it before. */
export async function cachedWorkflowBundle(cacheDir = process.env.BILLFLOW_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'billflow')): Promise<string> {
  const dir = path.join(cacheDir, 'workflow-bundles');
  const file = path.join(dir, `${bundleKey()}.js`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_ENTRY });
  // Written aside and renamed, so a worker starting meanwhile never reads half a bundle.
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, code);
  renameSync(partial, file);
  return file;
}
