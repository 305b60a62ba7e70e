//! The audit trail: who did what, when, from where, to which channel and key.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::audit_events;
use super::{DbConnection, DbResult, now};

/// Who acted, as an audit line records it: a dashboard user, an API key (`api:KEYID`),
/// the command line or the system itself, and the source address.
#[derive(Debug, Clone)]
pub struct Who {
    pub name: String,
    pub user_id: Option<i64>,
    pub source_ip: Option<String>,
}

impl Who {
    pub fn system() -> Self {
        Who {
            name: "system".into(),
            user_id: None,
            source_ip: None,
        }
    }
}

/// One audit line. `details` is a short human sentence of what changed.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub action: &'a str,
    pub channel_id: Option<i64>,
    pub channel_name: Option<&'a str>,
    pub key_id: Option<&'a str>,
    pub key_name: Option<&'a str>,
    pub details: String,
}

pub fn record(conn: &mut DbConnection, actor: &Who, event: Event<'_>) -> DbResult<()> {
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::occurred_at.eq(now()),
            audit_events::actor.eq(&actor.name),
            audit_events::actor_user_id.eq(actor.user_id),
            audit_events::action.eq(event.action),
            audit_events::source_ip.eq(actor.source_ip.as_deref()),
            audit_events::channel_id.eq(event.channel_id),
            audit_events::channel_name.eq(event.channel_name),
            audit_events::key_id.eq(event.key_id),
            audit_events::key_name.eq(event.key_name),
            audit_events::details.eq(&event.details),
        ))
        .execute(conn)?;
    Ok(())
}

/// Adds one to this minute's line of the same action, actor and address, or starts
/// one: failed and throttled logins are counted, not written one line each, so a flood
/// of guesses cannot fill the table. (Two instances racing may each start a line for
/// the same minute; the counts still add up.)
pub fn record_counted(conn: &mut DbConnection, actor: &Who, event: Event<'_>) -> DbResult<()> {
    let at = now();
    let minute = at
        .replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at);
    let mut q = audit_events::table
        .filter(audit_events::action.eq(event.action))
        .filter(audit_events::actor.eq(&actor.name))
        .filter(audit_events::occurred_at.ge(minute))
        .into_boxed();
    q = match &actor.source_ip {
        Some(ip) => q.filter(audit_events::source_ip.eq(ip.clone())),
        None => q.filter(audit_events::source_ip.is_null()),
    };
    let existing: Option<i64> = q
        .select(audit_events::id)
        .order(audit_events::id.desc())
        .first(conn)
        .optional()?;
    match existing {
        Some(id) => {
            diesel::update(audit_events::table.find(id))
                .set((
                    audit_events::repeat_count.eq(audit_events::repeat_count + 1),
                    audit_events::details.eq(&event.details),
                ))
                .execute(conn)?;
            Ok(())
        }
        None => record(conn, actor, event),
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub occurred_at: time::PrimitiveDateTime,
    pub actor: String,
    pub actor_user_id: Option<i64>,
    pub action: String,
    pub source_ip: Option<String>,
    pub channel_id: Option<i64>,
    pub channel_name: Option<String>,
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    pub details: String,
    /// How many times this happened (failed and throttled logins are counted per
    /// account, address and minute, not written one line each).
    pub repeat_count: i64,
}

/// The newest events first.
pub fn recent(conn: &mut DbConnection, limit: i64) -> DbResult<Vec<AuditEvent>> {
    Ok(audit_events::table
        .order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// What the audit page filters by; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub channel_id: Option<i64>,
    pub key_id: Option<String>,
    pub from: Option<time::PrimitiveDateTime>,
    pub to: Option<time::PrimitiveDateTime>,
    /// Only `key.*` events (what support staff see).
    pub keys_only: bool,
}

/// Newest first, `limit` events older than `before` (an event id).
pub fn list(
    conn: &mut DbConnection,
    f: &AuditFilter,
    before: Option<i64>,
    limit: i64,
) -> DbResult<Vec<AuditEvent>> {
    let mut q = audit_events::table.into_boxed();
    if let Some(a) = &f.actor {
        q = q.filter(audit_events::actor.eq(a.clone()));
    }
    if let Some(a) = &f.action {
        q = q.filter(audit_events::action.eq(a.clone()));
    }
    if let Some(c) = f.channel_id {
        q = q.filter(audit_events::channel_id.eq(c));
    }
    if let Some(k) = &f.key_id {
        q = q.filter(audit_events::key_id.eq(k.clone()));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_events::occurred_at.ge(t));
    }
    if let Some(t) = f.to {
        q = q.filter(audit_events::occurred_at.lt(t));
    }
    if f.keys_only {
        q = q.filter(audit_events::action.like("key.%"));
    }
    if let Some(b) = before {
        q = q.filter(audit_events::id.lt(b));
    }
    Ok(q.order(audit_events::id.desc())
        .limit(limit)
        .select(AuditEvent::as_select())
        .load(conn)?)
}

/// Deletes up to `batch` of the oldest lines older than `cutoff` (only when
/// `LATCHKEY_AUDIT_KEEP_DAYS` is set); returns how many.
pub fn prune(conn: &mut DbConnection, cutoff: PrimitiveDateTime, batch: i64) -> DbResult<usize> {
    let ids: Vec<i64> = audit_events::table
        .filter(audit_events::occurred_at.lt(cutoff))
        .order((audit_events::occurred_at.asc(), audit_events::id.asc()))
        .select(audit_events::id)
        .limit(batch)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(audit_events::table.filter(audit_events::id.eq_any(ids))).execute(conn)?)
}
