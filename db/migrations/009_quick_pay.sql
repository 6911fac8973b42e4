-- Quick Pay details (the payment itself is a row in `payments` like any other).
CREATE TABLE quick_payments (
  company_id        text NOT NULL REFERENCES companies(id),
  invoice_number    text NOT NULL,
  payment_id        text NOT NULL,
  amount            bigint NOT NULL,
  payment_type      text NOT NULL,
  payment_method    text NOT NULL,
  issued_on         date NOT NULL,
  category          text NOT NULL,
  received_by_user  text NOT NULL,
  received_by_unit  text NOT NULL,
  request_id        text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, payment_id)
);
