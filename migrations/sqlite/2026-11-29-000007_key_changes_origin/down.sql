ALTER TABLE key_changes DROP COLUMN origin;
