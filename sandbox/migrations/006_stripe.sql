-- The sandbox's Stripe-compatible mode (its own port). Its objects are kept as the JSON Stripe
-- answers with, one row per object, of the same accounts (an account's apiKey is its Stripe secret
-- key); each change rewrites the object under a row lock.
CREATE TABLE stripe_objects (
  id          text PRIMARY KEY,
  account_id  text NOT NULL REFERENCES accounts(id),
  object      text NOT NULL,
  seq         bigserial UNIQUE,
  -- The secret part of a finalized invoice's hosted_invoice_url.
  token       text UNIQUE,
  -- The hosted page's one-time form token: the invoice's current one, or the one a payment used.
  form_token  text,
  data        jsonb NOT NULL
);
CREATE INDEX stripe_objects_list ON stripe_objects (account_id, object, seq);
CREATE INDEX stripe_objects_form ON stripe_objects (form_token) WHERE form_token IS NOT NULL;

-- Stripe events go out through the same outbox (and its webhook faults): one delivery per event
-- and endpoint, signed with that endpoint's secret under Stripe's header.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_payment_id_fkey;
ALTER TABLE webhook_deliveries
  ADD COLUMN signature_header text NOT NULL DEFAULT 'BillPay-Signature',
  ADD COLUMN secret text;
