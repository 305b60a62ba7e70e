//! Recording use without slowing the hot path. A use is a few in-memory updates under
//! one short mutex hold: a counter per (key, minute, outcome), the key's last use and,
//! unless the key is Off the Record, one raw request-log row. A background task writes
//! it all once a second (and on graceful shutdown) in one transaction:
//! - the counters become **rollups**, added into the minute, hour and day rows of
//!   `usage_rollups` with upserts — a handful of rows per flush whatever the request
//!   rate, and several instances add into the same rows correctly;
//! - the rows become the **raw request log**, a bounded debugging aid: at most the most
//!   recent `per_key` rows of a key per flush (older ones would be pruned at once);
//! - last use moves forward, and each key's "requests 24 h / 30 d" grow by its count.
//!
//! Requests refused before any key is known (bad bearer, malformed or unknown key) are
//! counted under key 0 and never logged row by row.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::PrimitiveDateTime;

use crate::db::raw_log::RawLogWriter;
use crate::db::rollups::{KeyUse, LastUsed, NewRollup, Period};
use crate::db::usage::NewRequest;
use crate::db::{self, DbResult, Pool};
use crate::fxhash::FxBuild;
use crate::verification::{CachedKey, Code};

/// Beyond this many unwritten rows (database down for a long time) the oldest are
/// dropped rather than letting memory grow without bound. Counters are never dropped.
const MAX_BUFFERED: usize = 500_000;

/// The route every verification row carries.
pub const VERIFY_ROUTE: &str = "/api/v1/keys/verify";

/// Longest route pattern kept in a row (patterns are short; this bounds the unmatched).
const MAX_ROUTE: usize = 120;

/// What one counted use was: a verification of the key with its code, or a request
/// made with the key to Latchkey's own API by status class, or (key 0 only) a request
/// whose bearer key was missing, malformed or unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Verify(Code),
    Api(StatusClass),
    Unauthenticated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusClass {
    Success,
    ClientError,
    ServerError,
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            0..=399 => StatusClass::Success,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Verify(code) => code.as_str(),
            Outcome::Api(StatusClass::Success) => "API_2XX",
            Outcome::Api(StatusClass::ClientError) => "API_4XX",
            Outcome::Api(StatusClass::ServerError) => "API_5XX",
            Outcome::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

/// Which use a raw row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A request made with this key.
    Api,
    /// A verification of this key by a caller.
    Verify,
}

impl RowKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RowKind::Api => "api",
            RowKind::Verify => "verify",
        }
    }
}

/// A raw row's parts: kind, method, route pattern, status, verification code.
type Row = (RowKind, &'static str, Cow<'static, str>, u16, Option<Code>);

/// A row as buffered: no formatting on the hot path (the time is microseconds since
/// the epoch, a calendar date only at the flush).
struct Pending {
    at: i64,
    api_key_id: i64,
    channel_id: i64,
    kind: RowKind,
    method: &'static str,
    route: Cow<'static, str>,
    status: u16,
    code: Option<Code>,
    ip: Option<IpAddr>,
}

impl Pending {
    fn to_row(&self) -> NewRequest {
        NewRequest {
            occurred_at: time_of(self.at),
            api_key_id: self.api_key_id,
            channel_id: self.channel_id,
            method: self.method,
            route: self.route.to_string(),
            status: i32::from(self.status),
            source_ip: self.ip.map(|i| i.to_string()),
            kind: self.kind.as_str(),
            code: self.code.map(Code::as_str),
        }
    }
}

fn method_name(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        _ => "OTHER",
    }
}

/// Microseconds since the epoch, now: what the hot path stores (no calendar work).
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Minutes since the epoch: the finest bucket.
fn minute_of(micros: i64) -> i64 {
    micros.div_euclid(60_000_000)
}

/// The stored time of an epoch-microseconds value.
fn time_of(micros: i64) -> PrimitiveDateTime {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    PrimitiveDateTime::new(t.date(), t.time())
}

#[derive(Default)]
struct Buffer {
    counts: HashMap<(i64, i64, Outcome), u64, FxBuild>,
    rows: Vec<Pending>,
    last_used: HashMap<i64, (i64, Option<IpAddr>), FxBuild>,
}

impl Buffer {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.rows.is_empty() && self.last_used.is_empty()
    }

    /// Puts rows whose write failed back in front of what arrived since.
    fn restore_rows(&mut self, older: Vec<Pending>) {
        let newer = std::mem::replace(&mut self.rows, older);
        self.rows.extend(newer);
    }

    /// Puts a batch whose write failed back in front of what arrived since.
    fn restore(&mut self, older: Buffer) {
        for (k, n) in older.counts {
            *self.counts.entry(k).or_default() += n;
        }
        let newer = std::mem::replace(&mut self.rows, older.rows);
        self.rows.extend(newer);
        for (k, v) in older.last_used {
            self.last_used.entry(k).or_insert(v);
        }
    }
}

pub struct UsageRecorder {
    buffer: Mutex<Buffer>,
    /// Serialises flushes (they run on the blocking pool) so the shutdown flush never
    /// races the periodic one.
    flushing: Mutex<()>,
    /// Most recent raw rows a key keeps (`LATCHKEY_REQUEST_LOG_PER_KEY`).
    per_key: usize,
    /// Rows written per key since the retention last asked (see `retention`).
    written: Mutex<HashMap<i64, usize>>,
    /// The raw rows' own SQLite connection (`db::raw_log`).
    raw: RawLogWriter,
}

impl Default for UsageRecorder {
    fn default() -> Self {
        UsageRecorder::new(10_000)
    }
}

impl UsageRecorder {
    pub fn new(per_key: i64) -> Self {
        UsageRecorder {
            buffer: Mutex::default(),
            flushing: Mutex::default(),
            per_key: usize::try_from(per_key).unwrap_or(usize::MAX).max(1),
            written: Mutex::default(),
            raw: RawLogWriter::default(),
        }
    }

    /// A verification of `key` (by some caller) that ended with `code`.
    pub fn verification(&self, key: &CachedKey, code: Code, ip: Option<IpAddr>) {
        let status = if code == Code::Valid { 200 } else { 403 };
        let row = (
            RowKind::Verify,
            "POST",
            VERIFY_ROUTE.into(),
            status,
            Some(code),
        );
        self.note(key, Outcome::Verify(code), ip, Some(row));
    }

    /// A request made with `key` to Latchkey's own API. `log` is false where another
    /// row already tells the story (the verification row of the verified key).
    pub fn request(
        &self,
        key: &CachedKey,
        method: &str,
        route: Option<Cow<'static, str>>,
        status: u16,
        ip: Option<IpAddr>,
        log: bool,
    ) {
        let row = log.then(|| {
            let route = match route {
                Some(r) if r.len() > MAX_ROUTE => {
                    Cow::Owned(r[..floor_char_boundary(&r, MAX_ROUTE)].to_owned())
                }
                Some(r) => r,
                None => Cow::Borrowed("unmatched"),
            };
            (RowKind::Api, method_name(method), route, status, None)
        });
        self.note(key, Outcome::Api(StatusClass::of(status)), ip, row);
    }

    /// Something refused before any key was known: counted under key 0, never logged.
    pub fn unknown(&self, outcome: Outcome) {
        let minute = minute_of(now_micros());
        if let Ok(mut buf) = self.buffer.lock() {
            *buf.counts.entry((0, minute, outcome)).or_default() += 1;
        }
    }

    /// One use: its counter, the key's last use and, unless the key is Off the Record
    /// (no row, no address; still counted), its raw row.
    fn note(&self, key: &CachedKey, outcome: Outcome, ip: Option<IpAddr>, row: Option<Row>) {
        let at = now_micros();
        let Ok(mut buf) = self.buffer.lock() else {
            return;
        };
        *buf.counts
            .entry((key.id, minute_of(at), outcome))
            .or_default() += 1;
        let ip = if key.off_the_record { None } else { ip };
        buf.last_used.insert(key.id, (at, ip));
        let Some((kind, method, route, status, code)) = row else {
            return;
        };
        if key.off_the_record {
            return;
        }
        if buf.rows.len() >= MAX_BUFFERED {
            buf.rows.drain(..MAX_BUFFERED / 10);
            tracing::warn!("request log buffer full: oldest entries dropped");
        }
        buf.rows.push(Pending {
            at,
            api_key_id: key.id,
            channel_id: key.channel_id,
            kind,
            method,
            route,
            status,
            code,
            ip,
        });
    }

    /// Rows written per key since the last call.
    pub fn take_written(&self) -> HashMap<i64, usize> {
        self.written
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    }

    /// Uses noted but not written yet (rows, counters and last-used entries).
    pub fn pending(&self) -> usize {
        self.buffer
            .lock()
            .map(|b| b.rows.len() + b.counts.len() + b.last_used.len())
            .unwrap_or(0)
    }

    /// Writes everything buffered. On failure the batch goes back into the buffer to
    /// be retried, so nothing acknowledged is lost while the database is briefly away.
    pub async fn flush(self: &Arc<Self>, pool: &Pool) -> DbResult<usize> {
        let this = self.clone();
        let pool = pool.clone();
        actix_web::web::block(move || this.flush_blocking(&pool))
            .await
            .map_err(|_| db::DbError::Canceled)?
    }

    fn flush_blocking(&self, pool: &Pool) -> DbResult<usize> {
        let _guard = self.flushing.lock();
        let mut taken = match self.buffer.lock() {
            Ok(mut buf) => std::mem::take(&mut *buf),
            Err(_) => return Ok(0),
        };
        if taken.is_empty() {
            return Ok(0);
        }
        keep_newest_per_key(&mut taken.rows, self.per_key);
        let rollups = rollup_rows(&taken.counts);
        let uses = key_uses(&taken);
        let rows: Vec<NewRequest> = taken.rows.iter().map(Pending::to_row).collect();
        let result = pool
            .get()
            .map_err(db::DbError::from)
            .and_then(|mut c| db::usage::write_batch(&mut c, &self.raw, &rows, &rollups, &uses));
        match result {
            // Counted, but the rows were not written: only they are tried again.
            Ok(Some(e)) => {
                if let Ok(mut buf) = self.buffer.lock() {
                    buf.restore_rows(taken.rows);
                }
                Err(e)
            }
            Ok(None) => {
                if let Ok(mut w) = self.written.lock() {
                    for r in &rows {
                        *w.entry(r.api_key_id).or_default() += 1;
                    }
                }
                Ok(rows.len())
            }
            Err(e) => {
                if let Ok(mut buf) = self.buffer.lock() {
                    buf.restore(taken);
                }
                Err(e)
            }
        }
    }
}

/// The largest index ≤ `max` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0)
}

/// Drops all but the newest `cap` rows of each key (rows are in arrival order): the
/// retention would delete the older ones right after they were written.
fn keep_newest_per_key(rows: &mut Vec<Pending>, cap: usize) {
    let mut per_key: HashMap<i64, usize> = HashMap::new();
    for r in rows.iter() {
        *per_key.entry(r.api_key_id).or_default() += 1;
    }
    if per_key.values().all(|n| *n <= cap) {
        return;
    }
    // Skip each key's first (count - cap) rows.
    let mut skip: HashMap<i64, usize> = per_key
        .into_iter()
        .filter(|(_, n)| *n > cap)
        .map(|(k, n)| (k, n - cap))
        .collect();
    rows.retain(|r| match skip.get_mut(&r.api_key_id) {
        Some(left) if *left > 0 => {
            *left -= 1;
            false
        }
        _ => true,
    });
}

/// The counters as minute, hour and day rows, each bucket and outcome once.
fn rollup_rows(counts: &HashMap<(i64, i64, Outcome), u64, FxBuild>) -> Vec<NewRollup> {
    let mut merged: HashMap<(i64, Period, i64, Outcome), u64> = HashMap::new();
    for ((key, minute, outcome), n) in counts {
        for period in Period::ALL {
            let start = period.bucket_of_minute(*minute);
            *merged.entry((*key, period, start, *outcome)).or_default() += n;
        }
    }
    merged
        .into_iter()
        .map(|((key, period, start, outcome), n)| NewRollup {
            api_key_id: key,
            period: period.as_str(),
            bucket_start: Period::start_time(start),
            outcome: outcome.as_str(),
            count: i64::try_from(n).unwrap_or(i64::MAX),
        })
        .collect()
}

/// Per key: how many uses to add to its 24 h / 30 d figures, and its newest use.
fn key_uses(b: &Buffer) -> Vec<KeyUse> {
    let mut added: HashMap<i64, i64> = HashMap::new();
    for ((key, _, _), n) in &b.counts {
        if *key != 0 {
            *added.entry(*key).or_default() += i64::try_from(*n).unwrap_or(i64::MAX);
        }
    }
    let mut out: Vec<KeyUse> = b
        .last_used
        .iter()
        .map(|(id, (at, ip))| KeyUse {
            id: *id,
            added: added.remove(id).unwrap_or(0),
            last: Some(LastUsed {
                at: time_of(*at),
                ip: ip.map(|i| i.to_string()),
            }),
        })
        .collect();
    // Counted without a last use (restored after a failed write): only the figures.
    out.extend(added.into_iter().map(|(id, added)| KeyUse {
        id,
        added,
        last: None,
    }));
    out
}

pub fn spawn_flusher(recorder: Arc<UsageRecorder>, pool: Pool, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(e) = recorder.flush(&pool).await {
                tracing::warn!(error = %e, "writing usage failed; will retry");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_char_boundary_is_never_split() {
        let s = "/api/v1/é";
        for max in 0..s.len() + 2 {
            let i = floor_char_boundary(s, max);
            assert!(s.is_char_boundary(i) && i <= max);
        }
    }

    #[test]
    fn one_minute_of_counts_becomes_three_rows_per_outcome() {
        let mut counts: HashMap<_, _, FxBuild> = HashMap::default();
        counts.insert((7, 29_000_000, Outcome::Verify(Code::Valid)), 5);
        counts.insert((7, 29_000_001, Outcome::Verify(Code::Valid)), 2);
        let rows = rollup_rows(&counts);
        // Two minute rows, one hour row (both minutes in one hour), one day row.
        assert_eq!(rows.len(), 4);
        let total =
            |p: &str| -> i64 { rows.iter().filter(|r| r.period == p).map(|r| r.count).sum() };
        assert_eq!((total("minute"), total("hour"), total("day")), (7, 7, 7));
    }
}
