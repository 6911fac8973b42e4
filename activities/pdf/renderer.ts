/**
 * Renders HTML to PDF in one warm Chromium per worker process. Pages are pooled and reused (a
 * fresh page per render costs more than the render itself), at most `concurrency` at once, and a
 * page is replaced after a number of uses so its memory is given back.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Semaphore } from '../../lib/semaphore.js';

const USES_PER_PAGE = 200;

// No outside network on our machines: keep Chromium from phoning home at start.
const CHROMIUM_ARGS = ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu'];

export interface RendererOptions {
  executablePath: string;
  concurrency: number;
}

export const PDF_OPTIONS = {
  format: 'Letter',
  printBackground: true,
  margin: { top: '0.5in', bottom: '0.5in', left: '0.5in', right: '0.5in' },
} as const;

interface PooledPage {
  page: Page;
  uses: number;
}

export class PdfRenderer {
  private started: Promise<{ browser: Browser; context: BrowserContext }> | null = null;
  private readonly idle: PooledPage[] = [];
  private readonly slots: Semaphore;

  constructor(private readonly opts: RendererOptions) {
    this.slots = new Semaphore(opts.concurrency);
  }

  private start(): Promise<{ browser: Browser; context: BrowserContext }> {
    this.started ??= (async () => {
      const browser = await chromium.launch({ executablePath: this.opts.executablePath, args: CHROMIUM_ARGS });
      // Offline context: templates must be self-contained; nothing is fetched while printing.
      const context = await browser.newContext({ offline: true, javaScriptEnabled: false });
      return { browser, context };
    })();
    return this.started;
  }

  async render(html: string): Promise<Buffer> {
    return this.slots.run(async () => {
      const { context } = await this.start();
      const pooled = this.idle.pop() ?? { page: await context.newPage(), uses: 0 };
      try {
        // No document.fonts.ready round trip: templates use only installed fonts (no @font-face,
        // and the context is offline), which are ready once the page has loaded.
        await pooled.page.setContent(html, { waitUntil: 'load' });
        return await pooled.page.pdf(PDF_OPTIONS);
      } finally {
        pooled.uses++;
        if (pooled.uses >= USES_PER_PAGE || pooled.page.isClosed()) await pooled.page.close().catch(() => {});
        else this.idle.push(pooled);
      }
    });
  }

  async close(): Promise<void> {
    const started = this.started;
    this.started = null;
    this.idle.length = 0;
    if (started) await (await started).browser.close();
  }
}
