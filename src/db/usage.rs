//! The request log and "last used": written in batches by `usage::UsageRecorder`,
//! read by the key detail view.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use time::PrimitiveDateTime;

use super::schema::{api_keys, request_log};
use super::{DbConnection, DbResult};

/// `treat_none_as_default_value = false`: a missing address is bound as NULL rather
/// than written as DEFAULT, so SQLite, which has no DEFAULT in a VALUES list, still
/// gets one multi-row INSERT per chunk instead of one statement per row.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = request_log, treat_none_as_default_value = false)]
pub struct NewRequest {
    pub occurred_at: PrimitiveDateTime,
    pub api_key_id: i64,
    pub channel_id: i64,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub source_ip: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LastUsed {
    pub at: PrimitiveDateTime,
    pub ip: Option<String>,
}

/// Writes one batch in one transaction: on SQLite 1,000 rows per INSERT (7,000 bound
/// values, under its limit), on PostgreSQL one binary COPY. Neither is available
/// through the shared connection type, so this matches on the backend.
pub fn write_batch(
    conn: &mut DbConnection,
    rows: &[NewRequest],
    last_used: &[(i64, LastUsed)],
) -> DbResult<()> {
    conn.transaction(|conn| {
        match conn {
            DbConnection::Sqlite(c) => {
                for chunk in rows.chunks(1000) {
                    diesel::insert_into(request_log::table)
                        .values(chunk)
                        .execute(c)?;
                }
            }
            // COPY (binary) rather than INSERT: under sustained load the INSERTs fell
            // behind and the buffer had to drop rows (BENCHMARKS.md).
            DbConnection::Postgresql(c) if !rows.is_empty() => {
                diesel::copy_from(request_log::table)
                    .from_insertable(rows)
                    .execute(c)?;
            }
            DbConnection::Postgresql(_) => {}
        }
        for (id, used) in last_used {
            let order = order_of(used.at);
            // Only move forward: several instances may report the same key.
            diesel::update(api_keys::table.find(*id))
                .filter(api_keys::last_used_order.lt(order))
                .set((
                    api_keys::last_used_at.eq(used.at),
                    api_keys::last_used_ip.eq(used.ip.as_deref()),
                    api_keys::last_used_order.eq(order),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The sort key of "last used": microseconds since the epoch.
pub fn order_of(t: PrimitiveDateTime) -> i64 {
    let micros = t.assume_utc().unix_timestamp_nanos() / 1000;
    i64::try_from(micros).unwrap_or(i64::MAX)
}

/// Status classes the log can be filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    Success,
    ClientError,
    ServerError,
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "2xx" => Some(StatusFilter::Success),
            "4xx" => Some(StatusFilter::ClientError),
            "5xx" => Some(StatusFilter::ServerError),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Success => "2xx",
            StatusFilter::ClientError => "4xx",
            StatusFilter::ServerError => "5xx",
        }
    }

    fn range(self) -> (i32, i32) {
        match self {
            StatusFilter::Success => (200, 300),
            StatusFilter::ClientError => (400, 500),
            StatusFilter::ServerError => (500, 600),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = request_log)]
pub struct RequestRow {
    pub id: i64,
    pub occurred_at: PrimitiveDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub source_ip: Option<String>,
}

/// Newest first; `before` is the id of the last row of the previous page.
pub fn log_page(
    conn: &mut DbConnection,
    api_key_id: i64,
    status: Option<StatusFilter>,
    before: Option<i64>,
    limit: i64,
) -> DbResult<Vec<RequestRow>> {
    let mut q = request_log::table
        .filter(request_log::api_key_id.eq(api_key_id))
        .into_boxed();
    if let Some(f) = status {
        let (lo, hi) = f.range();
        q = q
            .filter(request_log::status.ge(lo))
            .filter(request_log::status.lt(hi));
    }
    if let Some(b) = before {
        q = q.filter(request_log::id.lt(b));
    }
    Ok(q.order(request_log::id.desc())
        .limit(limit)
        .select(RequestRow::as_select())
        .load(conn)?)
}

#[derive(QueryableByName)]
struct Bucket {
    #[diesel(sql_type = Text)]
    bucket: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Requests per hour (`YYYY-MM-DD HH`) since `since`. The hour expression differs per
/// backend, so this is the one place with backend-specific SQL for it.
pub fn hourly_counts(
    conn: &mut DbConnection,
    api_key_id: i64,
    since: PrimitiveDateTime,
) -> DbResult<Vec<(String, i64)>> {
    let sql = match conn {
        DbConnection::Sqlite(_) => {
            "SELECT strftime('%Y-%m-%d %H', occurred_at) AS bucket, COUNT(*) AS n FROM request_log \
             WHERE api_key_id = ? AND occurred_at >= ? GROUP BY bucket"
        }
        DbConnection::Postgresql(_) => {
            "SELECT to_char(date_trunc('hour', occurred_at), 'YYYY-MM-DD HH24') AS bucket, COUNT(*) AS n \
             FROM request_log WHERE api_key_id = $1 AND occurred_at >= $2 GROUP BY bucket"
        }
    };
    let rows: Vec<Bucket> = diesel::sql_query(sql)
        .bind::<BigInt, _>(api_key_id)
        .bind::<Timestamp, _>(since)
        .load(conn)?;
    Ok(rows.into_iter().map(|b| (b.bucket, b.n)).collect())
}
