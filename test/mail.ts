/**
 * Reading what the run's mail catcher (maildev) received, through its REST API, as a person would
 * read their inbox. The mailbox is shared by every test file of the run: find messages by a fresh
 * recipient address, never clear it.
 */
import { createHash, randomUUID } from 'node:crypto';

interface Address {
  address: string;
  name: string;
}

interface CaughtAttachment {
  contentType: string;
  fileName: string;
  /** The name maildev serves the file under (GET /email/:id/attachment/:generatedFileName). */
  generatedFileName: string;
  length?: number;
  /** md5 of the content, when maildev knows it. */
  checksum?: string;
}

export interface CaughtMessage {
  id: string;
  subject: string;
  text?: string;
  html?: string;
  from: Address[];
  to: Address[];
  headers: Record<string, string | string[]>;
  attachments: CaughtAttachment[] | null;
  envelope: { from: { address: string }; to: { address: string }[] };
  time: string;
}

export interface Mailbox {
  /** Every message received so far. */
  messages(): Promise<CaughtMessage[]>;
  /** Messages addressed (To or envelope) to `address`. */
  to(address: string): Promise<CaughtMessage[]>;
  /** Polls until a message satisfies `predicate`; fails naming the messages seen. */
  waitForMessage(predicate: (m: CaughtMessage) => boolean, timeoutMs?: number): Promise<CaughtMessage>;
  /** The bytes of an attachment, once maildev has written all of them. */
  attachment(message: CaughtMessage, fileName: string): Promise<Buffer>;
}

export function mailbox(mailDevUrl: string): Mailbox {
  const base = mailDevUrl.replace(/\/$/, '');
  const messages = async (): Promise<CaughtMessage[]> => {
    const res = await fetch(`${base}/email`);
    if (!res.ok) throw new Error(`maildev GET /email: ${res.status}`);
    return (await res.json()) as CaughtMessage[];
  };
  const addressedTo = (m: CaughtMessage, address: string) => {
    const a = address.toLowerCase();
    return (m.to ?? []).some((t) => t.address.toLowerCase() === a) || (m.envelope?.to ?? []).some((t) => t.address.toLowerCase() === a);
  };
  return {
    messages,
    async to(address) {
      return (await messages()).filter((m) => addressedTo(m, address));
    },
    async waitForMessage(predicate, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      let seen: CaughtMessage[] = [];
      for (;;) {
        seen = await messages();
        const hit = seen.find(predicate);
        if (hit) return hit;
        if (Date.now() > deadline) {
          throw new Error(
            `no matching message within ${timeoutMs} ms; ${seen.length} in the mailbox: ${seen
              .slice(-10)
              .map((m) => `"${m.subject}" to ${m.to?.map((t) => t.address).join(', ')}`)
              .join('; ')}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async attachment(message, fileName) {
      const att = (message.attachments ?? []).find((a) => a.fileName === fileName);
      if (!att) {
        throw new Error(`message "${message.subject}" has no attachment ${fileName} (has: ${(message.attachments ?? []).map((a) => a.fileName).join(', ') || 'none'})`);
      }
      // maildev lists a message as soon as it is parsed; the attachment file may still be being written.
      const deadline = Date.now() + 5_000;
      for (;;) {
        const res = await fetch(`${base}/email/${message.id}/attachment/${encodeURIComponent(att.generatedFileName)}`);
        const bytes = res.ok ? Buffer.from(await res.arrayBuffer()) : undefined;
        const complete =
          bytes !== undefined && (att.length === undefined || bytes.length === att.length) && (att.checksum === undefined || createHash('md5').update(bytes).digest('hex') === att.checksum);
        if (complete) return bytes;
        if (Date.now() > deadline) throw new Error(`attachment ${fileName} of "${message.subject}": ${res.status}, ${bytes?.length ?? 0} bytes`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** A recipient address no other test uses. */
export function freshAddress(label = 'client'): string {
  return `${label}-${randomUUID().slice(0, 12)}@example.test`;
}
