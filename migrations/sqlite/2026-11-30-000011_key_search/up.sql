-- Filtering keys by name as people type (issue 16): a substring index of key names.
--
-- FTS5 with the trigram tokenizer (in the bundled SQLite): every three characters of a
-- name are a token with its position, so a filter of three or more characters is a
-- phrase query that matches exactly the names containing it (db::key_search). Case
-- sensitive over `name_lower`, which is already lowercased the way filters are.
--
-- Contentless (content = ''): only the index is kept, not a second copy of the names.
-- Its rowid is `channel_id * 2^40 + id` (key ids below 2^40, channel ids below 2^23),
-- so one channel's keys are one rowid range of every token's list: a query for one
-- channel reads only that channel's part of the index, and its count needs no row of
-- api_keys at all. columnsize = 0: no ranking, so no per-row token counts.
--
-- Kept in step by triggers, so every way a key is written (the dashboard, the API,
-- import, bulk actions, rolls, renames, deletes) updates it in the same transaction.
-- A contentless table is told what a row held when it is removed ('delete' command
-- with the old values), which the triggers have.
CREATE VIRTUAL TABLE key_search USING fts5 (
    name,
    content = '',
    columnsize = 0,
    tokenize = 'trigram case_sensitive 1'
);

INSERT INTO key_search (rowid, name)
SELECT channel_id * 1099511627776 + id, name_lower FROM api_keys;
-- One segment instead of one per thousand rows written above.
INSERT INTO key_search (key_search) VALUES ('optimize');

CREATE TRIGGER api_keys_search_insert AFTER INSERT ON api_keys
BEGIN
    INSERT INTO key_search (rowid, name)
    VALUES (NEW.channel_id * 1099511627776 + NEW.id, NEW.name_lower);
END;

CREATE TRIGGER api_keys_search_delete AFTER DELETE ON api_keys
BEGIN
    INSERT INTO key_search (key_search, rowid, name)
    VALUES ('delete', OLD.channel_id * 1099511627776 + OLD.id, OLD.name_lower);
END;

-- `UPDATE OF` fires whenever a statement sets the column, changed or not (the edit
-- form saves every field): the WHEN clause leaves the index alone unless it changed.
CREATE TRIGGER api_keys_search_update AFTER UPDATE OF name_lower, channel_id ON api_keys
WHEN OLD.name_lower IS NOT NEW.name_lower OR OLD.channel_id IS NOT NEW.channel_id
BEGIN
    INSERT INTO key_search (key_search, rowid, name)
    VALUES ('delete', OLD.channel_id * 1099511627776 + OLD.id, OLD.name_lower);
    INSERT INTO key_search (rowid, name)
    VALUES (NEW.channel_id * 1099511627776 + NEW.id, NEW.name_lower);
END;
