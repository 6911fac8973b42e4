/** The due-date reminder's content: the amount still owed, the due date and how to pay. */
import { formatMoney, type Minor } from '../../domain/money.js';
import { dueWording } from '../../domain/reminders.js';

export interface ReminderData {
  company: { name: string };
  client: { name: string };
  invoice: { number: string; dueDate: string; currency: string; outstanding: Minor };
  daysAfterDue: number;
  payNowUrl: string | null;
}

export function renderReminderEmail(d: ReminderData): { subject: string; text: string } {
  const owed = formatMoney(d.invoice.outstanding, d.invoice.currency);
  const when = dueWording(d.daysAfterDue);
  return {
    subject: `Reminder: invoice ${d.invoice.number} from ${d.company.name} ${when}`,
    text: [
      `Dear ${d.client.name},`,
      '',
      `Invoice ${d.invoice.number} ${when} (due date ${d.invoice.dueDate}). ${owed} is still outstanding.`,
      ...(d.payNowUrl ? ['', `Pay online: ${d.payNowUrl}`] : []),
      '',
      'The invoice is attached. If you have already paid, thank you, and please disregard this reminder.',
      '',
      d.company.name,
    ].join('\n'),
  };
}
