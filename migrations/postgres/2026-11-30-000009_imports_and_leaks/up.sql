-- Operators at scale (issue 15): imported keys and leak reports.
--
-- imported_as: 'sha256' or 'sha512' for a key imported from another system by the
-- digest of its plaintext (its key_hash is then derived from that digest, see
-- domain::imported); NULL for Latchkey's own keys. Indexed: verification asks whether
-- any imported key exists before it hashes a presented key that is not Latchkey's.
ALTER TABLE api_keys ADD COLUMN imported_as TEXT;
CREATE INDEX api_keys_imported ON api_keys (imported_as) WHERE imported_as IS NOT NULL;
-- leaked_at: when a leak report (GitHub secret scanning) last named this key.
ALTER TABLE api_keys ADD COLUMN leaked_at TIMESTAMP;
-- Signed leak reports already acted on, by the SHA-256 of their body: a replayed
-- report is answered again without acting twice.
CREATE TABLE leak_reports (
    id BIGSERIAL PRIMARY KEY,
    body_hash TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    tokens BIGINT NOT NULL
);
CREATE UNIQUE INDEX leak_reports_body ON leak_reports (body_hash);
CREATE INDEX leak_reports_age ON leak_reports (received_at);
