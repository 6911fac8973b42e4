-- The whole invoice as its workflow last published it, so readers that need lines and figures
-- (bill sending runs) read PostgreSQL instead of querying every workflow.
ALTER TABLE invoices ADD COLUMN state jsonb;
