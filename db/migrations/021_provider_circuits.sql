-- A circuit breaker per provider account (activities/provider/circuit.ts), here so every worker
-- sees the same one. closed: calls go through; open: calls fail fast without reaching the
-- provider until the cool-down has passed; half-open: one probe call is under way (leased until
-- probe_until), the others still fail fast.
CREATE TABLE provider_circuits (
  account_key       text PRIMARY KEY,
  state             text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open', 'half-open')),
  -- Outages (5xx, 429, no answer) in a row, counted from window_started_at.
  failures          integer NOT NULL DEFAULT 0,
  window_started_at timestamptz,
  opened_at         timestamptz,
  -- An open circuit's cool-down ends here: the next call is let through as the probe.
  probe_after       timestamptz,
  probe_until       timestamptz,
  last_failure      text,
  last_failure_at   timestamptz,
  -- Calls refused without reaching the provider since the circuit last opened.
  refused           bigint NOT NULL DEFAULT 0,
  times_opened      integer NOT NULL DEFAULT 0,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
