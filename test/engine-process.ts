/** Waiting on and calling an engine started as its own process (`npm start`, `npm run cluster`) in a test. */

/**
 * An `until(what, timeoutMs, probe)` that polls `probe` every `everyMs` until it answers (anything
 * but undefined); past the deadline it fails with the last error and the engine's output so far.
 */
export function waiter(output: () => string, everyMs: number) {
  return async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let last: unknown;
      try {
        const v = await probe();
        if (v !== undefined) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (${String(last)})` : ''}\n--- engine output ---\n${output()}`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  };
}

/** One HTTP call to the engine; the body is read as JSON when it is JSON. */
export async function call(method: string, url: string, key: string | null, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> | null };
}
