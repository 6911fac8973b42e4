-- Bills (billflow's final invoices seen as bills): the informative life-cycle state, the
-- exceptional-bill classification and its hold, and what sending needs to know per client.

ALTER TABLE invoices ADD COLUMN lifecycle_state text;
ALTER TABLE invoices ADD COLUMN classification text;
-- An exceptional bill is held from sending until an operator releases it.
ALTER TABLE invoices ADD COLUMN held boolean NOT NULL DEFAULT false;
CREATE INDEX invoices_lifecycle ON invoices (company_id, lifecycle_state);

-- The company's billing-run definition: {"kind":"fixed","amount":N} or {"kind":"credit-limit","percent":P}.
ALTER TABLE companies ADD COLUMN max_credited jsonb;
ALTER TABLE companies ADD COLUMN max_debited jsonb;

ALTER TABLE clients ADD COLUMN credit_limit bigint;
ALTER TABLE clients ADD COLUMN delivery_preference text NOT NULL DEFAULT 'email' CHECK (delivery_preference IN ('email', 'print'));

CREATE TABLE lifecycle_changes (
  id              bigserial PRIMARY KEY,
  company_id      text NOT NULL REFERENCES companies(id),
  invoice_number  text NOT NULL,
  from_state      text,
  to_state        text NOT NULL,
  changed_by      text NOT NULL,
  request_id      text NOT NULL,
  changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lifecycle_changes_invoice ON lifecycle_changes (company_id, invoice_number, id);
