DROP TABLE leak_reports;
DROP INDEX api_keys_imported;
ALTER TABLE api_keys DROP COLUMN leaked_at;
ALTER TABLE api_keys DROP COLUMN imported_as;
