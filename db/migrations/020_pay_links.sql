-- billflow's own Pay Now links (/pay/{token}): one per invoice per series, a series running from a
-- Final until the invoice goes back to Draft (domain/pay-link.ts). The token is 128 random bits.
CREATE TABLE pay_links (
  token          text PRIMARY KEY,
  company_id     text NOT NULL,
  invoice_number text NOT NULL,
  series         integer NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (company_id, invoice_number, series)
);

-- The read model's link of the invoice's current series (pay_now_url stays the provider's page).
ALTER TABLE invoices ADD COLUMN pay_link_token text;

-- Invoices with a payment page before this migration get their link now.
INSERT INTO pay_links (token, company_id, invoice_number, series)
SELECT rtrim(translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/', '-_'), '='), company_id, number,
  (SELECT count(*) FROM jsonb_array_elements(state->'history') h WHERE h->>'to' = 'Draft')
FROM invoices WHERE pay_now_url IS NOT NULL AND state IS NOT NULL;

UPDATE invoices i SET pay_link_token = l.token FROM pay_links l
WHERE l.company_id = i.company_id AND l.invoice_number = i.number;
