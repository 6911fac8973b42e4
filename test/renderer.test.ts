/**
 * The worker's PDF renderer when Chromium dies under it (killed, crashed, out of memory): the next
 * render gets a new browser, renders under way at the kill are tried again on it, and nothing
 * hangs or is left running.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { PdfRenderer } from '../activities/pdf/renderer.js';

const parentOf = (pid: string): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
};

/** This process's Chromium: the browser process is our child (its zygote and renderers are its descendants; /usr/bin/chromium execs the real binary). */
function browserPids(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      if (parentOf(name) === process.pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('chromium')) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function descendants(root: number): number[] {
  const ppid = new Map<number, number>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      ppid.set(Number(name), parentOf(name));
    } catch {
      // gone meanwhile
    }
  }
  const found = [root];
  for (let frontier = [root]; frontier.length > 0;) {
    frontier = [...ppid].filter(([, parent]) => frontier.includes(parent)).map(([pid]) => pid);
    found.push(...frontier);
  }
  return found;
}

const running = (pid: number) => {
  try {
    return !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

async function until(what: string, timeoutMs: number, ok: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Kills this process's Chromium with SIGKILL and waits until all of its processes are gone. */
async function killChromium(): Promise<number> {
  const [browser] = browserPids();
  expect(browser).toBeDefined();
  const all = descendants(browser!);
  process.kill(browser!, 'SIGKILL');
  await until('the killed Chromium and its children have exited', 10_000, () => !all.some(running));
  return browser!;
}

const invoice = (n: number, rows = 20) =>
  `<html><body><h1>Invoice INV-${n}</h1><table>${Array.from({ length: rows }, (_, i) => `<tr><td>Line ${i}</td><td>$${i}.00</td></tr>`).join('')}</table></body></html>`;

const isPdf = (b: Buffer) => b.subarray(0, 5).toString() === '%PDF-';

let renderer: PdfRenderer | undefined;
afterEach(async () => {
  await renderer?.close();
  renderer = undefined;
});

describe('PDF renderer after Chromium dies', () => {
  it('launches a new browser for the next render', async () => {
    renderer = new PdfRenderer({ executablePath: inject('chromiumPath'), concurrency: 2 });
    expect(isPdf(await renderer.render(invoice(1)))).toBe(true);
    const killed = await killChromium();

    const started = Date.now();
    expect(isPdf(await renderer.render(invoice(2)))).toBe(true);
    console.log(`render after the kill (new browser): ${Date.now() - started} ms`);
    const [relaunched] = browserPids();
    expect(relaunched).toBeDefined();
    expect(relaunched).not.toBe(killed);
    // And it stays usable: the pooled pages of the new browser serve the next renders.
    expect(isPdf(await renderer.render(invoice(3)))).toBe(true);
    expect(browserPids()).toEqual([relaunched]);
  });

  it('renders every document under way or queued at the kill, and never hangs', async () => {
    renderer = new PdfRenderer({ executablePath: inject('chromiumPath'), concurrency: 2 });
    const r = renderer;
    await r.render(invoice(0));
    // Long documents, so renders are under way when Chromium dies.
    const renders = Array.from({ length: 8 }, (_, i) => r.render(invoice(10 + i, 3_000)));
    let done = 0;
    for (const p of renders)
      void p.then(
        () => done++,
        () => done++,
      );
    await until('a first render finished', 60_000, () => done > 0);
    expect(done).toBeLessThan(renders.length);
    await killChromium();

    const started = Date.now();
    const results = await Promise.race([Promise.allSettled(renders), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('renders hang after the kill')), 90_000))]);
    console.log(`${renders.length} concurrent renders settled ${Date.now() - started} ms after the kill: ${results.filter((x) => x.status === 'fulfilled').length} rendered`);
    // The renders Chromium died under were tried again on the new browser, so every one of them rendered.
    for (const res of results) {
      expect(res.status === 'fulfilled' ? isPdf(res.value) : String(res.reason)).toBe(true);
    }
    expect(isPdf(await r.render(invoice(99)))).toBe(true);
    expect(browserPids()).toHaveLength(1);
  });
});
