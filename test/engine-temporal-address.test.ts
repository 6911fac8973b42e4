/**
 * `npm start`'s engine (scripts/engine.ts) with TEMPORAL_ADDRESS set: it says it starts no
 * Temporal of its own, and when nothing answers at that address it stops at once with a message
 * naming the address and how to unset it, before starting anything (no PostgreSQL, no dev server).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../lib/paths.js';
import { freePort } from '../lib/temporal-dev.js';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'billflow-temporal-address-'));

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('TEMPORAL_ADDRESS for npm start', () => {
  it('with nothing answering there, fails at once naming the address and how to unset it', async () => {
    // A port nothing listens on.
    const address = `127.0.0.1:${await freePort()}`;
    const env: Record<string, string | undefined> = { ...process.env, BILLFLOW_DATA_DIR: dataDir, TEMPORAL_ADDRESS: address, EMBEDDED_PG_PORT: String(await freePort()) };
    for (const k of ['DATABASE_URL', 'SANDBOX_DATABASE_URL', 'TEMPORAL_API_KEY', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY']) delete env[k];
    const started = Date.now();
    const engine = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'engine.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    engine.stdout.on('data', (b: Buffer) => (output += b.toString()));
    engine.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const code = await new Promise<number | null>((resolve) => engine.on('exit', resolve));
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`[temporal-address] engine exited ${code} after ${seconds.toFixed(1)} s:\n${output}`);

    expect(code).toBe(1);
    expect(output).toContain(`[billflow] TEMPORAL_ADDRESS is set: using the Temporal at ${address}; the embedded Temporal dev server is not started (unset TEMPORAL_ADDRESS for it)`);
    expect(output).toContain(`[billflow] start failed: no Temporal answers at TEMPORAL_ADDRESS=${address}`);
    expect(output).toContain('run `unset TEMPORAL_ADDRESS` and start again to use the embedded one');
    // The 5 s connect deadline, plus starting Node and tsx on a busy machine; not a worker dying minutes later.
    expect(seconds).toBeLessThan(30);
    // Nothing was started, and the data folder is free again.
    expect(existsSync(path.join(dataDir, 'pg'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'temporal.db'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'billflow.pid'))).toBe(false);
  }, 60_000);
});
