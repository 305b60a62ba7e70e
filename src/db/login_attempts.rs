//! Login attempts, for throttling by account and by source address.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::login_attempts;
use super::{DbConnection, DbResult, now};

pub fn record(
    conn: &mut DbConnection,
    username: &str,
    source_ip: &str,
    success: bool,
) -> DbResult<()> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::occurred_at.eq(now()),
            login_attempts::username.eq(username),
            login_attempts::source_ip.eq(source_ip),
            login_attempts::success.eq(success),
        ))
        .execute(conn)?;
    Ok(())
}

/// Failures since `since` and since the last success, with the time of the latest.
pub struct Failures {
    pub count: i64,
    pub last: Option<PrimitiveDateTime>,
}

pub fn failures_for_user(
    conn: &mut DbConnection,
    username: &str,
    since: PrimitiveDateTime,
) -> DbResult<Failures> {
    let last_success: Option<PrimitiveDateTime> = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::success.eq(true))
        .filter(login_attempts::occurred_at.ge(since))
        .select(diesel::dsl::max(login_attempts::occurred_at))
        .first(conn)?;
    let from = last_success.map_or(since, |t| t.max(since));
    let (count, last): (i64, Option<PrimitiveDateTime>) = login_attempts::table
        .filter(login_attempts::username.eq(username))
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::occurred_at.gt(from))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(login_attempts::occurred_at),
        ))
        .first(conn)?;
    Ok(Failures { count, last })
}

pub fn failures_for_ip(
    conn: &mut DbConnection,
    source_ip: &str,
    since: PrimitiveDateTime,
) -> DbResult<Failures> {
    let (count, last): (i64, Option<PrimitiveDateTime>) = login_attempts::table
        .filter(login_attempts::source_ip.eq(source_ip))
        .filter(login_attempts::success.eq(false))
        .filter(login_attempts::occurred_at.ge(since))
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::max(login_attempts::occurred_at),
        ))
        .first(conn)?;
    Ok(Failures { count, last })
}

pub fn prune(conn: &mut DbConnection, before: PrimitiveDateTime) -> DbResult<usize> {
    Ok(
        diesel::delete(login_attempts::table.filter(login_attempts::occurred_at.lt(before)))
            .execute(conn)?,
    )
}
