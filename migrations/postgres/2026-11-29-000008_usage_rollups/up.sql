-- Usage that scales (issue 13).
--
-- Rollups: one row per key, period (minute | hour | day), bucket start and outcome,
-- added into by every instance's flusher with an upsert. Key 0 holds what was refused
-- before any key was known (bad bearer, malformed or unknown key).
CREATE TABLE usage_rollups (
    api_key_id BIGINT NOT NULL,
    period TEXT NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, period, bucket_start, outcome)
);
-- Retention deletes by age per period.
CREATE INDEX usage_rollups_age ON usage_rollups (period, bucket_start);

-- The history the request log already holds becomes rollups, so charts keep it.
INSERT INTO usage_rollups (api_key_id, period, bucket_start, outcome, count)
SELECT api_key_id, p.period, date_trunc(p.period, occurred_at),
       CASE WHEN status < 300 THEN 'API_2XX' WHEN status < 500 THEN 'API_4XX' ELSE 'API_5XX' END,
       COUNT(*)
FROM request_log
CROSS JOIN (VALUES ('minute', interval '2 days'), ('hour', interval '90 days'), ('day', interval '400 days')) AS p(period, keep)
WHERE occurred_at >= (now() AT TIME ZONE 'UTC') - p.keep
GROUP BY 1, 2, 3, 4;

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
      AND r.period = 'hour' AND r.bucket_start >= date_trunc('hour', now() AT TIME ZONE 'UTC') - interval '23 hours'), 0),
  uses_30d = COALESCE((SELECT SUM(count) FROM usage_rollups r WHERE r.api_key_id = api_keys.id
      AND r.period = 'day' AND r.bucket_start >= date_trunc('day', now() AT TIME ZONE 'UTC') - interval '29 days'), 0);
CREATE INDEX api_keys_channel_uses ON api_keys (channel_id, uses_30d, id);
