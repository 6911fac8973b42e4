// Finds or installs the external programs billflow runs: the Temporal CLI (dev server), Chromium,
// Temporal's Java time-skipping test server and (for tests) schemathesis and stripe-mock. Node built-ins only: this runs before `npm install`.
import { spawnSync } from 'node:child_process';
import { accessSync, chmodSync, constants, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TEMPORAL_CLI_VERSION = '1.5.1';
/** Pinned: the fuzz test reads its JUnit report, whose shape is this version's. */
export const SCHEMATHESIS_VERSION = '4.32.5';
/** The Temporal server and Web UI `npm run cluster` runs: the versions docker-compose.yml pins. */
export const TEMPORAL_SERVER_VERSION = '1.29.1';
export const TEMPORAL_UI_VERSION = '2.42.1';
// v1.5.1 is the newest release `go install` accepts; later ones carry a replace directive.
const TEMPORAL_MODULE = `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`;
/** Pinned with the `stripe` package: this release's OpenAPI description is that package's API version (2026-08-26.dahlia). */
export const STRIPE_MOCK_VERSION = '0.203.0';

/** Tools are cached outside the checkout so fresh clones reuse one build. */
export function cacheDir() {
  const base = process.env.BILLFLOW_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'billflow');
  mkdirSync(base, { recursive: true });
  return base;
}

function log(msg) {
  process.stderr.write(`[setup] ${msg}\n`);
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed with exit code ${r.status}`);
}

/** npm dependencies, installed when node_modules is missing or older than the lock file. */
export function ensureNodeModules() {
  const installed = path.join(ROOT, 'node_modules', '.package-lock.json');
  const lock = path.join(ROOT, 'package-lock.json');
  if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) return;
  // `npm install`, not `npm ci`: npm 11 leaves other platforms' optional packages (@swc/core-*)
  // out of the lock file and then refuses `npm ci` for it; install still follows the locked versions.
  log('installing npm packages (npm install)...');
  run('npm', ['install', '--no-audit', '--no-fund'], { cwd: ROOT });
}

/** The Temporal CLI: TEMPORAL_CLI_PATH, then PATH, then the cache, else built with Go or downloaded. */
export function ensureTemporal() {
  if (process.env.TEMPORAL_CLI_PATH) return process.env.TEMPORAL_CLI_PATH;
  const found = onPath('temporal');
  if (found) return found;
  const binDir = path.join(cacheDir(), 'bin');
  const cached = path.join(binDir, 'temporal');
  if (existsSync(cached)) return cached;
  mkdirSync(binDir, { recursive: true });
  if (onPath('go')) {
    log(`building the Temporal CLI v${TEMPORAL_CLI_VERSION} with Go (about 2 minutes, once)...`);
    run('go', ['install', TEMPORAL_MODULE], { env: { ...process.env, GOBIN: binDir } });
    return cached;
  }
  const arch = { x64: 'amd64', arm64: 'arm64' }[process.arch];
  if (!arch || process.platform === 'win32') {
    throw new Error('no Temporal CLI found: install Go, or put `temporal` on PATH (https://temporal.io/setup/install-temporal-cli)');
  }
  log(`downloading the official Temporal CLI v${TEMPORAL_CLI_VERSION} release...`);
  const url = `https://temporal.download/cli/archive/v${TEMPORAL_CLI_VERSION}?platform=${process.platform}&arch=${arch}`;
  const tgz = path.join(binDir, 'temporal.tar.gz');
  run('curl', ['-fsSL', '-o', tgz, url]);
  run('tar', ['-xzf', tgz, '-C', binDir, 'temporal']);
  return cached;
}

/**
 * Stripe's official stripe-mock (for the Stripe adapter's contract test): STRIPE_MOCK_PATH, else
 * built once with `go install` into the cache, in a folder named by its version.
 */
export function ensureStripeMock() {
  if (process.env.STRIPE_MOCK_PATH) return process.env.STRIPE_MOCK_PATH;
  const binDir = path.join(cacheDir(), `stripe-mock-v${STRIPE_MOCK_VERSION}`);
  const cached = path.join(binDir, 'stripe-mock');
  if (existsSync(cached)) return cached;
  if (!onPath('go')) throw new Error(`stripe-mock v${STRIPE_MOCK_VERSION} is needed for the Stripe tests: install Go, or set STRIPE_MOCK_PATH`);
  mkdirSync(binDir, { recursive: true });
  log(`building stripe-mock v${STRIPE_MOCK_VERSION} with Go (under a minute, once)...`);
  run('go', ['install', `github.com/stripe/stripe-mock@v${STRIPE_MOCK_VERSION}`], { env: { ...process.env, GOBIN: binDir } });
  return cached;
}

/**
 * The Temporal server (all services in one binary, started once per service), its SQL schema tool
 * and the schema files, built with Go once into the cache. A Go build of the server takes minutes
 * of CPU, so a finished one is marked and reused; an interrupted one is built again.
 */
export function ensureTemporalServer() {
  const dir = path.join(cacheDir(), `temporal-server-v${TEMPORAL_SERVER_VERSION}`);
  const found = { server: path.join(dir, 'server'), sqlTool: path.join(dir, 'sql'), schemaDir: path.join(dir, 'schema') };
  const done = path.join(dir, '.installed');
  if (existsSync(done)) return found;
  if (!onPath('go')) throw new Error(`Go is needed to build the Temporal server v${TEMPORAL_SERVER_VERSION} (npm run cluster): https://go.dev/dl`);
  log(`building the Temporal server v${TEMPORAL_SERVER_VERSION} and its sql tool with Go (once: 3 minutes on a quiet 2-core machine, up to 20 under load)...`);
  mkdirSync(dir, { recursive: true });
  const mod = `go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}`;
  run('go', ['install', `go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}`, `go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}`], {
    env: { ...process.env, GOBIN: dir },
  });
  // The schemas ship in the module; copied out so a cleaned Go module cache cannot take them away.
  const info = spawnSync('go', ['mod', 'download', '-json', mod], { encoding: 'utf8' });
  if (info.status !== 0) throw new Error(`go mod download ${mod} failed: ${info.stderr}`);
  rmSync(found.schemaDir, { recursive: true, force: true });
  cpSync(path.join(JSON.parse(info.stdout).Dir, 'schema', 'postgresql', 'v12'), found.schemaDir, { recursive: true });
  writeFileSync(done, `${TEMPORAL_SERVER_VERSION}\n`);
  return found;
}

/** The Temporal Web UI server (the `temporalio/ui` image's program, its pages embedded), built like the server. */
export function ensureTemporalUi() {
  const dir = path.join(cacheDir(), `temporal-ui-server-v${TEMPORAL_UI_VERSION}`);
  const binary = path.join(dir, 'server');
  const done = path.join(dir, '.installed');
  if (existsSync(done)) return binary;
  if (!onPath('go')) throw new Error(`Go is needed to build the Temporal UI server v${TEMPORAL_UI_VERSION} (npm run cluster): https://go.dev/dl`);
  log(`building the Temporal UI server v${TEMPORAL_UI_VERSION} with Go (about a minute, once)...`);
  mkdirSync(dir, { recursive: true });
  run('go', ['install', `github.com/temporalio/ui-server/v2/cmd/server@v${TEMPORAL_UI_VERSION}`], { env: { ...process.env, GOBIN: dir } });
  writeFileSync(done, `${TEMPORAL_UI_VERSION}\n`);
  return binary;
}

/** Chromium for PDFs: CHROMIUM_PATH, Debian's package, installed with apt when we are root. */
export function ensureChromium() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', onPath('chromium')];
  for (const c of candidates) if (c && existsSync(c)) return c;
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    log("installing Debian's chromium and fonts with apt-get...");
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'chromium', 'fonts-liberation', 'fonts-dejavu-core'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    return '/usr/bin/chromium';
  }
  throw new Error('Chromium not found. Install it (Debian/Ubuntu: `sudo apt-get install chromium fonts-liberation`) or set CHROMIUM_PATH.');
}

/** poppler's pdftotext/pdftoppm, used only by tests to read the PDFs we render. */
export function ensurePoppler() {
  if (onPath('pdftotext')) return;
  if (process.getuid?.() === 0 && onPath('apt-get')) {
    log("installing Debian's poppler-utils for the PDF tests...");
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'poppler-utils'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    return;
  }
  throw new Error('pdftotext not found: install poppler-utils');
}

/**
 * Temporal's Java time-skipping test server from Maven Central, as an executable wrapper the SDK's
 * `createTimeSkipping({ server: { executable: { type: 'existing-path' } } })` can start.
 */
export function ensureTestServer() {
  const wrapper = path.join(cacheDir(), 'temporal-test-server');
  const pom = path.join(ROOT, 'tools', 'temporal-test-server', 'pom.xml');
  const stamp = path.join(cacheDir(), 'temporal-test-server.pom');
  // The SDK gives the server a fixed 5 s to answer; a JVM tuned for start-up keeps it well inside that on a busy machine.
  const jvmFlags = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData';
  const pomText = `${readFileSync(pom, 'utf8')}\n<!-- ${jvmFlags} -->`;
  if (existsSync(wrapper) && existsSync(stamp) && readFileSync(stamp, 'utf8') === pomText) return wrapper;
  if (!onPath('mvn') || !onPath('java')) throw new Error('Java 17+ and Maven are needed for the time-skipping tests');
  log("resolving Temporal's Java test server from Maven Central...");
  const cpFile = path.join(cacheDir(), 'temporal-test-server.classpath');
  run('mvn', ['-q', '-B', '-f', pom, 'dependency:build-classpath', `-Dmdep.outputFile=${cpFile}`]);
  const classpath = readFileSync(cpFile, 'utf8').trim();
  writeFileSync(wrapper, `#!/bin/sh\nexec java ${jvmFlags} -cp '${classpath}' io.temporal.testserver.TestServer "$@"\n`);
  chmodSync(wrapper, 0o755);
  writeFileSync(stamp, pomText);
  return wrapper;
}

/**
 * schemathesis (PyPI), the API fuzzer `test/fuzz.test.ts` runs, in its own virtualenv in the cache:
 * nothing goes into the system's Python. Returns the path of its `schemathesis` command.
 */
export function ensureSchemathesis() {
  const venv = path.join(cacheDir(), `schemathesis-${SCHEMATHESIS_VERSION}`);
  const bin = path.join(venv, 'bin', 'schemathesis');
  // Written last, so an interrupted install is never taken for a finished one.
  const done = path.join(venv, '.installed');
  if (existsSync(done)) return bin;
  const python = onPath('python3');
  if (!python) throw new Error(`Python 3.9+ with venv is needed for the API fuzz test (schemathesis ${SCHEMATHESIS_VERSION}): install python3 and python3-venv`);
  log(`installing schemathesis ${SCHEMATHESIS_VERSION} into ${venv}...`);
  rmSync(venv, { recursive: true, force: true });
  try {
    run(python, ['-m', 'venv', venv]);
  } catch (e) {
    throw new Error(`\`python3 -m venv\` failed (Debian/Ubuntu: apt-get install python3-venv): ${e.message}`);
  }
  run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', `schemathesis==${SCHEMATHESIS_VERSION}`]);
  writeFileSync(done, `${SCHEMATHESIS_VERSION}\n`);
  return bin;
}

/** Records the resolved tool paths (merged with earlier ones) where the TypeScript side reads them. */
export function writeToolsFile(tools) {
  const file = path.join(cacheDir(), 'tools.json');
  const earlier = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...earlier, ...tools }, null, 2));
  return file;
}

export function readToolsFile() {
  const file = path.join(cacheDir(), 'tools.json');
  if (!existsSync(file)) throw new Error('tools not set up yet: run `node scripts/setup.mjs` (npm start and npm test do)');
  return JSON.parse(readFileSync(file, 'utf8'));
}
