/** Helpers that look at results the way a person would: PDF text, a browser. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { inject } from 'vitest';

const run = promisify(execFile);

/** The text of a PDF, through poppler's pdftotext (layout kept). */
export async function pdfText(pdf: Uint8Array): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'billflow-pdf-'));
  try {
    const file = path.join(dir, 'doc.pdf');
    await writeFile(file, pdf);
    await run('pdftotext', ['-layout', file, path.join(dir, 'doc.txt')]);
    return await readFile(path.join(dir, 'doc.txt'), 'utf8');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: inject('chromiumPath'),
    args: ['--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu'],
  });
}

/** Pays with the test card on the payment page open in `page`, part of what is owed when `amount` is given; answers the payment id the page shows. */
export async function payOnPage(page: Page, payerEmail: string, amount?: string): Promise<string> {
  if (amount) await page.fill('[name=amount]', amount);
  await page.fill('[name=payerName]', 'Pat Payer');
  await page.fill('[name=payerEmail]', payerEmail);
  await page.fill('[name=cardNumber]', '4242 4242 4242 4242');
  await page.fill('[name=expiry]', '12/30');
  await page.fill('[name=cvc]', '123');
  await page.getByRole('button', { name: 'Pay' }).click();
  return (await page.locator('#payment-id').textContent({ timeout: 15_000 }))!.trim();
}

/** Temporal's Java time-skipping server. The SDK waits a fixed 5 s for the JVM to answer; on a loaded 2-core machine a start can miss that once. */
export async function timeSkippingEnvironment(testServerPath: string, attempts = 3): Promise<TestWorkflowEnvironment> {
  for (let i = 1; ; i++) {
    try {
      return await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: testServerPath } } });
    } catch (e) {
      if (i >= attempts || !String(e).includes('did not start within')) throw e;
    }
  }
}
