-- Which payment provider a company collects through; the activities pick the adapter by it
-- (activities/provider/calls.ts). Every company registered before this column is Bill & Pay's.
ALTER TABLE companies ADD COLUMN provider_kind text NOT NULL DEFAULT 'billpay' CHECK (provider_kind IN ('billpay', 'stripe'));
