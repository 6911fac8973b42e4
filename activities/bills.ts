/**
 * Bill sending runs and bill communications: selecting a run's bills, delivering them in batches
 * (email with the PDF, into the printout, or a template message), the batch printout, and one
 * bill's PDF on demand. Built from the same dependencies as the other activities.
 *
 * A bill's PDF shows its current figures: the activity reads the invoice's state through its
 * workflow's `state` Query (the source of truth, with the lines the read model does not keep, and
 * payments applied since Final) and renders it with `invoiceHtml`. A printed bill's PDF (and the
 * on-demand one) is kept as a document keyed by the rendered HTML's hash, so the same figures are
 * rendered once whatever asks for them and the printout is merged from exactly what was printed;
 * an emailed bill's PDF is not stored a second time (the run records its sha256), which keeps a
 * 1,000-bill run's database writes small.
 */
import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DomainError } from '../domain/money.js';
import { billTagValues, DEFAULT_BILL_MESSAGE, renderMessage, type TemplateText } from '../domain/tags.js';
import { stableUuid } from '../lib/ids.js';
import { Semaphore } from '../lib/semaphore.js';
import type { BillCriteria, BillOutcome, BillRunCounts, BillRunKind } from '../workflows/bill-run-contract.js';
import { invoiceWorkflowId, stateQuery, type InvoiceState } from '../workflows/contract.js';
import { ChannelError, createChannels, type Channel } from './channels.js';
import type { ActivityDeps } from './index.js';
import { linked } from './pay-links.js';
import { invoiceHtml, type DocumentParties } from './pdf/invoice-document.js';
import { mergePdfs } from './pdf/merge.js';

/** Bills of one batch in progress at once (their PDFs still wait for the renderer's own bound). */
const ITEM_CONCURRENCY = 6;
const QUERY_TIMEOUT_MS = 15_000;

interface RunRow {
  kind: BillRunKind;
  status: string;
  criteria: BillCriteria;
  template_id: string | null;
  retry_of: string | null;
  total: number;
  company_name: string;
}

interface ItemRow {
  seq: number;
  invoice_number: string;
  client_id: string;
  delivery: 'email' | 'print';
  client_name: string;
  client_email: string | null;
}

interface Template extends TemplateText {
  channel: string;
}

type Decision =
  | { outcome: 'sent'; recipient: string; messageId: string; documentSha256: string | null; channel: string }
  | { outcome: 'printed'; documentId: string; documentSha256: string }
  | { outcome: 'skipped-held' | 'failed'; reason: string };

const sha256 = (b: string | Uint8Array) => createHash('sha256').update(b).digest('hex');

export function createBillActivities({ sql, renderer, mailer, publicApiUrl }: ActivityDeps) {
  const channels: Record<string, Channel> = createChannels({ mailer });

  async function loadRun(companyId: string, runId: string): Promise<RunRow> {
    const [run] = await sql<RunRow[]>`
      SELECT r.kind, r.status, r.criteria, r.template_id, r.retry_of, r.total, co.name AS company_name
      FROM bill_runs r JOIN companies co ON co.id = r.company_id
      WHERE r.company_id = ${companyId} AND r.id = ${runId}`;
    if (!run) throw ApplicationFailure.nonRetryable(`bill run ${runId} of company ${companyId} not found`, 'UnknownBillRun');
    return run;
  }

  /**
   * The invoice as its workflow last published it (the read model keeps the whole state); a row
   * written before the snapshot existed is asked of the workflow itself.
   */
  async function invoiceState(companyId: string, number: string): Promise<InvoiceState> {
    const [row] = await sql<{ state: InvoiceState | null }[]>`SELECT state FROM invoices WHERE company_id = ${companyId} AND number = ${number}`;
    const client = Context.current().client;
    const state = row?.state ?? (await client.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => client.workflow.getHandle(invoiceWorkflowId(companyId, number)).query(stateQuery)));
    // The bill's PDF and message carry billflow's link, like the invoice's own.
    return linked(sql, publicApiUrl, state);
  }

  /**
   * The bill's PDF with these figures, rendered once per distinct content and kept (print bills go
   * into the printout from here; the on-demand endpoint serves it).
   */
  async function billDocument(state: InvoiceState, parties: DocumentParties): Promise<{ documentId: string; sha256: string; bytes: Buffer }> {
    const html = invoiceHtml(state, parties);
    const documentId = stableUuid(state.companyId, state.number, 'bill-pdf', sha256(html));
    const [kept] = await sql<{ sha256: string; bytes: Buffer }[]>`SELECT sha256, bytes FROM documents WHERE id = ${documentId}`;
    if (kept) return { documentId, ...kept };
    const pdf = await renderer.render(html);
    const digest = sha256(pdf);
    const inserted = await sql`
      INSERT INTO documents (id, company_id, kind, content_type, sha256, bytes, filename)
      VALUES (${documentId}, ${state.companyId}, 'bill-pdf', 'application/pdf', ${digest}, ${pdf}, ${`invoice-${state.number}.pdf`})
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (inserted.length > 0) return { documentId, sha256: digest, bytes: pdf };
    // Rendered at the same moment by someone else: theirs is the one kept, and the one to send.
    const [stored] = await sql<{ sha256: string; bytes: Buffer }[]>`SELECT sha256, bytes FROM documents WHERE id = ${documentId}`;
    return { documentId, ...stored! };
  }

  async function loadTemplate(companyId: string, run: RunRow): Promise<Template> {
    if (!run.template_id) return { ...DEFAULT_BILL_MESSAGE, channel: 'email' };
    const [t] = await sql<Template[]>`
      SELECT subject, body, channel FROM message_templates WHERE company_id = ${companyId} AND id = ${run.template_id}`;
    if (!t) throw ApplicationFailure.nonRetryable(`message template ${run.template_id} not found`, 'UnknownTemplate');
    return t;
  }

  async function customTags(companyId: string): Promise<Record<string, string>> {
    const rows = await sql<{ name: string; value: string }[]>`SELECT name, value FROM custom_tags WHERE company_id = ${companyId}`;
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  /** Counts of a range of a run's bills, from their rows: the same answer however often asked. */
  async function rangeCounts(companyId: string, runId: string, fromSeq: number, toSeq: number): Promise<BillRunCounts> {
    const rows = await sql<{ outcome: BillOutcome; n: number }[]>`
      SELECT outcome, count(*)::int AS n FROM bill_run_items
      WHERE company_id = ${companyId} AND run_id = ${runId} AND seq BETWEEN ${fromSeq} AND ${toSeq}
      GROUP BY outcome`;
    const n = (o: BillOutcome) => rows.find((r) => r.outcome === o)?.n ?? 0;
    return { total: rows.reduce((s, r) => s + r.n, 0), sent: n('sent'), printed: n('printed'), skippedHeld: n('skipped-held'), failed: n('failed') };
  }

  /**
   * Writes one bill's outcome once (a retried batch skips decided bills), bumps the run's counters
   * and records the delivery: one statement, so one round trip per bill.
   */
  async function record(companyId: string, runId: string, kind: BillRunKind, item: ItemRow, d: Decision): Promise<void> {
    const reason = 'reason' in d ? d.reason : null;
    const recipient = d.outcome === 'sent' ? d.recipient : null;
    const messageId = d.outcome === 'sent' ? d.messageId : null;
    const documentId = d.outcome === 'printed' ? d.documentId : null;
    const documentSha256 = d.outcome === 'sent' || d.outcome === 'printed' ? d.documentSha256 : null;
    const delivered = d.outcome === 'sent' || d.outcome === 'printed';
    const deliveryKind = d.outcome === 'printed' ? 'bill-print' : kind === 'send' ? 'bill-email' : 'message';
    const channel = d.outcome === 'sent' ? d.channel : 'print';
    const one = (o: BillOutcome) => (d.outcome === o ? 1 : 0);
    await sql`
      WITH decided AS (
        UPDATE bill_run_items SET outcome = ${d.outcome}, reason = ${reason}, recipient = ${recipient}, message_id = ${messageId},
          document_id = ${documentId}, document_sha256 = ${documentSha256}, processed_at = now()
        WHERE company_id = ${companyId} AND run_id = ${runId} AND seq = ${item.seq} AND outcome = 'pending'
        RETURNING seq
      ), counted AS (
        UPDATE bill_runs SET sent = sent + ${one('sent')}, printed = printed + ${one('printed')},
          skipped_held = skipped_held + ${one('skipped-held')}, failed = failed + ${one('failed')}
        WHERE company_id = ${companyId} AND id = ${runId} AND EXISTS (SELECT 1 FROM decided)
        RETURNING id
      )
      INSERT INTO bill_deliveries (company_id, invoice_number, run_id, kind, channel, recipient, message_id, document_id, document_sha256)
      SELECT ${companyId}, ${item.invoice_number}, ${runId}, ${deliveryKind}, ${channel}, ${recipient}, ${messageId}, ${documentId}, ${documentSha256}
      FROM decided WHERE ${delivered}
      ON CONFLICT DO NOTHING`;
  }

  return {
    /** Snapshots the run's bills (once): its criteria over the Final bills, or the failures of the run it retries. */
    async selectBills({ companyId, runId }: { companyId: string; runId: string }): Promise<{ total: number }> {
      return sql.begin(async (tx) => {
        const [run] = await tx<{ kind: BillRunKind; status: string; criteria: BillCriteria; retry_of: string | null; total: number }[]>`
          SELECT kind, status, criteria, retry_of, total FROM bill_runs WHERE company_id = ${companyId} AND id = ${runId} FOR UPDATE`;
        if (!run) throw ApplicationFailure.nonRetryable(`bill run ${runId} not found`, 'UnknownBillRun');
        if (run.status !== 'selecting') return { total: run.total };
        // A communication goes by its template's channel (email); a bill by its client's preference.
        const delivery = run.kind === 'send' ? tx`c.delivery_preference` : tx`'email'`;
        let inserted: { seq: number }[];
        if (run.retry_of) {
          inserted = await tx`
            INSERT INTO bill_run_items (company_id, run_id, seq, invoice_number, client_id, delivery)
            SELECT o.company_id, ${runId}, row_number() OVER (ORDER BY o.seq), o.invoice_number, o.client_id, ${delivery}
            FROM bill_run_items o JOIN clients c ON c.company_id = o.company_id AND c.id = o.client_id
            WHERE o.company_id = ${companyId} AND o.run_id = ${run.retry_of} AND o.outcome = 'failed'
            RETURNING seq`;
        } else {
          const k = run.criteria;
          inserted = await tx`
            INSERT INTO bill_run_items (company_id, run_id, seq, invoice_number, client_id, delivery)
            SELECT i.company_id, ${runId}, row_number() OVER (ORDER BY i.number), i.number, i.client_id, ${delivery}
            FROM invoices i JOIN clients c ON c.company_id = i.company_id AND c.id = i.client_id
            WHERE i.company_id = ${companyId} AND i.status = 'Final'
              ${k.invoiceDateFrom ? tx`AND i.invoice_date >= ${k.invoiceDateFrom}` : tx``}
              ${k.invoiceDateTo ? tx`AND i.invoice_date <= ${k.invoiceDateTo}` : tx``}
              ${k.settlement?.length ? tx`AND i.settlement IN ${tx(k.settlement)}` : tx``}
              ${k.clientIds?.length ? tx`AND i.client_id IN ${tx(k.clientIds)}` : tx``}
              ${k.invoiceNumbers?.length ? tx`AND i.number IN ${tx(k.invoiceNumbers)}` : tx``}
              ${k.deliveryPreference ? tx`AND c.delivery_preference = ${k.deliveryPreference}` : tx``}
              ${
                k.notYetSent
                  ? tx`AND NOT EXISTS (SELECT 1 FROM bill_deliveries d WHERE d.company_id = i.company_id AND d.invoice_number = i.number
                      AND d.kind IN ('bill-email', 'bill-print'))`
                  : tx``
              }
            RETURNING seq`;
        }
        await tx`UPDATE bill_runs SET status = 'running', total = ${inserted.length} WHERE company_id = ${companyId} AND id = ${runId}`;
        log.info('bill run selected', { companyId, runId, total: inserted.length, retryOf: run.retry_of });
        return { total: inserted.length };
      });
    },

    /**
     * Delivers the still-undecided bills numbered fromSeq..toSeq: held bills are skipped, print
     * bills rendered for the printout, the others sent by their channel (a `send` run attaches the
     * bill's PDF). Per-bill failures (no address, refused recipient, not Final) are recorded with
     * their reason; a temporary failure (SMTP unreachable) fails the activity, which is retried and
     * resumes with the bills still pending.
     */
    async deliverBillBatch({ companyId, runId, fromSeq, toSeq }: { companyId: string; runId: string; fromSeq: number; toSeq: number }): Promise<BillRunCounts> {
      const run = await loadRun(companyId, runId);
      const template = await loadTemplate(companyId, run);
      const custom = await customTags(companyId);
      const items = await sql<ItemRow[]>`
        SELECT i.seq, i.invoice_number, i.client_id, i.delivery, c.name AS client_name, c.email AS client_email
        FROM bill_run_items i JOIN clients c ON c.company_id = i.company_id AND c.id = i.client_id
        WHERE i.company_id = ${companyId} AND i.run_id = ${runId} AND i.seq BETWEEN ${fromSeq} AND ${toSeq} AND i.outcome = 'pending'
        ORDER BY i.seq`;
      const ctx = Context.current();
      const slots = new Semaphore(ITEM_CONCURRENCY);

      const decide = async (item: ItemRow): Promise<Decision> => {
        let state: InvoiceState;
        try {
          state = await invoiceState(companyId, item.invoice_number);
        } catch (e) {
          if (e instanceof WorkflowNotFoundError) return { outcome: 'failed', reason: `invoice ${item.invoice_number} has no workflow` };
          throw e;
        }
        if (state.status !== 'Final') return { outcome: 'failed', reason: `invoice ${item.invoice_number} is ${state.status}, no longer a Final bill` };
        if (state.held) {
          return { outcome: 'skipped-held', reason: `held as an exceptional bill (${state.classification ?? 'exceptional'}); release it to send it` };
        }
        const parties: DocumentParties = { company: { name: run.company_name }, client: { id: item.client_id, name: item.client_name, email: item.client_email } };
        if (run.kind === 'send' && item.delivery === 'print') {
          const doc = await billDocument(state, parties);
          return { outcome: 'printed', documentId: doc.documentId, documentSha256: doc.sha256 };
        }
        const channel = channels[template.channel];
        if (!channel) return { outcome: 'failed', reason: `no ${template.channel} channel is configured` };
        const recipient = channel.recipient({ email: item.client_email });
        if (!recipient) return { outcome: 'failed', reason: `client ${item.client_id} has no ${channel.name} address` };
        let message;
        try {
          message = renderMessage(template, billTagValues({ ...state, client: { id: item.client_id, name: item.client_name }, company: { name: run.company_name }, custom }));
        } catch (e) {
          if (e instanceof DomainError) return { outcome: 'failed', reason: e.message };
          throw e;
        }
        // An emailed bill's PDF is rendered for the email and not stored again: the run records its
        // sha256 (which PDF went out), and the bill's figures are in the workflow anyway.
        const pdf = run.kind === 'send' ? await renderer.render(invoiceHtml(state, parties)) : null;
        const messageId = `<${stableUuid(companyId, runId, item.invoice_number)}@billflow>`;
        try {
          await channel.send(recipient, {
            ...message,
            messageId,
            headers: { 'X-Billflow-Invoice': item.invoice_number, 'X-Billflow-Run': runId },
            attachments: pdf ? [{ filename: `invoice-${item.invoice_number}.pdf`, content: pdf, contentType: 'application/pdf' }] : [],
          });
        } catch (e) {
          if (e instanceof ChannelError && e.permanent) return { outcome: 'failed', reason: e.message };
          throw e;
        }
        return { outcome: 'sent', recipient, messageId, documentSha256: pdf ? sha256(pdf) : null, channel: channel.name };
      };

      const results = await Promise.allSettled(
        items.map((item) =>
          slots.run(async () => {
            // An attempt the server gave up on (its heartbeat timed out: a retry has the bills) or a
            // worker shutting down takes no further bill, so two attempts do not send the same one.
            ctx.cancellationSignal.throwIfAborted();
            await record(companyId, runId, run.kind, item, await decide(item));
            // Per bill: a batch whose worker died is retried once the heartbeat timeout passes.
            ctx.heartbeat({ seq: item.seq });
          }),
        ),
      );
      const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failure) throw failure.reason;
      const counts = await rangeCounts(companyId, runId, fromSeq, toSeq);
      log.info('bill batch delivered', { companyId, runId, fromSeq, toSeq, ...counts });
      return counts;
    },

    /** A batch that kept failing: its undecided bills are failed with the reason (a retry run takes them again). */
    async failBillBatch(input: { companyId: string; runId: string; fromSeq: number; toSeq: number; reason: string }): Promise<BillRunCounts> {
      const { companyId, runId, fromSeq, toSeq } = input;
      await sql.begin(async (tx) => {
        const failed = await tx`
          UPDATE bill_run_items SET outcome = 'failed', reason = ${input.reason}, processed_at = now()
          WHERE company_id = ${companyId} AND run_id = ${runId} AND seq BETWEEN ${fromSeq} AND ${toSeq} AND outcome = 'pending'
          RETURNING seq`;
        await tx`UPDATE bill_runs SET failed = failed + ${failed.length} WHERE company_id = ${companyId} AND id = ${runId}`;
      });
      return rangeCounts(companyId, runId, fromSeq, toSeq);
    },

    /** Closes the run: its counters from the rows, and its batch printout when it printed bills. */
    async finishBillRun({ companyId, runId }: { companyId: string; runId: string }): Promise<BillRunCounts> {
      const counts = await rangeCounts(companyId, runId, 1, 2 ** 31 - 1);
      let printoutId: string | null = null;
      if (counts.printed > 0) {
        printoutId = stableUuid(companyId, runId, 'printout');
        const [kept] = await sql`SELECT 1 FROM documents WHERE id = ${printoutId}`;
        if (!kept) {
          const docs = await sql<{ bytes: Buffer }[]>`
            SELECT d.bytes FROM bill_run_items i JOIN documents d ON d.id = i.document_id
            WHERE i.company_id = ${companyId} AND i.run_id = ${runId} AND i.outcome = 'printed' ORDER BY i.seq`;
          const merged = Buffer.from(
            await mergePdfs(
              docs.map((d) => d.bytes),
              `Bill printout, run ${runId}`,
            ),
          );
          await sql`
            INSERT INTO documents (id, company_id, kind, content_type, sha256, bytes, filename)
            VALUES (${printoutId}, ${companyId}, 'bill-printout', 'application/pdf', ${sha256(merged)}, ${merged}, ${`printout-${runId}.pdf`})
            ON CONFLICT (id) DO NOTHING`;
        }
      }
      await sql`
        UPDATE bill_runs SET status = 'completed', completed_at = coalesce(completed_at, now()), total = ${counts.total}, sent = ${counts.sent},
          printed = ${counts.printed}, skipped_held = ${counts.skippedHeld}, failed = ${counts.failed}, printout_document_id = ${printoutId}
        WHERE company_id = ${companyId} AND id = ${runId}`;
      log.info('bill run completed', { companyId, runId, ...counts });
      return counts;
    },

    /** One bill's PDF with its current figures (for `GET /v1/bills/{number}/pdf`). */
    async renderBillPdf({ companyId, number }: { companyId: string; number: string }): Promise<{ documentId: string; sha256: string }> {
      let state: InvoiceState;
      try {
        state = await invoiceState(companyId, number);
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) throw ApplicationFailure.nonRetryable(`invoice ${number} not found`, 'UnknownInvoice');
        throw e;
      }
      if (state.status !== 'Final') throw ApplicationFailure.nonRetryable(`invoice ${number} is ${state.status}; only a Final invoice is a bill`, 'NotABill');
      const [parties] = await sql<{ company_name: string; client_name: string; client_email: string | null }[]>`
        SELECT co.name AS company_name, cl.name AS client_name, cl.email AS client_email
        FROM companies co JOIN clients cl ON cl.company_id = co.id WHERE co.id = ${companyId} AND cl.id = ${state.clientId}`;
      if (!parties) throw ApplicationFailure.nonRetryable(`unknown client ${state.clientId}`, 'UnknownClient');
      const doc = await billDocument(state, {
        company: { name: parties.company_name },
        client: { id: state.clientId, name: parties.client_name, email: parties.client_email },
      });
      return { documentId: doc.documentId, sha256: doc.sha256 };
    },
  };
}

export type BillActivities = ReturnType<typeof createBillActivities>;
