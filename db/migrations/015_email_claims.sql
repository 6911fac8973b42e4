-- An invoice email or reminder is claimed before it is sent and confirmed after: a send that a
-- crash interrupted shows as claimed but never sent, and is not sent again (at most one message
-- per revision, or per revision and reminder day). A refused send gives its claim back.
ALTER TABLE invoice_emails ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE invoice_emails ALTER COLUMN sent_at DROP NOT NULL, ALTER COLUMN sent_at DROP DEFAULT;
ALTER TABLE invoice_reminders ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE invoice_reminders ALTER COLUMN sent_at DROP NOT NULL, ALTER COLUMN sent_at DROP DEFAULT;
