//! Channels (workspaces) and their key limits.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::channels;
use super::{DbConnection, DbResult, now};

pub const SYSTEM_CHANNEL: &str = "system";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = channels)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    /// `None`: the deployment's default limit applies.
    pub key_limit: Option<i64>,
    pub key_count: i64,
    pub is_system: bool,
    pub created_at: PrimitiveDateTime,
    pub updated_at: PrimitiveDateTime,
}

impl Channel {
    pub fn effective_limit(&self, default: i64) -> i64 {
        self.key_limit.unwrap_or(default)
    }
}

/// All channels, the built-in `system` channel first, then by name.
pub fn list(conn: &mut DbConnection) -> DbResult<Vec<Channel>> {
    Ok(channels::table
        .order((channels::is_system.desc(), channels::name.asc()))
        .select(Channel::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> DbResult<Option<Channel>> {
    Ok(channels::table
        .find(id)
        .select(Channel::as_select())
        .first(conn)
        .optional()?)
}

/// Creates the built-in `system` channel if it is missing.
pub fn ensure_system(conn: &mut DbConnection) -> DbResult<()> {
    let exists: i64 = channels::table
        .filter(channels::is_system.eq(true))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        let t = now();
        let inserted = diesel::insert_into(channels::table)
            .values((
                channels::name.eq(SYSTEM_CHANNEL),
                channels::is_system.eq(true),
                channels::key_count.eq(0),
                channels::created_at.eq(t),
                channels::updated_at.eq(t),
            ))
            .execute(conn);
        match inserted.map_err(super::DbError::from) {
            Err(e) if !e.is_unique_violation() => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Inserts a channel. A taken name surfaces as a unique violation.
pub fn insert(conn: &mut DbConnection, name: &str, key_limit: Option<i64>) -> DbResult<Channel> {
    let t = now();
    Ok(diesel::insert_into(channels::table)
        .values((
            channels::name.eq(name),
            channels::key_limit.eq(key_limit),
            channels::key_count.eq(0),
            channels::is_system.eq(false),
            channels::created_at.eq(t),
            channels::updated_at.eq(t),
        ))
        .returning(channels::all_columns)
        .get_result(conn)?)
}

/// Sets a channel's name and limit; the `system` channel keeps its name. Returns the
/// channel before and after, or `None` when it does not exist.
pub fn update(
    conn: &mut DbConnection,
    id: i64,
    name: &str,
    key_limit: Option<i64>,
) -> DbResult<Option<(Channel, Channel)>> {
    // The first statement is the write that locks the row.
    let Some(before) = diesel::update(channels::table.find(id))
        .set(channels::updated_at.eq(now()))
        .returning(channels::all_columns)
        .get_result::<Channel>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let new_name = if before.is_system { &before.name } else { name };
    let after: Channel = diesel::update(channels::table.find(id))
        .set((
            channels::name.eq(new_name),
            channels::key_limit.eq(key_limit),
        ))
        .returning(channels::all_columns)
        .get_result(conn)?;
    Ok(Some((before, after)))
}
