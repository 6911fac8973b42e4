-- Idempotency-Key: an in-progress key is leased to the request working on it. A request that died
-- (client gone, API killed) leaves its lease to expire, and a retry then takes the key over; the
-- token says which request holds it, so only the holder stores the answer. Answers are kept 24 h.
ALTER TABLE idempotency_keys ADD COLUMN lease_token uuid;
ALTER TABLE idempotency_keys ADD COLUMN locked_until timestamptz;
-- Keys left in progress before leases existed are free to take over.
UPDATE idempotency_keys SET locked_until = created_at WHERE status IS NULL;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
