//! Channels (workspaces) and their key limits.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::audit::{self, Actor, Event};
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

/// Inserts a channel and its audit line in one transaction. A taken name surfaces as a
/// unique violation (`DbError::is_unique_violation`).
pub fn insert(
    conn: &mut DbConnection,
    actor: &Actor,
    name: &str,
    key_limit: Option<i64>,
) -> DbResult<Channel> {
    conn.transaction(|conn| {
        let t = now();
        let channel: Channel = diesel::insert_into(channels::table)
            .values((
                channels::name.eq(name),
                channels::key_limit.eq(key_limit),
                channels::key_count.eq(0),
                channels::is_system.eq(false),
                channels::created_at.eq(t),
                channels::updated_at.eq(t),
            ))
            .returning(channels::all_columns)
            .get_result(conn)?;
        audit::record(
            conn,
            actor,
            Event {
                action: "channel.create",
                channel_id: Some(channel.id),
                channel_name: Some(&channel.name),
                details: format!(
                    "created channel \"{}\" (limit {})",
                    channel.name,
                    limit_text(key_limit)
                ),
                ..Event::default()
            },
        )?;
        Ok(channel)
    })
}

/// Renames a channel and sets its limit. The `system` channel keeps its name.
/// Returns `None` when the channel does not exist.
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    name: &str,
    key_limit: Option<i64>,
) -> DbResult<Option<Channel>> {
    conn.transaction(|conn| {
        let updated: Option<Channel> = diesel::update(channels::table.find(id))
            .set((
                channels::key_limit.eq(key_limit),
                channels::updated_at.eq(now()),
            ))
            .returning(channels::all_columns)
            .get_result(conn)
            .optional()?;
        let Some(before) = updated else {
            return Ok(None);
        };
        let new_name = if before.is_system {
            before.name.clone()
        } else {
            name.to_owned()
        };
        let channel: Channel = diesel::update(channels::table.find(id))
            .set(channels::name.eq(&new_name))
            .returning(channels::all_columns)
            .get_result(conn)?;
        let mut changes = Vec::new();
        if before.name != channel.name {
            changes.push(format!(
                "renamed \"{}\" to \"{}\"",
                before.name, channel.name
            ));
        }
        changes.push(format!("limit {}", limit_text(key_limit)));
        audit::record(
            conn,
            actor,
            Event {
                action: "channel.update",
                channel_id: Some(channel.id),
                channel_name: Some(&channel.name),
                details: changes.join(", "),
                ..Event::default()
            },
        )?;
        Ok(Some(channel))
    })
}

fn limit_text(limit: Option<i64>) -> String {
    limit.map_or_else(|| "default".to_owned(), |n| n.to_string())
}
