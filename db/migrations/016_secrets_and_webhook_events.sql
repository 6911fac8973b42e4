-- Provider secrets are stored encrypted (lib/secrets.ts; the API seals plain values left by an
-- earlier billflow when it starts). A rotated webhook secret keeps verifying until its expiry.
ALTER TABLE companies ADD COLUMN provider_webhook_secret_previous text;
ALTER TABLE companies ADD COLUMN provider_webhook_secret_previous_expires_at timestamptz;

-- Provider webhook events already applied, per company, with the answer given: a replay of one
-- gets that answer again and is not applied again. Kept for a day, far beyond the 5-minute
-- signature tolerance that bounds how old a replay can be.
CREATE TABLE provider_webhook_events (
  company_id   text NOT NULL REFERENCES companies(id),
  event_id     text NOT NULL,
  answer       jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, event_id)
);
CREATE INDEX provider_webhook_events_received_at ON provider_webhook_events (received_at);
