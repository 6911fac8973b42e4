/**
 * The README's API section, `/docs` and `/openapi.json` say the same: every status and problem
 * `type` an operation can answer is in the description, and the README's table lists exactly those.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { docsHtml } from '../api/docs.js';
import { openapi } from '../api/openapi.js';

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

describe('the API contract as documented', () => {
  it('names the problem types of every problem answer', () => {
    const bare = operations.flatMap((op) => Object.entries(op.responses).filter(([, a]) => a.$ref).map(([status]) => `${op.name} ${status}`));
    expect(bare).toEqual([]);
  });

  it("lists in the README's API table exactly the statuses and problem types of /openapi.json", () => {
    // 405 is the contract's answer to a method a path does not declare, so no operation lists it.
    const readme = [...documented()].filter((p) => p !== '405 method-not-allowed').sort();
    expect(readme).toEqual([...described()].sort());
  });

  it('shows every operation, status and problem type on /docs', () => {
    const docs = docsHtml();
    for (const op of operations) {
      const [method, p] = op.name.split(' ') as [string, string];
      expect(docs).toContain(`${method}</span> <code>${p.replace(/&/g, '&amp;')}</code>`);
    }
    for (const pair of described()) expect(docs).toContain(`\`${pair.split(' ')[1]}\``);
  });
});
