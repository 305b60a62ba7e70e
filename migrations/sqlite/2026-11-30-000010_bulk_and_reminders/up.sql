-- Which expiry reminder (lead time in days) each key was sent, so each lead time sends
-- its `key.expiring` event once per key, across restarts and instances: the row is
-- inserted in the same transaction as the outbox row, and the primary key lets only
-- one instance insert it. Changing a key's expiry deletes its rows (reminders start
-- over for the new date).
CREATE TABLE expiry_reminders (
    api_key_id BIGINT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    lead_days BIGINT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP NOT NULL,
    PRIMARY KEY (api_key_id, lead_days)
);

-- Keys told by the former single 7-day notice are not told again at 7 days.
INSERT INTO expiry_reminders (api_key_id, lead_days, expires_at, sent_at)
SELECT id, 7, expires_at, expiry_notice_sent_at FROM api_keys
WHERE expiry_notice_sent_at IS NOT NULL AND expires_at IS NOT NULL;
