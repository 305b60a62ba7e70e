//! Usage rollups: per key, period (minute, hour, day), bucket and outcome, a count that
//! every instance's flusher adds into. Charts, the "requests 24 h / 30 d" figures and
//! the idle check read these, never the raw request log.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
use diesel::upsert::excluded;
use time::PrimitiveDateTime;

use super::schema::{api_keys, usage_rollups};
use super::{DbConnection, DbResult};

/// A rollup period, and how long its rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Minute,
    Hour,
    Day,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Minute, Period::Hour, Period::Day];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    fn minutes(self) -> i64 {
        match self {
            Period::Minute => 1,
            Period::Hour => 60,
            Period::Day => 1440,
        }
    }

    /// How long rows of this period are kept: 48 hours, 90 days, 400 days.
    pub fn keep(self) -> time::Duration {
        match self {
            Period::Minute => time::Duration::hours(48),
            Period::Hour => time::Duration::days(90),
            Period::Day => time::Duration::days(400),
        }
    }

    /// The start (in minutes since the epoch) of the bucket holding `minute`.
    pub fn bucket_of_minute(self, minute: i64) -> i64 {
        minute - minute.rem_euclid(self.minutes())
    }

    /// The bucket holding `at`.
    pub fn bucket_of(self, at: PrimitiveDateTime) -> PrimitiveDateTime {
        let minute = at.assume_utc().unix_timestamp().div_euclid(60);
        Period::start_time(self.bucket_of_minute(minute))
    }

    pub fn start_time(minute: i64) -> PrimitiveDateTime {
        let t = time::OffsetDateTime::from_unix_timestamp(minute.saturating_mul(60))
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        PrimitiveDateTime::new(t.date(), t.time())
    }
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = usage_rollups, treat_none_as_default_value = false)]
pub struct NewRollup {
    pub api_key_id: i64,
    pub period: &'static str,
    pub bucket_start: PrimitiveDateTime,
    pub outcome: &'static str,
    pub count: i64,
}

/// What a flush tells a key's row: uses to add to its 24 h / 30 d figures, and its
/// newest use (absent when only counts were carried over from a failed write).
#[derive(Debug, Clone)]
pub struct KeyUse {
    pub id: i64,
    pub added: i64,
    pub last: Option<LastUsed>,
}

/// A key's newest use in a flush.
#[derive(Debug, Clone)]
pub struct LastUsed {
    pub at: PrimitiveDateTime,
    pub ip: Option<String>,
}

/// Adds `rows` into the rollups. Upserts are the one thing that makes concurrent
/// flushes from several instances add up without reading first; both backends take the
/// same `INSERT … ON CONFLICT … DO UPDATE`, but diesel builds it only on a concrete
/// connection, hence the match.
pub fn add(conn: &mut DbConnection, rows: &[NewRollup]) -> DbResult<()> {
    macro_rules! upsert {
        ($c:expr, $chunk:expr) => {
            diesel::insert_into(usage_rollups::table)
                .values($chunk)
                .on_conflict((
                    usage_rollups::api_key_id,
                    usage_rollups::period,
                    usage_rollups::bucket_start,
                    usage_rollups::outcome,
                ))
                .do_update()
                .set(usage_rollups::count.eq(usage_rollups::count + excluded(usage_rollups::count)))
                .execute($c)
        };
    }
    // 5 values a row: 500 rows stay well under SQLite's bound-parameter limit.
    for chunk in rows.chunks(500) {
        match conn {
            DbConnection::Sqlite(c) => upsert!(c, chunk)?,
            DbConnection::Postgresql(c) => upsert!(c, chunk)?,
        };
    }
    Ok(())
}

/// Adds each key's new uses to its 24 h / 30 d figures and moves its last use forward
/// (only forward: several instances report the same key), for up to 400 keys per
/// statement: `UPDATE … FROM (VALUES …)` instead of two statements per key, which on
/// PostgreSQL (a round trip each) fell seconds behind with thousands of keys in use.
/// Both backends take the statement (SQLite ≥ 3.33; VALUES columns are `columnN` on
/// both); only the placeholders differ, hence the match.
pub fn touch_keys(conn: &mut DbConnection, uses: &[KeyUse]) -> DbResult<()> {
    for chunk in uses.chunks(400) {
        let postgres = matches!(conn, DbConnection::Postgresql(_));
        let mut values = String::with_capacity(chunk.len() * 32);
        for i in 0..chunk.len() {
            if i > 0 {
                values.push(',');
            }
            if postgres {
                let n = i * 5;
                values.push_str(&format!(
                    "(${}::bigint,${}::bigint,${}::timestamp,${}::text,${}::bigint)",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5
                ));
            } else {
                values.push_str("(?,?,?,?,?)");
            }
        }
        let sql = format!(
            "UPDATE api_keys SET \
             uses_24h = api_keys.uses_24h + v.column2, \
             uses_30d = api_keys.uses_30d + v.column2, \
             last_used_at = CASE WHEN v.column5 > api_keys.last_used_order THEN v.column3 ELSE api_keys.last_used_at END, \
             last_used_ip = CASE WHEN v.column5 > api_keys.last_used_order THEN v.column4 ELSE api_keys.last_used_ip END, \
             last_used_order = CASE WHEN v.column5 > api_keys.last_used_order THEN v.column5 ELSE api_keys.last_used_order END \
             FROM (VALUES {values}) AS v WHERE api_keys.id = v.column1"
        );
        macro_rules! run {
            ($c:expr, $backend:ty) => {{
                let mut q = diesel::sql_query(sql.as_str()).into_boxed::<$backend>();
                for u in chunk {
                    let (at, ip, order) = match &u.last {
                        Some(l) => (Some(l.at), l.ip.clone(), order_of(l.at)),
                        None => (None, None, 0),
                    };
                    q = q
                        .bind::<BigInt, _>(u.id)
                        .bind::<BigInt, _>(u.added)
                        .bind::<Nullable<Timestamp>, _>(at)
                        .bind::<Nullable<Text>, _>(ip)
                        .bind::<BigInt, _>(order);
                }
                q.execute($c)?
            }};
        }
        match conn {
            DbConnection::Sqlite(c) => run!(c, diesel::sqlite::Sqlite),
            DbConnection::Postgresql(c) => run!(c, diesel::pg::Pg),
        };
    }
    Ok(())
}

/// The sort key of "last used": microseconds since the epoch.
pub fn order_of(t: PrimitiveDateTime) -> i64 {
    let micros = t.assume_utc().unix_timestamp_nanos() / 1000;
    i64::try_from(micros).unwrap_or(i64::MAX)
}

/// Where the 24 h and 30 d windows start at `now`: the last 24 hour buckets (this one
/// included) and the last 30 day buckets.
pub fn windows(now: PrimitiveDateTime) -> (PrimitiveDateTime, PrimitiveDateTime) {
    (
        Period::Hour.bucket_of(now) - time::Duration::hours(23),
        Period::Day.bucket_of(now) - time::Duration::days(29),
    )
}

fn total(
    conn: &mut DbConnection,
    key: i64,
    period: Period,
    since: PrimitiveDateTime,
) -> DbResult<i64> {
    let rows: Vec<i64> = usage_rollups::table
        .filter(usage_rollups::api_key_id.eq(key))
        .filter(usage_rollups::period.eq(period.as_str()))
        .filter(usage_rollups::bucket_start.ge(since))
        .select(usage_rollups::count)
        .load(conn)?;
    Ok(rows.iter().sum())
}

/// Keys with figures above zero among ids `(after, after + span]`: those whose
/// figures may have to fall as buckets leave the windows.
pub fn keys_with_figures(conn: &mut DbConnection, after: i64, span: i64) -> DbResult<Vec<i64>> {
    Ok(api_keys::table
        .filter(api_keys::id.gt(after))
        .filter(api_keys::id.le(after.saturating_add(span)))
        .filter(api_keys::uses_30d.gt(0).or(api_keys::uses_24h.gt(0)))
        .select(api_keys::id)
        .load(conn)?)
}

/// Keys with day rollups in the 30-day window (found by the age index): those whose
/// figures may have to rise (rollups written by another instance before this one
/// started, or by the migration from the old request log).
pub fn keys_used_since(conn: &mut DbConnection, since: PrimitiveDateTime) -> DbResult<Vec<i64>> {
    Ok(usage_rollups::table
        .filter(usage_rollups::period.eq(Period::Day.as_str()))
        .filter(usage_rollups::bucket_start.ge(since))
        .filter(usage_rollups::api_key_id.ne(0))
        .select(usage_rollups::api_key_id)
        .distinct()
        .load(conn)?)
}

/// Recomputes the 24 h / 30 d figures of `keys` from rollups; returns how many changed.
pub fn refresh_figures(
    conn: &mut DbConnection,
    keys: &[i64],
    now: PrimitiveDateTime,
) -> DbResult<usize> {
    let (day_from, month_from) = windows(now);
    let current: Vec<(i64, i64, i64)> = api_keys::table
        .filter(api_keys::id.eq_any(keys))
        .select((api_keys::id, api_keys::uses_24h, api_keys::uses_30d))
        .load(conn)?;
    let mut changed = 0;
    for (id, old_day, old_month) in current {
        let day = total(conn, id, Period::Hour, day_from)?;
        let month = total(conn, id, Period::Day, month_from)?;
        if (day, month) != (old_day, old_month) {
            changed += diesel::update(api_keys::table.find(id))
                .set((api_keys::uses_24h.eq(day), api_keys::uses_30d.eq(month)))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

/// `(bucket start, count)` of one key's `period` rows since `since`, all outcomes
/// summed, oldest first.
pub fn series(
    conn: &mut DbConnection,
    key: i64,
    period: Period,
    since: PrimitiveDateTime,
) -> DbResult<Vec<(PrimitiveDateTime, i64)>> {
    let rows: Vec<(PrimitiveDateTime, i64)> = usage_rollups::table
        .filter(usage_rollups::api_key_id.eq(key))
        .filter(usage_rollups::period.eq(period.as_str()))
        .filter(usage_rollups::bucket_start.ge(since))
        .order(usage_rollups::bucket_start.asc())
        .select((usage_rollups::bucket_start, usage_rollups::count))
        .load(conn)?;
    let mut out: Vec<(PrimitiveDateTime, i64)> = Vec::new();
    for (at, n) in rows {
        match out.last_mut() {
            Some((last, total)) if *last == at => *total += n,
            _ => out.push((at, n)),
        }
    }
    Ok(out)
}

/// One key's totals per outcome since `since` (from day rows).
pub fn outcomes(
    conn: &mut DbConnection,
    key: i64,
    since: PrimitiveDateTime,
) -> DbResult<Vec<(String, i64)>> {
    let rows: Vec<(String, i64)> = usage_rollups::table
        .filter(usage_rollups::api_key_id.eq(key))
        .filter(usage_rollups::period.eq(Period::Day.as_str()))
        .filter(usage_rollups::bucket_start.ge(since))
        .select((usage_rollups::outcome, usage_rollups::count))
        .load(conn)?;
    let mut totals: Vec<(String, i64)> = Vec::new();
    for (o, n) in rows {
        match totals.iter_mut().find(|(x, _)| *x == o) {
            Some((_, t)) => *t += n,
            None => totals.push((o, n)),
        }
    }
    totals.sort_by_key(|t| std::cmp::Reverse(t.1));
    Ok(totals)
}

/// Deletes the rows of up to `buckets` buckets of `period` older than its retention,
/// one bucket per statement (short write locks); returns how many rows went.
pub fn prune(
    conn: &mut DbConnection,
    period: Period,
    now: PrimitiveDateTime,
    buckets: i64,
) -> DbResult<usize> {
    let cutoff = now - period.keep();
    let old: Vec<PrimitiveDateTime> = usage_rollups::table
        .filter(usage_rollups::period.eq(period.as_str()))
        .filter(usage_rollups::bucket_start.lt(cutoff))
        .select(usage_rollups::bucket_start)
        .distinct()
        .order(usage_rollups::bucket_start.asc())
        .limit(buckets)
        .load(conn)?;
    let mut n = 0;
    for at in old {
        n += diesel::delete(
            usage_rollups::table
                .filter(usage_rollups::period.eq(period.as_str()))
                .filter(usage_rollups::bucket_start.eq(at)),
        )
        .execute(conn)?;
    }
    Ok(n)
}
