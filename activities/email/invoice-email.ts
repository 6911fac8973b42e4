/**
 * The invoice email's content: a per-client template (subject and plain-text body) with Handlebars
 * tags filled from the invoice, its company and client. As in Ajera, the Pay Now URL is in the
 * email only when the client's template uses the `{{payNowUrl}}` tag; the default template does not.
 *
 * Templates may use only the tags in EMAIL_TEMPLATE_TAGS (and `{{#if tag}}…{{else}}…{{/if}}` /
 * `{{#unless tag}}` around them); `validateEmailTemplate` refuses anything else, naming it, so the
 * API can refuse a template when it is saved rather than when an invoice is sent.
 */
import Handlebars from 'handlebars';
import { DomainError, formatMoney, type Minor } from '../../domain/money.js';

export interface EmailTemplate {
  subject: string;
  body: string;
}

export interface InvoiceEmailData {
  company: { name: string };
  client: { id: string; name: string; email: string | null };
  invoice: {
    number: string;
    invoiceDate: string;
    dueDate: string;
    currency: string;
    total: Minor;
    outstanding: Minor;
  };
  payNowUrl: string | null;
}

export interface InvoiceEmail {
  subject: string;
  text: string;
  /** The template uses the Pay Now URL tag, so the email carries the invoice's Pay Now URL. */
  usesPayNowUrl: boolean;
}

/** Every tag a template may use. */
const EMAIL_TEMPLATE_TAGS = ['company.name', 'client.name', 'invoice.number', 'invoice.invoiceDate', 'invoice.dueDate', 'invoice.total', 'invoice.outstanding', 'payNowUrl'] as const;

const PAY_NOW_TAG = 'payNowUrl';
const BLOCK_HELPERS = new Set(['if', 'unless']);
const ALLOWED = new Set<string>(EMAIL_TEMPLATE_TAGS);

/** Used when the client has no template of its own. It carries no Pay Now URL. */
export const DEFAULT_EMAIL_TEMPLATE: EmailTemplate = {
  subject: 'Invoice {{invoice.number}} from {{company.name}}',
  body: [
    'Dear {{client.name}},',
    '',
    'Please find attached invoice {{invoice.number}} of {{invoice.invoiceDate}} for {{invoice.total}}.',
    'The outstanding amount of {{invoice.outstanding}} is due by {{invoice.dueDate}}.',
    '',
    'Thank you for your business.',
    '',
    '{{company.name}}',
    '',
  ].join('\n'),
};

// Plain text: no HTML escaping (a URL's `=` or a name's `&` stay as they are).
const COMPILE_OPTIONS = {
  strict: true,
  knownHelpersOnly: true,
  knownHelpers: { if: true, unless: true },
  noEscape: true,
} as const;

type Node = hbs.AST.Node;

/**
 * Every tag the template uses; throws a DomainError naming the first construct that is not an
 * allowed tag (an unknown tag, a helper, a partial, `this`, `../`, `@data`).
 */
function tagsOf(source: string, field: string): Set<string> {
  let ast: hbs.AST.Program;
  try {
    ast = Handlebars.parse(source);
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new DomainError('invalid-email-template', `${field} is not a valid template: ${why}`, field);
  }
  const used = new Set<string>();
  const refuse = (what: string): never => {
    throw new DomainError('invalid-email-template', `${field} uses ${what}, which is not a known tag (known: ${EMAIL_TEMPLATE_TAGS.map((t) => `{{${t}}}`).join(', ')})`, field);
  };
  const tag = (expr: hbs.AST.Expression | undefined, shown: (name: string) => string) => {
    if (!expr || expr.type !== 'PathExpression') return refuse(shown(JSON.stringify((expr as { original?: unknown } | undefined)?.original ?? '?')));
    const p = expr as hbs.AST.PathExpression;
    if (p.data || p.depth > 0 || !ALLOWED.has(p.original)) return refuse(shown(p.data ? `@${p.original}` : p.original));
    used.add(p.original);
  };
  const hasHash = (h: hbs.AST.Hash | undefined) => (h?.pairs.length ?? 0) > 0;
  const walk = (node: Node | undefined): void => {
    if (!node) return;
    switch (node.type) {
      case 'Program':
        for (const s of (node as hbs.AST.Program).body) walk(s);
        return;
      case 'ContentStatement':
      case 'CommentStatement':
        return;
      case 'MustacheStatement': {
        const m = node as hbs.AST.MustacheStatement;
        const name = (m.path as { original?: unknown }).original;
        if (m.params.length > 0 || hasHash(m.hash)) return refuse(`{{${String(name)} …}} (helpers are not allowed)`);
        return tag(m.path as hbs.AST.Expression, (n) => `{{${n}}}`);
      }
      case 'BlockStatement': {
        const b = node as hbs.AST.BlockStatement;
        if (!BLOCK_HELPERS.has(b.path.original)) return refuse(`{{#${b.path.original}}} (only {{#if tag}} and {{#unless tag}} blocks are allowed)`);
        if (b.params.length !== 1 || hasHash(b.hash)) return refuse(`{{#${b.path.original}}} without exactly one tag`);
        tag(b.params[0], (n) => `{{#${b.path.original} ${n}}}`);
        walk(b.program);
        walk(b.inverse);
        return;
      }
      case 'PartialStatement':
      case 'PartialBlockStatement':
        return refuse('a partial ({{> …}})');
      default:
        return refuse(`a ${node.type}`);
    }
  };
  walk(ast);
  return used;
}

/** Refuses (DomainError `invalid-email-template`, naming the tag) a template that uses an unknown tag. */
export function validateEmailTemplate(t: EmailTemplate, fieldPrefix = 'emailTemplate'): void {
  for (const part of ['subject', 'body'] as const) {
    const field = `${fieldPrefix}.${part}`;
    if (typeof t[part] !== 'string') throw new DomainError('invalid-email-template', `${field} must be a string`, field);
    tagsOf(t[part], field);
    // Also what Handlebars itself would refuse at render time (unknown helpers under knownHelpersOnly).
    try {
      Handlebars.precompile(t[part], COMPILE_OPTIONS);
    } catch (e) {
      const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
      throw new DomainError('invalid-email-template', `${field} is not a valid template: ${why}`, field);
    }
  }
  if (t.subject.trim() === '') throw new DomainError('invalid-email-template', `${fieldPrefix}.subject must not be empty`, `${fieldPrefix}.subject`);
}

/** Whether a template (null: the default one) puts the Pay Now URL in the email. */
export function templateUsesPayNowUrl(template: EmailTemplate | null): boolean {
  const t = template ?? DEFAULT_EMAIL_TEMPLATE;
  return tagsOf(t.subject, 'emailTemplate.subject').has(PAY_NOW_TAG) || tagsOf(t.body, 'emailTemplate.body').has(PAY_NOW_TAG);
}

export function renderInvoiceEmail(template: EmailTemplate | null, data: InvoiceEmailData): InvoiceEmail {
  const t = template ?? DEFAULT_EMAIL_TEMPLATE;
  validateEmailTemplate(t);
  const money = (n: Minor) => formatMoney(n, data.invoice.currency);
  const context = {
    company: { name: data.company.name },
    client: { name: data.client.name },
    invoice: {
      number: data.invoice.number,
      invoiceDate: data.invoice.invoiceDate,
      dueDate: data.invoice.dueDate,
      total: money(data.invoice.total),
      outstanding: money(data.invoice.outstanding),
    },
    payNowUrl: data.payNowUrl ?? '',
  };
  const subject = Handlebars.compile(t.subject, COMPILE_OPTIONS)(context).replace(/\s+/g, ' ').trim();
  const text = Handlebars.compile(t.body, COMPILE_OPTIONS)(context);
  return { subject, text, usesPayNowUrl: templateUsesPayNowUrl(t) };
}
