-- POSTback that receivers can trust (issue 12).
-- postback_secrets: each key's Standard Webhooks signing secrets, sealed (AEAD) with a
-- key derived from the server's secret. A rolled secret keeps signing until retires_at
-- (24 h overlap). No foreign key: the key.deleted event of a deleted key is still signed.
CREATE TABLE postback_secrets (
    id INTEGER PRIMARY KEY,
    api_key_id BIGINT NOT NULL,
    sealed TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    retires_at TIMESTAMP
);
CREATE INDEX postback_secrets_key ON postback_secrets (api_key_id);
-- postback_gone_at: when a receiver answered 410 Gone and the POSTback was turned off.
ALTER TABLE api_keys ADD COLUMN postback_gone_at TIMESTAMP;
-- msg_id: the webhook-id, stable across retries; host: the receiver, for the per-host
-- cap on concurrent deliveries; last_outcome: a coarse outcome, never error text.
ALTER TABLE outbox ADD COLUMN msg_id TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN host TEXT NOT NULL DEFAULT '';
UPDATE outbox SET msg_id = 'msg_' || CAST(id AS TEXT);
ALTER TABLE outbox RENAME COLUMN last_error TO last_outcome;
UPDATE outbox SET last_outcome = 'failed' WHERE last_outcome IS NOT NULL;
CREATE INDEX outbox_delivered ON outbox (delivered_at);
