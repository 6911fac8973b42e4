/**
 * The Dockerfile's steps, run as written in a clean folder (no Docker engine here): its COPYs from
 * the repository into a temporary /app, its `npm ci --omit=dev`, its ENV, then its command and the
 * compose file's other commands. Each must load every module it imports from that production
 * install: started without its settings it stops on the first missing one with a clear message,
 * and the API, given a database and Temporal, answers, /docs (served from the installed Swagger
 * UI) included. .dockerignore keeps node_modules and data out of the build context without
 * hiding anything a COPY needs.
 */
import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from '../lib/paths.js';
import { newSecretKey } from '../lib/secrets.js';
import { freePort } from '../lib/temporal-dev.js';
import { privateDatabase } from './harness.js';

const run = promisify(execFile);

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(): Instruction[] {
  const text = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(' ') };
    });
}

const app = mkdtempSync(path.join(os.tmpdir(), 'billflow-image-'));
/** The image's environment: what its ENV lines set, on a PATH to node and npm, and nothing of this test run's. */
const imageEnv: Record<string, string> = { PATH: process.env.PATH!, HOME: os.homedir() };
let command: string[] = [];
const copied: string[] = [];
let database: Awaited<ReturnType<typeof privateDatabase>>;

beforeAll(async () => {
  database = await privateDatabase();
  for (const { op, args } of instructions()) {
    if (op === 'FROM') {
      // The image's Node is the one these steps run on.
      const major = /^node:(\d+)-/.exec(args)?.[1];
      expect(major, args).toBe(process.versions.node.split('.')[0]);
    } else if (op === 'WORKDIR') {
      expect(args).toBe('/app');
    } else if (op === 'COPY') {
      const parts = args.split(' ');
      const dest = parts.pop()!;
      for (const src of parts) {
        cpSync(path.join(ROOT, src), path.join(app, dest === './' ? src : dest), { recursive: true });
        copied.push(src);
      }
    } else if (op === 'RUN' && args.startsWith('npm ')) {
      const started = Date.now();
      const [, ...npmArgs] = args.split(' ');
      await run('npm', npmArgs, { cwd: app, env: imageEnv, maxBuffer: 16 * 1024 * 1024 });
      process.stdout.write(`[dockerfile] ${args}: ${((Date.now() - started) / 1000).toFixed(1)} s (from the npm cache)\n`);
    } else if (op === 'RUN' && args.startsWith('apt-get update')) {
      // The system packages it installs are Debian's, as on this machine (bookworm too): they must be installed here.
      const packages = /--no-install-recommends ([^&]+)&&/.exec(args)![1]!.trim().split(/\s+/);
      expect(packages).toContain('chromium');
      await run('dpkg-query', ['-W', ...packages]);
    } else if (op === 'ENV') {
      for (const pair of args.split(' ')) {
        const [k, v] = pair.split('=') as [string, string];
        imageEnv[k] = v;
      }
    } else if (op === 'CMD') {
      command = JSON.parse(args) as string[];
    } else if (op !== 'USER') {
      throw new Error(`a Dockerfile instruction this test does not run: ${op} ${args}`);
    }
  }
}, 300_000);

afterAll(async () => {
  rmSync(app, { recursive: true, force: true });
  await database?.drop();
});

/** Runs a command of the image in /app until it exits (at most `ms`); its exit code and output. */
function runInImage(cmd: string[], env: Record<string, string>, ms = 60_000): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The compose file's services built from the Dockerfile, and the command each runs. */
function composeCommands(): Record<string, string[]> {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { build?: string; command?: string[] }> };
  return Object.fromEntries(
    Object.entries(compose.services)
      .filter(([, s]) => s.build)
      .map(([name, s]) => [name, s.command!]),
  );
}

describe('the Dockerfile, step by step', () => {
  it('installs only production packages, and none of the development ones', () => {
    const lock = JSON.parse(readFileSync(path.join(app, 'node_modules', '.package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const installed = Object.keys(lock.packages);
    expect(installed).toContain('node_modules/swagger-ui-dist');
    expect(installed).toContain('node_modules/tsx');
    expect(installed).not.toContain('node_modules/vitest');
    expect(Object.values(lock.packages).filter((p) => p.dev)).toEqual([]);
  });

  it("loads every module of each process's command, and stops on the first missing setting with a clear message", async () => {
    const commands: Record<string, string[]> = { image: command, ...composeCommands() };
    expect(commands.image).toEqual(commands.api);
    const expected: Record<string, string> = {
      image: 'DATABASE_URL is not set',
      api: 'DATABASE_URL is not set',
      worker: 'DATABASE_URL is not set',
      sandbox: 'SANDBOX_DATABASE_URL is not set',
    };
    expect(Object.keys(commands).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, cmd] of Object.entries(commands)) {
      // Static imports load the whole module graph before main's first line reads its settings.
      const { code, output } = await runInImage(cmd, imageEnv);
      expect(code, `${name}: ${output}`).toBe(1);
      expect(output, name).toContain(expected[name]);
      expect(output, name).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
    }
  });

  it("starts the image's command (the API), which answers and serves /docs from the installed Swagger UI", async () => {
    const port = await freePort();
    const api = spawn(command[0]!, command.slice(1), {
      cwd: app,
      env: {
        ...imageEnv,
        DATABASE_URL: database.url,
        TEMPORAL_ADDRESS: inject('temporalAddress'),
        TEMPORAL_TASK_QUEUE: `billflow-image-${port}`,
        BILLFLOW_ADMIN_KEY: 'image-test-operator-key',
        BILLFLOW_SECRET_KEY: newSecretKey(),
        API_PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    api.stdout.on('data', (b: Buffer) => (output += b.toString()));
    api.stderr.on('data', (b: Buffer) => (output += b.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      for (;;) {
        const up = await fetch(`${base}/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (up) break;
        if (api.exitCode !== null || Date.now() > deadline) throw new Error(`the API did not answer (exit ${api.exitCode}):\n${output}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const docs = await fetch(`${base}/docs`);
      expect(docs.status).toBe(200);
      expect(await docs.text()).toContain('/docs/assets/swagger-ui-bundle.js');
      const bundle = await fetch(`${base}/docs/assets/swagger-ui-bundle.js`);
      expect(bundle.status).toBe(200);
      expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    } finally {
      api.kill('SIGTERM');
      await new Promise((r) => (api.exitCode !== null ? r(null) : api.once('exit', r)));
    }
  });

  it('keeps node_modules and data out of the build context, and nothing a COPY needs', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'data', '.git', 'test-output']) expect(ignored).toContain(must);
    // A pattern naming a COPY source (or a folder above one) would fail the build.
    for (const src of copied) expect(ignored.filter((p) => p.replace(/\/$/, '') === src.replace(/^\.\//, '').split('/')[0])).toEqual([]);
    expect(copied).toContain('package-lock.json');
  });
});
