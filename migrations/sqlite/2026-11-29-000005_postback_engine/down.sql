DROP INDEX outbox_delivered;
ALTER TABLE outbox RENAME COLUMN last_outcome TO last_error;
ALTER TABLE outbox DROP COLUMN host;
ALTER TABLE outbox DROP COLUMN msg_id;
ALTER TABLE api_keys DROP COLUMN postback_gone_at;
DROP INDEX postback_secrets_key;
DROP TABLE postback_secrets;
