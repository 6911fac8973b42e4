/** Identifiers and secrets of the sandbox: prefixed random strings, as Bill & Pay-style APIs use. */
import { createHash, randomBytes } from 'node:crypto';

export type IdPrefix = 'acct' | 'cus' | 'inv' | 'pay' | 'evt';

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

/** An unguessable token: 256 random bits, URL-safe. */
export function newToken(prefix = ''): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
