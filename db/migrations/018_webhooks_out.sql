-- Events to the ERP (Standard Webhooks). An endpoint belongs to one company; its signing secret is
-- stored encrypted (lib/secrets.ts), bound to the endpoint's id.
CREATE TABLE webhook_endpoints (
  id                       text PRIMARY KEY,
  company_id               text NOT NULL REFERENCES companies(id),
  url                      text NOT NULL,
  description              text,
  -- null: every event type.
  events                   text[],
  secret                   text NOT NULL,
  -- After a rotation the old secret signs too (a second signature) until it expires.
  secret_previous          text,
  secret_previous_expires_at timestamptz,
  enabled                  boolean NOT NULL DEFAULT true,
  disabled_reason          text,
  -- The first failed attempt since the last success (null while it succeeds): how long it has failed.
  failing_since            timestamptz,
  last_success_at          timestamptz,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_company ON webhook_endpoints (company_id);

-- The outbox: written in the same transaction as the row that causes the event, so a committed
-- change always has its event and a rolled-back one never does. `id` is the webhook-id, made from
-- the business identity of what happened (a repeat of the same write adds nothing).
-- `ordering_key` (an invoice, or a company's reconciliations) orders deliveries; `seq` commits in
-- order within one key (events take the key's advisory lock first, see activities/events.ts).
CREATE TABLE webhook_events (
  seq            bigserial PRIMARY KEY,
  id             text NOT NULL UNIQUE,
  company_id     text NOT NULL REFERENCES companies(id),
  type           text NOT NULL,
  ordering_key   text NOT NULL,
  request_id     text NOT NULL,
  -- The body exactly as signed and sent, on every attempt.
  payload        text NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);

-- One event for one endpoint (made with the event, for the company's endpoints that take its type).
CREATE TABLE webhook_deliveries (
  id               bigserial PRIMARY KEY,
  endpoint_id      text NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  event_seq        bigint NOT NULL REFERENCES webhook_events(seq),
  ordering_key     text NOT NULL,
  status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts         integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  first_attempt_at timestamptz,
  last_attempt_at  timestamptz,
  delivered_at     timestamptz,
  -- A dispatcher holds a delivery while it sends it; one that died lets the lease run out.
  lease_token      uuid,
  leased_until     timestamptz,
  UNIQUE (endpoint_id, event_seq)
);
-- The dispatcher's questions: what is due, and is an earlier delivery of the same key still pending.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, ordering_key, event_seq) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_listing ON webhook_deliveries (endpoint_id, id);

CREATE TABLE webhook_attempts (
  delivery_id   bigint NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  attempt       integer NOT NULL,
  started_at    timestamptz NOT NULL,
  duration_ms   integer NOT NULL,
  -- null when no answer came (refused connection, time-out).
  status_code   integer,
  response_body text,
  error         text,
  PRIMARY KEY (delivery_id, attempt)
);

-- The ERP request that created each invoice (written by the API before it starts the workflow):
-- the correlation id of its invoice.created event.
CREATE TABLE invoice_origins (
  company_id  text NOT NULL REFERENCES companies(id),
  number      text NOT NULL,
  request_id  text NOT NULL,
  PRIMARY KEY (company_id, number)
);
