-- Filters of one or two characters (issue 16): an index of every 1- and 2-character
-- substring of key names, which the trigram index of migration 000011 cannot look up.
-- Without it such a filter reads the whole channel with LIKE, and one that no name (or
-- only a few names) holds reads all of it to find next to nothing.
--
-- A second GIN index on `key_search` (the narrow copy of the names, partitioned by
-- channel, that migration 000011's triggers keep in step), over the array of each
-- name's grams: a 1- or 2-character filter is one array element, `@>` finds
-- exactly the names holding it (no recheck against the text is needed), and a gram no
-- name holds is an empty lookup. `substr`, `length` and `string_to_array(.., NULL)`
-- count characters.
--
-- Every character, then every pair. Duplicates are left in: GIN stores each distinct
-- element once. plpgsql: five times faster than the same as one SQL query over
-- generate_series (7 µs a name instead of 35), which the index build and every write
-- pay.
CREATE FUNCTION key_name_grams(name TEXT) RETURNS TEXT[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
    grams TEXT[] := string_to_array(name, NULL);
BEGIN
    FOR i IN 1 .. length(name) - 1 LOOP
        grams := grams || substr(name, i, 2);
    END LOOP;
    RETURN grams;
END
$$;

-- fastupdate = off, like the trigram index: searches never scan a pending list.
-- db::key_search asks it only for grams few of the channel's names hold: one most
-- names hold is a long list to read (11 ms for 135,000 names), where LIKE in sort
-- order finds a page of it at once.
CREATE INDEX key_search_grams ON key_search USING gin (key_name_grams(name_lower))
    WITH (fastupdate = off);

ANALYZE key_search;
