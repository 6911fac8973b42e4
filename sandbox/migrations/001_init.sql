-- The provider sandbox's own tables (a Bill & Pay look-alike). Money is bigint minor units.

CREATE TABLE accounts (
  id                   text PRIMARY KEY,
  name                 text NOT NULL,
  -- Test-mode keys, kept readable like a provider dashboard shows them (an idempotent replay of
  -- the account's creation answers with the key again anyway).
  api_key              text NOT NULL UNIQUE,
  webhook_secret       text NOT NULL,
  webhook_url          text,
  fee_fixed            bigint NOT NULL DEFAULT 0 CHECK (fee_fixed >= 0),
  fee_percent_bps      integer NOT NULL DEFAULT 0 CHECK (fee_percent_bps >= 0),
  created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customers (
  id           text PRIMARY KEY,
  account_id   text NOT NULL REFERENCES accounts(id),
  external_id  text NOT NULL,
  name         text NOT NULL,
  email        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (account_id, external_id)
);

CREATE TABLE invoices (
  id            text PRIMARY KEY,
  account_id    text NOT NULL REFERENCES accounts(id),
  customer_id   text NOT NULL REFERENCES customers(id),
  number        text NOT NULL,
  invoice_date  date NOT NULL,
  amount        bigint NOT NULL CHECK (amount >= 0),
  outstanding   bigint NOT NULL CHECK (outstanding >= 0),
  status        text NOT NULL CHECK (status IN ('open', 'paid')),
  -- The secret part of the Pay Now URL; stable for the record's life.
  pay_token     text NOT NULL UNIQUE,
  -- One-time token of the Pay Now form currently shown; replaced by every payment made on it.
  form_token    text NOT NULL,
  pdf           bytea,
  pdf_sha256    text,
  deleted_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- A number is taken only while its record lives; a deleted record frees it for the next Final.
CREATE UNIQUE INDEX invoices_live_number ON invoices (account_id, number) WHERE deleted_at IS NULL;
CREATE INDEX invoices_customer ON invoices (customer_id) WHERE deleted_at IS NULL;

CREATE TABLE payments (
  seq          bigserial UNIQUE,
  id           text PRIMARY KEY,
  account_id   text NOT NULL REFERENCES accounts(id),
  customer_id  text NOT NULL REFERENCES customers(id),
  amount       bigint NOT NULL CHECK (amount > 0),
  fee          bigint NOT NULL CHECK (fee >= 0),
  currency     text NOT NULL DEFAULT 'USD',
  paid_at      timestamptz NOT NULL,
  method       text NOT NULL CHECK (method IN ('card', 'prepayment', 'quickpay', 'other')),
  payer_name   text,
  payer_email  text,
  card_last4   text,
  reference    text,
  -- The Pay Now form token that produced this payment: a re-posted form finds it instead of paying twice.
  form_token   text UNIQUE,
  status       text NOT NULL CHECK (status IN ('succeeded', 'removed')),
  removed_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_account_seq ON payments (account_id, seq);

CREATE TABLE payment_allocations (
  payment_id      text NOT NULL REFERENCES payments(id),
  position        integer NOT NULL,
  invoice_id      text NOT NULL REFERENCES invoices(id),
  invoice_number  text NOT NULL,
  amount          bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (payment_id, position),
  UNIQUE (payment_id, invoice_id)
);
CREATE INDEX payment_allocations_invoice ON payment_allocations (invoice_id);

-- Invoices without their PDF bytes, with what has been paid on them (removed payments excluded).
CREATE VIEW invoice_view AS
SELECT i.id, i.account_id, i.customer_id, i.number, i.invoice_date::text AS invoice_date, i.amount,
       i.outstanding, i.status, i.pay_token, i.form_token, i.pdf_sha256, octet_length(i.pdf) AS pdf_bytes,
       i.deleted_at, i.created_at, i.updated_at,
       COALESCE((SELECT sum(a.amount) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id
                 WHERE a.invoice_id = i.id AND p.status = 'succeeded'), 0)::bigint AS paid
FROM invoices i;

CREATE VIEW payment_view AS
SELECT p.*,
       (SELECT json_agg(json_build_object('invoiceId', a.invoice_id, 'invoiceNumber', a.invoice_number, 'amount', a.amount)
                        ORDER BY a.position)
        FROM payment_allocations a WHERE a.payment_id = p.id) AS allocations
FROM payments p;

-- A mutating request's first successful answer, replayed for a retry with the same key.
CREATE TABLE idempotency_keys (
  scope        text NOT NULL,  -- the account id ('' for account creation, which has no account yet)
  key          text NOT NULL,
  fingerprint  text NOT NULL,  -- SHA-256 of method, path and raw body
  status       integer,
  location     text,
  body         text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

CREATE TABLE request_log (
  id          bigserial PRIMARY KEY,
  account_id  text,
  method      text NOT NULL,
  path        text NOT NULL,
  status      integer NOT NULL,
  request_id  text,
  at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX request_log_account ON request_log (account_id, request_id);

CREATE TABLE faults (
  account_id  text PRIMARY KEY REFERENCES accounts(id),
  mode        text NOT NULL CHECK (mode IN ('none', 'error', 'delay')),
  status      integer NOT NULL,
  delay_ms    integer NOT NULL,
  remaining   integer,  -- null: until cleared
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Outbox of webhook events: written in the payment's transaction, delivered in the background.
CREATE TABLE webhook_deliveries (
  id               text PRIMARY KEY,  -- the event id
  account_id       text NOT NULL REFERENCES accounts(id),
  payment_id       text NOT NULL REFERENCES payments(id),
  type             text NOT NULL,
  url              text NOT NULL,
  body             text NOT NULL,     -- the exact JSON that is signed and sent
  attempts         integer NOT NULL DEFAULT 0,
  last_status      integer,
  last_error       text,
  -- When the next attempt is due; pushed ahead while an instance holds it; null once given up.
  next_attempt_at  timestamptz DEFAULT now(),
  delivered_at     timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE delivered_at IS NULL;
CREATE INDEX webhook_deliveries_payment ON webhook_deliveries (payment_id);
