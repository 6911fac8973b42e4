/**
 * HTTP as a real ERP client (and a payer's browser) does it: every mutating call carries an
 * Idempotency-Key, and a call is retried with the same key on network errors, 5xx answers and
 * 409 request-in-progress, with backoff, until the call's deadline. A 503 provider-unavailable is
 * a refusal (nothing changed), handed back to the caller.
 */

export interface Answer<T = Json> {
  status: number;
  body: T;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are read loosely and checked field by field
export type Json = Record<string, any>;

/** A call that never got a final answer before its deadline. */
export class GaveUp extends Error {
  constructor(
    readonly call: string,
    readonly last: string,
  ) {
    super(`${call}: no final answer before the deadline (last: ${last})`);
    this.name = 'GaveUp';
  }
}

export interface RetryStats {
  networkErrors: number;
  serverErrors: number;
  inProgress: number;
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  idempotencyKey?: string;
  headers?: Record<string, string>;
  /** Give up after this long (default 120 s). */
  deadlineMs?: number;
}

const ATTEMPT_TIMEOUT_MS = 30_000;

export function httpClient(stats: RetryStats, stopAt: () => number) {
  return async function call<T = Json>(base: string, method: string, path: string, opts: CallOptions = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const deadline = Math.min(Date.now() + (opts.deadlineMs ?? 120_000), stopAt());
    const what = `${method} ${path}`;
    let last = 'not tried';
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(`${base}${path}`, { method, headers, body, signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS) });
        const text = await res.text();
        const parsed = (text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : { text }) as T & Json;
        const inProgress = res.status === 409 && String(parsed.type ?? '').endsWith('request-in-progress');
        // A change refused because the provider could not be reached is an answer (nothing changed): the caller decides.
        const refused = res.status === 503 && String(parsed.type ?? '').endsWith('provider-unavailable');
        if ((res.status < 500 && !inProgress) || refused) return { status: res.status, body: parsed };
        if (inProgress) stats.inProgress += 1;
        else stats.serverErrors += 1;
        last = `${res.status} ${String(parsed.type ?? '')
          .split('/')
          .pop()} ${String(parsed.detail ?? parsed.text ?? '').slice(0, 160)}`;
      } catch (e) {
        stats.networkErrors += 1;
        const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
        last = `${e instanceof Error ? e.message : String(e)}${cause}`;
      }
      const wait = Math.min(250 * 2 ** attempt, 3_000) * (0.5 + Math.random() / 2);
      if (Date.now() + wait > deadline) throw new GaveUp(what, last);
      await new Promise((r) => setTimeout(r, wait));
    }
  };
}

export type Call = ReturnType<typeof httpClient>;
