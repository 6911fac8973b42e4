-- Backup attachments keep the name they were printed with.
ALTER TABLE documents ADD COLUMN filename text;
