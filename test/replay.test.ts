/**
 * Histories recorded from earlier versions of every workflow type must keep replaying on today's
 * code: a change that breaks determinism fails here before it breaks running workflows. Files are
 * only ever added (test/histories/record.ts records missing ones); each replays as the workflow
 * type its first event names, from the same bundle the workers run.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';
import { ROOT } from '../lib/paths.js';
import * as workflows from '../workflows/index.js';

const dir = path.join(ROOT, 'test', 'histories');
const histories = readdirSync(dir)
  .filter((f) => f.endsWith('.binpb'))
  .map((file) => {
    const history = proto.temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file)));
    const type = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '(no start event)';
    return { file, type, history };
  });

it.each(histories)('replays $file ($type) on the current workflow code', async ({ file, history }) => {
  const results = Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, [{ workflowId: file, history }]);
  let replayed = 0;
  for await (const result of results) {
    expect(result.error, `${file}: ${String(result.error)}`).toBeUndefined();
    replayed++;
  }
  expect(replayed).toBe(1);
});

it('has a recorded history of every workflow type the workers run', () => {
  expect(new Set(histories.map((h) => h.type))).toEqual(new Set(Object.keys(workflows)));
});
