-- The delivery loop's purge of delivered deliveries past the retention (worker/webhooks.ts), and of
-- events no delivery refers to any more.
CREATE INDEX webhook_deliveries_purge ON webhook_deliveries (delivered_at) WHERE status = 'delivered';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_seq);
CREATE INDEX webhook_events_created ON webhook_events (created_at);
