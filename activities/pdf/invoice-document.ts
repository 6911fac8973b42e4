/** The invoice PDF's content: a Handlebars template filled from the invoice, its company and client. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Handlebars from 'handlebars';
import { formatMoney } from '../../domain/money.js';
import { ROOT } from '../../lib/paths.js';
import type { InvoiceState } from '../../workflows/contract.js';

const template = Handlebars.compile(readFileSync(path.join(ROOT, 'templates', 'invoice.hbs'), 'utf8'), { strict: true });

export interface DocumentParties {
  company: { name: string };
  client: { id: string; name: string; email: string | null };
}

export function invoiceHtml(invoice: InvoiceState, parties: DocumentParties): string {
  const money = (n: number) => formatMoney(n, invoice.currency);
  return template({
    ...parties,
    invoice: {
      number: invoice.number,
      invoiceDate: invoice.invoiceDate,
      dueDate: invoice.dueDate,
      currency: invoice.currency,
      project: invoice.projectId ? { id: invoice.projectId, name: invoice.projectName ?? invoice.projectId } : null,
    },
    lines: invoice.lines.map((l) => ({
      description: l.description,
      quantity: l.quantity ?? '',
      unitPrice: l.unitPrice === undefined ? '' : money(l.unitPrice),
      amount: money(l.amount),
    })),
    totals: {
      total: money(invoice.total),
      hasPrepayments: invoice.prepaymentsApplied !== 0,
      prepayments: money(invoice.prepaymentsApplied),
      hasPaid: invoice.paid !== 0,
      paid: money(invoice.paid),
      outstanding: money(invoice.outstanding),
    },
    payNowUrl: invoice.payNowUrl ?? '',
  });
}
