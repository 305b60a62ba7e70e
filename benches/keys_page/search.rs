//! The keys page bench's part for the substring indexes of key names (issue 16): the
//! filters typed for the first time, the indexes' build time over the seeded keys and
//! what they add to each key write.
//!
//! The trigram index is kept by triggers on `api_keys` (migration
//! `2026-11-30-000011_key_search`), the grams index (1- and 2-character filters,
//! `2026-11-30-000013_key_name_grams`) by triggers of its own on SQLite and as a second
//! index of `key_search` on PostgreSQL. Seeding turns them off, loads the keys, then
//! builds both the way the migrations do on an existing database (timed), and turns
//! them on again.

use std::time::Instant;

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use latchkey::db::{self, DbConnection};
use latchkey::domain::key::PlainKey;

use crate::common::{Res, sql_str, sql_time};

/// The 1-character filters a person starts with: every character of the seeded names
/// (each matches a quarter or more of the channel).
pub const ONE_CHAR: &[&str] = &[
    "s", "v", "c", "-", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "p", "r", "o", "d", "t",
    "a", "g", "i", "n", "e",
];

/// The second keystroke: pairs from the seeded names (each matches 1,900 keys or more).
pub const TWO_CHARS: &[&str] = &[
    "sv", "vc", "c-", "-0", "00", "pr", "ro", "od", "d-", "st", "ta", "ag", "gi", "in", "ng", "g-",
    "de", "ev", "v-", "ci", "i-", "-p", "-s", "-d", "-c", "01", "12", "23", "34", "45", "56", "67",
    "78", "89", "90",
];

/// Three characters that most names hold (the index finds over 1,000: "1000+").
pub const THREE_FREQUENT: &[&str] = &[
    "svc", "vc-", "c-0", "-00", "pro", "rod", "sta", "tag", "agi", "gin", "ing", "dev", "-ci",
    "ci-", "od-", "ng-", "ev-", "-pr", "-st", "-de",
];

/// Letters no seeded name holds.
const ABSENT: &str = "bfhjklmquwxyz";

#[derive(diesel::QueryableByName)]
struct Sql {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    sql: String,
}

/// Which name indexes a pause turns off.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Indexes {
    /// Both: no name index is written.
    All,
    /// The grams index only: a key write as before migration 000013.
    Grams,
}

/// The name indexes while seeding (or a write-cost round) is under way: SQLite's
/// triggers are dropped (and their SQL kept); PostgreSQL's triggers disabled (`All`) or
/// its grams index dropped, to be built again on resume (`Grams`).
pub struct Paused {
    sqlite_triggers: Vec<String>,
    which: Indexes,
}

const PG_GRAMS_INDEX: &str = "CREATE INDEX key_search_grams ON key_search \
     USING gin (key_name_grams(name_lower)) WITH (fastupdate = off)";

pub fn pause_triggers(conn: &mut DbConnection, which: Indexes) -> Res<Paused> {
    match conn {
        DbConnection::Sqlite(_) => {
            let (filter, expected) = match which {
                Indexes::All => (
                    "(name LIKE 'api_keys_search%' OR name LIKE 'api_keys_grams%')",
                    6,
                ),
                Indexes::Grams => ("name LIKE 'api_keys_grams%'", 3),
            };
            let triggers: Vec<Sql> = diesel::sql_query(format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND {filter}"
            ))
            .load(conn)?;
            if triggers.len() != expected {
                return Err(format!(
                    "expected {expected} name index triggers, found {}",
                    triggers.len()
                )
                .into());
            }
            for t in &triggers {
                conn.batch_execute(&format!("DROP TRIGGER {}", t.name))?;
            }
            Ok(Paused {
                sqlite_triggers: triggers.into_iter().map(|t| t.sql).collect(),
                which,
            })
        }
        DbConnection::Postgresql(_) => {
            conn.batch_execute(match which {
                Indexes::All => {
                    "ALTER TABLE api_keys DISABLE TRIGGER api_keys_search; \
                     ALTER TABLE api_keys DISABLE TRIGGER api_keys_search_update;"
                }
                Indexes::Grams => "DROP INDEX key_search_grams",
            })?;
            Ok(Paused {
                sqlite_triggers: Vec::new(),
                which,
            })
        }
    }
}

/// Turns the paused indexes on again; the seconds it took (PostgreSQL's grams index is
/// built again over every key).
pub fn resume_triggers(conn: &mut DbConnection, paused: &Paused) -> Res<f64> {
    let started = Instant::now();
    match conn {
        DbConnection::Sqlite(_) => {
            for sql in &paused.sqlite_triggers {
                conn.batch_execute(sql)?;
            }
        }
        DbConnection::Postgresql(_) => match paused.which {
            Indexes::All => conn.batch_execute(
                "ALTER TABLE api_keys ENABLE TRIGGER api_keys_search; \
                 ALTER TABLE api_keys ENABLE TRIGGER api_keys_search_update;",
            )?,
            Indexes::Grams => conn.batch_execute(PG_GRAMS_INDEX)?,
        },
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Builds the indexes over every stored key as the migrations do on an existing
/// database (emptied first); returns the seconds each took: (trigrams, grams).
pub fn build_index(conn: &mut DbConnection) -> Res<(f64, f64)> {
    let (trigrams, grams) = match conn {
        DbConnection::Sqlite(_) => (
            "INSERT INTO key_search (key_search) VALUES ('delete-all'); \
             INSERT INTO key_search (rowid, name) \
             SELECT channel_id * 1099511627776 + id, name_lower FROM api_keys; \
             INSERT INTO key_search (key_search) VALUES ('optimize');",
            "INSERT INTO key_grams (key_grams) VALUES ('delete-all'); \
             INSERT INTO key_grams (rowid, grams) \
             SELECT channel_id * 1099511627776 + id, ( \
                 SELECT group_concat(hex(substr(name_lower, i, 1)) || ' ' \
                     || hex(substr(name_lower, i, 2)), ' ') \
                 FROM key_gram_positions WHERE i <= length(name_lower) \
             ) FROM api_keys; \
             INSERT INTO key_grams (key_grams) VALUES ('optimize');",
        ),
        DbConnection::Postgresql(_) => (
            "DROP INDEX key_search_name; DROP INDEX key_search_grams; TRUNCATE key_search; \
             INSERT INTO key_search (channel_id, id, name_lower) \
             SELECT channel_id, id, name_lower FROM api_keys; \
             CREATE INDEX key_search_name ON key_search USING gin (name_lower gin_trgm_ops) \
             WITH (fastupdate = off);",
            PG_GRAMS_INDEX,
        ),
    };
    let mut timed = |sql: &str| -> Res<f64> {
        let started = Instant::now();
        conn.batch_execute("BEGIN")?;
        conn.batch_execute(sql)?;
        conn.batch_execute("COMMIT")?;
        Ok(started.elapsed().as_secs_f64())
    };
    Ok((timed(trigrams)?, timed(grams)?))
}

/// What the indexes add to key writes, in microseconds per key: the median over three
/// rounds, with both indexes, without any and (after those rounds) with the trigram
/// index only, of `n` key inserts each in its own transaction (as a create is; on
/// PostgreSQL the commit's flush dominates and varies), `n` in one transaction (where
/// the index's own cost shows) and `n` renames in one transaction.
pub struct WriteCost {
    pub n: usize,
    /// (both indexes, trigrams only, none) µs per key.
    pub create_own_tx: (f64, f64, f64),
    pub create_one_tx: (f64, f64, f64),
    pub rename_one_tx: (f64, f64, f64),
    /// PostgreSQL: seconds to build the grams index again after the trigram-only rounds.
    pub grams_rebuild: f64,
}

const ROUNDS: usize = 3;

pub fn write_cost(conn: &mut DbConnection, channel_id: i64, n: usize) -> Res<WriteCost> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    let mut trigrams = Vec::new();
    for round in 0..ROUNDS {
        with.push(timed_writes(conn, channel_id, n, &format!("with{round}"))?);
        let paused = pause_triggers(conn, Indexes::All)?;
        let off = timed_writes(conn, channel_id, n, &format!("without{round}"));
        resume_triggers(conn, &paused)?;
        without.push(off?);
    }
    let paused = pause_triggers(conn, Indexes::Grams)?;
    for round in 0..ROUNDS {
        let r = timed_writes(conn, channel_id, n, &format!("trigrams{round}"));
        if r.is_err() {
            resume_triggers(conn, &paused)?;
        }
        trigrams.push(r?);
    }
    let grams_rebuild = resume_triggers(conn, &paused)?;
    let median = |runs: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(pick).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let all = |pick: fn(&(f64, f64, f64)) -> f64| {
        (
            median(&with, pick),
            median(&trigrams, pick),
            median(&without, pick),
        )
    };
    Ok(WriteCost {
        n,
        create_own_tx: all(|r| r.0),
        create_one_tx: all(|r| r.1),
        rename_one_tx: all(|r| r.2),
        grams_rebuild,
    })
}

/// Inserts `n` keys (half one transaction each, half in one), renames them all in one
/// transaction and deletes them; the µs per key of each step.
fn timed_writes(
    conn: &mut DbConnection,
    channel_id: i64,
    n: usize,
    label: &str,
) -> Res<(f64, f64, f64)> {
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let (key, parts) = PlainKey::generate("lk");
            let t = sql_time(db::now());
            format!(
                "INSERT INTO api_keys (channel_id, key_id, key_hash, last_four, prefix, name, \
                 name_lower, scopes, allowed_cidrs, created_at, created_by, updated_at) \
                 VALUES ({channel_id}, {}, {}, {}, 'lk', 'write-{label}-{i:05}', \
                 'write-{label}-{i:05}', 'verify', '', {t}, 'bench', {t})",
                sql_str(&parts.key_id),
                sql_str(key.hash().as_str()),
                sql_str(&parts.last_four),
            )
        })
        .collect();
    let (own, rest) = rows.split_at(n / 2);
    let started = Instant::now();
    for sql in own {
        conn.batch_execute(&format!("BEGIN; {sql}; COMMIT"))?;
    }
    let own_tx = started.elapsed().as_secs_f64() * 1e6 / own.len() as f64;
    let started = Instant::now();
    conn.batch_execute("BEGIN")?;
    for sql in rest {
        conn.batch_execute(sql)?;
    }
    conn.batch_execute("COMMIT")?;
    let one_tx = started.elapsed().as_secs_f64() * 1e6 / rest.len() as f64;
    let started = Instant::now();
    conn.batch_execute("BEGIN")?;
    for i in 0..n {
        conn.batch_execute(&format!(
            "UPDATE api_keys SET name = 'renamed-{label}-{i:05}', \
             name_lower = 'renamed-{label}-{i:05}' \
             WHERE channel_id = {channel_id} AND name_lower = 'write-{label}-{i:05}'"
        ))?;
    }
    conn.batch_execute("COMMIT")?;
    let rename = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    conn.batch_execute(&format!(
        "DELETE FROM api_keys WHERE channel_id = {channel_id} \
         AND name_lower LIKE 'renamed-{label}-%'"
    ))?;
    Ok((own_tx, one_tx, rename))
}

/// One or two letters no seeded name holds (13 letters, then 169 pairs, interleaved
/// so the samples hold both): each matches nothing.
pub fn absent_pairs() -> Vec<String> {
    let letters: Vec<char> = ABSENT.chars().collect();
    let pairs: Vec<String> = letters
        .iter()
        .flat_map(|a| letters.iter().map(move |b| format!("{a}{b}")))
        .collect();
    let mut texts = Vec::with_capacity(letters.len() + pairs.len());
    let mut singles = letters.iter();
    for (i, pair) in pairs.into_iter().enumerate() {
        if i % 4 == 0
            && let Some(c) = singles.next()
        {
            texts.push(c.to_string());
        }
        texts.push(pair);
    }
    texts
}

/// Sparse short filters: every 200th key of the measured channel (from the 50th) has a
/// suffix `-<c><r>`, `c` one of [`SPARSE_CHARS`] CJK characters (no other name holds
/// one) and `r` the round of them: with 100,000 keys, 500 such names, each character
/// in 4 of them and each character-digit pair in one.
pub const SPARSE_CHARS: usize = 125;

pub fn sparse_suffix(n: usize) -> Option<String> {
    (n % 200 == 50).then(|| {
        let m = n / 200;
        format!("-{}{}", sparse_char(m % SPARSE_CHARS), m / SPARSE_CHARS)
    })
}

fn sparse_char(i: usize) -> char {
    char::from_u32(0x4E00 + i as u32).unwrap_or('一')
}

/// (gs1) the sparse characters, each held by `main / 200 / SPARSE_CHARS` names (at least
/// one); (gs2) the character-digit pairs, each held by one.
pub fn sparse_texts(main: usize) -> (Vec<String>, Vec<String>) {
    let names = main / 200;
    let chars = SPARSE_CHARS.min(names);
    let singles = (0..chars).map(|c| sparse_char(c).to_string()).collect();
    let pairs = (0..names)
        .map(|m| format!("{}{}", sparse_char(m % SPARSE_CHARS), m / SPARSE_CHARS))
        .collect();
    (singles, pairs)
}
