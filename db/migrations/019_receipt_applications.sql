-- What each receipt applies to, in the shape an ERP posts: per invoice the amount applied
-- (payment receipts; fees and prepayments apply to none), and a Quick Pay's own details.
-- Null on receipts written before this: not known.
ALTER TABLE receipts ADD COLUMN applications jsonb;
ALTER TABLE receipts ADD COLUMN quick_pay jsonb;
