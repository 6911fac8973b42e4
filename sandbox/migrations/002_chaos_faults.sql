-- Chaos fault injection: instead of failing every request, each API request of the account fails
-- (error_rate), stalls (delay_rate) or commits and then loses its answer (drop_response_rate) at
-- random; webhook events are duplicated, held back (so they arrive out of order) or lost. The
-- counters say how many faults were injected since the account was created.
ALTER TABLE faults DROP CONSTRAINT faults_mode_check;
ALTER TABLE faults ADD CONSTRAINT faults_mode_check CHECK (mode IN ('none', 'error', 'delay', 'chaos'));
ALTER TABLE faults
  ADD COLUMN error_rate              double precision NOT NULL DEFAULT 0 CHECK (error_rate BETWEEN 0 AND 1),
  ADD COLUMN delay_rate              double precision NOT NULL DEFAULT 0 CHECK (delay_rate BETWEEN 0 AND 1),
  ADD COLUMN drop_response_rate      double precision NOT NULL DEFAULT 0 CHECK (drop_response_rate BETWEEN 0 AND 1),
  ADD COLUMN webhook_duplicate_rate  double precision NOT NULL DEFAULT 0 CHECK (webhook_duplicate_rate BETWEEN 0 AND 1),
  ADD COLUMN webhook_hold_rate       double precision NOT NULL DEFAULT 0 CHECK (webhook_hold_rate BETWEEN 0 AND 1),
  ADD COLUMN webhook_hold_ms         integer NOT NULL DEFAULT 0 CHECK (webhook_hold_ms >= 0),
  ADD COLUMN webhook_lose_rate       double precision NOT NULL DEFAULT 0 CHECK (webhook_lose_rate BETWEEN 0 AND 1),
  ADD COLUMN injected_errors         bigint NOT NULL DEFAULT 0,
  ADD COLUMN injected_delays         bigint NOT NULL DEFAULT 0,
  ADD COLUMN dropped_responses       bigint NOT NULL DEFAULT 0;

-- The webhook fault injected into a delivery, if any (decided once, before its first attempt).
ALTER TABLE webhook_deliveries ADD COLUMN fault text CHECK (fault IN ('duplicated', 'held', 'lost'));
