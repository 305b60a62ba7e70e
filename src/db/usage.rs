//! The raw request log and "last used": written in batches by `usage::UsageRecorder`
//! (together with the rollups), read by the key detail view, pruned by age and per key.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::raw_log::RawLogWriter;
use super::rollups::{self, KeyUse, NewRollup};
use super::schema::request_log;
use super::{DbConnection, DbError, DbResult};

pub use super::raw_log::NewRequest;

/// Writes one flush's counts in one transaction: rollups (upserts), then each key's
/// figures and last use; and its raw rows — in the same transaction on PostgreSQL (one
/// binary COPY) and for an in-memory SQLite database, through `raw` (its own
/// connection and transaction, after this one) for a SQLite file
/// (`RawLogWriter::target`).
///
/// `Err` when nothing was written; `Ok(Some(e))` when the counts were written but the
/// raw rows were not (the caller keeps only the rows to retry).
pub fn write_batch(
    conn: &mut DbConnection,
    raw: &RawLogWriter,
    rows: &[NewRequest],
    rollup_rows: &[NewRollup],
    uses: &[KeyUse],
) -> DbResult<Option<DbError>> {
    let separate = raw.target(conn)?.map(str::to_owned);
    conn.transaction(|conn| {
        rollups::add(conn, rollup_rows)?;
        match conn {
            DbConnection::Sqlite(_) if separate.is_some() => {}
            // In memory: one single-row INSERT, prepared once per connection.
            DbConnection::Sqlite(c) => {
                for row in rows {
                    diesel::insert_into(request_log::table)
                        .values(row)
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
        rollups::touch_keys(conn, uses)?;
        Ok::<_, DbError>(())
    })?;
    Ok(separate.and_then(|path| raw.write(&path, rows).err()))
}

pub use super::rollups::order_of;

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
    pub route: String,
    pub status: i32,
    pub source_ip: Option<String>,
    pub kind: String,
    pub code: Option<String>,
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

/// Deletes the oldest rows older than `cutoff`, up to `batch` of them. Ids grow with
/// time, so this reads the `batch` lowest ids (no index on the time needed, no scan of
/// young rows) and deletes the old ones among them. Returns how many went and whether
/// the batch was all old (more may follow).
pub fn prune_older_than(
    conn: &mut DbConnection,
    cutoff: PrimitiveDateTime,
    batch: i64,
) -> DbResult<(usize, bool)> {
    let oldest: Vec<(i64, PrimitiveDateTime)> = request_log::table
        .order(request_log::id.asc())
        .select((request_log::id, request_log::occurred_at))
        .limit(batch)
        .load(conn)?;
    let old: Vec<i64> = oldest
        .iter()
        .filter(|(_, at)| *at < cutoff)
        .map(|(id, _)| *id)
        .collect();
    let all_old = old.len() as i64 == batch;
    Ok((delete_ids(conn, &old)?, all_old))
}

/// How many rows one key has in the log.
pub fn rows_of(conn: &mut DbConnection, api_key_id: i64) -> DbResult<i64> {
    Ok(request_log::table
        .filter(request_log::api_key_id.eq(api_key_id))
        .count()
        .get_result(conn)?)
}

/// Deletes up to `batch` of one key's rows beyond its newest `cap`; returns how many.
pub fn prune_over_cap(
    conn: &mut DbConnection,
    api_key_id: i64,
    cap: i64,
    batch: i64,
) -> DbResult<usize> {
    let boundary: Option<i64> = request_log::table
        .filter(request_log::api_key_id.eq(api_key_id))
        .order(request_log::id.desc())
        .offset(cap)
        .select(request_log::id)
        .first(conn)
        .optional()?;
    let Some(boundary) = boundary else {
        return Ok(0);
    };
    let ids: Vec<i64> = request_log::table
        .filter(request_log::api_key_id.eq(api_key_id))
        .filter(request_log::id.le(boundary))
        .order(request_log::id.asc())
        .select(request_log::id)
        .limit(batch)
        .load(conn)?;
    delete_ids(conn, &ids)
}

fn delete_ids(conn: &mut DbConnection, ids: &[i64]) -> DbResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(request_log::table.filter(request_log::id.eq_any(ids))).execute(conn)?)
}
