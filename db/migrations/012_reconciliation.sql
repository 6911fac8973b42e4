-- Scheduled per-company reconciliation: how often it runs, what each run found, and what each
-- invoice's workflow repaired in answer.
ALTER TABLE companies ADD COLUMN reconcile_seconds integer NOT NULL DEFAULT 86400 CHECK (reconcile_seconds >= 60);

CREATE TABLE reconciliations (
  id                 uuid PRIMARY KEY,
  company_id         text NOT NULL REFERENCES companies(id),
  request_id         text NOT NULL,
  checked_invoices   integer NOT NULL,
  checked_records    integer NOT NULL,
  findings           jsonb NOT NULL,
  repairs_requested  text[],
  -- Why automatic repair was not attempted (too much drift at once), when it was not.
  halted             text,
  -- Why the run itself failed (e.g. the provider refused the account's key), when it did.
  failed             text,
  started_at         timestamptz NOT NULL DEFAULT now(),
  finished_at        timestamptz
);
CREATE INDEX reconciliations_company ON reconciliations (company_id, started_at DESC);

-- One row per repair an invoice workflow carried out (or found unneeded) for a reconciliation.
CREATE TABLE reconciliation_repairs (
  reconciliation_id  uuid NOT NULL REFERENCES reconciliations(id),
  invoice_number     text NOT NULL,
  actions            jsonb NOT NULL,
  repaired_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (reconciliation_id, invoice_number)
);
