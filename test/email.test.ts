/**
 * Invoice emails over real SMTP into the run's mail catcher (maildev), read back through its REST
 * API the way the client would read them: recipient, subject, text, the PDF attached.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createMailer, MailError, type Mailer } from '../activities/email/mailer.js';
import { DEFAULT_EMAIL_TEMPLATE, renderInvoiceEmail, validateEmailTemplate, type InvoiceEmailData } from '../activities/email/invoice-email.js';
import { PdfRenderer } from '../activities/pdf/renderer.js';
import { DomainError } from '../domain/money.js';
import { smtpConfig } from '../lib/config.js';
import { freePort } from '../lib/temporal-dev.js';
import { freshAddress, mailbox } from './mail.js';
import { pdfText } from './support.js';

const box = mailbox(inject('mailDevUrl'));
let mailer: Mailer;
let renderer: PdfRenderer;
let pdf: Buffer;

function invoiceData(to: string, payNowUrl: string | null): InvoiceEmailData {
  return {
    company: { name: 'Acme Engineering & Sons' },
    client: { id: 'CL-1', name: 'Riverside Architects', email: to },
    invoice: { number: 'INV-1001', invoiceDate: '2026-11-24', dueDate: '2026-12-24', currency: 'USD', total: 123456, outstanding: 100000 },
    payNowUrl,
  };
}

beforeAll(async () => {
  mailer = createMailer(smtpConfig({ SMTP_HOST: '127.0.0.1', SMTP_PORT: String(inject('smtpPort')) }));
  renderer = new PdfRenderer({ executablePath: inject('chromiumPath'), concurrency: 1 });
  pdf = await renderer.render('<html><body><h1>Invoice INV-1001</h1><p>Total $1,234.56</p></body></html>');
});

afterAll(async () => {
  mailer?.close();
  await renderer?.close();
});

describe('invoice email', () => {
  it("carries the Pay Now URL when the client's template uses the tag, with the PDF attached", async () => {
    const to = freshAddress();
    const payNowUrl = 'http://127.0.0.1:4010/pay/inv_123?token=a1b2&x=y';
    const template = {
      subject: '{{company.name}}: invoice {{invoice.number}} ({{invoice.outstanding}} due {{invoice.dueDate}})',
      body: 'Hello {{client.name}},\n\nInvoice {{invoice.number}} of {{invoice.invoiceDate}}: {{invoice.total}}.\nPay online: {{payNowUrl}}\n',
    };
    const email = renderInvoiceEmail(template, invoiceData(to, payNowUrl));
    expect(email.usesPayNowUrl).toBe(true);

    const sent = await mailer.send({
      to,
      subject: email.subject,
      text: email.text,
      attachments: [{ filename: 'INV-1001.pdf', content: pdf, contentType: 'application/pdf' }],
      headers: { 'X-Billflow-Invoice': 'INV-1001' },
    });
    expect(sent.messageId).toMatch(/^<.+>$/);

    const msg = await box.waitForMessage((m) => m.to.some((t) => t.address === to));
    expect(msg.subject).toBe('Acme Engineering & Sons: invoice INV-1001 ($1,000.00 due 2026-12-24)');
    expect(msg.from[0]).toMatchObject({ address: 'billing@billflow.local', name: 'billflow' });
    expect(msg.to.map((t) => t.address)).toEqual([to]);
    expect(msg.headers['x-billflow-invoice']).toBe('INV-1001');
    // Plain text, unescaped: the URL is the one the provider gave, character for character.
    expect(msg.text).toContain(`Pay online: ${payNowUrl}`);
    expect(msg.text).toContain('Hello Riverside Architects,');
    expect(msg.text).toContain('Invoice INV-1001 of 2026-11-24: $1,234.56.');

    expect(msg.attachments?.map((a) => [a.fileName, a.contentType])).toEqual([['INV-1001.pdf', 'application/pdf']]);
    const bytes = await box.attachment(msg, 'INV-1001.pdf');
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');
    expect(bytes.equals(pdf)).toBe(true);
    expect(await pdfText(bytes)).toContain('Invoice INV-1001');
  });

  it('leaves the Pay Now URL out with the default template', async () => {
    const to = freshAddress();
    const payNowUrl = 'http://127.0.0.1:4010/pay/inv_456';
    const email = renderInvoiceEmail(null, invoiceData(to, payNowUrl));
    expect(email.usesPayNowUrl).toBe(false);
    await mailer.send({ to, subject: email.subject, text: email.text, attachments: [{ filename: 'INV-1001.pdf', content: pdf, contentType: 'application/pdf' }] });

    const msg = await box.waitForMessage((m) => m.to.some((t) => t.address === to));
    expect(msg.subject).toBe('Invoice INV-1001 from Acme Engineering & Sons');
    expect(msg.text).toContain('Dear Riverside Architects,');
    expect(msg.text).toContain('for $1,234.56');
    expect(msg.text).toContain('$1,000.00 is due by 2026-12-24');
    expect(msg.text).not.toContain(payNowUrl);
    expect(msg.text).not.toContain('/pay/');
    expect((await box.attachment(msg, 'INV-1001.pdf')).equals(pdf)).toBe(true);
    // Exactly one message reached this recipient.
    expect(await box.to(to)).toHaveLength(1);
  });

  it('can put the Pay Now URL in conditionally', () => {
    const template = { subject: 'Invoice {{invoice.number}}', body: '{{#if payNowUrl}}Pay: {{payNowUrl}}{{else}}Pay by cheque.{{/if}}' };
    expect(renderInvoiceEmail(template, invoiceData('a@example.test', 'https://pay.example/x')).text).toBe('Pay: https://pay.example/x');
    const withoutUrl = renderInvoiceEmail(template, invoiceData('a@example.test', null));
    expect(withoutUrl.text).toBe('Pay by cheque.');
    expect(withoutUrl.usesPayNowUrl).toBe(true);
  });
});

describe('email templates', () => {
  it('accepts every documented tag and the default template', () => {
    expect(() => validateEmailTemplate(DEFAULT_EMAIL_TEMPLATE)).not.toThrow();
    expect(() =>
      validateEmailTemplate({
        subject: '{{invoice.number}}',
        body: '{{company.name}} {{client.name}} {{invoice.number}} {{invoice.invoiceDate}} {{invoice.dueDate}} {{invoice.total}} {{invoice.outstanding}} {{payNowUrl}} {{{payNowUrl}}} {{!-- a comment --}}',
      }),
    ).not.toThrow();
  });

  it('refuses an unknown tag, naming it', () => {
    let error: unknown;
    try {
      validateEmailTemplate({ subject: 'Invoice {{invoice.number}}', body: 'Amount due: {{bill.nonsense}}' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect((error as DomainError).type).toBe('invalid-email-template');
    expect((error as DomainError).field).toBe('emailTemplate.body');
    expect((error as DomainError).message).toContain('{{bill.nonsense}}');
    // Rendering with such a template is refused the same way.
    expect(() => renderInvoiceEmail({ subject: '{{client.nmae}}', body: '' }, invoiceData('a@example.test', null))).toThrow(/\{\{client\.nmae\}\}/);
  });

  it('refuses helpers, partials, parent paths and broken syntax', () => {
    for (const body of ['{{lookup invoice "number"}}', '{{> footer}}', '{{#each invoice}}{{this}}{{/each}}', '{{../payNowUrl}}', '{{@root.payNowUrl}}', '{{invoice.number']) {
      expect(() => validateEmailTemplate({ subject: 'x', body }), body).toThrow(DomainError);
    }
  });
});

describe('SMTP configuration', () => {
  it('speaks plain SMTP only to a loopback mail catcher, STARTTLS or implicit TLS elsewhere', () => {
    expect(smtpConfig({})).toMatchObject({ host: '127.0.0.1', port: 1025, secure: false, ignoreTLS: true, from: 'billflow <billing@billflow.local>' });
    expect(smtpConfig({ SMTP_HOST: 'smtp.example.com', SMTP_PORT: '587', SMTP_USER: 'u', SMTP_PASS: 'p' })).toMatchObject({
      host: 'smtp.example.com',
      port: 587,
      secure: false,
      ignoreTLS: false,
      auth: { user: 'u', pass: 'p' },
    });
    expect(smtpConfig({ SMTP_HOST: 'smtp.example.com', SMTP_PORT: '465', SMTP_SECURE: 'true', MAIL_FROM: 'Acme <ar@acme.example>' })).toMatchObject({
      secure: true,
      ignoreTLS: false,
      from: 'Acme <ar@acme.example>',
    });
    expect(smtpConfig({}).auth).toBeUndefined();
  });

  it('reports an unreachable server as a temporary failure (the activity retries)', async () => {
    const down = createMailer(smtpConfig({ SMTP_PORT: String(await freePort()) }));
    try {
      const error = await down.send({ to: freshAddress(), subject: 's', text: 't', attachments: [] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MailError);
      expect((error as MailError).permanent).toBe(false);
    } finally {
      down.close();
    }
  });
});
