//! `key_changes`: what other instances must forget from their verification caches.
//! Every key write records the hashes it touched (in its own transaction); a change that
//! touches every key of a channel (a channel rename) records [`ALL`]. Each instance
//! polls this table (`verification::spawn_change_poller`).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::key_changes;
use super::{DbConnection, DbResult, now};

/// The change record that means "forget every cached key".
pub const ALL: &str = "*";

/// What a write changed, as far as caches of keys are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One key, by its stored hash.
    Key(String),
    /// Every key (a channel rename changes what every key of the channel answers).
    All,
}

impl Change {
    pub fn from_record(key_hash: String) -> Self {
        if key_hash == ALL {
            Change::All
        } else {
            Change::Key(key_hash)
        }
    }

    fn as_record(&self) -> &str {
        match self {
            Change::Key(hash) => hash,
            Change::All => ALL,
        }
    }
}

/// Records a change made by the instance `origin` (empty: no running server).
pub fn record(conn: &mut DbConnection, change: &Change, origin: &str) -> DbResult<()> {
    diesel::insert_into(key_changes::table)
        .values((
            key_changes::origin.eq(origin),
            key_changes::key_hash.eq(change.as_record()),
            key_changes::changed_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn latest_id(conn: &mut DbConnection) -> DbResult<i64> {
    Ok(key_changes::table
        .select(diesel::dsl::max(key_changes::id))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// Changes after `since`, oldest first, at most 10,000 at a time, with the last id
/// read; changes recorded by `origin` itself are left out.
pub fn since(conn: &mut DbConnection, since: i64, origin: &str) -> DbResult<(i64, Vec<Change>)> {
    let rows: Vec<(i64, String, String)> = key_changes::table
        .filter(key_changes::id.gt(since))
        .order(key_changes::id.asc())
        .limit(10_000)
        .select((key_changes::id, key_changes::key_hash, key_changes::origin))
        .load(conn)?;
    let last = rows.last().map_or(since, |r| r.0);
    Ok((
        last,
        rows.into_iter()
            .filter(|(_, _, o)| o != origin)
            .map(|(_, hash, _)| Change::from_record(hash))
            .collect(),
    ))
}

/// Forgets change records older than `before` (every instance has long seen them).
pub fn prune(conn: &mut DbConnection, before: PrimitiveDateTime) -> DbResult<usize> {
    Ok(
        diesel::delete(key_changes::table.filter(key_changes::changed_at.lt(before)))
            .execute(conn)?,
    )
}
