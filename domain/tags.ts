/**
 * Message templates with #tags: `#bill.number`, `#bill.amount_due`, `#client.name`, … and the
 * company's own `#custom.<name>` tags, replaced by a bill's values. Pure (no Node built-ins): the
 * API validates and previews with it, the bill-run activities render with it, workflows may import it.
 *
 * Syntax: a tag is `#` followed by `namespace.name` (letters, digits, `_`), e.g. `#bill.due_date`;
 * a trailing full stop is punctuation (`… by #bill.due_date.`). Anything of that shape that is not
 * a known tag is refused when the template is saved, naming it, so nothing renders blank at send
 * time. `\#` writes a literal `#` (`\#bill.number` stays as typed, without the backslash).
 */
import { DomainError, formatMoney, type Minor } from './money.js';

/** Every built-in tag, with what it stands for (listed to users typing `#`). */
export const BUILT_IN_TAGS = {
  'bill.number': 'The bill (invoice) number',
  'bill.invoice_date': 'The bill date (YYYY-MM-DD)',
  'bill.due_date': 'The due date (YYYY-MM-DD)',
  'bill.total': 'The bill total, formatted (e.g. $1,040.00)',
  'bill.amount_due': 'What is still owed on the bill, formatted',
  'bill.settlement': 'Unsettled, Partially settled or Settled',
  'bill.pay_now_url': "The bill's Pay Now link (billflow's own, which leads to the provider's payment page; empty when it has none)",
  'client.id': "The client's id",
  'client.name': "The client's name",
  'company.name': "The company's name",
} as const;

export const CUSTOM_PREFIX = 'custom.';
export const CUSTOM_TAG_NAME = /^[a-z][a-z0-9_]{0,62}$/;

// `\#` escapes; otherwise `#ns.name(.more)`; a final `.` not followed by a name char is punctuation.
const TAG = /(\\?)#([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)/g;

export interface TagUse {
  tag: string;
  index: number;
}

/** The tags a text uses, in order (escaped ones excluded). */
export function tagsIn(text: string): TagUse[] {
  const out: TagUse[] = [];
  for (const m of text.matchAll(TAG)) if (!m[1]) out.push({ tag: m[2]!, index: m.index });
  return out;
}

export function isCustomTagName(name: string): boolean {
  return CUSTOM_TAG_NAME.test(name);
}

/** Whether `tag` (without `#`) is known given the company's custom tag names. */
function isKnownTag(tag: string, customNames: ReadonlySet<string>): boolean {
  if (Object.hasOwn(BUILT_IN_TAGS, tag)) return true;
  return tag.startsWith(CUSTOM_PREFIX) && customNames.has(tag.slice(CUSTOM_PREFIX.length));
}

function knownTagList(customNames: Iterable<string>): string[] {
  return [...Object.keys(BUILT_IN_TAGS), ...[...customNames].sort().map((n) => `${CUSTOM_PREFIX}${n}`)].map((t) => `#${t}`);
}

export interface TemplateText {
  subject: string;
  body: string;
}

/**
 * Refuses (DomainError `unknown-tag`, `field` = subject or body) the first tag that is neither
 * built in nor one of the company's custom tags, naming it and listing what is known.
 */
export function validateTemplateTags(t: TemplateText, customNames: Iterable<string>, fieldPrefix = ''): void {
  const custom = new Set(customNames);
  for (const part of ['subject', 'body'] as const) {
    for (const { tag } of tagsIn(t[part])) {
      if (isKnownTag(tag, custom)) continue;
      const hint = tag.startsWith(CUSTOM_PREFIX)
        ? ` (the company has no custom tag "${tag.slice(CUSTOM_PREFIX.length)}"; define it first with PUT /v1/custom-tags/${tag.slice(CUSTOM_PREFIX.length)})`
        : '';
      throw new DomainError('unknown-tag', `${part} uses #${tag}, which is not a known tag${hint}; known tags: ${knownTagList(custom).join(', ')}`, `${fieldPrefix}${part}`);
    }
  }
}

/** The custom tag names a template uses. */
export function customTagsUsed(t: TemplateText): Set<string> {
  const out = new Set<string>();
  for (const part of [t.subject, t.body]) {
    for (const { tag } of tagsIn(part)) if (tag.startsWith(CUSTOM_PREFIX)) out.add(tag.slice(CUSTOM_PREFIX.length));
  }
  return out;
}

/** What a bill's tags are filled from. */
export interface BillFacts {
  number: string;
  invoiceDate: string;
  dueDate: string;
  currency: string;
  total: Minor;
  outstanding: Minor;
  settlement: string;
  payNowUrl: string | null;
  client: { id: string; name: string };
  company: { name: string };
  /** The company's custom tags, name -> value. */
  custom: Readonly<Record<string, string>>;
}

/** Every tag's value for one bill. */
export function billTagValues(b: BillFacts): Map<string, string> {
  const values = new Map<string, string>([
    ['bill.number', b.number],
    ['bill.invoice_date', b.invoiceDate],
    ['bill.due_date', b.dueDate],
    ['bill.total', formatMoney(b.total, b.currency)],
    ['bill.amount_due', formatMoney(b.outstanding, b.currency)],
    ['bill.settlement', b.settlement],
    ['bill.pay_now_url', b.payNowUrl ?? ''],
    ['client.id', b.client.id],
    ['client.name', b.client.name],
    ['company.name', b.company.name],
  ]);
  for (const [name, value] of Object.entries(b.custom)) values.set(`${CUSTOM_PREFIX}${name}`, value);
  return values;
}

/** Replaces each tag by its value; a tag without a value is an error (never a blank). */
function renderTags(text: string, values: ReadonlyMap<string, string>, field = 'template'): string {
  return text.replace(TAG, (whole, escaped: string, tag: string) => {
    if (escaped) return whole.slice(1);
    const v = values.get(tag);
    if (v === undefined) throw new DomainError('unknown-tag', `${field} uses #${tag}, which has no value`, field);
    return v;
  });
}

export interface RenderedMessage {
  subject: string;
  body: string;
}

/** A template rendered for one bill: the subject on one line, the body as written. */
export function renderMessage(t: TemplateText, values: ReadonlyMap<string, string>): RenderedMessage {
  return {
    subject: renderTags(t.subject, values, 'subject').replace(/\s+/g, ' ').trim(),
    body: renderTags(t.body, values, 'body'),
  };
}

/** The message a bill sending run emails with the bill's PDF when no template is chosen. */
export const DEFAULT_BILL_MESSAGE: TemplateText = {
  subject: 'Bill #bill.number from #company.name',
  body: [
    'Dear #client.name,',
    '',
    'Please find attached bill #bill.number of #bill.invoice_date for #bill.total.',
    'The amount due, #bill.amount_due, is payable by #bill.due_date.',
    '',
    'Thank you for your business.',
    '',
    '#company.name',
    '',
  ].join('\n'),
};
