/**
 * Outgoing email over SMTP (nodemailer), configured from the environment (`smtpConfig` in
 * lib/config.ts): the embedded mail catcher under npm start and in tests, any SMTP server in
 * production.
 */
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import type { SmtpConfig } from '../../lib/config.js';

export interface MailAttachment {
  filename: string;
  content: Buffer;
  contentType: string;
}

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  attachments: MailAttachment[];
  headers?: Record<string, string>;
  /**
   * A stable Message-ID (e.g. from the invoice's identity and revision, `<…@billflow>`), so a
   * retried send is recognisably the same message. Generated when omitted.
   */
  messageId?: string;
}

export interface Mailer {
  /** The sender every message carries (MAIL_FROM). */
  readonly from: string;
  send(mail: OutgoingMail): Promise<{ messageId: string }>;
  close(): void;
}

/**
 * A send that failed. `permanent` is true when the server refused the message for good (an SMTP
 * 5xx reply, e.g. an unknown mailbox, or authentication refused): retrying will not help. Connection
 * failures, timeouts and 4xx replies are temporary.
 */
export class MailError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly responseCode?: number,
  ) {
    super(message);
    this.name = 'MailError';
  }
}

function classify(e: unknown): MailError {
  const err = e as { message?: string; responseCode?: number; code?: string };
  const code = typeof err.responseCode === 'number' ? err.responseCode : undefined;
  const permanent = (code !== undefined && code >= 500) || err.code === 'EAUTH' || err.code === 'EENVELOPE';
  return new MailError(`SMTP send failed: ${err.message ?? String(e)}`, permanent, code);
}

export function createMailer(cfg: SmtpConfig): Mailer {
  const options: SMTPPool.Options = {
    // Bill runs send hundreds of messages: reuse a few connections instead of a handshake per message.
    pool: true,
    maxConnections: 3,
    maxMessages: 100,
    host: cfg.host,
    port: cfg.port,
    secure: cfg.secure,
    ignoreTLS: cfg.ignoreTLS,
    // Fail within an activity's timeout rather than nodemailer's minutes-long defaults.
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
    ...(cfg.auth ? { auth: cfg.auth } : {}),
  };
  const transport = nodemailer.createTransport(options);
  return {
    from: cfg.from,
    async send(mail) {
      try {
        const info = await transport.sendMail({
          from: cfg.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          ...(mail.html !== undefined ? { html: mail.html } : {}),
          ...(mail.headers ? { headers: mail.headers } : {}),
          ...(mail.messageId ? { messageId: mail.messageId } : {}),
          attachments: mail.attachments.map((a) => ({ filename: a.filename, content: a.content, contentType: a.contentType })),
        });
        if (info.rejected.length > 0) {
          throw new MailError(`SMTP server refused ${info.rejected.map(String).join(', ')}`, true);
        }
        return { messageId: info.messageId };
      } catch (e) {
        throw e instanceof MailError ? e : classify(e);
      }
    },
    close() {
      transport.close();
    },
  };
}
