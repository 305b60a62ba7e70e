-- Usage that scales (issue 13).
--
-- Rollups: one row per key, period (minute | hour | day), bucket start and outcome,
-- added into by every instance's flusher with an upsert. Key 0 holds what was refused
-- before any key was known (bad bearer, malformed or unknown key). WITHOUT ROWID: the
-- primary key is the row, so an upsert touches one b-tree.
CREATE TABLE usage_rollups (
    api_key_id BIGINT NOT NULL,
    period TEXT NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, period, bucket_start, outcome)
) WITHOUT ROWID;
-- Retention deletes by age per period.
CREATE INDEX usage_rollups_age ON usage_rollups (period, bucket_start);

-- The history the request log already holds becomes rollups, so charts keep it.
INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count)
SELECT api_key_id, 'minute', strftime('%Y-%m-%d %H:%M:00', occurred_at),
       CASE WHEN status < 300 THEN 'API_2XX' WHEN status < 500 THEN 'API_4XX' ELSE 'API_5XX' END,
       COUNT(*)
FROM request_log WHERE occurred_at >= datetime('now', '-2 days')
GROUP BY 1, 2, 3, 4;
INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count)
SELECT api_key_id, 'hour', strftime('%Y-%m-%d %H:00:00', occurred_at),
       CASE WHEN status < 300 THEN 'API_2XX' WHEN status < 500 THEN 'API_4XX' ELSE 'API_5XX' END,
       COUNT(*)
FROM request_log WHERE occurred_at >= datetime('now', '-90 days')
GROUP BY 1, 2, 3, 4;
INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count)
SELECT api_key_id, 'day', strftime('%Y-%m-%d 00:00:00', occurred_at),
       CASE WHEN status < 300 THEN 'API_2XX' WHEN status < 500 THEN 'API_4XX' ELSE 'API_5XX' END,
       COUNT(*)
FROM request_log GROUP BY 1, 2, 3, 4;

-- The raw log becomes a bounded debugging aid: the route pattern instead of the raw
-- path, what kind of use a row is (a request made with the key, or a verification of
-- the key by another caller) and, for verifications, the outcome code.
ALTER TABLE request_log RENAME COLUMN path TO route;
UPDATE request_log SET route = substr(route, 1, 120) WHERE length(route) > 120;
ALTER TABLE request_log ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE request_log ADD COLUMN code TEXT;
-- One index: newest first per key (the page, the status filter within the 10,000 rows a
-- key keeps, the per-key cap). Fewer indexes make every logged use cheaper.
DROP INDEX request_log_key;
DROP INDEX request_log_key_status;
CREATE INDEX request_log_key ON request_log (api_key_id, id);

-- Requests in the last 24 hours and 30 days, from rollups: increased by each flush,
-- recomputed from rollups by housekeeping as hours pass. Sortable per channel.
ALTER TABLE api_keys ADD COLUMN uses_24h BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN uses_30d BIGINT NOT NULL DEFAULT 0;
UPDATE api_keys SET
  uses_24h = COALESCE((SELECT SUM(count) FROM usage_rollups r WHERE r.api_key_id = api_keys.id
      AND r.period = 'hour' AND r.bucket_start >= strftime('%Y-%m-%d %H:00:00', 'now', '-23 hours')), 0),
  uses_30d = COALESCE((SELECT SUM(count) FROM usage_rollups r WHERE r.api_key_id = api_keys.id
      AND r.period = 'day' AND r.bucket_start >= strftime('%Y-%m-%d 00:00:00', 'now', '-29 days')), 0);
CREATE INDEX api_keys_channel_uses ON api_keys (channel_id, uses_30d, id);
