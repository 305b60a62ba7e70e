-- The API Keys page's default order (newest first) under a filter. Carrying the
-- filtered columns (name_lower for a name, key_id for a pasted key id) in the index
-- lets the filter be tested on index entries, so a filtered page reads ~20 table rows
-- instead of every key it skips: SQLite defers the table lookup, PostgreSQL answers
-- the page's ids with an index-only scan (db::keys::walk asks for ids first). It also
-- lets the filtered count of `key_id = ? OR name_lower LIKE ?` run on the index alone.
-- Measured by benches/keys_page.rs; see BENCHMARKS.md.
CREATE INDEX api_keys_channel_created_filter ON api_keys (channel_id, created_at, id, name_lower, key_id);
