DROP TRIGGER api_keys_search_update ON api_keys;
DROP TRIGGER api_keys_search ON api_keys;
DROP FUNCTION key_search_sync();
DROP TABLE key_search;
-- pg_trgm stays: other databases objects may use it, and it holds no data.
