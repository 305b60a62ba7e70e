//! Two-factor state: a user's encrypted TOTP secret, its last accepted time step, the
//! hashed recovery codes, and the deployment's requirement setting.

use diesel::prelude::*;

use super::schema::{recovery_codes, settings, users};
use super::{DbConnection, DbResult, now};

/// Stores a new (not yet confirmed) secret; two-factor stays off until confirmed.
pub fn set_pending_secret(conn: &mut DbConnection, user_id: i64, sealed: &str) -> DbResult<bool> {
    Ok(diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_enabled.eq(false)),
    )
    .set((
        users::totp_secret.eq(Some(sealed)),
        users::totp_last_step.eq(None::<i64>),
    ))
    .execute(conn)?
        == 1)
}

/// Turns two-factor on with the confirmed step, and replaces the recovery codes.
pub fn enable(
    conn: &mut DbConnection,
    user_id: i64,
    step: i64,
    code_hashes: &[String],
) -> DbResult<bool> {
    let n = diesel::update(
        users::table
            .find(user_id)
            .filter(users::totp_enabled.eq(false))
            .filter(users::totp_secret.is_not_null()),
    )
    .set((
        users::totp_enabled.eq(true),
        users::totp_last_step.eq(Some(step)),
        users::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if n != 1 {
        return Ok(false);
    }
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    for hash in code_hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::user_id.eq(user_id),
                recovery_codes::code_hash.eq(hash),
            ))
            .execute(conn)?;
    }
    Ok(true)
}

/// Accepts a time step once: only a step later than the last accepted one moves it on.
pub fn accept_step(conn: &mut DbConnection, user_id: i64, step: i64) -> DbResult<bool> {
    Ok(diesel::update(
        users::table.find(user_id).filter(
            users::totp_last_step
                .is_null()
                .or(users::totp_last_step.lt(step)),
        ),
    )
    .set(users::totp_last_step.eq(Some(step)))
    .execute(conn)?
        == 1)
}

/// Spends an unused recovery code; false if there is none with this hash.
pub fn use_recovery_code(conn: &mut DbConnection, user_id: i64, hash: &str) -> DbResult<bool> {
    Ok(diesel::update(
        recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::code_hash.eq(hash))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(Some(now())))
    .execute(conn)?
        == 1)
}

pub fn unused_recovery_codes(conn: &mut DbConnection, user_id: i64) -> DbResult<i64> {
    Ok(recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)?)
}

/// Turns two-factor off and forgets the secret and the codes (an admin's reset).
pub fn reset(conn: &mut DbConnection, user_id: i64) -> DbResult<bool> {
    let n = diesel::update(users::table.find(user_id))
        .set((
            users::totp_enabled.eq(false),
            users::totp_secret.eq(None::<String>),
            users::totp_last_step.eq(None::<i64>),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    Ok(n == 1)
}

pub const REQUIREMENT: &str = "two_factor_required";

/// A deployment setting's stored text.
pub fn setting(conn: &mut DbConnection, name: &str) -> DbResult<Option<String>> {
    Ok(settings::table
        .filter(settings::name.eq(name))
        .select(settings::value)
        .first(conn)
        .optional()?)
}

/// Sets a deployment setting (update, else insert: portable, no upsert).
pub fn set_setting(conn: &mut DbConnection, name: &str, value: &str) -> DbResult<()> {
    let n = diesel::update(settings::table.filter(settings::name.eq(name)))
        .set(settings::value.eq(value))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(settings::table)
            .values((settings::name.eq(name), settings::value.eq(value)))
            .execute(conn)?;
    }
    Ok(())
}
