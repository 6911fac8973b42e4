-- What a provider kept from a card payment it collected (Stripe's processing fee, from the charge's
-- balance transaction), as a receipt of its own beside the payment's: the ERP books it as a cost.
ALTER TABLE receipts DROP CONSTRAINT receipts_kind_check;
ALTER TABLE receipts ADD CONSTRAINT receipts_kind_check CHECK (kind IN ('payment', 'fee', 'processing-fee', 'prepayment'));
