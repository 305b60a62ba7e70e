-- Filters of one or two characters (issue 16): an index of every 1- and 2-character
-- substring of key names, which the trigram index of migration 000011 cannot look up.
-- Without it such a filter reads the whole channel with LIKE, and one that no name (or
-- only a few names) holds reads all of it to find next to nothing.
--
-- FTS5 again, with one token per distinct gram of a name: the gram's UTF-8 bytes in hex
-- (`sv` is `7376`), so every character, `%`, `_`, quotes and FTS5 syntax included, is
-- a plain token of the `ascii` tokenizer, and no two grams share a token (UTF-8 is
-- prefix-free, so a byte string splits into characters one way only). A 1- or
-- 2-character filter is one token: the names holding it exactly, with no check after.
--
-- detail = none: only which keys hold a gram, not where (the filter is the whole
-- token), a few bytes per key and gram. Contentless, rowid `channel_id * 2^40 + id`
-- like `key_search`: one channel is one rowid range of every gram's list.
--
-- The grams come from a small table of positions (SQLite triggers cannot use a WITH
-- clause): `substr` counts characters, and at the last position the 2-character
-- `substr` is the last character again, harmless. Names hold at most 100 characters;
-- lowercasing can lengthen a few (`İ` becomes two), so 1,000 positions leave room.
CREATE TABLE key_gram_positions (i INTEGER PRIMARY KEY);

WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
INSERT INTO key_gram_positions (i) SELECT i FROM n;

CREATE VIRTUAL TABLE key_grams USING fts5 (
    grams,
    content = '',
    columnsize = 0,
    detail = none,
    tokenize = 'ascii'
);

INSERT INTO key_grams (rowid, grams)
SELECT channel_id * 1099511627776 + id, (
    SELECT group_concat(hex(substr(name_lower, i, 1)) || ' ' || hex(substr(name_lower, i, 2)), ' ')
    FROM key_gram_positions WHERE i <= length(name_lower)
) FROM api_keys;
INSERT INTO key_grams (key_grams) VALUES ('optimize');

CREATE TRIGGER api_keys_grams_insert AFTER INSERT ON api_keys
BEGIN
    INSERT INTO key_grams (rowid, grams)
    VALUES (NEW.channel_id * 1099511627776 + NEW.id, (
        SELECT group_concat(hex(substr(NEW.name_lower, i, 1)) || ' ' || hex(substr(NEW.name_lower, i, 2)), ' ')
        FROM key_gram_positions WHERE i <= length(NEW.name_lower)
    ));
END;

-- A contentless table is told what a row held when it is removed: the same grams,
-- computed from the old name.
CREATE TRIGGER api_keys_grams_delete AFTER DELETE ON api_keys
BEGIN
    INSERT INTO key_grams (key_grams, rowid, grams)
    VALUES ('delete', OLD.channel_id * 1099511627776 + OLD.id, (
        SELECT group_concat(hex(substr(OLD.name_lower, i, 1)) || ' ' || hex(substr(OLD.name_lower, i, 2)), ' ')
        FROM key_gram_positions WHERE i <= length(OLD.name_lower)
    ));
END;

-- As for `key_search`: `UPDATE OF` fires whenever a statement sets the column, so the
-- WHEN clause leaves the index alone unless the name or the channel changed.
CREATE TRIGGER api_keys_grams_update AFTER UPDATE OF name_lower, channel_id ON api_keys
WHEN OLD.name_lower IS NOT NEW.name_lower OR OLD.channel_id IS NOT NEW.channel_id
BEGIN
    INSERT INTO key_grams (key_grams, rowid, grams)
    VALUES ('delete', OLD.channel_id * 1099511627776 + OLD.id, (
        SELECT group_concat(hex(substr(OLD.name_lower, i, 1)) || ' ' || hex(substr(OLD.name_lower, i, 2)), ' ')
        FROM key_gram_positions WHERE i <= length(OLD.name_lower)
    ));
    INSERT INTO key_grams (rowid, grams)
    VALUES (NEW.channel_id * 1099511627776 + NEW.id, (
        SELECT group_concat(hex(substr(NEW.name_lower, i, 1)) || ' ' || hex(substr(NEW.name_lower, i, 2)), ' ')
        FROM key_gram_positions WHERE i <= length(NEW.name_lower)
    ));
END;
