/**
 * Histories recorded from earlier versions of the invoice workflow must keep replaying on today's
 * code: a change that breaks determinism fails here before it breaks running invoices.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { expect, inject, it } from 'vitest';
import { ROOT } from '../lib/paths.js';

const dir = path.join(ROOT, 'test', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.binpb'));

it.each(files)('replays %s on the current workflow code', async (file) => {
  const history = proto.temporal.api.history.v1.History.decode(readFileSync(path.join(dir, file)));
  const results = Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') } }, [{ workflowId: file, history }]);
  let replayed = 0;
  for await (const result of results) {
    expect(result.error, `${file}: ${String(result.error)}`).toBeUndefined();
    replayed++;
  }
  expect(replayed).toBe(1);
});
