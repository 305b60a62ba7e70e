//! Expiry reminders: which lead time each key was told about. A lead time's row is
//! inserted in the transaction that queues its `key.expiring` event, and the primary
//! key (key, lead time) lets exactly one instance insert it.

use diesel::prelude::*;
use time::{Duration, PrimitiveDateTime};

use super::keys::ApiKey;
use super::schema::{api_keys, channels, expiry_reminders};
use super::{DbConnection, DbResult};

/// Keys with a POSTback URL whose expiry lies in `(now + after, now + lead]` and that
/// were told neither at this lead time nor at a shorter one, with their channel's name.
pub fn due(
    conn: &mut DbConnection,
    now: PrimitiveDateTime,
    lead_days: i64,
    after: Duration,
    limit: i64,
) -> DbResult<Vec<(ApiKey, String)>> {
    let told = expiry_reminders::table
        .filter(expiry_reminders::api_key_id.eq(api_keys::id))
        .filter(expiry_reminders::lead_days.le(lead_days));
    Ok(api_keys::table
        .inner_join(channels::table)
        .filter(api_keys::postback_url.is_not_null())
        .filter(api_keys::expires_at.gt(now + after))
        .filter(api_keys::expires_at.le(now + Duration::days(lead_days)))
        .filter(diesel::dsl::not(diesel::dsl::exists(told)))
        .order(api_keys::id)
        .limit(limit)
        .select((ApiKey::as_select(), channels::name))
        .load(conn)?)
}

/// Records that `key` was told at `lead_days` before `expires_at`. Fails with a unique
/// violation when another instance told it first.
pub fn record(
    conn: &mut DbConnection,
    key: i64,
    lead_days: i64,
    expires_at: PrimitiveDateTime,
    now: PrimitiveDateTime,
) -> DbResult<()> {
    diesel::insert_into(expiry_reminders::table)
        .values((
            expiry_reminders::api_key_id.eq(key),
            expiry_reminders::lead_days.eq(lead_days),
            expiry_reminders::expires_at.eq(expires_at),
            expiry_reminders::sent_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Whether `key` was told at `lead_days` or a shorter lead time already (read inside
/// the claiming transaction, after the key's lock).
pub fn told(conn: &mut DbConnection, key: i64, lead_days: i64) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        expiry_reminders::table
            .filter(expiry_reminders::api_key_id.eq(key))
            .filter(expiry_reminders::lead_days.le(lead_days)),
    ))
    .get_result(conn)?)
}

/// A key's expiry changed: its reminders start over.
pub fn forget(conn: &mut DbConnection, key: i64) -> DbResult<usize> {
    Ok(
        diesel::delete(expiry_reminders::table.filter(expiry_reminders::api_key_id.eq(key)))
            .execute(conn)?,
    )
}

/// The lead times a key was told at (tests and the key page).
pub fn sent(conn: &mut DbConnection, key: i64) -> DbResult<Vec<i64>> {
    Ok(expiry_reminders::table
        .filter(expiry_reminders::api_key_id.eq(key))
        .order(expiry_reminders::lead_days.desc())
        .select(expiry_reminders::lead_days)
        .load(conn)?)
}
