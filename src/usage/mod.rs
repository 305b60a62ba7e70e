//! Recording use without slowing the hot path. A use is a few in-memory updates under
//! one short, uncontended mutex hold — each thread notes into a buffer of its own
//! (`crate::shards`): a counter per (key, minute, outcome), the key's last use and,
//! unless the key is Off the Record, one raw request-log row. A background task merges
//! the buffers and writes it all once a second (and on graceful shutdown) in one
//! transaction:
//! - the counters become **rollups**, added into the minute, hour and day rows of
//!   `usage_rollups` with upserts — a handful of rows per flush whatever the request
//!   rate, and several instances add into the same rows correctly;
//! - the rows become the **raw request log**, a bounded debugging aid: at most the most
//!   recent `per_key` rows of a key per flush (older ones would be pruned at once);
//! - last use moves forward, and each key's "requests 24 h / 30 d" grow by its count.
//!
//! Requests refused before any key is known (bad bearer, malformed or unknown key) are
//! counted under key 0 and never logged row by row.

mod buffer;

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::raw_log::RawLogWriter;
use crate::db::usage::NewRequest;
use crate::db::{self, DbResult, Pool};
use crate::shards::{self, Padded, SHARDS};
use crate::verification::{CachedKey, Code};
use buffer::{
    Buffer, Pending, Row, keep_newest_per_key, key_uses, minute_of, now_micros, rollup_rows,
};
pub use buffer::{Outcome, RowKind, StatusClass};

/// Beyond this many unwritten rows in one thread's buffer (database down for a long
/// time) the oldest are dropped rather than letting memory grow without bound.
/// Counters are never dropped.
const MAX_BUFFERED: usize = 250_000;

/// The route every verification row carries.
pub const VERIFY_ROUTE: &str = "/api/v1/keys/verify";

/// Longest route pattern kept in a row (patterns are short; this bounds the unmatched).
const MAX_ROUTE: usize = 120;

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

pub struct UsageRecorder {
    /// One buffer per thread shard: two workers noting into one shared map moved its
    /// cache lines between the cores on every request.
    buffers: Box<[Padded<Mutex<Buffer>>]>,
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
            buffers: (0..SHARDS).map(|_| Padded::default()).collect(),
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
        if let Ok(mut buf) = self.mine().lock() {
            *buf.counts.entry((0, minute, outcome)).or_default() += 1;
        }
    }

    /// One use: its counter, the key's last use and, unless the key is Off the Record
    /// (no row, no address; still counted), its raw row.
    fn note(&self, key: &CachedKey, outcome: Outcome, ip: Option<IpAddr>, row: Option<Row>) {
        let at = now_micros();
        let Ok(mut buf) = self.mine().lock() else {
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

    /// This thread's buffer.
    fn mine(&self) -> &Mutex<Buffer> {
        &self.buffers[shards::this_thread()].0
    }

    /// Uses noted but not written yet (rows, counters and last-used entries).
    pub fn pending(&self) -> usize {
        self.buffers
            .iter()
            .filter_map(|b| {
                b.0.lock()
                    .ok()
                    .map(|b| b.rows.len() + b.counts.len() + b.last_used.len())
            })
            .sum()
    }

    /// Every thread's buffer, emptied into one batch with its rows in time order.
    fn take_all(&self) -> Buffer {
        let mut all = Buffer::default();
        for b in self.buffers.iter() {
            if let Ok(mut buf) = b.0.lock() {
                all.absorb(std::mem::take(&mut *buf));
            }
        }
        all.sort_rows();
        all
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
        let mut taken = self.take_all();
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
                if let Ok(mut buf) = self.mine().lock() {
                    buf.absorb(Buffer {
                        rows: taken.rows,
                        ..Buffer::default()
                    });
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
                if let Ok(mut buf) = self.mine().lock() {
                    buf.absorb(taken);
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

    fn key(id: i64) -> CachedKey {
        CachedKey::sample(id)
    }

    /// Threads note into buffers of their own; a flush's batch holds every use once,
    /// rows in time order, and each key's newest use.
    #[test]
    fn every_threads_uses_reach_one_batch() {
        let rec = Arc::new(UsageRecorder::new(10_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..1_000 {
                        rec.verification(&key(1 + t % 2), Code::Valid, None);
                        rec.unknown(Outcome::Unauthenticated);
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        rec.verification(&key(1), Code::Disabled, None);
        assert!(rec.pending() > 0);
        let all = rec.take_all();
        assert_eq!(rec.pending(), 0, "taking empties every buffer");
        let count = |id: i64| -> u64 {
            all.counts
                .iter()
                .filter(|((k, _, _), _)| *k == id)
                .map(|(_, n)| n)
                .sum()
        };
        assert_eq!((count(0), count(1), count(2)), (4_000, 2_001, 2_000));
        assert_eq!(all.rows.len(), 4_001);
        assert!(all.rows.windows(2).all(|w| w[0].at <= w[1].at));
        let newest = all.rows.last().map(|r| (r.api_key_id, r.code));
        assert_eq!(newest, Some((1, Some(Code::Disabled))));
        assert_eq!(
            all.last_used.get(&1).map(|u| u.0),
            all.rows.last().map(|r| r.at)
        );
    }
}
