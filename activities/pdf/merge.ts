/** One PDF from many, in order (a run's batch printout), with pdf-lib: pure JavaScript, no Chromium. */
import { PDFDocument } from 'pdf-lib';

export async function mergePdfs(pdfs: readonly Uint8Array[], title: string): Promise<Uint8Array> {
  const out = await PDFDocument.create();
  out.setTitle(title);
  out.setProducer('billflow');
  for (const bytes of pdfs) {
    const src = await PDFDocument.load(bytes);
    for (const page of await out.copyPages(src, src.getPageIndices())) out.addPage(page);
  }
  return out.save();
}
