/**
 * Communicating bills: the company's message templates (#tags checked when saved), its custom
 * tags, a preview for one bill, and sending to one bill or many (a `communicate` bill run: one
 * durable Temporal workflow, the same engine as bill sending runs).
 */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { linked } from '../../activities/pay-links.js';
import { BUILT_IN_TAGS, billTagValues, customTagsUsed, CUSTOM_PREFIX, isCustomTagName, renderMessage, tagsIn, validateTemplateTags, type TemplateText } from '../../domain/tags.js';
import type { TransactionSql } from 'postgres';
import { HttpProblem } from '../../lib/problem.js';
import { invoiceWorkflowId, stateQuery, type InvoiceState } from '../../workflows/contract.js';
import type { ApiDeps, ApiMiddleware } from '../deps.js';
import { companyOf } from '../middleware.js';
import { toProblem } from '../temporal-errors.js';
import { bodyOf } from '../validate.js';
import { preferredWaitMs, startBillRun } from './bill-runs.js';

const QUERY_TIMEOUT_MS = 10_000;

interface TemplateRow {
  id: string;
  name: string;
  channel: string;
  subject: string;
  body: string;
  created_at: Date;
  updated_at: Date;
}

function templateView(t: TemplateRow) {
  const tags = [...new Set([...tagsIn(t.subject), ...tagsIn(t.body)].map((u) => `#${u.tag}`))];
  return { id: t.id, name: t.name, channel: t.channel, subject: t.subject, body: t.body, tags, createdAt: t.created_at, updatedAt: t.updated_at };
}

const isUniqueViolation = (e: unknown) => (e as { code?: string }).code === '23505';

/**
 * Checks a template's tags against the company's custom tags, holding them (FOR SHARE) until the
 * caller's transaction ends, so a tag cannot be removed between the check and the save.
 */
async function checkTags(tx: TransactionSql, companyId: string, t: TemplateText): Promise<void> {
  const names = (await tx<{ name: string }[]>`SELECT name FROM custom_tags WHERE company_id = ${companyId} FOR SHARE`).map((r) => r.name);
  validateTemplateTags(t, names);
}

export function communicationsRouter(deps: ApiDeps, mw: ApiMiddleware): Router {
  const { sql, temporal } = deps;
  const r = Router();

  async function loadTemplate(companyId: string, id: string): Promise<TemplateRow> {
    const [t] = await sql<TemplateRow[]>`
      SELECT id, name, channel, subject, body, created_at, updated_at FROM message_templates WHERE company_id = ${companyId} AND id = ${id}`;
    if (!t) throw new HttpProblem(404, 'not-found', `message template ${id} not found`);
    return t;
  }

  r.get('/v1/message-tags', mw.erpAuth, async (_req, res) => {
    const custom = await sql<{ name: string; value: string }[]>`SELECT name, value FROM custom_tags WHERE company_id = ${companyOf(res).id} ORDER BY name`;
    res.json({
      data: [
        ...Object.entries(BUILT_IN_TAGS).map(([tag, description]) => ({ tag: `#${tag}`, description })),
        ...custom.map((c) => ({ tag: `#${CUSTOM_PREFIX}${c.name}`, description: `Custom tag: ${c.value}` })),
      ],
    });
  });

  r.post('/v1/message-templates', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'MessageTemplateCreate');
    const c = companyOf(res);
    const id = `tpl-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    let row: TemplateRow | undefined;
    try {
      row = await sql.begin(async (tx) => {
        await checkTags(tx, c.id, b);
        const [t] = await tx<TemplateRow[]>`
          INSERT INTO message_templates (company_id, id, name, channel, subject, body)
          VALUES (${c.id}, ${id}, ${b.name}, ${b.channel}, ${b.subject}, ${b.body})
          RETURNING id, name, channel, subject, body, created_at, updated_at`;
        return t;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new HttpProblem(409, 'template-exists', `a message template named "${b.name}" already exists`, 'name');
      throw e;
    }
    res.status(201).location(`/v1/message-templates/${id}`).json(templateView(row!));
  });

  r.get('/v1/message-templates', mw.erpAuth, async (_req, res) => {
    const rows = await sql<TemplateRow[]>`
      SELECT id, name, channel, subject, body, created_at, updated_at FROM message_templates WHERE company_id = ${companyOf(res).id} ORDER BY name`;
    res.json({ data: rows.map(templateView) });
  });

  r.get('/v1/message-templates/:id', mw.erpAuth, async (req, res) => {
    res.json(templateView(await loadTemplate(companyOf(res).id, String(req.params.id))));
  });

  r.put('/v1/message-templates/:id', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'MessageTemplateCreate');
    const c = companyOf(res);
    const id = String(req.params.id);
    let row: TemplateRow | undefined;
    try {
      row = await sql.begin(async (tx) => {
        await checkTags(tx, c.id, b);
        const [t] = await tx<TemplateRow[]>`
          UPDATE message_templates SET name = ${b.name}, channel = ${b.channel}, subject = ${b.subject}, body = ${b.body}, updated_at = now()
          WHERE company_id = ${c.id} AND id = ${id}
          RETURNING id, name, channel, subject, body, created_at, updated_at`;
        return t;
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new HttpProblem(409, 'template-exists', `a message template named "${b.name}" already exists`, 'name');
      throw e;
    }
    if (!row) throw new HttpProblem(404, 'not-found', `message template ${id} not found`);
    res.json(templateView(row));
  });

  r.get('/v1/custom-tags', mw.erpAuth, async (_req, res) => {
    const rows = await sql<{ name: string; value: string; updatedAt: Date }[]>`
      SELECT name, value, updated_at AS "updatedAt" FROM custom_tags WHERE company_id = ${companyOf(res).id} ORDER BY name`;
    res.json({ data: rows.map((t) => ({ ...t, tag: `#${CUSTOM_PREFIX}${t.name}` })) });
  });

  r.put('/v1/custom-tags/:name', mw.erpAuth, mw.idempotency, async (req, res) => {
    const value = bodyOf(req, 'CustomTagValue').value;
    const c = companyOf(res);
    const name = String(req.params.name);
    if (!isCustomTagName(name)) {
      throw new HttpProblem(422, 'invalid-request', `custom tag name "${name}" must be lower case letters, digits and _, starting with a letter (at most 63)`, 'name');
    }
    const [row] = await sql<{ updatedAt: Date; created: boolean }[]>`
      INSERT INTO custom_tags (company_id, name, value) VALUES (${c.id}, ${name}, ${value})
      ON CONFLICT (company_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
      RETURNING updated_at AS "updatedAt", (xmax = 0) AS created`;
    res.status(row!.created ? 201 : 200).json({ name, tag: `#${CUSTOM_PREFIX}${name}`, value, updatedAt: row!.updatedAt });
  });

  r.delete('/v1/custom-tags/:name', mw.erpAuth, mw.idempotency, async (req, res) => {
    const c = companyOf(res);
    const name = String(req.params.name);
    await sql.begin(async (tx) => {
      const [tag] = await tx`SELECT 1 FROM custom_tags WHERE company_id = ${c.id} AND name = ${name} FOR UPDATE`;
      if (!tag) throw new HttpProblem(404, 'not-found', `custom tag ${name} not found`);
      const templates = await tx<{ name: string; subject: string; body: string }[]>`
        SELECT name, subject, body FROM message_templates WHERE company_id = ${c.id} ORDER BY name`;
      const users = templates.filter((t) => customTagsUsed(t).has(name)).map((t) => t.name);
      if (users.length > 0) {
        throw new HttpProblem(409, 'tag-in-use', `#${CUSTOM_PREFIX}${name} is used by the template(s) ${users.map((u) => `"${u}"`).join(', ')}; change them first`);
      }
      await tx`DELETE FROM custom_tags WHERE company_id = ${c.id} AND name = ${name}`;
    });
    res.json({ name, deleted: true });
  });

  r.post('/v1/message-templates/:id/preview', mw.erpAuth, async (req, res) => {
    const number = bodyOf(req, 'MessagePreviewRequest').invoiceNumber;
    const c = companyOf(res);
    const t = await loadTemplate(c.id, String(req.params.id));
    let state: InvoiceState;
    try {
      state = await temporal.connection.withDeadline(Date.now() + QUERY_TIMEOUT_MS, () => temporal.workflow.getHandle(invoiceWorkflowId(c.id, number)).query(stateQuery));
    } catch (e) {
      throw toProblem(e, `invoice ${number}`) ?? e;
    }
    if (state.status !== 'Final') throw new HttpProblem(409, 'not-a-bill', `invoice ${number} is ${state.status}; only a Final invoice is a bill`, 'invoiceNumber');
    const [client] = await sql<{ name: string; email: string | null }[]>`SELECT name, email FROM clients WHERE company_id = ${c.id} AND id = ${state.clientId}`;
    const custom = await sql<{ name: string; value: string }[]>`SELECT name, value FROM custom_tags WHERE company_id = ${c.id}`;
    const rendered = renderMessage(
      t,
      billTagValues({
        ...(await linked(sql, deps.publicApiUrl, state)),
        client: { id: state.clientId, name: client?.name ?? state.clientId },
        company: { name: c.name },
        custom: Object.fromEntries(custom.map((x) => [x.name, x.value])),
      }),
    );
    // The email channel's recipient: the client's address (null: the send would fail for this bill).
    res.json({ templateId: t.id, invoiceNumber: number, channel: t.channel, recipient: client?.email ?? null, ...rendered });
  });

  r.post('/v1/message-templates/:id/send', mw.erpAuth, mw.idempotency, async (req, res) => {
    const b = bodyOf(req, 'MessageSend');
    const c = companyOf(res);
    const t = await loadTemplate(c.id, String(req.params.id));
    if ((b.invoiceNumbers === undefined) === (b.criteria === undefined)) {
      throw new HttpProblem(422, 'invalid-request', 'give exactly one of invoiceNumbers (one bill or several) and criteria', 'invoiceNumbers');
    }
    if (b.invoiceNumbers) {
      const found = await sql<{ number: string; status: string }[]>`
        SELECT number, status FROM invoices WHERE company_id = ${c.id} AND number IN ${sql(b.invoiceNumbers)}`;
      const unknown = b.invoiceNumbers.find((n) => !found.some((f) => f.number === n));
      if (unknown) throw new HttpProblem(404, 'not-found', `invoice ${unknown} not found`, 'invoiceNumbers');
      const notFinal = found.find((f) => f.status !== 'Final');
      if (notFinal) throw new HttpProblem(409, 'not-a-bill', `invoice ${notFinal.number} is ${notFinal.status}; only a Final invoice is a bill`, 'invoiceNumbers');
    }
    await startBillRun(deps, res, {
      kind: 'communicate',
      criteria: b.invoiceNumbers ? { invoiceNumbers: b.invoiceNumbers } : b.criteria!,
      templateId: t.id,
      retryOf: null,
      waitMs: preferredWaitMs(req.get('prefer')),
    });
  });

  return r;
}
