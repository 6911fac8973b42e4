/**
 * How a message about a bill reaches a client. Email is the one channel today; another (SMS, a
 * customer portal, a letter service) is one more `Channel` in `createChannels`, and templates name
 * the channel they are written for.
 */
import { MailError, type MailAttachment, type Mailer } from './email/mailer.js';

interface ChannelMessage {
  subject: string;
  body: string;
  attachments: MailAttachment[];
  /** Stable per business identity (run + bill), so a retried send is recognisably the same message. */
  messageId: string;
  headers: Record<string, string>;
}

/** Contact details a channel picks its recipient from. */
interface Contact {
  email: string | null;
}

/**
 * A delivery that did not happen. `permanent`: retrying will not help (the recipient was refused,
 * or the client has no address for this channel); the bill is reported failed with the message.
 */
export class ChannelError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'ChannelError';
  }
}

export interface Channel {
  readonly name: string;
  /** The client's address on this channel; null when it has none. */
  recipient(contact: Contact): string | null;
  send(recipient: string, message: ChannelMessage): Promise<{ messageId: string }>;
}

function emailChannel(mailer: Mailer): Channel {
  return {
    name: 'email',
    recipient: (c) => (c.email && c.email.trim() !== '' ? c.email : null),
    async send(recipient, m) {
      try {
        return await mailer.send({ to: recipient, subject: m.subject, text: m.body, attachments: m.attachments, messageId: m.messageId, headers: m.headers });
      } catch (e) {
        if (e instanceof MailError) throw new ChannelError(e.message, e.permanent);
        throw e;
      }
    },
  };
}

export type ChannelName = 'email';

export function createChannels(deps: { mailer: Mailer }): Record<ChannelName, Channel> {
  return { email: emailChannel(deps.mailer) };
}
