-- Filtering keys by name as people type (issue 16): a substring index of key names.
--
-- pg_trgm (contrib; Debian ships it with the server, `postgresql-contrib`) indexes the
-- trigrams of each name in a GIN index, which finds the names that contain a filter's
-- trigrams; db::key_search then checks the exact text.
--
-- The index lives on a narrow copy of (channel_id, id, name_lower), hash-partitioned
-- by channel into 64 tables with an index each. A GIN scan reads every key's entry for
-- each trigram it asks about, and names that follow one convention share most
-- trigrams ("svc", "-00"…): over one table of a million keys a filter read ~1,000,000
-- entries per trigram (30–50 ms, BENCHMARKS.md); the channel's own partition holds its
-- keys and a few other channels', a tenth of that for a channel of 100,000 keys. The
-- narrow rows make the exact check after the index cheap too.
--
-- fastupdate = off: each key write updates the index at once, instead of a pending
-- list that every search must scan until it is merged.
--
-- Kept in step by triggers, so every way a key is written (the dashboard, the API,
-- import, bulk actions, rolls, renames, deletes) updates it in the same transaction.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE key_search (
    channel_id BIGINT NOT NULL,
    id BIGINT NOT NULL,
    name_lower TEXT NOT NULL,
    PRIMARY KEY (channel_id, id)
) PARTITION BY HASH (channel_id);

DO $$
BEGIN
    FOR i IN 0..63 LOOP
        EXECUTE format(
            'CREATE TABLE key_search_%s PARTITION OF key_search FOR VALUES WITH (MODULUS 64, REMAINDER %s)',
            i, i);
    END LOOP;
END
$$;

INSERT INTO key_search (channel_id, id, name_lower)
SELECT channel_id, id, name_lower FROM api_keys;

CREATE INDEX key_search_name ON key_search USING gin (name_lower gin_trgm_ops)
    WITH (fastupdate = off);

CREATE FUNCTION key_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM key_search WHERE channel_id = OLD.channel_id AND id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO key_search (channel_id, id, name_lower)
        VALUES (NEW.channel_id, NEW.id, NEW.name_lower);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_search AFTER INSERT OR DELETE ON api_keys
FOR EACH ROW EXECUTE FUNCTION key_search_sync();

-- `UPDATE OF` fires whenever a statement sets the column, changed or not (the edit
-- form saves every field): the WHEN clause leaves the index alone unless it changed.
CREATE TRIGGER api_keys_search_update AFTER UPDATE OF name_lower, channel_id ON api_keys
FOR EACH ROW
WHEN (OLD.name_lower IS DISTINCT FROM NEW.name_lower OR OLD.channel_id IS DISTINCT FROM NEW.channel_id)
EXECUTE FUNCTION key_search_sync();

ANALYZE key_search;
