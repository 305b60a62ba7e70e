//! Each key's POSTback signing secrets, sealed (`domain::webhook::Sealer`). A key has
//! one current secret (`retires_at` NULL) and, for 24 hours after a roll, the previous
//! one; events are signed with every secret that has not retired.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{api_keys, outbox, postback_secrets};
use super::{DbConnection, DbResult, now};

pub fn insert(conn: &mut DbConnection, api_key_id: i64, sealed: &str) -> DbResult<()> {
    diesel::insert_into(postback_secrets::table)
        .values((
            postback_secrets::api_key_id.eq(api_key_id),
            postback_secrets::sealed.eq(sealed),
            postback_secrets::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn has_current(conn: &mut DbConnection, api_key_id: i64) -> DbResult<bool> {
    Ok(postback_secrets::table
        .filter(postback_secrets::api_key_id.eq(api_key_id))
        .filter(postback_secrets::retires_at.is_null())
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Starts a roll: the current secret keeps signing until `until`; one still in an
/// earlier overlap retires now, so at most two secrets sign at once.
pub fn retire_current(
    conn: &mut DbConnection,
    api_key_id: i64,
    until: PrimitiveDateTime,
) -> DbResult<()> {
    let t = now();
    diesel::update(
        postback_secrets::table
            .filter(postback_secrets::api_key_id.eq(api_key_id))
            .filter(postback_secrets::retires_at.gt(t)),
    )
    .set(postback_secrets::retires_at.eq(Some(t)))
    .execute(conn)?;
    diesel::update(
        postback_secrets::table
            .filter(postback_secrets::api_key_id.eq(api_key_id))
            .filter(postback_secrets::retires_at.is_null()),
    )
    .set(postback_secrets::retires_at.eq(Some(until)))
    .execute(conn)?;
    Ok(())
}

/// The sealed secrets that still sign, newest first.
pub fn signing(conn: &mut DbConnection, api_key_id: i64) -> DbResult<Vec<String>> {
    let t = now();
    Ok(postback_secrets::table
        .filter(postback_secrets::api_key_id.eq(api_key_id))
        .filter(
            postback_secrets::retires_at
                .is_null()
                .or(postback_secrets::retires_at.gt(t)),
        )
        .order(postback_secrets::id.desc())
        .select(postback_secrets::sealed)
        .load(conn)?)
}

/// When the previous secret of a key stops signing, if a roll is in its overlap.
pub fn overlap_ends(
    conn: &mut DbConnection,
    api_key_id: i64,
) -> DbResult<Option<PrimitiveDateTime>> {
    Ok(postback_secrets::table
        .filter(postback_secrets::api_key_id.eq(api_key_id))
        .filter(postback_secrets::retires_at.gt(now()))
        .select(postback_secrets::retires_at)
        .first::<Option<PrimitiveDateTime>>(conn)
        .optional()?
        .flatten())
}

/// A rolled API key's successor signs with the same secrets, so receivers need no change.
pub fn copy(conn: &mut DbConnection, from: i64, to: i64) -> DbResult<()> {
    let rows: Vec<(String, Option<PrimitiveDateTime>)> = postback_secrets::table
        .filter(postback_secrets::api_key_id.eq(from))
        .select((postback_secrets::sealed, postback_secrets::retires_at))
        .load(conn)?;
    let t = now();
    for (sealed, retires_at) in rows {
        diesel::insert_into(postback_secrets::table)
            .values((
                postback_secrets::api_key_id.eq(to),
                postback_secrets::sealed.eq(sealed),
                postback_secrets::created_at.eq(t),
                postback_secrets::retires_at.eq(retires_at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Forgets retired secrets, and the secrets of deleted keys once their last event is
/// done.
pub fn prune(conn: &mut DbConnection) -> DbResult<usize> {
    let t = now();
    let retired =
        diesel::delete(postback_secrets::table.filter(postback_secrets::retires_at.le(t)))
            .execute(conn)?;
    let live_keys = api_keys::table.select(api_keys::id);
    let pending = outbox::table
        .filter(outbox::delivered_at.is_null())
        .filter(outbox::next_attempt_at.lt(super::outbox::NEVER))
        .filter(outbox::api_key_id.is_not_null())
        .select(outbox::api_key_id.assume_not_null());
    let orphaned = diesel::delete(
        postback_secrets::table
            .filter(postback_secrets::api_key_id.ne_all(live_keys))
            .filter(postback_secrets::api_key_id.ne_all(pending)),
    )
    .execute(conn)?;
    Ok(retired + orphaned)
}
