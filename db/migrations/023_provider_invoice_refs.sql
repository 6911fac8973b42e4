-- Which invoice each provider record was made for, written when the record is made (before the
-- change that made it answers), so a payment webhook naming the record finds its invoice even
-- before the invoice's read model is written (a moment after the answer).
CREATE TABLE provider_invoice_refs (
  company_id          text NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
  provider_invoice_id text NOT NULL,
  invoice_number      text NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, provider_invoice_id)
);
