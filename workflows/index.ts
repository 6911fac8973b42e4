export { invoiceWorkflow } from './invoice.js';
export { billPdfWorkflow, billRunWorkflow } from './bill-run.js';
export { reconcileCompanyWorkflow } from './reconcile.js';
