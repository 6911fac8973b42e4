/**
 * The latency section's baselines: the cheapest Updates the dev server can answer, measured on the
 * same server in the same run as billflow's API. One workflow waits for Updates that do nothing,
 * run one no-op activity, one no-op local activity, or ten no-op activities one after another
 * (billflow's steps run one after another too).
 */
import { condition, defineSignal, defineUpdate, proxyActivities, proxyLocalActivities, setHandler } from '@temporalio/workflow';

/** The one activity the baseline worker offers; it does nothing, so only the round trip is timed. */
export interface LatencyActivities {
  noop(): Promise<void>;
}

const regular = proxyActivities<LatencyActivities>({ startToCloseTimeout: '10 seconds' });
const local = proxyLocalActivities<LatencyActivities>({ startToCloseTimeout: '10 seconds' });

export const noopUpdate = defineUpdate<void>('noop');
export const oneActivityUpdate = defineUpdate<void>('oneActivity');
export const oneLocalActivityUpdate = defineUpdate<void>('oneLocalActivity');
export const tenActivitiesUpdate = defineUpdate<void>('tenActivities');
export const stopSignal = defineSignal('stop');

export async function latencyWorkflow(): Promise<void> {
  let stopped = false;
  setHandler(noopUpdate, () => {});
  setHandler(oneActivityUpdate, () => regular.noop());
  setHandler(oneLocalActivityUpdate, () => local.noop());
  setHandler(tenActivitiesUpdate, async () => {
    for (let i = 0; i < 10; i++) await regular.noop();
  });
  setHandler(stopSignal, () => {
    stopped = true;
  });
  await condition(() => stopped);
}
