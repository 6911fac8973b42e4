/** The JSON log lines every billflow process writes (lib/log.ts, pino): fields kept, secrets redacted wherever they sit. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { lines, out };
}

describe('createLogger', () => {
  it('writes one JSON line per event with the component, time, level and the fields given', () => {
    const { lines, out } = capture();
    const log = createLogger('api', out);
    log('webhook payment not applied', { companyId: 'acme', paymentId: 'pay_1', requestId: 'req-1' });
    log('webhook dispatch failed; trying again', { level: 'WARN', error: 'ECONNREFUSED' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ component: 'api', level: 'INFO', msg: 'webhook payment not applied', companyId: 'acme', paymentId: 'pay_1', requestId: 'req-1' });
    expect(new Date(lines[0]!.at as string).toISOString()).toBe(lines[0]!.at);
    expect(lines[1]).toMatchObject({ level: 'WARN', error: 'ECONNREFUSED' });
  });

  it("adds a child logger's bindings to each of its lines", () => {
    const { lines, out } = capture();
    const log = createLogger('worker', out).child({ companyId: 'acme', invoiceNumber: 'INV-1', requestId: 'req-2' });
    log('activity completed', { activityType: 'saveInvoice' });
    expect(lines[0]).toMatchObject({ component: 'worker', companyId: 'acme', invoiceNumber: 'INV-1', requestId: 'req-2', activityType: 'saveInvoice' });
  });

  it('redacts secrets by field name at the top and nested, keeping the rest', () => {
    const { lines, out } = capture();
    const log = createLogger('api', out);
    log('company registered', {
      apiKey: 'bf_live_top',
      provider: { apiKey: 'sk_nested', webhookSecret: 'whsec_nested', url: 'http://provider' },
      req: { headers: { authorization: 'Bearer bf_deep', cookie: 'billflow_dashboard=bf_cookie' } },
    });
    const text = JSON.stringify(lines[0]);
    for (const secret of ['bf_live_top', 'sk_nested', 'whsec_nested', 'bf_deep', 'bf_cookie']) expect(text).not.toContain(secret);
    expect(lines[0]).toMatchObject({ apiKey: '[redacted]', provider: { apiKey: '[redacted]', webhookSecret: '[redacted]', url: 'http://provider' } });
    expect((lines[0]!.req as { headers: Record<string, string> }).headers.authorization).toBe('[redacted]');
  });
});
