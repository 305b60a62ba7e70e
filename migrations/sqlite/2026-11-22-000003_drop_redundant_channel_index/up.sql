-- api_keys_channel_created_filter (channel_id, created_at, id, name_lower, key_id),
-- added by 000002, starts with the same three columns and serves every query this
-- index did: keeping both only cost space and time on every key write.
DROP INDEX api_keys_channel_created;
