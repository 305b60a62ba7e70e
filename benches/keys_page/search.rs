//! The keys page bench's part for the substring index of key names (issue 16): the
//! filters typed for the first time, the index's build time over the seeded keys and
//! what it adds to each key write.
//!
//! The index is kept by triggers on `api_keys` (migration `2026-11-30-000011_key_search`).
//! Seeding turns them off, loads the keys, then builds the index the way the migration
//! does on an existing database (timed), and turns them on again.

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
    sql: String,
}

/// The search triggers while seeding is under way: SQLite's are dropped (and their SQL
/// kept), PostgreSQL's disabled.
pub struct Paused {
    sqlite_triggers: Vec<String>,
}

pub fn pause_triggers(conn: &mut DbConnection) -> Res<Paused> {
    match conn {
        DbConnection::Sqlite(_) => {
            let triggers: Vec<Sql> = diesel::sql_query(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' \
                 AND name LIKE 'api_keys_search%'",
            )
            .load(conn)?;
            if triggers.len() != 3 {
                return Err(format!("expected 3 search triggers, found {}", triggers.len()).into());
            }
            conn.batch_execute(
                "DROP TRIGGER api_keys_search_insert; DROP TRIGGER api_keys_search_delete; \
                 DROP TRIGGER api_keys_search_update;",
            )?;
            Ok(Paused {
                sqlite_triggers: triggers.into_iter().map(|t| t.sql).collect(),
            })
        }
        DbConnection::Postgresql(_) => {
            conn.batch_execute(
                "ALTER TABLE api_keys DISABLE TRIGGER api_keys_search; \
                 ALTER TABLE api_keys DISABLE TRIGGER api_keys_search_update;",
            )?;
            Ok(Paused {
                sqlite_triggers: Vec::new(),
            })
        }
    }
}

pub fn resume_triggers(conn: &mut DbConnection, paused: &Paused) -> Res<()> {
    match conn {
        DbConnection::Sqlite(_) => {
            for sql in &paused.sqlite_triggers {
                conn.batch_execute(sql)?;
            }
        }
        DbConnection::Postgresql(_) => conn.batch_execute(
            "ALTER TABLE api_keys ENABLE TRIGGER api_keys_search; \
             ALTER TABLE api_keys ENABLE TRIGGER api_keys_search_update;",
        )?,
    }
    Ok(())
}

/// Builds the index over every stored key as the migration does on an existing
/// database (emptied first); returns the seconds it took.
pub fn build_index(conn: &mut DbConnection) -> Res<f64> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "INSERT INTO key_search (key_search) VALUES ('delete-all'); \
             INSERT INTO key_search (rowid, name) \
             SELECT channel_id * 1099511627776 + id, name_lower FROM api_keys; \
             INSERT INTO key_search (key_search) VALUES ('optimize');"
        }
        DbConnection::Postgresql(_) => {
            "DROP INDEX key_search_name; TRUNCATE key_search; \
             INSERT INTO key_search (channel_id, id, name_lower) \
             SELECT channel_id, id, name_lower FROM api_keys; \
             CREATE INDEX key_search_name ON key_search USING gin (name_lower gin_trgm_ops) \
             WITH (fastupdate = off);"
        }
    };
    let started = Instant::now();
    conn.batch_execute("BEGIN")?;
    conn.batch_execute(sql)?;
    conn.batch_execute("COMMIT")?;
    Ok(started.elapsed().as_secs_f64())
}

/// What the index adds to key writes, in microseconds per key: the median over three
/// rounds, with and without it in turn, of `n` key inserts each in its own transaction
/// (as a create is; on PostgreSQL the commit's flush dominates and varies), `n` in one
/// transaction (where the index's own cost shows) and `n` renames in one transaction.
pub struct WriteCost {
    pub n: usize,
    /// (with, without) µs per key.
    pub create_own_tx: (f64, f64),
    pub create_one_tx: (f64, f64),
    pub rename_one_tx: (f64, f64),
}

const ROUNDS: usize = 3;

pub fn write_cost(conn: &mut DbConnection, channel_id: i64, n: usize) -> Res<WriteCost> {
    let mut with = Vec::new();
    let mut without = Vec::new();
    for round in 0..ROUNDS {
        with.push(timed_writes(conn, channel_id, n, &format!("with{round}"))?);
        let paused = pause_triggers(conn)?;
        let off = timed_writes(conn, channel_id, n, &format!("without{round}"));
        resume_triggers(conn, &paused)?;
        without.push(off?);
    }
    let median = |runs: &[(f64, f64, f64)], pick: fn(&(f64, f64, f64)) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(pick).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let both = |pick: fn(&(f64, f64, f64)) -> f64| (median(&with, pick), median(&without, pick));
    Ok(WriteCost {
        n,
        create_own_tx: both(|r| r.0),
        create_one_tx: both(|r| r.1),
        rename_one_tx: both(|r| r.2),
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

/// Two letters no seeded name holds (169 pairs): each matches nothing.
pub fn absent_pairs() -> Vec<String> {
    let letters: Vec<char> = ABSENT.chars().collect();
    letters
        .iter()
        .flat_map(|a| letters.iter().map(move |b| format!("{a}{b}")))
        .collect()
}
