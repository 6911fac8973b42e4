/** Due-date reminders: when each is due, and whether an invoice still gets one. Pure. */
import type { InvoiceStatus } from './invoice.js';
import type { Minor } from './money.js';

const DAY_MS = 86_400_000;

/** Each reminder's moment: the start (UTC) of the day `days` after the due date, in order. */
export function reminderSchedule(dueDate: string, reminderDays: readonly number[]): { days: number; at: number }[] {
  const due = Date.parse(`${dueDate}T00:00:00Z`);
  return [...new Set(reminderDays)].sort((a, b) => a - b).map((days) => ({ days, at: due + days * DAY_MS }));
}

export type ReminderRefusal = 'not-final' | 'superseded' | 'settled' | 'held';

/** Why an invoice gets no reminder for `revision` now, or null when it does. */
export function reminderRefusal(invoice: { status: InvoiceStatus; revision: number; outstanding: Minor; held: boolean }, revision: number): ReminderRefusal | null {
  if (invoice.revision !== revision) return 'superseded';
  if (invoice.status !== 'Final') return 'not-final';
  if (invoice.held) return 'held';
  if (invoice.outstanding <= 0) return 'settled';
  return null;
}

/** How the reminder speaks of the due date, e.g. "is due today", "was due 7 days ago". */
export function dueWording(daysAfterDue: number): string {
  if (daysAfterDue === 0) return 'is due today';
  if (daysAfterDue < 0) return `is due in ${-daysAfterDue} day${daysAfterDue === -1 ? '' : 's'}`;
  return `was due ${daysAfterDue} day${daysAfterDue === 1 ? '' : 's'} ago`;
}
