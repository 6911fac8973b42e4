/**
 * schemathesis (installed by `scripts/setup.mjs --for-tests`) fuzzes the running API from its own
 * `/openapi.json`: with a company key, an organisation key, the operator key (on the operator's
 * routes) and no key, in every phase, with every check. Each of the four counts must be zero.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openapi } from '../api/openapi.js';
import { readToolsFile } from '../scripts/tools.mjs';
import { ADMIN_KEY, createTenant, http, startStack, type Stack } from './harness.js';

// Fixed, so a failure found in CI reproduces locally; FUZZ_MAX_EXAMPLES raises the depth by hand.
const SEED = '14';
const MAX_EXAMPLES = process.env.FUZZ_MAX_EXAMPLES ?? '5';
const HOOKS = path.join(import.meta.dirname, 'fuzz_hooks.py');

/** schemathesis's failure codes (`schemathesis explain STnnn`) behind each of the four counts; every other code is counted too. */
const COUNTS = {
  'server errors': ['ST101', 'ST102'],
  'responses not matching the description': ['ST104', 'ST105', 'ST106', 'ST107', 'ST108', 'ST109', 'ST110', 'ST111', 'ST201', 'ST203', 'ST204', 'ST205', 'ST301', 'ST302', 'ST401', 'ST402'],
  'undocumented status codes': ['ST103'],
  'valid requests refused': ['ST202'],
} as const;
type CountName = keyof typeof COUNTS;

interface Failure {
  key: string;
  operation: string;
  title: string;
  text: string;
}

let stack: Stack;
let companyKey: string;
let orgKey: string;
/** What each key's stateful chains act on (test/fuzz_hooks.py): its company (the organisation has one), a client and a project. */
const fixtureOf = new Map<string, { FUZZ_COMPANY: string; FUZZ_CLIENT?: string; FUZZ_PROJECT?: string }>();
let tmp: string;

/** Operation names ("POST /v1/companies") that only the operator key may call. */
function operatorOperations(): string[] {
  const names: string[] = [];
  for (const [p, item] of Object.entries(openapi.paths as Record<string, Record<string, { security?: { operator?: unknown }[] }>>)) {
    for (const [method, op] of Object.entries(item)) if (op.security?.some((s) => 'operator' in s)) names.push(`${method.toUpperCase()} ${p}`);
  }
  return names;
}

/** Runs schemathesis without blocking this process (the API under test lives in it) and returns its JUnit failures. */
async function fuzz(label: string, key: string | null, filter: string[]): Promise<Failure[]> {
  const { schemathesis } = readToolsFile() as { schemathesis?: string };
  if (!schemathesis) throw new Error('schemathesis is not set up: run `node scripts/setup.mjs --for-tests`');
  const junit = path.join(tmp, `${label}.xml`);
  // Keys as security schemes, not plain headers, so schemathesis knows them and also tries without them.
  const config = path.join(tmp, `${label}.toml`);
  const auth = key ? `[auth.openapi.bearer]\nbearer = ${JSON.stringify(key)}\n[auth.openapi.operator]\nbearer = ${JSON.stringify(ADMIN_KEY)}\n\n` : '';
  writeFileSync(config, auth + readFileSync(path.join(import.meta.dirname, 'schemathesis.toml'), 'utf8'));
  const args = [
    '--config-file',
    config,
    'run',
    `${stack.apiUrl}/openapi.json`,
    '--checks',
    'all',
    '--phases',
    'examples,coverage,fuzzing,stateful',
    '--max-examples',
    MAX_EXAMPLES,
    '--seed',
    SEED,
    // One worker: with two, CPython 3.11's ast module, which Hypothesis calls from each worker
    // thread, sometimes fails with "AST constructor recursion depth mismatch" (a crash of the tool).
    '--workers',
    '1',
    '--request-timeout',
    '30',
    '--report',
    'junit',
    '--report-junit-path',
    junit,
    '--no-color',
    ...filter,
  ];
  const statefulLog = path.join(tmp, `${label}.stateful.log`);
  const started = Date.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    // In the report folder: schemathesis keeps a crash cache in its working directory.
    const child = spawn(schemathesis, args, {
      cwd: tmp,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SCHEMATHESIS_TELEMETRY: 'false',
        SCHEMATHESIS_HOOKS: HOOKS,
        FUZZ_STATEFUL_LOG: statefulLog,
        ...(key ? fixtureOf.get(key) : {}),
      },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, output: out }));
  });
  process.stdout.write(`[fuzz] ${label}: ${junit}: schemathesis exited ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  // The stateful phase's summary: how many of the description's links (and those schemathesis inferred) it followed.
  const links = [...output.matchAll(/(\d+) covered \/ (\d+) selected \/ (\d+) total(?: \((\d+) inferred\))?/g)].at(-1);
  process.stdout.write(`[fuzz] ${label}: links ${links ? `${links[1]} covered / ${links[2]} selected / ${links[3]} total${links[4] ? ` (${links[4]} inferred)` : ''}` : 'not reported'}\n`);
  process.stdout.write(`[fuzz] ${label}: stateful answers: ${statefulReach(statefulLog)}\n`);
  if (process.env.FUZZ_VERBOSE) process.stdout.write(output);
  let xml: string;
  try {
    xml = readFileSync(junit, 'utf8');
  } catch {
    throw new Error(`schemathesis wrote no report (exit ${code}):\n${output.slice(-4000)}`);
  }
  if (!/<testcase /.test(xml)) throw new Error(`schemathesis tested nothing (exit ${code}):\n${output.slice(-4000)}`);
  return parseJunit(xml, label);
}

/** What the stateful phase's chains reached: per operation (fuzz_hooks.py logs each answer), how many answers were 2xx of how many. */
function statefulReach(log: string): string {
  let lines: string[];
  try {
    lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    return 'none';
  }
  const byOperation = new Map<string, { ok: number; all: number }>();
  for (const line of lines) {
    const status = Number(line.slice(line.lastIndexOf(' ') + 1));
    const operation = line.slice(0, line.lastIndexOf(' '));
    const seen = byOperation.get(operation) ?? { ok: 0, all: 0 };
    seen.all++;
    if (status >= 200 && status < 300) seen.ok++;
    byOperation.set(operation, seen);
  }
  return [...byOperation]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([op, { ok, all }]) => `${op} ${ok}/${all}`)
    .join(', ');
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#10;/g, '\n')
    .replace(/&amp;/g, '&');
}

/** One Failure per distinct failure: schemathesis writes each as a numbered `N. Title` block of a testcase's failure text. */
function parseJunit(xml: string, key: string): Failure[] {
  const failures: Failure[] = [];
  for (const tc of xml.matchAll(/<testcase [^>]*?name="([^"]*)"[^>]*?(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const operation = unescapeXml(tc[1]!);
    for (const f of (tc[2] ?? '').matchAll(/<(failure|error)[^>]*?(?:message="([^"]*)")?[^>]*>([\s\S]*?)<\/\1>|<(failure|error)[^>]*?message="([^"]*)"[^>]*\/>/g)) {
      const text = unescapeXml(f[3] ?? f[2] ?? f[5] ?? '');
      const blocks = [...text.matchAll(/^- (.+)$/gm)];
      if (blocks.length === 0) failures.push({ key, operation, title: f[1] === 'error' || f[4] === 'error' ? 'Error' : text.split('\n')[0]!, text });
      for (const b of blocks) failures.push({ key, operation, title: b[1]!.trim(), text });
    }
  }
  return failures;
}

function countOf(failures: Failure[], name: CountName): Failure[] {
  return failures.filter((f) => (COUNTS[name] as readonly string[]).some((code) => f.title.startsWith(`${code} `)));
}

beforeAll(async () => {
  stack = await startStack();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'billflow-fuzz-'));
  const company = await createTenant(stack);
  companyKey = company.apiKey;
  fixtureOf.set(companyKey, { FUZZ_COMPANY: company.companyId });
  const organisationId = `org-${randomUUID().slice(0, 8)}`;
  const org = await http<{ apiKey: string }>(stack.apiUrl, 'POST', '/v1/organisations', { key: ADMIN_KEY, body: { id: organisationId, name: 'Fuzzed Group' } });
  expect(org.status, JSON.stringify(org.body)).toBe(201);
  orgKey = org.body.apiKey;
  fixtureOf.set(orgKey, { FUZZ_COMPANY: (await createTenant(stack, { organisationId })).companyId });
  // Real things for the fuzzer to find: a client, a project, a Draft and a Final invoice per key.
  for (const key of [companyKey, orgKey]) {
    const clientId = `cl-${randomUUID().slice(0, 6)}`;
    const projectId = `P-${randomUUID().slice(0, 6)}`;
    const calls: [string, string, unknown][] = [
      ['POST', '/v1/clients', { id: clientId, name: 'Riverside Architects', email: 'ap@riverside.example' }],
      ['POST', '/v1/projects', { id: projectId, name: 'Pier 4', clientId }],
    ];
    for (const [method, p, body] of calls) {
      const r = await http(stack.apiUrl, method, p, { key, body });
      expect(r.status, `${method} ${p}: ${JSON.stringify(r.body)}`).toBe(201);
    }
    Object.assign(fixtureOf.get(key)!, { FUZZ_CLIENT: clientId, FUZZ_PROJECT: projectId });
    for (const status of ['Draft', 'Final']) {
      const number = `INV-${randomUUID().slice(0, 8)}`;
      const lines = [{ description: 'Design, 10 h', quantity: 10, unitPrice: 15_000, amount: 150_000 }];
      const created = await http(stack.apiUrl, 'POST', '/v1/invoices', { key, body: { number, projectId, invoiceDate: '2026-11-24', dueDate: '2026-12-24', lines } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      if (status === 'Final') {
        const final = await http(stack.apiUrl, 'POST', `/v1/invoices/${number}/status`, { key, body: { status: 'Final' } });
        expect(final.status, JSON.stringify(final.body)).toBe(200);
      }
    }
  }
});

afterAll(async () => {
  await stack?.stop();
  // FUZZ_VERBOSE keeps the JUnit reports to read.
  if (tmp && !process.env.FUZZ_VERBOSE) rmSync(tmp, { recursive: true, force: true });
});

/** A raw request (fetch refuses TRACE): status and headers. */
function raw(method: string, p: string, key: string): Promise<{ status: number; allow: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${stack.apiUrl}${p}`, { method, headers: { authorization: `Bearer ${key}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, allow: res.headers.allow }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('what the fuzzer found, one by one', () => {
  it('refuses a NUL byte in any string, body or path, with 422 naming the field', async () => {
    const body = await http(stack.apiUrl, 'POST', '/v1/clients', { key: companyKey, body: { id: `cl-${randomUUID().slice(0, 6)}`, name: 'Nul\u0000Architects' } });
    expect(body.status, JSON.stringify(body.body)).toBe(422);
    expect(body.body).toMatchObject({ type: expect.stringContaining('invalid-request'), field: 'name' });
    const email = await http(stack.apiUrl, 'POST', '/v1/clients', { key: companyKey, body: { id: `cl-${randomUUID().slice(0, 6)}`, name: 'Nul', email: 'ap\u0000@riverside.example' } });
    expect(email.status, JSON.stringify(email.body)).toBe(422);
    expect(email.body).toMatchObject({ field: 'email' });
    const pathParam = await http(stack.apiUrl, 'GET', '/v1/clients/a%00b', { key: companyKey });
    expect(pathParam.status, JSON.stringify(pathParam.body)).toBe(422);
    expect(pathParam.body).toMatchObject({ field: 'id' });
    const query = await http(stack.apiUrl, 'GET', '/v1/invoices?clientId=%00', { key: companyKey });
    expect(query.status, JSON.stringify(query.body)).toBe(422);
    expect(query.body).toMatchObject({ field: 'clientId' });
  });

  it('refuses an integer beyond its column with 422, and the description states the bound', async () => {
    const r = await http(stack.apiUrl, 'POST', '/v1/companies', { key: ADMIN_KEY, body: { id: `co-${randomUUID().slice(0, 8)}`, name: 'Huge', reconcileSeconds: 64787489894690 } });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body).toMatchObject({ field: 'reconcileSeconds' });
    expect(openapi.components.schemas.CompanyCreate.properties.reconcileSeconds).toMatchObject({ maximum: 2_147_483_647 });
  });

  it('answers a method a path does not declare with 405 and Allow, before asking for a key', async () => {
    expect(await raw('TRACE', '/v1/invoices', companyKey)).toEqual({ status: 405, allow: 'POST, GET' });
    expect(await raw('DELETE', '/v1/companies', 'no-such-key')).toEqual({ status: 405, allow: 'GET, POST' });
    expect(await raw('TRACE', '/healthz', companyKey)).toEqual({ status: 405, allow: 'GET' });
  });

  it('takes Billflow-Company by its description: empty is 422, a company the key does not cover is 404', async () => {
    const empty = await http(stack.apiUrl, 'GET', '/v1/custom-tags', { key: companyKey, headers: { 'Billflow-Company': '' } });
    expect(empty.status, JSON.stringify(empty.body)).toBe(422);
    expect(empty.body).toMatchObject({ field: 'Billflow-Company' });
    const other = await http(stack.apiUrl, 'GET', '/v1/custom-tags', { key: orgKey, headers: { 'Billflow-Company': 'E' } });
    expect(other.status, JSON.stringify(other.body)).toBe(404);
  });

  it('takes a date of the years 0000-0099 as the date it is', async () => {
    const quickPay = { paymentType: 'Check', paymentMethod: 'Check', issuedOn: '0086-05-22', category: 'AR', receivedByUser: 'ops', receivedByUnit: 'HQ' };
    const r = await http(stack.apiUrl, 'POST', '/v1/invoices/INV-none/quick-pay', { key: companyKey, body: quickPay });
    expect(r.status, JSON.stringify(r.body)).toBe(404);
  });

  it("refuses a bill run's item cursor beyond its column with 422, and a finished run that printed nothing has no printout (409, not 404)", async () => {
    const run = await http<{ id: string; status: string; printoutUrl: string | null }>(stack.apiUrl, 'POST', '/v1/bill-runs', {
      key: companyKey,
      body: { criteria: { invoiceNumbers: [`INV-none-${randomUUID().slice(0, 8)}`] } },
      headers: { prefer: 'wait=30' },
    });
    expect(run.status, JSON.stringify(run.body)).toBe(201);
    expect(run.body).toMatchObject({ status: 'completed', printoutUrl: null });
    const items = await http(stack.apiUrl, 'GET', `/v1/bill-runs/${run.body.id}/items?after=2147483648`, { key: companyKey });
    expect(items.status, JSON.stringify(items.body)).toBe(422);
    expect(items.body).toMatchObject({ field: 'after' });
    const printout = await http(stack.apiUrl, 'GET', `/v1/bill-runs/${run.body.id}/printout`, { key: companyKey });
    expect(printout.status, JSON.stringify(printout.body)).toBe(409);
    expect(printout.body).toMatchObject({ type: expect.stringContaining('nothing-printed') });
  });

  it('answers a body that is not JSON with the documented 415', async () => {
    const r = await http(stack.apiUrl, 'POST', '/v1/clients', { key: companyKey, raw: 'id=x', headers: { 'content-type': 'text/plain' } });
    expect(r.status, JSON.stringify(r.body)).toBe(415);
    expect(openapi.paths['/v1/clients'].post.responses).toHaveProperty('415');
  });
});

describe('schemathesis against the running API', () => {
  it('finds no server error, no response off the description, no undocumented status and no valid request refused, with any key', async () => {
    const operator = operatorOperations();
    const onlyOperator = operator.flatMap((name) => ['--include-name', name]);
    const notOperator = operator.flatMap((name) => ['--exclude-name', name]);
    const failures = [
      ...(await fuzz('company key', companyKey, notOperator)),
      ...(await fuzz('organisation key', orgKey, notOperator)),
      ...(await fuzz('operator key', ADMIN_KEY, onlyOperator)),
      ...(await fuzz('no key', null, [])),
    ];
    const counts = Object.fromEntries((Object.keys(COUNTS) as CountName[]).map((name) => [name, countOf(failures, name)]));
    const other = failures.filter((f) => !Object.values(counts).some((list) => list.includes(f)));
    process.stdout.write(
      `[fuzz] ${Object.entries(counts)
        .map(([name, list]) => `${list.length} ${name}`)
        .join(', ')}, ${other.length} other failures\n`,
    );
    for (const f of failures) process.stdout.write(`[fuzz] ${f.key}: ${f.operation}: ${f.title}\n`);
    const detail = failures.map((f) => `${f.key}: ${f.operation}: ${f.title}\n${f.text}`).join('\n\n');
    expect(failures.length, detail.slice(0, 20_000)).toBe(0);
  }, 900_000);
});
