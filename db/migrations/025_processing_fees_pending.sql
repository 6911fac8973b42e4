-- Card payments whose processing fee is still to be read from the provider: recorded with the
-- payment, settled right after it, and by the company's next reconciliation when the provider could
-- not answer then (an outage never holds up the payment or the invoice).
CREATE TABLE processing_fees_pending (
  company_id           text NOT NULL,
  provider_payment_id  text NOT NULL,
  invoice_number       text NOT NULL,
  covered              jsonb NOT NULL,
  paid_at              timestamptz NOT NULL,
  request_id           text NOT NULL,
  tries                integer NOT NULL DEFAULT 0,
  last_error           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, provider_payment_id)
);
