/**
 * Timestamped HMAC signatures for webhooks, in the style of Stripe's:
 * header `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'BillPay-Signature';
const DEFAULT_TOLERANCE_SECONDS = 300;

function digest(secret: string, timestamp: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function signPayload(secret: string, body: string, now = Date.now()): string {
  const t = Math.floor(now / 1000);
  return `t=${t},v1=${digest(secret, t, body)}`;
}

/**
 * Returns why the signature is not acceptable, or null when it is. Several secrets: any of them may
 * have signed (a rotated secret during its overlap window).
 */
export function verifySignature(secret: string | readonly string[], body: string, header: string | undefined, opts: { now?: number; toleranceSeconds?: number } = {}): string | null {
  if (!header) return `missing ${SIGNATURE_HEADER} header`;
  const parts = new Map<string, string[]>();
  for (const piece of header.split(',')) {
    const [k, v] = piece.split('=', 2);
    if (!k || v === undefined) continue;
    parts.set(k.trim(), [...(parts.get(k.trim()) ?? []), v.trim()]);
  }
  const tText = parts.get('t')?.[0] ?? '';
  const t = Number(tText);
  const signatures = parts.get('v1') ?? [];
  if (!/^\d{1,12}$/.test(tText) || signatures.length === 0) return `malformed ${SIGNATURE_HEADER} header`;
  const age = Math.abs((opts.now ?? Date.now()) / 1000 - t);
  if (age > (opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS)) {
    return `stale signature: timestamp is ${Math.round(age)} s away from now`;
  }
  const expected = (typeof secret === 'string' ? [secret] : secret).map((s) => Buffer.from(digest(s, t, body), 'hex'));
  // Every pair is compared, so the time taken tells nothing about which secret or signature matched.
  let ok = false;
  for (const s of signatures) {
    if (!/^[0-9a-f]{64}$/i.test(s)) continue;
    const given = Buffer.from(s, 'hex');
    for (const e of expected) ok = timingSafeEqual(given, e) || ok;
  }
  return ok ? null : 'signature does not match the payload';
}
