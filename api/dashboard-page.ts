/** The operator dashboard's HTML: one self-contained page (inline CSS and SVG, no script, nothing fetched). */
import { formatMoney } from '../domain/money.js';

interface InvoiceRow {
  companyName: string;
  number: string;
  clientName: string;
  currency: string;
  total: number;
  outstanding: number;
  dueDate: string;
  daysOverdue: number;
  classification: string | null;
  workflowUrl: string | null;
}

interface DriftRow {
  companyName: string;
  checkedAt: string;
  what: string;
  number: string;
  workflowUrl: string | null;
}

interface RunRow {
  companyName: string;
  kind: string;
  startedAt: string;
  total: number;
  done: number;
  failed: number;
  workflowUrl: string | null;
}

interface EndpointRow {
  companyName: string;
  url: string;
  description: string | null;
  failingSince: string | null;
  disabledReason: string | null;
  lastSuccessAt: string | null;
}

export const AGING_BUCKETS = ['current', '1-30 days', '31-60 days', '61-90 days', 'over 90 days'] as const;

export interface Aging {
  currency: string;
  /** Amount owed per bucket, in AGING_BUCKETS order. */
  amounts: number[];
  counts: number[];
}

export interface DashboardData {
  scope: string;
  asOf: string;
  held: InvoiceRow[];
  overdue: InvoiceRow[];
  drift: DriftRow[];
  runs: RunRow[];
  endpoints: EndpointRow[];
  aging: Aging[];
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STYLE = `
body{font-family:"DejaVu Sans","Liberation Sans",sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
header{background:#1d3557;color:#fff;padding:12px 24px;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:20px;margin:0} header form{margin:0} header button{background:none;border:1px solid #fff;color:#fff;padding:4px 10px;cursor:pointer}
main{padding:16px 24px;display:grid;grid-template-columns:1fr 1fr;gap:16px}
section{background:#fff;border:1px solid #d8dee4;border-radius:6px;padding:12px 16px}
section.wide{grid-column:1/3}
h2{font-size:16px;margin:0 0 8px} h2 .count{color:#5b6b7b;font-weight:normal}
table{border-collapse:collapse;width:100%;font-size:13px} th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eef1f4}
td.num,th.num{text-align:right} .empty{color:#5b6b7b;font-size:13px} .bad{color:#b42318}
a{color:#1d5fbf} td a{white-space:nowrap} .login{max-width:420px;margin:80px auto;background:#fff;padding:24px;border:1px solid #d8dee4;border-radius:6px}
.login input{width:100%;padding:6px;margin:8px 0;box-sizing:border-box} .error{color:#b42318}`;

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export function loginPage(error: string | null): string {
  return page(
    'billflow operator dashboard: sign in',
    `<form class="login" method="post" action="/dashboard/login">
<h1>billflow dashboard</h1>
<p>Sign in with the operator key, or a company or organisation API key to see its own companies.</p>
${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<label for="key">API key</label><input id="key" name="key" type="password" autocomplete="off" required>
<button type="submit">Sign in</button></form>`,
  );
}

function link(url: string | null, text: string): string {
  return url ? `<a href="${esc(url)}" target="_blank" rel="noopener" title="Open its workflow in the Temporal UI">${esc(text)}</a>` : esc(text);
}

function section(id: string, title: string, count: number, head: string[], rows: string[][], empty: string, wide = false): string {
  const numeric = (h: string) => /amount|owed|total|days|sent|failed/i.test(h);
  const table = rows.length
    ? `<table><thead><tr>${head.map((h) => `<th${numeric(h) ? ' class="num"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
        .map((r) => `<tr>${r.map((c, i) => `<td${numeric(head[i]!) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`)
        .join('')}</tbody></table>`
    : `<p class="empty">${esc(empty)}</p>`;
  return `<section id="${id}"${wide ? ' class="wide"' : ''}><h2>${esc(title)} <span class="count">(${count})</span></h2>${table}</section>`;
}

/** One bar per bucket, the height by amount owed, labelled with the amount and the number of invoices. */
function agingChart(a: Aging): string {
  const w = 560;
  const h = 200;
  const barW = 80;
  const gap = (w - AGING_BUCKETS.length * barW) / (AGING_BUCKETS.length + 1);
  const max = Math.max(1, ...a.amounts);
  const colors = ['#2a9d8f', '#e9c46a', '#f4a261', '#e76f51', '#b42318'];
  const bars = AGING_BUCKETS.map((label, i) => {
    const x = gap + i * (barW + gap);
    const bh = Math.round((a.amounts[i]! / max) * (h - 60));
    const y = h - 30 - bh;
    return `<g class="bucket" data-bucket="${esc(label)}"><rect x="${x}" y="${y}" width="${barW}" height="${bh}" fill="${colors[i]}"><title>${esc(label)}: ${esc(formatMoney(a.amounts[i]!, a.currency))}</title></rect>
<text x="${x + barW / 2}" y="${y - 6}" text-anchor="middle" font-size="11">${esc(formatMoney(a.amounts[i]!, a.currency))}</text>
<text x="${x + barW / 2}" y="${h - 14}" text-anchor="middle" font-size="12">${esc(label)}</text>
<text x="${x + barW / 2}" y="${h - 1}" text-anchor="middle" font-size="10" fill="#5b6b7b">${a.counts[i]} invoice${a.counts[i] === 1 ? '' : 's'}</text></g>`;
  }).join('');
  return `<svg role="img" aria-label="Receivables aging in ${esc(a.currency)}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}"><line x1="0" y1="${h - 30}" x2="${w}" y2="${h - 30}" stroke="#8a99a8"/>${bars}</svg>`;
}

export function dashboardPage(d: DashboardData): string {
  const money = (n: number, currency: string) => esc(formatMoney(n, currency));
  const held = d.held.map((r) => [link(r.workflowUrl, r.number), esc(r.clientName), esc(r.companyName), esc(r.classification ?? 'held'), money(r.total, r.currency)]);
  const overdue = d.overdue.map((r) => [link(r.workflowUrl, r.number), esc(r.clientName), esc(r.companyName), esc(r.dueDate), String(r.daysOverdue), money(r.outstanding, r.currency)]);
  const drift = d.drift.map((r) => [link(r.workflowUrl, r.number), esc(r.companyName), esc(r.what), esc(r.checkedAt)]);
  const runs = d.runs.map((r) => [link(r.workflowUrl, r.kind === 'send' ? 'Sending bills' : 'Communicating bills'), esc(r.companyName), esc(r.startedAt), `${r.done} of ${r.total}`, String(r.failed)]);
  const endpoints = d.endpoints.map((r) => [
    esc(r.url) + (r.description ? ` <span class="empty">${esc(r.description)}</span>` : ''),
    esc(r.companyName),
    r.disabledReason ? `<span class="bad">disabled</span>` : 'failing',
    esc(r.failingSince ?? '-'),
    esc(r.lastSuccessAt ?? 'never'),
  ]);
  const aging = d.aging.length ? d.aging.map((a) => `<h3>${esc(a.currency)}</h3>${agingChart(a)}`).join('') : '<p class="empty">Nothing is owed on a final invoice.</p>';
  return page(
    'billflow operator dashboard',
    `<header><h1>billflow operator dashboard</h1><span>${esc(d.scope)} · as of ${esc(d.asOf)}</span><form method="post" action="/dashboard/logout"><button type="submit">Sign out</button></form></header>
<main>
<section id="aging" class="wide"><h2>Receivables aging <span class="count">(days past due, amount owed on final invoices)</span></h2>${aging}</section>
${section('overdue', 'Invoices overdue', overdue.length, ['Invoice', 'Client', 'Company', 'Due', 'Days overdue', 'Owed'], overdue, 'No invoice is overdue.', true)}
${section('held', 'Held as exceptional', held.length, ['Invoice', 'Client', 'Company', 'Why', 'Total'], held, 'No invoice is held.')}
${section('drift', 'Drift found by the last reconciliation', drift.length, ['Invoice', 'Company', 'What differs', 'Checked'], drift, 'The last reconciliations found no drift.')}
${section('runs', 'Sending runs in progress', runs.length, ['Run', 'Company', 'Started', 'Progress', 'Failed'], runs, 'No sending run is in progress.')}
${section('endpoints', 'Webhook endpoints failing', endpoints.length, ['Endpoint', 'Company', 'State', 'Failing since', 'Last success'], endpoints, 'Every ERP endpoint is receiving its events.')}
</main>`,
  );
}
