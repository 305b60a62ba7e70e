//! The substring index of key names (migration `2026-11-30-000011_key_search`): which
//! keys of a list have a name containing a filter's text, without reading every key of
//! the channel. Backend-specific by nature, so every query here matches on the backend:
//!
//! - SQLite: an FTS5 table with the trigram tokenizer. A text of three or more
//!   characters is one phrase of its trigrams, which matches exactly the names that
//!   contain the text (positions are checked, case-sensitively: both sides are
//!   lowercased already). The table's rowid is `channel_id * 2^40 + id`, so one channel
//!   is one rowid range and the index alone answers both the ids and the count.
//! - PostgreSQL: a pg_trgm GIN index on a narrow copy of the names partitioned by
//!   channel. The index is asked only for the trigrams inside the text's ASCII words
//!   (`svc-00040-pr` has `svc` and `00040`), and not for words most names hold (judged
//!   on a sample of the list's names; here `svc`): each trigram the index is asked for
//!   costs a pass over all of its entries, and the ones pg_trgm pads at word edges
//!   (" 00", "  p") or a naming convention repeats (`svc`) are in nearly every name —
//!   5 ms of a 7 ms lookup. Each word is a substring of the text, so these conditions
//!   are implied by it; `strpos` then keeps exactly the names that contain the text.
//!
//! A text of one or two characters is a gram of the second index (migration
//! `2026-11-30-000013_key_name_grams`), which holds each name's distinct 1- and
//! 2-character substrings: the names holding it exactly, and a gram no name holds is
//! an empty lookup instead of a `LIKE` over the whole channel.
//!
//! - SQLite: an FTS5 table (detail = none) whose tokens are the grams' UTF-8 bytes in
//!   hex, rowids as above.
//! - PostgreSQL: a GIN index on `key_search` over the array of each name's grams. A
//!   gram most names hold is a long list to read, so the index is asked only when at
//!   most 1 % of a sample of the list's names hold it (when the sample is the whole
//!   list, it is the answer).
//!
//! All answer `None` when the index cannot help (no ASCII word of three or more on
//! PostgreSQL, a gram many names hold there, control characters, which no name has):
//! the caller then filters with `LIKE`, as before the index existed.

use diesel::RunQueryDsl;
use diesel::sql_types::{BigInt, Text};

use super::{DbConnection, DbResult};
use crate::domain::list::Within;

/// Shortest text the trigram indexes can look up.
pub const MIN_CHARS: usize = 3;

/// Rowids of `key_search` on SQLite: `channel_id * CHANNEL_SPAN + id`.
const CHANNEL_SPAN: i64 = 1 << 40;

#[derive(diesel::QueryableByName)]
struct IdRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(diesel::QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// What one text asks of the index, per backend.
enum Lookup {
    /// A query of an FTS5 table (`key_search` or `key_grams`): the text in double
    /// quotes, quotes doubled, or a gram's token.
    Phrase(&'static str, String),
    /// A gram of PostgreSQL's grams index.
    Gram(String),
    /// The matching ids, known already: the sample of a short text's list was all of it.
    Known(Vec<i64>),
    /// `LIKE` patterns of the text's ASCII words (for the GIN index) and the text
    /// itself (for `strpos`).
    Words(Vec<String>, String),
}

fn lookup(conn: &mut DbConnection, within: Within, text: &str) -> DbResult<Option<Lookup>> {
    if text.is_empty() || text.chars().any(char::is_control) {
        return Ok(None);
    }
    if text.chars().count() < MIN_CHARS {
        return short(conn, within, text);
    }
    Ok(match conn {
        DbConnection::Sqlite(_) => Some(Lookup::Phrase(
            "key_search",
            format!("\"{}\"", text.replace('"', "\"\"")),
        )),
        DbConnection::Postgresql(_) => {
            let words = uncommon(conn, within, words(text))?;
            (!words.is_empty()).then(|| {
                let patterns = words.into_iter().map(|w| format!("%{w}%")).collect();
                Lookup::Words(patterns, text.to_owned())
            })
        }
    })
}

/// The token of a gram in SQLite's `key_grams`: its UTF-8 bytes in hex (as SQLite's
/// `hex()` writes them in the migration's triggers).
fn gram_token(gram: &str) -> String {
    gram.bytes().map(|b| format!("{b:02X}")).collect()
}

/// A gram's lookup (one or two characters). PostgreSQL's GIN index reads every entry
/// of a gram in the channel's partition, so it is asked only for a gram at most
/// [`RARE_PERCENT`] of a sample of the list's names hold; a frequent one is left to
/// `LIKE` in sort order, which finds its page after a few entries.
fn short(conn: &mut DbConnection, within: Within, text: &str) -> DbResult<Option<Lookup>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(Some(Lookup::Phrase(
            "key_grams",
            format!("\"{}\"", gram_token(text)),
        )));
    };
    let sample = sample_of(c, within)?;
    let held: Vec<i64> = sample
        .iter()
        .filter(|r| r.name_lower.contains(text))
        .map(|r| r.id)
        .collect();
    Ok(if (sample.len() as i64) < SAMPLE {
        Some(Lookup::Known(held))
    } else if held.len() * 100 <= sample.len() * RARE_PERCENT {
        Some(Lookup::Gram(text.to_owned()))
    } else {
        None
    })
}

/// A gram held by at most this share of the sampled names is looked up in
/// PostgreSQL's grams index: in a partition of 150,000 names, a list of 1,500 or so.
const RARE_PERCENT: usize = 1;

#[derive(diesel::QueryableByName)]
struct SampleRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    name_lower: String,
}

/// Names read to judge which words most names hold.
const SAMPLE: i64 = 200;

/// The first [`SAMPLE`] names of the list (PostgreSQL's `key_search`), to judge how
/// many names hold a word or gram.
fn sample_of(c: &mut diesel::PgConnection, within: Within) -> DbResult<Vec<SampleRow>> {
    let (scope, channel) = scope_sql(within, true);
    let mut q = diesel::sql_query(format!(
        "SELECT id, name_lower FROM key_search WHERE {scope} LIMIT {SAMPLE}"
    ))
    .into_boxed::<diesel::pg::Pg>();
    if let Some(channel) = channel {
        q = q.bind::<BigInt, _>(channel);
    }
    Ok(q.load(c)?)
}

/// Of two or more words, those at most half of a sample of the list's names hold (or
/// the rarest one, when all are common): the ones worth asking the index for.
fn uncommon<'t>(
    conn: &mut DbConnection,
    within: Within,
    words: Vec<&'t str>,
) -> DbResult<Vec<&'t str>> {
    let DbConnection::Postgresql(c) = conn else {
        return Ok(words);
    };
    if words.len() < 2 {
        return Ok(words);
    }
    Ok(pick_uncommon(words, &sample_of(c, within)?))
}

fn pick_uncommon<'t>(words: Vec<&'t str>, sample: &[SampleRow]) -> Vec<&'t str> {
    let held = |w: &str| sample.iter().filter(|n| n.name_lower.contains(w)).count();
    let mut scored: Vec<(usize, &str)> = words.into_iter().map(|w| (held(w), w)).collect();
    scored.sort_by_key(|(n, _)| *n);
    let rarest = scored.first().map(|(_, w)| *w);
    let kept: Vec<&str> = scored
        .iter()
        .filter(|(n, _)| *n * 2 <= sample.len())
        .map(|(_, w)| *w)
        .collect();
    if kept.is_empty() {
        rarest.into_iter().collect()
    } else {
        kept
    }
}

/// The runs of ASCII letters and digits of three or more characters, each once, none
/// inside another: what pg_trgm turns into trigrams that need no padding.
fn words(text: &str) -> Vec<&str> {
    let mut words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= MIN_CHARS)
        .collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let mut kept: Vec<&str> = Vec::with_capacity(words.len());
    for w in words {
        if !kept.iter().any(|k| k.contains(w)) {
            kept.push(w);
        }
    }
    kept
}

/// The SQL condition that keeps a list's keys, and its bound value, per backend.
fn scope_sql(within: Within, postgres: bool) -> (&'static str, Option<i64>) {
    match (within, postgres) {
        (Within::Channel(c), false) => ("rowid BETWEEN ? AND ? + 1099511627775", Some(c)),
        (Within::Channel(c), true) => ("channel_id = $1", Some(c)),
        (Within::AllExcept(Some(c)), false) => {
            ("NOT (rowid BETWEEN ? AND ? + 1099511627775)", Some(c))
        }
        (Within::AllExcept(Some(c)), true) => ("channel_id <> $1", Some(c)),
        (Within::AllExcept(None), false) => ("1 = 1", None),
        (Within::AllExcept(None), true) => ("TRUE", None),
    }
}

/// The ids of up to `limit` keys `within` whose `name_lower` contains `text` (already
/// lowercased), or `None` when the index cannot answer for this text.
pub fn matching_ids(
    conn: &mut DbConnection,
    within: Within,
    text: &str,
    limit: i64,
) -> DbResult<Option<Vec<i64>>> {
    let Some(lookup) = lookup(conn, within, text)? else {
        return Ok(None);
    };
    if let Lookup::Known(mut ids) = lookup {
        ids.truncate(usize::try_from(limit).unwrap_or(0));
        return Ok(Some(ids));
    }
    let rows: Vec<IdRow> = run(conn, within, &lookup, Some(limit))?;
    Ok(Some(rows.into_iter().map(|r| r.id).collect()))
}

/// How many keys `within` have a name containing `text`, or `None` when the index
/// cannot answer for this text.
pub fn count(conn: &mut DbConnection, within: Within, text: &str) -> DbResult<Option<i64>> {
    let Some(lookup) = lookup(conn, within, text)? else {
        return Ok(None);
    };
    if let Lookup::Known(ids) = lookup {
        return Ok(Some(ids.len() as i64));
    }
    let rows: Vec<CountRow> = run(conn, within, &lookup, None)?;
    Ok(Some(rows.first().map_or(0, |r| r.n)))
}

/// Of the newest `scan` keys `within`, how many (up to `cap` + 1) have a name matching
/// the `LIKE` pattern (escaped with `\\`): a count of a filter the index cannot look up
/// that reads a bounded number of keys. In creation order, which spreads a filter's
/// matches evenly for keys named by a convention, where the name order would bunch
/// them (and so the work) unpredictably.
pub fn count_newest(
    conn: &mut DbConnection,
    within: Within,
    pattern: &str,
    scan: i64,
    cap: i64,
) -> DbResult<i64> {
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    let (scope, channel) = match within {
        Within::Channel(c) => ("channel_id = ", Some(c)),
        Within::AllExcept(Some(c)) => ("channel_id <> ", Some(c)),
        Within::AllExcept(None) => ("", None),
    };
    let mut n = 0;
    let mut param = || {
        n += 1;
        if postgres {
            format!("${n}")
        } else {
            "?".to_owned()
        }
    };
    let scope = match channel {
        Some(_) => format!("WHERE {scope}{}", param()),
        None => String::new(),
    };
    let sql = format!(
        "SELECT COUNT(*) AS n FROM (SELECT name_lower FROM (SELECT name_lower FROM api_keys \
         {scope} ORDER BY created_at DESC, id DESC LIMIT {}) newest \
         WHERE name_lower LIKE {} ESCAPE '\\' LIMIT {}) hits",
        param(),
        param(),
        param()
    );
    macro_rules! run {
        ($c:expr, $backend:ty) => {{
            let mut q = diesel::sql_query(sql).into_boxed::<$backend>();
            if let Some(c) = channel {
                q = q.bind::<BigInt, _>(c);
            }
            let rows: Vec<CountRow> = q
                .bind::<BigInt, _>(scan)
                .bind::<Text, _>(pattern)
                .bind::<BigInt, _>(cap + 1)
                .load($c)?;
            rows
        }};
    }
    let rows = match conn {
        DbConnection::Sqlite(c) => run!(c, diesel::sqlite::Sqlite),
        DbConnection::Postgresql(c) => run!(c, diesel::pg::Pg),
    };
    Ok(rows.first().map_or(0, |r| r.n))
}

/// Runs the lookup: the matching ids (with a limit) or their count (without).
fn run<R>(
    conn: &mut DbConnection,
    within: Within,
    lookup: &Lookup,
    limit: Option<i64>,
) -> DbResult<Vec<R>>
where
    R: diesel::QueryableByName<diesel::sqlite::Sqlite>
        + diesel::QueryableByName<diesel::pg::Pg>
        + 'static,
{
    match (conn, lookup) {
        (DbConnection::Sqlite(c), Lookup::Phrase(table, phrase)) => {
            let (scope, channel) = scope_sql(within, false);
            let select = match limit {
                Some(_) => format!("SELECT rowid % {CHANNEL_SPAN} AS id"),
                None => "SELECT COUNT(*) AS n".to_owned(),
            };
            let sql = format!(
                "{select} FROM {table} WHERE {table} MATCH ? AND {scope}{}",
                if limit.is_some() { " LIMIT ?" } else { "" }
            );
            let mut q = diesel::sql_query(sql)
                .into_boxed::<diesel::sqlite::Sqlite>()
                .bind::<Text, _>(phrase.clone());
            if let Some(c) = channel {
                let first = c.saturating_mul(CHANNEL_SPAN);
                q = q.bind::<BigInt, _>(first).bind::<BigInt, _>(first);
            }
            if let Some(n) = limit {
                q = q.bind::<BigInt, _>(n);
            }
            Ok(q.load(c)?)
        }
        (DbConnection::Postgresql(c), Lookup::Words(patterns, text)) => {
            let (scope, channel) = scope_sql(within, true);
            let mut n = if channel.is_some() { 1 } else { 0 };
            let mut next = || {
                n += 1;
                n
            };
            let mut sql = match limit {
                Some(_) => "SELECT id FROM key_search WHERE ".to_owned(),
                None => "SELECT COUNT(*) AS n FROM key_search WHERE ".to_owned(),
            };
            sql.push_str(scope);
            for _ in patterns {
                sql.push_str(&format!(" AND name_lower LIKE ${}", next()));
            }
            sql.push_str(&format!(" AND strpos(name_lower, ${}) > 0", next()));
            if limit.is_some() {
                sql.push_str(&format!(" LIMIT ${}", next()));
            }
            let mut q = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            if let Some(c) = channel {
                q = q.bind::<BigInt, _>(c);
            }
            for p in patterns {
                q = q.bind::<Text, _>(p.clone());
            }
            q = q.bind::<Text, _>(text.clone());
            if let Some(n) = limit {
                q = q.bind::<BigInt, _>(n);
            }
            Ok(q.load(c)?)
        }
        (DbConnection::Postgresql(c), Lookup::Gram(gram)) => {
            let (scope, channel) = scope_sql(within, true);
            let n = if channel.is_some() { 2 } else { 1 };
            let sql = format!(
                "{} FROM key_search WHERE {scope} AND key_name_grams(name_lower) @> ARRAY[${n}::text]{}",
                match limit {
                    Some(_) => "SELECT id",
                    None => "SELECT COUNT(*) AS n",
                },
                match limit {
                    Some(_) => format!(" LIMIT ${}", n + 1),
                    None => String::new(),
                }
            );
            let mut q = diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>();
            if let Some(c) = channel {
                q = q.bind::<BigInt, _>(c);
            }
            q = q.bind::<Text, _>(gram.clone());
            if let Some(n) = limit {
                q = q.bind::<BigInt, _>(n);
            }
            Ok(q.load(c)?)
        }
        // `lookup` builds each backend's own kind; `Known` needs no query.
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gram_token_is_its_utf8_bytes_in_hex_like_sqlite_writes_them() {
        assert_eq!(gram_token("sv"), "7376");
        assert_eq!(gram_token("%_"), "255F");
        assert_eq!(gram_token("\""), "22");
        assert_eq!(gram_token("ä"), "C3A4");
        assert_eq!(gram_token("語"), "E8AA9E");
    }

    #[test]
    fn words_are_the_ascii_runs_the_index_can_use() {
        assert_eq!(words("svc-00040-pr"), vec!["00040", "svc"]);
        assert_eq!(words("50%_off"), vec!["off"]);
        assert_eq!(words("%_ab-\"*"), Vec::<&str>::new());
        assert_eq!(words("billing api"), vec!["billing", "api"]);
        // A word inside a longer one adds nothing.
        assert_eq!(words("abcd bcd"), vec!["abcd"]);
        assert_eq!(words("zürich-prod"), vec!["rich", "prod"]);
    }

    #[test]
    fn words_most_names_hold_are_left_to_the_exact_check() {
        let sample: Vec<SampleRow> = ["svc-00040-prod", "svc-00041-dev", "svc-00140-ci", "svc-x"]
            .into_iter()
            .map(|n| SampleRow {
                id: 0,
                name_lower: n.to_owned(),
            })
            .collect();
        assert_eq!(pick_uncommon(vec!["svc", "00040"], &sample), vec!["00040"]);
        assert_eq!(
            pick_uncommon(vec!["prod", "zzz"], &sample),
            vec!["zzz", "prod"]
        );
        // All common: the rarest still narrows the index's answer.
        assert_eq!(pick_uncommon(vec!["svc", "00"], &sample), vec!["00"]);
    }
}
