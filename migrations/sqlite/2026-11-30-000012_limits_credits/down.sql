ALTER TABLE api_keys DROP COLUMN refilled_at;
ALTER TABLE api_keys DROP COLUMN refill_amount;
ALTER TABLE api_keys DROP COLUMN refill_period;
ALTER TABLE api_keys DROP COLUMN credit_epoch;
ALTER TABLE api_keys DROP COLUMN credits;
ALTER TABLE api_keys DROP COLUMN metadata;
ALTER TABLE api_keys DROP COLUMN rate_limits;
