/**
 * The short chaos run (npm run chaos at a small size), on each Temporal server billflow runs on:
 * billflow's stack as its own processes, at least 60 lifecycles while the worker is killed every
 * 10 s, the API once, Temporal once per run (the dev server; on the cluster its history and its
 * matching service), the provider misbehaves and SMTP refuses for a while. Every count of the
 * verdict is 0. Runs alone, with BILLFLOW_CHAOS=1 (npm test's chaos step): its worker restarts
 * must not share the cores with other test files.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from '../chaos/run.js';

const LIFECYCLES = 60;

describe.runIf(process.env.BILLFLOW_CHAOS === '1')('the short chaos run', () => {
  it.each([
    { temporal: 'dev', restarts: 1 },
    { temporal: 'cluster', restarts: 2 },
  ] as const)(
    `keeps every payment, invoice and receipt exactly once through ${LIFECYCLES} lifecycles under faults, on the $temporal server`,
    async ({ temporal, restarts }) => {
      const result = await runChaos({ lifecycles: LIFECYCLES, concurrency: 16, timeLimitMs: 600_000, temporal, log: (l) => process.stdout.write(`${l}\n`) });
      expect(result.faults.workerKills).toBeGreaterThanOrEqual(1);
      expect(result.faults.temporalRestarts).toBe(restarts);
      expect(result.faults.apiKills).toBe(1);
      expect(result.faults.provider.errors).toBeGreaterThan(0);
      expect(result.failures).toEqual([]);
      expect(result.line).toBe(`chaos: ${LIFECYCLES} lifecycles, 0 lost, 0 duplicate provider invoices, 0 duplicate payments, 0 feed gaps or duplicates, 0 balance mismatches, 0 duplicate emails`);
    },
    660_000,
  );
});
