export { invoiceWorkflow } from './invoice.js';
