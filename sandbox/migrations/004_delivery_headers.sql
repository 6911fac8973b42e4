-- The headers of a delivery's last attempt (its signature included), so an integrator can replay it exactly.
ALTER TABLE webhook_deliveries ADD COLUMN last_headers jsonb;
