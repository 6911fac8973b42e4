-- A fault may affect only the requests of one route ("POST /v1/invoices/*/pdf"), as a SQL LIKE pattern.
ALTER TABLE faults ADD COLUMN match text;
