#!/usr/bin/env node
// One idempotent set-up step shared by `npm start`, `npm test` and `npm run bench`: npm packages,
// the Temporal CLI, Chromium, (for tests) Temporal's Java test server, poppler, schemathesis and
// stripe-mock, and (for `npm run cluster` and the tests' cluster run) the Temporal server and its Web UI server.
import {
  ensureChromium,
  ensureNodeModules,
  ensurePoppler,
  ensureSchemathesis,
  ensureStripeMock,
  ensureTemporal,
  ensureTemporalServer,
  ensureTemporalUi,
  ensureTestServer,
  writeToolsFile,
} from './tools.mjs';

const forTests = process.argv.includes('--for-tests');
// The cluster's programs: for the tests, `npm run cluster`, and `npm run chaos` on the cluster.
const forCluster = forTests || process.argv.includes('--cluster') || process.env.CHAOS_TEMPORAL === 'cluster';
const started = Date.now();
ensureNodeModules();
const tools = { temporal: ensureTemporal(), chromium: ensureChromium() };
if (forTests) {
  tools.testServer = ensureTestServer();
  ensurePoppler();
  tools.schemathesis = ensureSchemathesis();
  tools.stripeMock = ensureStripeMock();
}
if (forCluster) {
  tools.temporalServer = ensureTemporalServer();
  tools.temporalUi = ensureTemporalUi();
}
writeToolsFile(tools);
const secs = ((Date.now() - started) / 1000).toFixed(1);
process.stderr.write(`[setup] ready in ${secs} s: temporal=${tools.temporal} chromium=${tools.chromium}\n`);
