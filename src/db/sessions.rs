//! Dashboard logins. The cookie carries a random token; only its blake3 hash is stored,
//! so logging out or disabling a user ends the session on every instance at once.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{sessions, users};
use super::users::User;
use super::{DbConnection, DbResult, now};

pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: i64,
    pub expires_at: PrimitiveDateTime,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub fn insert(conn: &mut DbConnection, s: &NewSession<'_>) -> DbResult<()> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(s.token_hash),
            sessions::user_id.eq(s.user_id),
            sessions::created_at.eq(now()),
            sessions::expires_at.eq(s.expires_at),
            sessions::source_ip.eq(s.source_ip),
            sessions::user_agent.eq(s.user_agent),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user behind a live session: not expired, not disabled.
pub fn find_user(conn: &mut DbConnection, token_hash: &str) -> DbResult<Option<User>> {
    Ok(sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::expires_at.gt(now()))
        .filter(users::disabled.eq(false))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn delete(conn: &mut DbConnection, token_hash: &str) -> DbResult<()> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(token_hash))).execute(conn)?;
    Ok(())
}

pub fn delete_for_user(conn: &mut DbConnection, user_id: i64) -> DbResult<()> {
    diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?;
    Ok(())
}

pub fn delete_expired(conn: &mut DbConnection) -> DbResult<usize> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now()))).execute(conn)?)
}
