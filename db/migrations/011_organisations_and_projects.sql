-- One ERP connection (an Ajera database) can hold several companies. An organisation groups them
-- behind one API key; billflow routes each invoice to its project's company, whose provider
-- account then sends it. Companies without an organisation keep working with their own key only.
CREATE TABLE organisations (
  id            text PRIMARY KEY,
  name          text NOT NULL,
  api_key_hash  text NOT NULL UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE companies ADD COLUMN organisation_id text REFERENCES organisations(id);
CREATE INDEX companies_organisation ON companies (organisation_id);

-- A project belongs to one company; project ids are unique within an organisation, so a project
-- id alone names its company.
CREATE TABLE projects (
  company_id       text NOT NULL REFERENCES companies(id),
  id               text NOT NULL,
  organisation_id  text REFERENCES organisations(id),
  client_id        text NOT NULL,
  name             text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (company_id, id),
  FOREIGN KEY (company_id, client_id) REFERENCES clients(company_id, id)
);
CREATE UNIQUE INDEX projects_organisation_id ON projects (organisation_id, id) WHERE organisation_id IS NOT NULL;

-- Invoice numbers are unique within an organisation (as in one ERP database), so a number alone
-- names the invoice's company. Written before the invoice's workflow starts; the read model
-- (`invoices`) is written later by the workflow and cannot serve as this guard.
CREATE TABLE organisation_invoices (
  organisation_id  text NOT NULL REFERENCES organisations(id),
  number           text NOT NULL,
  company_id       text NOT NULL REFERENCES companies(id),
  PRIMARY KEY (organisation_id, number)
);

ALTER TABLE invoices ADD COLUMN project_id text;
