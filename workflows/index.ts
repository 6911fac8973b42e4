export { invoiceWorkflow } from './invoice.js';
export { invoiceRemindersWorkflow } from './reminders.js';
export { billPdfWorkflow, billRunWorkflow } from './bill-run.js';
export { reconcileCompanyWorkflow } from './reconcile.js';
