-- Payments that become client prepayments when their invoice leaves Final, their re-application
-- to invoices, and which invoices still hold a provider payment that covered several of them.

CREATE TABLE prepayments (
  company_id           text NOT NULL REFERENCES companies(id),
  id                   uuid PRIMARY KEY,
  client_id            text NOT NULL,
  amount               bigint NOT NULL CHECK (amount > 0),
  remaining            bigint NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
  origin_invoice       text NOT NULL,
  origin_payment_id    text NOT NULL,
  paid_at              timestamptz NOT NULL,
  request_id           text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  UNIQUE (company_id, origin_payment_id, origin_invoice),
  FOREIGN KEY (company_id, client_id) REFERENCES clients(company_id, id)
);
CREATE INDEX prepayments_client ON prepayments (company_id, client_id);

CREATE TABLE prepayment_applications (
  application_key      text PRIMARY KEY,
  company_id           text NOT NULL REFERENCES companies(id),
  prepayment_id        uuid NOT NULL REFERENCES prepayments(id),
  invoice_number       text NOT NULL,
  amount               bigint NOT NULL CHECK (amount > 0),
  provider_payment_id  text,
  request_id           text NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per invoice a provider payment covered; released when that invoice leaves Final.
CREATE TABLE payment_holds (
  company_id           text NOT NULL REFERENCES companies(id),
  provider_payment_id  text NOT NULL,
  invoice_number       text NOT NULL,
  released_at          timestamptz,
  PRIMARY KEY (company_id, provider_payment_id, invoice_number)
);

CREATE TABLE removed_provider_payments (
  company_id           text NOT NULL REFERENCES companies(id),
  provider_payment_id  text NOT NULL,
  removed_by_invoice   text NOT NULL,
  request_id           text NOT NULL,
  removed_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, provider_payment_id)
);

ALTER TABLE receipts DROP CONSTRAINT receipts_kind_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_kind_check CHECK (kind IN ('payment', 'fee', 'prepayment'));
-- A prepayment entry is per (payment, invoice): one payment may become several credits.
ALTER TABLE receipts ADD COLUMN invoice_number text;
ALTER TABLE receipts DROP CONSTRAINT receipts_company_id_provider_payment_id_kind_key;
CREATE UNIQUE INDEX receipts_once ON receipts (company_id, provider_payment_id, kind, coalesce(invoice_number, ''));
