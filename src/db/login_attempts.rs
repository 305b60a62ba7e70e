//! Login attempts, for throttling per account and address and per address. An attempt
//! is written as a failure *before* its password is checked (so concurrent guesses
//! count at once) and turned into a success afterwards if the password was right.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::login_attempts;
use super::{DbConnection, DbResult, now};

/// Serialises the throttle check and the recording of attempts for one account and one
/// address, so concurrent guesses cannot all read "four failures" and all go on.
/// SQLite needs nothing: the write transaction (`db::begin_write`) already holds the
/// database's one write lock. PostgreSQL runs transactions side by side, so take
/// transaction-scoped advisory locks (class 11: the account, 12: the address), always
/// in that order, so two logins never wait on each other in a cycle.
pub fn lock(conn: &mut DbConnection, username: &str, address: &str) -> DbResult<()> {
    use diesel::sql_types::Text;
    if let DbConnection::Postgresql(_) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(11, hashtext($1))")
            .bind::<Text, _>(username)
            .execute(conn)?;
        diesel::sql_query("SELECT pg_advisory_xact_lock(12, hashtext($1))")
            .bind::<Text, _>(address)
            .execute(conn)?;
    }
    Ok(())
}

/// Records an attempt as a failure; returns its id for [`mark_success`].
pub fn record_failure(conn: &mut DbConnection, username: &str, address: &str) -> DbResult<i64> {
    Ok(diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::occurred_at.eq(now()),
            login_attempts::username.eq(username),
            login_attempts::source_ip.eq(address),
            login_attempts::success.eq(false),
        ))
        .returning(login_attempts::id)
        .get_result(conn)?)
}

pub fn mark_success(conn: &mut DbConnection, id: i64) -> DbResult<()> {
    diesel::update(login_attempts::table.find(id))
        .set(login_attempts::success.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Failures since `since` (and since the last success that counts), with the time of
/// the latest.
pub struct Failures {
    pub count: i64,
    pub last: Option<PrimitiveDateTime>,
}

/// Failures for one account from one address, since that address's last success.
pub fn failures_for_pair(
    conn: &mut DbConnection,
    username: &str,
    address: &str,
    since: PrimitiveDateTime,
) -> DbResult<Failures> {
    let last_success: Option<PrimitiveDateTime> = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::source_ip.eq(address))
        .filter(login_attempts::success.eq(true))
        .filter(login_attempts::occurred_at.ge(since))
        .select(diesel::dsl::max(login_attempts::occurred_at))
        .first(conn)?;
    let from = last_success.map_or(since, |t| t.max(since));
    let (count, last): (i64, Option<PrimitiveDateTime>) = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::source_ip.eq(address))
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::occurred_at.gt(from))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(login_attempts::occurred_at),
        ))
        .first(conn)?;
    Ok(Failures { count, last })
}

/// Failures from one address over all accounts.
pub fn failures_for_address(
    conn: &mut DbConnection,
    address: &str,
    since: PrimitiveDateTime,
) -> DbResult<Failures> {
    let (count, last): (i64, Option<PrimitiveDateTime>) = login_attempts::table
        .filter(login_attempts::source_ip.eq(address))
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::occurred_at.ge(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(login_attempts::occurred_at),
        ))
        .first(conn)?;
    Ok(Failures { count, last })
}

/// `latchkey user unlock`: forgets an account's failures, from every address.
pub fn clear_for_user(conn: &mut DbConnection, username: &str) -> DbResult<usize> {
    Ok(diesel::delete(
        login_attempts::table
            .filter(login_attempts::username.eq(username))
            .filter(login_attempts::success.eq(false)),
    )
    .execute(conn)?)
}

pub fn prune(conn: &mut DbConnection, before: PrimitiveDateTime) -> DbResult<usize> {
    Ok(
        diesel::delete(login_attempts::table.filter(login_attempts::occurred_at.lt(before)))
            .execute(conn)?,
    )
}
