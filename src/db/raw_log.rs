//! The raw request log's rows on SQLite, written through a connection of their own.
//!
//! Diesel spends about twice what SQLite does on each row of a batch insert: it walks
//! the statement's AST to check the statement cache and again to bind every value, and
//! formats each timestamp through `time`'s format descriptions — about 13 k of the 20 k
//! instructions a row cost (callgrind, BENCHMARKS.md). The rows are the only batch
//! the server writes at request rate, so they go through `rusqlite`'s direct binding
//! on one prepared statement per flush; everything else stays with diesel.
//!
//! The connection is opened on first use with the pool's pragmas, kept by the usage
//! recorder (flushes are serialised) and dropped after an error so the next flush
//! opens a fresh one. A file database only: an in-memory one is private to its
//! connection, so the rows stay on the caller's diesel connection there, as on
//! PostgreSQL (where they go by `COPY`).

use std::sync::{Mutex, OnceLock};

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::request_log;
use super::{DbConnection, DbError, DbResult};

/// `treat_none_as_default_value = false`: a missing address is bound as NULL rather
/// than written as DEFAULT, so SQLite, which has no DEFAULT in a VALUES list, still
/// gets one multi-row INSERT per chunk instead of one statement per row.
#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = request_log, treat_none_as_default_value = false)]
pub struct NewRequest {
    pub occurred_at: PrimitiveDateTime,
    pub api_key_id: i64,
    pub channel_id: i64,
    pub method: &'static str,
    pub route: String,
    pub status: i32,
    pub source_ip: Option<String>,
    pub kind: &'static str,
    pub code: Option<&'static str>,
}

const INSERT: &str = "INSERT INTO request_log \
    (occurred_at, api_key_id, channel_id, method, route, status, source_ip, kind, code) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

#[derive(Default)]
pub struct RawLogWriter {
    conn: Mutex<Option<rusqlite::Connection>>,
    /// The database file, asked of SQLite once (`None`: not a SQLite file).
    file: OnceLock<Option<String>>,
}

#[derive(diesel::QueryableByName)]
struct FileRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    file: String,
}

impl RawLogWriter {
    /// The SQLite file `conn` has open, which this writer writes the rows to; `None`
    /// for PostgreSQL and for an in-memory database (SQLite names no file for it).
    pub fn target(&self, conn: &mut DbConnection) -> DbResult<Option<&str>> {
        if let Some(file) = self.file.get() {
            return Ok(file.as_deref());
        }
        let file = match conn {
            DbConnection::Sqlite(c) => {
                diesel::sql_query("SELECT file FROM pragma_database_list WHERE name = 'main'")
                    .get_result::<FileRow>(c)
                    .optional()?
                    .map(|r| r.file)
                    .filter(|f| !f.is_empty())
            }
            DbConnection::Postgresql(_) => None,
        };
        Ok(self.file.get_or_init(|| file).as_deref())
    }

    /// Writes `rows` in one transaction of this writer's own connection to `path`.
    pub fn write(&self, path: &str, rows: &[NewRequest]) -> DbResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let result = write_rows(&mut guard, path, rows);
        if result.is_err() {
            *guard = None;
        }
        result.map_err(|e| DbError::Config(format!("request log write failed: {e}")))
    }
}

fn write_rows(
    slot: &mut Option<rusqlite::Connection>,
    path: &str,
    rows: &[NewRequest],
) -> rusqlite::Result<()> {
    if slot.is_none() {
        let conn = rusqlite::Connection::open(path)?;
        // The pool's pragmas (db::Manager::connect): wait for the write lock rather
        // than fail; WAL is a property of the file, already set by the pool.
        conn.execute_batch(
            "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = NORMAL;",
        )?;
        *slot = Some(conn);
    }
    let Some(conn) = slot.as_mut() else {
        return Ok(());
    };
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare(INSERT)?;
        let mut at = String::with_capacity(32);
        for r in rows {
            at.clear();
            push_timestamp(&mut at, r.occurred_at);
            insert.execute(rusqlite::params![
                at,
                r.api_key_id,
                r.channel_id,
                r.method,
                r.route,
                r.status,
                r.source_ip,
                r.kind,
                r.code,
            ])?;
        }
    }
    tx.commit()
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]`: the text diesel writes for a SQLite `TIMESTAMP`
/// (its `[subsecond]`: the fraction without trailing zeros, none for whole seconds), so
/// rows from either writer sort and parse alike.
pub fn push_timestamp(out: &mut String, t: PrimitiveDateTime) {
    fn digits(out: &mut String, n: u32, width: usize) {
        let mut buf = [b'0'; 10];
        let mut n = n;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend(buf[..width].iter().map(|b| char::from(*b)));
    }
    let year = t.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits `time` adds a sign and more digits; let it.
        let format = time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"
        );
        let whole =
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let f = if t.nanosecond() == 0 { whole } else { format };
        out.push_str(&t.format(f).unwrap_or_default());
        return;
    }
    digits(out, year.unsigned_abs(), 4);
    out.push('-');
    digits(out, u32::from(u8::from(t.month())), 2);
    out.push('-');
    digits(out, u32::from(t.day()), 2);
    out.push(' ');
    digits(out, u32::from(t.hour()), 2);
    out.push(':');
    digits(out, u32::from(t.minute()), 2);
    out.push(':');
    digits(out, u32::from(t.second()), 2);
    let nanos = t.nanosecond();
    if nanos != 0 {
        out.push('.');
        let mut frac = nanos;
        let mut width = 9;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        digits(out, frac, width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::format_description;

    fn diesel_text(t: PrimitiveDateTime) -> String {
        let whole = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
        let sub = format_description!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]");
        t.format(if t.nanosecond() == 0 { whole } else { sub })
            .unwrap()
    }

    proptest! {
        /// The same text as diesel's `ToSql<Timestamp, Sqlite>` formats, for any time
        /// (whole seconds, microseconds as the recorder makes them, any nanosecond).
        #[test]
        fn timestamps_match_diesel(secs in -62_135_596_800i64..253_402_300_799i64,
                                   nanos in prop_oneof![Just(0u32), (0u32..1_000_000).prop_map(|u| u * 1000), 0u32..1_000_000_000]) {
            let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .replace_nanosecond(nanos).unwrap();
            let t = PrimitiveDateTime::new(t.date(), t.time());
            let mut out = String::new();
            push_timestamp(&mut out, t);
            prop_assert_eq!(out, diesel_text(t));
        }
    }
}
