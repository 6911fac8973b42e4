-- Communicating bills and bill sending runs: per-company message templates with #tags and the
-- company's custom tags; runs (one Temporal workflow each) with their per-bill results; and which
-- bills were delivered, so a run can select the bills not yet sent.

CREATE TABLE message_templates (
  company_id  text NOT NULL REFERENCES companies(id),
  id          text NOT NULL,
  name        text NOT NULL,
  channel     text NOT NULL,
  subject     text NOT NULL,
  body        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, id),
  UNIQUE (company_id, name)
);

CREATE TABLE custom_tags (
  company_id  text NOT NULL REFERENCES companies(id),
  name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  value       text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, name)
);

-- One row per run: its selection, its counters (kept current per bill while it runs) and outcome.
CREATE TABLE bill_runs (
  company_id             text NOT NULL REFERENCES companies(id),
  id                     text NOT NULL,
  kind                   text NOT NULL CHECK (kind IN ('send', 'communicate')),
  status                 text NOT NULL CHECK (status IN ('selecting', 'running', 'completed', 'failed')),
  criteria               jsonb NOT NULL,
  template_id            text,
  retry_of               text,
  workflow_id            text NOT NULL,
  request_id             text NOT NULL,
  total                  integer NOT NULL DEFAULT 0,
  sent                   integer NOT NULL DEFAULT 0,
  printed                integer NOT NULL DEFAULT 0,
  skipped_held           integer NOT NULL DEFAULT 0,
  failed                 integer NOT NULL DEFAULT 0,
  printout_document_id   uuid REFERENCES documents(id),
  created_at             timestamptz NOT NULL DEFAULT now(),
  completed_at           timestamptz,
  PRIMARY KEY (company_id, id),
  FOREIGN KEY (company_id, retry_of) REFERENCES bill_runs(company_id, id)
);
CREATE INDEX bill_runs_recent ON bill_runs (company_id, created_at DESC, id);

-- One row per selected bill; `seq` (1..total) lets the workflow hand out disjoint batches.
CREATE TABLE bill_run_items (
  company_id      text NOT NULL,
  run_id          text NOT NULL,
  seq             integer NOT NULL,
  invoice_number  text NOT NULL,
  client_id       text NOT NULL,
  delivery        text NOT NULL CHECK (delivery IN ('email', 'print')),
  outcome         text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('pending', 'sent', 'printed', 'skipped-held', 'failed')),
  reason          text,
  recipient       text,
  message_id      text,
  -- A printed bill's PDF is kept (the printout is made from it); an emailed one is not stored
  -- again, its sha256 says exactly which PDF went out.
  document_id     uuid REFERENCES documents(id),
  document_sha256 text,
  processed_at    timestamptz,
  PRIMARY KEY (company_id, run_id, seq),
  UNIQUE (company_id, run_id, invoice_number),
  FOREIGN KEY (company_id, run_id) REFERENCES bill_runs(company_id, id)
);
CREATE INDEX bill_run_items_outcome ON bill_run_items (company_id, run_id, outcome);

-- Every successful delivery of a bill or a message about it (the "not yet sent" criterion reads
-- the bill deliveries: emailed with its PDF, or printed).
CREATE TABLE bill_deliveries (
  company_id      text NOT NULL REFERENCES companies(id),
  invoice_number  text NOT NULL,
  run_id          text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('bill-email', 'bill-print', 'message')),
  channel         text NOT NULL,
  recipient       text,
  message_id      text,
  document_id     uuid REFERENCES documents(id),
  document_sha256 text,
  delivered_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, invoice_number, run_id)
);
