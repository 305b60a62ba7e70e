//! Imported keys and leak reports: the few statements `app::import` and `app::leaks`
//! combine in their transactions (the rows themselves are `db::keys` rows).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::keys::ApiKey;
use super::schema::{api_keys, leak_reports};
use super::{DbConnection, DbResult, now};
use crate::domain::key::KeyHash;

/// Whether any imported key exists (verification hashes unknown formats only then).
pub fn any_imported(conn: &mut DbConnection) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        api_keys::table.filter(api_keys::imported_as.is_not_null()),
    ))
    .get_result(conn)?)
}

/// Whether a key is stored under this hash (in any channel).
pub fn hash_taken(conn: &mut DbConnection, hash: &KeyHash) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        api_keys::table.filter(api_keys::key_hash.eq(hash.as_str())),
    ))
    .get_result(conn)?)
}

/// Marks a just-inserted key as imported by `algorithm` (`sha256` / `sha512`).
pub fn mark_imported(conn: &mut DbConnection, id: i64, algorithm: &str) -> DbResult<ApiKey> {
    Ok(diesel::update(api_keys::table.find(id))
        .set(api_keys::imported_as.eq(Some(algorithm)))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Records that a leak report named this key; `deactivate` also turns it off, as a
/// person would (no API key may turn it back on).
pub fn mark_leaked(conn: &mut DbConnection, id: i64, deactivate: bool) -> DbResult<ApiKey> {
    let t = now();
    if deactivate {
        diesel::update(api_keys::table.find(id))
            .filter(api_keys::enabled.eq(true))
            .set((
                api_keys::enabled.eq(false),
                api_keys::deactivated_by_person.eq(true),
            ))
            .execute(conn)?;
    }
    Ok(diesel::update(api_keys::table.find(id))
        .set((api_keys::leaked_at.eq(Some(t)), api_keys::updated_at.eq(t)))
        .returning(api_keys::all_columns)
        .get_result(conn)?)
}

/// Whether a report with this body was acted on already.
pub fn report_seen(conn: &mut DbConnection, body_hash: &str) -> DbResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        leak_reports::table.filter(leak_reports::body_hash.eq(body_hash)),
    ))
    .get_result(conn)?)
}

/// Remembers a report acted on. A concurrent copy of the same report fails here on the
/// unique index, and its transaction (with everything it did) is rolled back.
pub fn record_report(conn: &mut DbConnection, body_hash: &str, tokens: i64) -> DbResult<()> {
    diesel::insert_into(leak_reports::table)
        .values((
            leak_reports::body_hash.eq(body_hash),
            leak_reports::received_at.eq(now()),
            leak_reports::tokens.eq(tokens),
        ))
        .execute(conn)?;
    Ok(())
}

/// Forgets reports received before `before` (bounded growth; run with each report).
pub fn prune_reports(conn: &mut DbConnection, before: PrimitiveDateTime) -> DbResult<usize> {
    Ok(
        diesel::delete(leak_reports::table.filter(leak_reports::received_at.lt(before)))
            .execute(conn)?,
    )
}
