/**
 * The latency section's baselines: the cheapest Updates the dev server can answer, measured on the
 * same server in the same run as billflow's API. One workflow waits for Updates that do nothing,
 * run one no-op activity, one no-op local activity, or ten no-op activities one after another
 * (billflow's steps run one after another too). Three more take a billflow change's parts apart:
 * two local activities, one search attribute upsert, and a local activity then a child workflow
 * started and awaited (as a Final starts its reminders).
 */
import { condition, defineSignal, defineUpdate, ParentClosePolicy, proxyActivities, proxyLocalActivities, setHandler, startChild, upsertSearchAttributes, uuid4 } from '@temporalio/workflow';
import { searchAttributes } from '../workflows/contract.js';

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
export const twoLocalActivitiesUpdate = defineUpdate<void>('twoLocalActivities');
export const upsertUpdate = defineUpdate<void>('upsertSearchAttribute');
export const localThenChildUpdate = defineUpdate<void>('localActivityThenChild');
export const stopSignal = defineSignal('stop');

/** The child that `localThenChildUpdate` starts: it ends at once. */
async function latencyChild(): Promise<void> {}

export async function latencyWorkflow(): Promise<void> {
  let stopped = false;
  setHandler(noopUpdate, () => {});
  setHandler(oneActivityUpdate, () => regular.noop());
  setHandler(oneLocalActivityUpdate, () => local.noop());
  setHandler(tenActivitiesUpdate, async () => {
    for (let i = 0; i < 10; i++) await regular.noop();
  });
  setHandler(twoLocalActivitiesUpdate, async () => {
    await local.noop();
    await local.noop();
  });
  let flip = false;
  setHandler(upsertUpdate, () => {
    flip = !flip;
    upsertSearchAttributes([{ key: searchAttributes.status, value: flip ? 'Draft' : 'Final' }]);
  });
  setHandler(localThenChildUpdate, async () => {
    await local.noop();
    await startChild(latencyChild, { workflowId: `LatencyChild:${uuid4()}`, parentClosePolicy: ParentClosePolicy.ABANDON });
  });
  setHandler(stopSignal, () => {
    stopped = true;
  });
  await condition(() => stopped);
}
