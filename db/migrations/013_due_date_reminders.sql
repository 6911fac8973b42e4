-- Due-date reminders: the days relative to an invoice's due date on which its client is reminded
-- while it is Final and owes something (e.g. {0,7,14}; none by default), and each reminder sent.
ALTER TABLE companies ADD COLUMN reminder_days integer[] NOT NULL DEFAULT '{}';

CREATE TABLE invoice_reminders (
  company_id      text NOT NULL REFERENCES companies(id),
  invoice_number  text NOT NULL,
  revision        integer NOT NULL,
  days_after_due  integer NOT NULL,
  recipient       text NOT NULL,
  message_id      text NOT NULL,
  outstanding     bigint NOT NULL,
  sent_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, invoice_number, revision, days_after_due)
);
