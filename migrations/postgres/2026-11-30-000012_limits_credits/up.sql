-- Rate limits, usage credits and metadata per key (issue 14).
-- `rate_limits`: "<limit>/<window seconds>" items separated by spaces ('' = none).
-- `credits`: remaining uses not yet reserved by an instance (NULL = no credit limit).
-- `credit_epoch`: bumped whenever the balance is set outright (set, refill), so an
-- instance's reservation taken before that is dropped instead of given back.
-- `refill_period` 'day' | 'month', with `refill_amount`; `refilled_at` starts a period.
-- `metadata`: a JSON object (at most 4 KB), returned by verification.
ALTER TABLE api_keys ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN metadata TEXT;
ALTER TABLE api_keys ADD COLUMN credits BIGINT;
ALTER TABLE api_keys ADD COLUMN credit_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN refill_period TEXT;
ALTER TABLE api_keys ADD COLUMN refill_amount BIGINT;
ALTER TABLE api_keys ADD COLUMN refilled_at TIMESTAMP;
