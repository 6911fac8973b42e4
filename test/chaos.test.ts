/**
 * The short chaos run (npm run chaos at a small size): billflow's embedded stack as its own
 * processes, at least 60 lifecycles while the worker is killed every 10 s, Temporal and the API
 * once, the provider misbehaves and SMTP refuses for a while. Every count of the verdict is 0.
 * Runs alone, with BILLFLOW_CHAOS=1 (npm test's chaos step): its worker restarts must not share
 * the cores with other test files.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../chaos/run.js';

const LIFECYCLES = 60;

describe.runIf(process.env.BILLFLOW_CHAOS === '1')('the short chaos run', () => {
  it(`keeps every payment, invoice and receipt exactly once through ${LIFECYCLES} lifecycles under faults`, async () => {
    const result = await runChaos({ lifecycles: LIFECYCLES, concurrency: 16, timeLimitMs: 600_000, log: (l) => process.stdout.write(`${l}\n`) });
    expect(result.faults.workerKills).toBeGreaterThanOrEqual(1);
    expect(result.faults.temporalRestarts).toBe(1);
    expect(result.faults.apiKills).toBe(1);
    expect(result.faults.provider.errors).toBeGreaterThan(0);
    expect(result.failures).toEqual([]);
    expect(result.line).toBe(
      `chaos: ${LIFECYCLES} lifecycles, 0 lost, 0 duplicate provider invoices, 0 duplicate payments, 0 feed gaps or duplicates, 0 balance mismatches, 0 duplicate emails`,
    );
  }, 660_000);
});
