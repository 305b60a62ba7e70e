CREATE INDEX api_keys_channel_created ON api_keys (channel_id, created_at, id);
