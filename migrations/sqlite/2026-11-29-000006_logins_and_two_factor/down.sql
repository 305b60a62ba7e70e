DROP INDEX login_attempts_pair;
DROP INDEX settings_name;
DROP TABLE settings;
DROP TABLE recovery_codes;
ALTER TABLE users DROP COLUMN totp_last_step;
ALTER TABLE users DROP COLUMN totp_enabled;
ALTER TABLE users DROP COLUMN totp_secret;
ALTER TABLE audit_events DROP COLUMN repeat_count;
