/**
 * The due-date reminders of one Final revision of an invoice, started by the invoice's workflow.
 * It sleeps until each reminder's day (durable timers: days or weeks), then signals the invoice's
 * workflow, which imports the provider's payments and sends the reminder under its own lock if
 * something is still owed. It ends once the invoice is paid, reissued or no longer Final.
 */
import { getExternalWorkflowHandle, log, proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { reminderSchedule, type ReminderRefusal } from '../domain/reminders.js';
import { invoiceWorkflowId, reminderSignal, type RemindersInput } from './contract.js';

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  // A worker killed under one is noticed at the missed heartbeat (worker/create.ts beats for it).
  heartbeatTimeout: '5 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 minutes' },
});

export async function invoiceRemindersWorkflow(input: RemindersInput): Promise<{ signalled: number[]; ended: ReminderRefusal | 'done' }> {
  const { companyId, number, revision } = input;
  const signalled: number[] = [];
  // A reminder whose day had begun before the invoice became Final is not sent late.
  for (const { days, at } of reminderSchedule(input.dueDate, input.reminderDays).filter((r) => r.at > Date.now())) {
    await sleep(at - Date.now());
    const refusal = await acts.reminderRefusal({ companyId, number, revision });
    if (refusal === 'held') continue;
    if (refusal) {
      log.info('reminders ended', { number, revision, refusal });
      return { signalled, ended: refusal };
    }
    await getExternalWorkflowHandle(invoiceWorkflowId(companyId, number)).signal(reminderSignal, { revision, daysAfterDue: days });
    signalled.push(days);
  }
  return { signalled, ended: 'done' };
}
