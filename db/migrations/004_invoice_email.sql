-- The client's invoice email template (subject and body with tags; null: the default one), and
-- which final invoices were emailed, so a retried send never mails twice.
ALTER TABLE clients ADD COLUMN invoice_email_template jsonb;

CREATE TABLE invoice_emails (
  company_id     text NOT NULL REFERENCES companies(id),
  invoice_number text NOT NULL,
  revision       integer NOT NULL,
  recipient      text NOT NULL,
  message_id     text NOT NULL,
  with_pay_now   boolean NOT NULL,
  request_id     text NOT NULL,
  sent_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, invoice_number, revision)
);
