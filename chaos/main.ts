/**
 * `npm run chaos`: CHAOS_LIFECYCLES (500), CHAOS_CONCURRENCY (16, 8 to 16), CHAOS_TIME_LIMIT_S
 * (900), CHAOS_TEMPORAL (dev, or cluster). Prints its figures; the last line is the verdict, and the exit code is 1 on any loss.
 */
import { runChaos } from './run.js';

function int(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

function temporalServer(): 'dev' | 'cluster' {
  const raw = process.env.CHAOS_TEMPORAL ?? 'dev';
  if (raw !== 'dev' && raw !== 'cluster') throw new Error(`CHAOS_TEMPORAL must be dev or cluster, got "${raw}"`);
  return raw;
}

const result = await runChaos({
  lifecycles: int('CHAOS_LIFECYCLES', 500, 1, 100_000),
  concurrency: int('CHAOS_CONCURRENCY', 16, 8, 16),
  timeLimitMs: int('CHAOS_TIME_LIMIT_S', 900, 60, 86_400) * 1000,
  temporal: temporalServer(),
});
process.exit(result.passed ? 0 : 1);
