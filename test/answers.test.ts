/** The answer check every test's `http` runs (test/answers.ts): it finds what it must, by operation and JSON pointer. */
import { describe, expect, it } from 'vitest';
import { answerMismatches } from './answers.js';

describe('answers checked against the description', () => {
  it('passes an answer that matches, and leaves paths the description does not have alone', () => {
    expect(answerMismatches('GET', '/v1/receipts?limit=2', 200, 'application/json; charset=utf-8', { data: [], hasMore: false, nextCursor: null })).toEqual([]);
    expect(answerMismatches('GET', '/v1/sandbox/faults', 200, 'application/json', { anything: 1 })).toEqual([]);
    expect(answerMismatches('TRACE', '/v1/invoices', 405, 'application/problem+json', { type: 'x' })).toEqual([]);
  });

  it('names the operation, the status and the JSON pointer of a body off its schema', () => {
    const invoice = { number: 'INV-1', total: '150000', lines: [{ description: 'Design', amount: 1.5 }] };
    const found = answerMismatches('GET', '/v1/invoices/INV-1', 200, 'application/json', invoice);
    expect(found).toContain('GET /v1/invoices/{number} 200: /total must be integer {"type":"integer"}');
    expect(found).toContain('GET /v1/invoices/{number} 200: /lines/0/amount must be integer {"type":"integer"}');
  });

  it('refuses a status the operation does not list, a media type it does not declare, and a body where it declares none', () => {
    expect(answerMismatches('GET', '/v1/projects/P-1', 409, 'application/problem+json', {})).toEqual([
      expect.stringMatching(/^GET \/v1\/projects\/\{id\}: answered 409, which the description does not list/),
    ]);
    expect(answerMismatches('GET', '/v1/invoices/INV-1/pdf', 200, 'application/json', {})[0]).toMatch(/answered application\/json, the description declares application\/pdf/);
    expect(answerMismatches('DELETE', '/v1/webhook-endpoints/we_0', 204, 'application/json', { deleted: true })[0]).toMatch(/declares no body/);
  });
});
