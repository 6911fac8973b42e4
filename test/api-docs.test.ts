/**
 * The README's API section and `/openapi.json` say the same: every status and problem `type` an
 * operation can answer is in the description, and the README's table lists exactly those. Every
 * request example of the description is valid. (`/docs` renders it in Chromium: test/docs-page.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openapi } from '../api/openapi.js';
import { schemaAjv } from '../lib/json-schema.js';
import { ROOT } from '../lib/paths.js';

type Answer = { $ref?: string; description?: string; content?: Record<string, unknown> };
const operations = Object.entries(openapi.paths as unknown as Record<string, Record<string, { responses: Record<string, Answer> }>>).flatMap(([p, item]) =>
  Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${p}`, responses: op.responses })),
);

/** "status type" pairs of every problem answer of the description. */
function described(): Set<string> {
  const pairs = new Set<string>();
  for (const op of operations) {
    for (const [status, answer] of Object.entries(op.responses)) {
      if (!answer.content?.['application/problem+json']) continue;
      for (const m of (answer.description ?? '').matchAll(/`([a-z-]+)`/g)) pairs.add(`${status} ${m[1]}`);
    }
  }
  return pairs;
}

/** "status type" pairs of the README's API table: each status number applies to the `type`s after it in the first cell. */
function documented(): Set<string> {
  const readme = readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## API\n'), readme.indexOf('\n## ', readme.indexOf('\n## API\n') + 1));
  const pairs = new Set<string>();
  for (const row of section.matchAll(/^\| (\d{3}[^|]*)\|/gm)) {
    let status = '';
    for (const token of row[1]!.matchAll(/(\d{3})|`([a-z-]+)`/g)) {
      if (token[1]) status = token[1];
      else pairs.add(`${status} ${token[2]}`);
    }
  }
  return pairs;
}

/** Every .ts file under `dir` of the repository. */
function sources(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(ROOT, dir, f), 'utf8'));
}

/**
 * "status type" pairs of every problem billflow's API code can answer: HttpProblems thrown in api/
 * and lib/, domain rule errors (422, api/app.ts), the workflows' rule failures as api/temporal-errors.ts
 * maps them, and the providers' webhook verdicts (400, api/routes/webhooks.ts).
 */
function answeredByCode(): Set<string> {
  const pairs = new Set<string>();
  for (const text of [...sources('api'), ...sources('lib')]) {
    for (const m of text.matchAll(/HttpProblem\(\s*(\d{3}),\s*'([a-z-]+)'/g)) pairs.add(`${m[1]} ${m[2]}`);
    for (const m of text.matchAll(/\[(\d{3}), '([a-z-]+)'\]/g)) pairs.add(`${m[1]} ${m[2]}`);
  }
  for (const text of [...sources('domain'), ...sources('activities')]) for (const m of text.matchAll(/DomainError\(\s*'([a-z-]+)'/g)) pairs.add(`422 ${m[1]}`);
  for (const text of sources('activities/provider')) for (const m of text.matchAll(/why[^}\n]*type: '([a-z-]+)'/g)) pairs.add(`400 ${m[1]}`);
  return pairs;
}

/** "status type" pairs of the README's table of problem types, one row per type. */
function typeTable(): Set<string> {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('Every problem `type`, one by one');
  const table = readme.slice(start, readme.indexOf('\n\n', readme.indexOf('| --- |', start)));
  return new Set([...table.matchAll(/^\| `([a-z-]+)` \| (\d{3}) \|/gm)].map((m) => `${m[2]} ${m[1]}`));
}

describe('the API contract as documented', () => {
  it('names the problem types of every problem answer', () => {
    const bare = operations.flatMap((op) =>
      Object.entries(op.responses)
        .filter(([, a]) => a.$ref)
        .map(([status]) => `${op.name} ${status}`),
    );
    expect(bare).toEqual([]);
  });

  it("lists in the README's API table exactly the statuses and problem types of /openapi.json", () => {
    // 405 is the contract's answer to a method a path does not declare, so no operation lists it.
    const readme = [...documented()].filter((p) => p !== '405 method-not-allowed').sort();
    expect(readme).toEqual([...described()].sort());
  });

  it("lists in the README's table of problem types every type the code can answer, with its status, and no other", () => {
    const code = answeredByCode();
    // The sources are read: a handful of the types each way of answering gives proves the patterns still match.
    for (const pair of ['404 not-found', '422 company-required', '409 illegal-transition', '422 invalid-lines', '400 invalid-signature', '500 internal']) expect(code).toContain(pair);
    expect([...typeTable()].sort()).toEqual([...new Set([...code, ...described()])].sort());
  });

  it('links each answer to operations that exist, filling path parameters they have from fields the answer declares', () => {
    type Schema = { $ref?: string; properties?: Record<string, Schema>; items?: Schema };
    type Link = { operationRef: string; parameters?: Record<string, string>; requestBody?: unknown };
    type Op = { parameters?: { name: string; in: string }[]; requestBody?: unknown; responses: Record<string, { links?: Record<string, Link>; content?: Record<string, { schema: Schema }> }> };
    const paths = openapi.paths as unknown as Record<string, Record<string, Op>>;
    const schemas = openapi.components.schemas as unknown as Record<string, Schema>;
    const deref = (s: Schema): Schema => (s.$ref ? deref(schemas[s.$ref.split('/').pop()!]!) : s);
    /** The schema a `$response.body#/a/0/b` pointer names in the answer's schema (a number steps into an array's items), or undefined. */
    const at = (schema: Schema, pointer: string): Schema | undefined =>
      pointer
        .split('/')
        .filter(Boolean)
        .reduce<Schema | undefined>((s, key) => (s ? (/^\d+$/.test(key) ? deref(s).items : deref(s).properties?.[key]) : undefined), schema);
    // A whole value (`$response.body#/id`) or embedded in a string (`P-{$response.body#/id}`).
    const expressions = (v: unknown): string[] =>
      typeof v === 'string'
        ? v.startsWith('$')
          ? [v]
          : [...v.matchAll(/\{(\$[^}]+)\}/g)].map((m) => m[1]!)
        : Array.isArray(v)
          ? v.flatMap(expressions)
          : v && typeof v === 'object'
            ? Object.values(v).flatMap(expressions)
            : [];
    let count = 0;
    for (const [p, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, answer] of Object.entries(op.responses)) {
          for (const [name, link] of Object.entries(answer.links ?? {})) {
            count++;
            const where = `${method.toUpperCase()} ${p} ${status} ${name}`;
            const [, target, targetMethod] = /^#\/paths\/(.+)\/([a-z]+)$/.exec(link.operationRef)!;
            const targetOp = paths[target!.replace(/~1/g, '/').replace(/~0/g, '~')]?.[targetMethod!];
            expect(targetOp, where).toBeDefined();
            for (const param of Object.keys(link.parameters ?? {})) {
              expect(
                targetOp!.parameters?.some((q) => q.name === param && q.in === 'path'),
                `${where}: ${param}`,
              ).toBe(true);
            }
            if (link.requestBody) expect(targetOp!.requestBody, `${where}: the target takes no body`).toBeDefined();
            const source = answer.content?.['application/json']?.schema;
            for (const e of expressions([link.parameters, link.requestBody])) {
              const pointer = /^\$response\.body#(\/.*)$/.exec(e)?.[1];
              expect(pointer, `${where}: ${e}`).toBeDefined();
              expect(source && at(source, pointer!), `${where}: ${e} is not a field of the answer`).toBeDefined();
            }
          }
        }
      }
    }
    expect(count).toBeGreaterThan(100);
  });

  it('gives every request body and path parameter an example that its schema takes', () => {
    type Op = { parameters?: { name: string; in: string; schema: object; example?: unknown }[]; requestBody?: { content: Record<string, { schema: object; example?: unknown }> } };
    const ajv = schemaAjv({ allErrors: true });
    ajv.addSchema({ $id: 'billflow', components: openapi.components });
    const check = (where: string, schema: object, example: unknown) => {
      expect(example, `${where}: no example`).toBeDefined();
      // Refs point into the description's components, which the validator holds under the id "billflow".
      const validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"billflow#/components/')) as object);
      expect(validate(structuredClone(example)), `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    };
    let bodies = 0;
    for (const [p, item] of Object.entries(openapi.paths as unknown as Record<string, Record<string, Op>>)) {
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${p}`;
        for (const param of (op.parameters ?? []).filter((q) => q.in === 'path')) check(`${where} ${param.name}`, param.schema, param.example);
        for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
          bodies++;
          check(`${where} ${type}`, media.schema, media.example);
        }
      }
    }
    expect(bodies).toBeGreaterThan(20);
  });

  it('gives each example a real-looking value, not a placeholder', () => {
    const text = JSON.stringify(openapi.paths);
    for (const example of ['"example":"INV-2026-0042"', '"clientId":"CL-ACME"', '"invoiceDate":"2026-11-30"', '"amount":735000']) expect(text).toContain(example);
    expect(text).not.toMatch(/"example":"(string|foo|bar|test|x+)"/i);
  });
});
