/**
 * The due-date reminders of one Final revision of an invoice, started by the invoice's workflow.
 * It sleeps until each reminder's day (durable timers: days or weeks) and asks an activity to
 * send it; the activity checks the invoice then, so a paid, reissued or superseded invoice ends
 * the reminders without the invoice workflow having to cancel anything.
 */
import { log, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { reminderSchedule, type ReminderOutcome } from '../domain/reminders.js';
import type { RemindersInput } from './contract.js';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

export async function invoiceRemindersWorkflow(input: RemindersInput): Promise<{ sent: number[]; ended: ReminderOutcome | 'done' }> {
  const started = Date.now();
  const sent: number[] = [];
  // Reminders whose day had passed when the invoice became Final are not sent late in a burst.
  for (const { days, at } of reminderSchedule(input.dueDate, input.reminderDays).filter((r) => r.at >= started - 86_400_000 / 2)) {
    if (at > Date.now()) await sleep(at - Date.now());
    const outcome = await acts.sendReminder({ companyId: input.companyId, number: input.number, revision: input.revision, daysAfterDue: days });
    if (outcome !== 'sent' && outcome !== 'already-sent') {
      log.info('reminders ended', { number: input.number, revision: input.revision, outcome });
      return { sent, ended: outcome };
    }
    sent.push(days);
  }
  return { sent, ended: 'done' };
}
