/**
 * Renders HTML to PDF in one warm Chromium per worker process. Pages are pooled and reused (a
 * fresh page per render costs more than the render itself), at most `concurrency` at once, and a
 * page is replaced after a number of uses so its memory is given back. A Chromium that dies
 * (killed, crashed, out of memory) is replaced by a new one for the next render, and a render it
 * interrupted is tried once more.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { WorkerMetrics } from '../../lib/metrics.js';
import { Semaphore } from '../../lib/semaphore.js';

const USES_PER_PAGE = 200;

// No outside network on our machines: keep Chromium from phoning home at start.
const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu'];

export interface RendererOptions {
  executablePath: string;
  concurrency: number;
  /** Where render times go (the worker's metrics; the benchmark's bare renderer has none). */
  metrics?: Pick<WorkerMetrics, 'pdfRenderSeconds'>;
}

export const PDF_OPTIONS = {
  format: 'Letter',
  printBackground: true,
  margin: { top: '0.5in', bottom: '0.5in', left: '0.5in', right: '0.5in' },
} as const;

interface PooledPage {
  page: Page;
  uses: number;
  /** Its renderer process died (killed, out of memory): the page is useless from then on. */
  crashed: boolean;
}

/** One launched Chromium with its offline context and idle pages. */
interface Session {
  browser: Browser;
  context: BrowserContext;
  idle: PooledPage[];
}

/** A render cut short because Chromium or the page's renderer process died; retryable. */
class RenderInterrupted extends Error {
  constructor(what: string, cause: unknown) {
    super(`PDF render interrupted: ${what} (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)})`, { cause });
    this.name = 'RenderInterrupted';
  }
}

export class PdfRenderer {
  private session: Session | null = null;
  private launching: Promise<Session> | null = null;
  private readonly slots: Semaphore;

  constructor(private readonly opts: RendererOptions) {
    this.slots = new Semaphore(opts.concurrency);
  }

  /** The running browser, or a new one when there is none yet or it has gone (killed, crashed). */
  private current(): Promise<Session> {
    // Playwright marks the browser disconnected (and emits 'disconnected') before it fails the calls that were under way.
    if (this.session?.browser.isConnected()) return Promise.resolve(this.session);
    this.launching ??= this.launch().finally(() => (this.launching = null));
    return this.launching;
  }

  private async launch(): Promise<Session> {
    // A dead browser's pages went with it; nothing of it is kept.
    this.session = null;
    // Loaded at the first render, not at start: a restarted worker polls its workflow tasks
    // (most of what waits after a crash) without first loading Playwright.
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: this.opts.executablePath, args: CHROMIUM_ARGS });
    try {
      // Offline context: templates must be self-contained; nothing is fetched while printing.
      const context = await browser.newContext({ offline: true, javaScriptEnabled: false });
      this.session = { browser, context, idle: [] };
      return this.session;
    } catch (e) {
      await browser.close().catch(() => {});
      throw e;
    }
  }

  async render(html: string): Promise<Buffer> {
    // Timed from the call, so a wait for a free page (the concurrency bound) shows in the figure.
    const end = this.opts.metrics?.pdfRenderSeconds.startTimer();
    const pdf = await this.slots.run(async () => {
      try {
        return await this.renderOnce(html);
      } catch (e) {
        if (!(e instanceof RenderInterrupted)) throw e;
        // Once more on a fresh page, in a new browser if the old one is gone; a second failure is the activity's to retry.
        return this.renderOnce(html);
      }
    });
    end?.();
    return pdf;
  }

  private async renderOnce(html: string): Promise<Buffer> {
    const session = await this.current();
    let pooled = session.idle.pop();
    try {
      if (!pooled) {
        const fresh: PooledPage = { page: await session.context.newPage(), uses: 0, crashed: false };
        fresh.page.once('crash', () => (fresh.crashed = true));
        pooled = fresh;
      }
      // No document.fonts.ready round trip: templates use only installed fonts (no @font-face,
      // and the context is offline), which are ready once the page has loaded.
      await pooled.page.setContent(html, { waitUntil: 'load' });
      const pdf = await pooled.page.pdf(PDF_OPTIONS);
      pooled.uses++;
      if (pooled.uses >= USES_PER_PAGE) await pooled.page.close().catch(() => {});
      else session.idle.push(pooled);
      return pdf;
    } catch (e) {
      const gone = !session.browser.isConnected() ? 'Chromium exited' : pooled?.crashed ? "the page's renderer process crashed" : null;
      // A page that failed is never used again.
      await pooled?.page.close().catch(() => {});
      throw gone ? new RenderInterrupted(gone, e) : e;
    }
  }

  async close(): Promise<void> {
    const session = this.session ?? (await this.launching?.catch(() => null));
    this.session = null;
    if (session) await session.browser.close();
  }
}
