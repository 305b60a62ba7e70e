//! The durable outbox of POSTback events. Events are written in the same transaction
//! as the change they describe, so a restart loses none. An instance claims only the
//! rows it is about to send, each with a conditional UPDATE that stamps its own random
//! token and a lease; only the token's holder can record the outcome (a fencing token),
//! so an event is sent once even when several instances poll the same table.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::outbox;
use super::{DbConnection, DbResult, now};

/// Rows that gave up (or whose receiver is gone) carry this `next_attempt_at`, so they
/// leave the backlog.
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
    /// A coarse outcome (`Outcome::as_str`), never the client's error text.
    pub last_outcome: Option<String>,
    pub locked_until: Option<PrimitiveDateTime>,
    pub locked_by: Option<String>,
    pub msg_id: String,
    pub host: String,
}

/// What one delivery attempt came to, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The address is internal and not allowed: nothing was sent.
    Refused,
    /// The receiver answered a non-2xx status (in `last_status`).
    Http,
    TimedOut,
    /// No connection, or the connection broke: no detail (it would map the network).
    Failed,
    /// 410: the key's POSTback was turned off.
    Gone,
    /// The signing secret could not be opened (the server secret changed).
    NoSecret,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Refused => "refused",
            Outcome::Http => "http",
            Outcome::TimedOut => "timeout",
            Outcome::Failed => "failed",
            Outcome::Gone => "gone",
            Outcome::NoSecret => "no_secret",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Outcome::Delivered,
            Outcome::Refused,
            Outcome::Http,
            Outcome::TimedOut,
            Outcome::Failed,
            Outcome::Gone,
            Outcome::NoSecret,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One event to queue.
pub struct NewEvent<'a> {
    pub api_key_id: i64,
    pub event_type: &'a str,
    pub url: &'a str,
    pub payload: &'a str,
    /// The `webhook-id`: the same on every attempt.
    pub msg_id: &'a str,
    /// `host:port` of the receiver, for the per-host cap.
    pub host: &'a str,
}

/// Queues one event for delivery. Called inside the transaction that makes the change
/// (by `app::events`).
pub fn enqueue(conn: &mut DbConnection, e: &NewEvent<'_>) -> DbResult<()> {
    let t = now();
    diesel::insert_into(outbox::table)
        .values((
            outbox::api_key_id.eq(Some(e.api_key_id)),
            outbox::event_type.eq(e.event_type),
            outbox::url.eq(e.url),
            outbox::payload.eq(e.payload),
            outbox::created_at.eq(t),
            outbox::next_attempt_at.eq(t),
            outbox::attempts.eq(0),
            outbox::msg_id.eq(e.msg_id),
            outbox::host.eq(e.host),
        ))
        .execute(conn)?;
    Ok(())
}

/// Claims up to `limit` due events for `token` until `lease_until`, none for a host in
/// `busy_hosts`. Each row is taken with its own conditional UPDATE: whoever updates it
/// first owns it.
pub fn claim(
    conn: &mut DbConnection,
    token: &str,
    lease_until: PrimitiveDateTime,
    limit: i64,
    busy_hosts: &[String],
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
        .filter(outbox::host.ne_all(busy_hosts))
        .order(outbox::next_attempt_at.asc())
        .then_order_by(outbox::id.asc())
        .limit(limit)
        .select(outbox::id)
        .load(conn)?;
    let mut claimed = Vec::new();
    for id in candidates {
        let row: Option<OutboxRow> = diesel::update(outbox::table.find(id))
            .filter(outbox::delivered_at.is_null())
            .filter(outbox::next_attempt_at.le(t))
            .filter(
                outbox::locked_until
                    .is_null()
                    .or(outbox::locked_until.lt(t)),
            )
            .set((
                outbox::locked_until.eq(Some(lease_until)),
                outbox::locked_by.eq(Some(token)),
            ))
            .returning(outbox::all_columns)
            .get_result(conn)
            .optional()?;
        claimed.extend(row);
    }
    Ok(claimed)
}

/// Gives back rows claimed with `token` that will not be sent now (their host is at
/// its cap).
pub fn release(conn: &mut DbConnection, ids: &[i64], token: &str) -> DbResult<()> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::locked_by.eq(token)),
    )
    .set((
        outbox::locked_until.eq(None::<PrimitiveDateTime>),
        outbox::locked_by.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Records a success. False when the lease was lost (another token holds the row).
pub fn mark_delivered(
    conn: &mut DbConnection,
    id: i64,
    token: &str,
    status: i32,
) -> DbResult<bool> {
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::locked_by.eq(token))
        .set((
            outbox::delivered_at.eq(Some(now())),
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_status.eq(Some(status)),
            outbox::last_outcome.eq(Some(Outcome::Delivered.as_str())),
            outbox::locked_until.eq(None::<PrimitiveDateTime>),
            outbox::locked_by.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records a failed attempt; `next` is the next try, or [`NEVER`] when giving up.
/// False when the lease was lost.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    token: &str,
    outcome: Outcome,
    status: Option<i32>,
    next: PrimitiveDateTime,
) -> DbResult<bool> {
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::locked_by.eq(token))
        .set((
            outbox::attempts.eq(outbox::attempts + 1),
            outbox::last_status.eq(status),
            outbox::last_outcome.eq(Some(outcome.as_str())),
            outbox::next_attempt_at.eq(next),
            outbox::locked_until.eq(None::<PrimitiveDateTime>),
            outbox::locked_by.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// The event type of one of `api_key_id`'s events.
pub fn event_type_of(
    conn: &mut DbConnection,
    api_key_id: i64,
    id: i64,
) -> DbResult<Option<String>> {
    Ok(outbox::table
        .find(id)
        .filter(outbox::api_key_id.eq(api_key_id))
        .select(outbox::event_type)
        .first(conn)
        .optional()?)
}

/// The receiver is gone: the key's other pending events to `url` are not sent.
pub fn abandon(conn: &mut DbConnection, api_key_id: i64, url: &str) -> DbResult<usize> {
    Ok(diesel::update(
        outbox::table
            .filter(outbox::api_key_id.eq(api_key_id))
            .filter(outbox::url.eq(url))
            .filter(outbox::delivered_at.is_null())
            .filter(outbox::next_attempt_at.lt(NEVER))
            .filter(
                outbox::locked_until
                    .is_null()
                    .or(outbox::locked_until.lt(now())),
            ),
    )
    .set((
        outbox::last_outcome.eq(Some(Outcome::Gone.as_str())),
        outbox::next_attempt_at.eq(NEVER),
    ))
    .execute(conn)?)
}

/// Queues a delivery of one of `api_key_id`'s events again, with the same
/// `webhook-id` (receivers deduplicate on it). False when it is not this key's, or
/// is being sent right now.
pub fn resend(conn: &mut DbConnection, api_key_id: i64, id: i64) -> DbResult<bool> {
    let t = now();
    let n = diesel::update(outbox::table.find(id))
        .filter(outbox::api_key_id.eq(api_key_id))
        .filter(
            outbox::locked_until
                .is_null()
                .or(outbox::locked_until.lt(t)),
        )
        .set((
            outbox::delivered_at.eq(None::<PrimitiveDateTime>),
            outbox::created_at.eq(t),
            outbox::next_attempt_at.eq(t),
            outbox::attempts.eq(0),
            outbox::last_status.eq(None::<i32>),
            outbox::last_outcome.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Deletes delivered events, and events that gave up, older than `before`.
pub fn prune(conn: &mut DbConnection, before: PrimitiveDateTime) -> DbResult<usize> {
    let delivered =
        diesel::delete(outbox::table.filter(outbox::delivered_at.lt(before))).execute(conn)?;
    let gave_up = diesel::delete(
        outbox::table
            .filter(outbox::delivered_at.is_null())
            .filter(outbox::next_attempt_at.ge(NEVER))
            .filter(outbox::created_at.lt(before)),
    )
    .execute(conn)?;
    Ok(delivered + gave_up)
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
