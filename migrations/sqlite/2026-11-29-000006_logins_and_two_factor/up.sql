-- Issue 11, logins and accounts.
-- repeat_count: failed and throttled logins are audited as one line per account, address
-- and minute, counted, instead of one line each (an attacker could fill the table).
ALTER TABLE audit_events ADD COLUMN repeat_count BIGINT NOT NULL DEFAULT 1;
-- Two-factor authentication (TOTP, RFC 6238). totp_secret is encrypted (AES-256-GCM, key
-- derived from the session secret); it is set at enrolment and enabled once a code from
-- it has been confirmed. totp_last_step is the last accepted time step: a code is
-- accepted once.
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
-- One-time recovery codes, stored as blake3 hashes.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);
-- Deployment settings an admin changes in the dashboard (two_factor_required).
CREATE TABLE settings (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE UNIQUE INDEX settings_name ON settings (name);
-- Throttling counts failures per account and address.
CREATE INDEX login_attempts_pair ON login_attempts (username, source_ip, occurred_at);
