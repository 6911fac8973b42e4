-- billflow's own tables. The invoice workflow is the source of truth for an invoice;
-- `invoices` is its read model for listings, kept current by idempotent activity writes.

CREATE TABLE companies (
  id                       text PRIMARY KEY,
  name                     text NOT NULL,
  currency                 text NOT NULL DEFAULT 'USD',
  api_key_hash             text NOT NULL UNIQUE,
  provider_enabled         boolean NOT NULL DEFAULT false,
  provider_url             text,
  provider_account_id      text,
  provider_api_key         text,
  provider_webhook_secret  text,
  payment_import_seconds   integer NOT NULL DEFAULT 3600 CHECK (payment_import_seconds >= 1),
  created_at               timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
  company_id  text NOT NULL REFERENCES companies(id),
  id          text NOT NULL,
  name        text NOT NULL,
  email       text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, id)
);

CREATE TABLE documents (
  id            uuid PRIMARY KEY,
  company_id    text NOT NULL REFERENCES companies(id),
  kind          text NOT NULL,
  content_type  text NOT NULL,
  sha256        text NOT NULL,
  bytes         bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
  company_id           text NOT NULL REFERENCES companies(id),
  number               text NOT NULL,
  client_id            text NOT NULL,
  status               text NOT NULL,
  currency             text NOT NULL,
  invoice_date         date NOT NULL,
  due_date             date NOT NULL,
  total                bigint NOT NULL,
  prepayments_applied  bigint NOT NULL,
  paid                 bigint NOT NULL,
  outstanding          bigint NOT NULL,
  settlement           text NOT NULL,
  pay_now_url          text,
  provider_invoice_id  text,
  pdf_document_id      uuid REFERENCES documents(id),
  workflow_id          text NOT NULL,
  version              integer NOT NULL,
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, number),
  FOREIGN KEY (company_id, client_id) REFERENCES clients(company_id, id)
);
CREATE INDEX invoices_status ON invoices (company_id, status);
CREATE INDEX invoices_provider ON invoices (company_id, provider_invoice_id);

-- One row per (payment, invoice) the payment was applied to.
CREATE TABLE payments (
  company_id           text NOT NULL REFERENCES companies(id),
  provider_payment_id  text NOT NULL,
  invoice_number       text NOT NULL,
  amount               bigint NOT NULL,
  fee                  bigint NOT NULL,
  paid_at              timestamptz NOT NULL,
  source               text NOT NULL,
  request_id           text NOT NULL,
  applied_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, provider_payment_id, invoice_number)
);

-- The ERP's receipts feed: one `payment` receipt per provider payment, its convenience fee as a
-- separate `fee` (miscellaneous) receipt. `seq` is the feed's cursor.
CREATE TABLE receipts (
  seq                  bigserial PRIMARY KEY,
  company_id           text NOT NULL REFERENCES companies(id),
  kind                 text NOT NULL CHECK (kind IN ('payment', 'fee')),
  provider_payment_id  text NOT NULL,
  amount               bigint NOT NULL,
  currency             text NOT NULL,
  allocations          jsonb NOT NULL,
  paid_at              timestamptz NOT NULL,
  request_id           text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  acknowledged_at      timestamptz,
  UNIQUE (company_id, provider_payment_id, kind)
);
CREATE INDEX receipts_feed ON receipts (company_id, seq);

-- Stripe-style idempotency: a retried mutating request gets the first answer.
CREATE TABLE idempotency_keys (
  company_id    text NOT NULL,
  key           text NOT NULL,
  method        text NOT NULL,
  path          text NOT NULL,
  request_hash  text NOT NULL,
  status        integer,
  headers       jsonb,
  body          jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, key)
);
