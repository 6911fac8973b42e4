-- An invoice's currency (ISO 4217; the sandbox takes two-decimal ones). The Pay Now page shows it,
-- and a payment is in the currency of the invoices it pays.
ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'USD';

CREATE OR REPLACE VIEW invoice_view AS
SELECT i.id, i.account_id, i.customer_id, i.number, i.invoice_date::text AS invoice_date, i.amount,
       i.outstanding, i.status, i.pay_token, i.form_token, i.pdf_sha256, octet_length(i.pdf) AS pdf_bytes,
       i.deleted_at, i.created_at, i.updated_at,
       COALESCE((SELECT sum(a.amount) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id
                 WHERE a.invoice_id = i.id AND p.status = 'succeeded'), 0)::bigint AS paid,
       i.currency
FROM invoices i;
