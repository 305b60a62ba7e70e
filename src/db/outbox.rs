//! The durable outbox of POSTback events. Events are written in the same transaction
//! as the change they describe, so a restart loses none; deliveries are claimed one
//! row at a time with a conditional UPDATE, so several instances never send the same
//! event at once.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::outbox;
use super::{DbConnection, DbResult, now};

/// Rows that gave up carry this `next_attempt_at`, so they leave the backlog.
pub const NEVER: PrimitiveDateTime = time::macros::datetime!(9999-01-01 00:00);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub api_key_id: Option<i64>,
    pub event_type: String,
    pub url: String,
    pub payload: String,
    pub created_at: PrimitiveDateTime,
    pub next_attempt_at: PrimitiveDateTime,
    pub attempts: i32,
    pub delivered_at: Option<PrimitiveDateTime>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub locked_until: Option<PrimitiveDateTime>,
    pub locked_by: Option<String>,
}

/// Queues one event for delivery to `url`. Called inside the transaction that makes
/// the change (by `app::events`).
pub fn enqueue(
    conn: &mut DbConnection,
    api_key_id: i64,
    event_type: &str,
    url: &str,
    payload: &str,
) -> DbResult<()> {
    let t = now();
    diesel::insert_into(outbox::table)
        .values((
            outbox::api_key_id.eq(Some(api_key_id)),
            outbox::event_type.eq(event_type),
            outbox::url.eq(url),
            outbox::payload.eq(payload),
            outbox::created_at.eq(t),
            outbox::next_attempt_at.eq(t),
            outbox::attempts.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due events for `worker` until `lease_until`. Each row is
/// taken with its own conditional UPDATE: whoever updates it first owns it.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    lease_until: PrimitiveDateTime,
    limit: i64,
) -> DbResult<Vec<OutboxRow>> {
    let t = now();
    let candidates: Vec<i64> = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::next_attempt_at.le(t))
        .filter(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(t)),
        )
        .order(outbox::id.asc())
        .limit(limit)
        .select(outbox::id)
        .load(conn)?;
    let mut claimed = Vec::new();
    for id in candidates {
        let row: Option<OutboxRow> = diesel::update(outbox::table.find(id))
            .filter(outbox::delivered_at.is_null())
            .filter(
                outbox::locked_until
                    .is_null()
                    .or(outbox::locked_until.lt(t)),
            )
            .set((
                outbox::locked_until.eq(Some(lease_until)),
                outbox::locked_by.eq(Some(worker)),
            ))
            .returning(outbox::all_columns)
            .get_result(conn)
            .optional()?;
        claimed.extend(row);
    }
    Ok(claimed)
}

pub fn mark_delivered(conn: &mut DbConnection, id: i64, status: i32) -> DbResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::delivered_at.eq(Some(now())),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_status.eq(Some(status)),
            outbox::last_error.eq(None::<String>),
            outbox::locked_until.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    status: Option<i32>,
    error: &str,
    next: PrimitiveDateTime,
) -> DbResult<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_status.eq(status),
            outbox::last_error.eq(Some(error.chars().take(500).collect::<String>())),
            outbox::next_attempt_at.eq(next),
            outbox::locked_until.eq(None::<PrimitiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Events not yet delivered and still being tried.
pub fn backlog(conn: &mut DbConnection) -> DbResult<i64> {
    Ok(outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::next_attempt_at.lt(NEVER))
        .count()
        .get_result(conn)?)
}

/// The newest deliveries of one key, for its detail view.
pub fn recent_for_key(
    conn: &mut DbConnection,
    api_key_id: i64,
    limit: i64,
) -> DbResult<Vec<OutboxRow>> {
    Ok(outbox::table
        .filter(outbox::api_key_id.eq(api_key_id))
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}
