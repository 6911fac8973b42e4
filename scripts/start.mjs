#!/usr/bin/env node
// `npm start`: installs what is missing (Node built-ins only until npm packages are in place),
// then runs the engine supervisor, which starts every component on its embedded default.
// `npm run cluster` (--cluster): the same, with Temporal as a cluster on PostgreSQL (scripts/engine.ts).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './tools.mjs';

const mode = process.argv.includes('--cluster') ? ['--cluster'] : [];
const setup = spawn(process.execPath, [path.join(ROOT, 'scripts', 'setup.mjs'), ...mode], { stdio: 'inherit' });
setup.on('exit', (code) => {
  if (code !== 0) process.exit(code ?? 1);
  // The engine and everything it starts get their own process group, so Ctrl-C (sent to the
  // terminal's group) reaches only us; we pass it on and the engine stops its parts in order.
  const engine = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'engine.ts'), ...mode], {
    stdio: 'inherit',
    cwd: ROOT,
    detached: true,
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => engine.kill('SIGTERM'));
  engine.on('exit', (c, signal) => process.exit(c ?? (signal ? 0 : 1)));
});
