//! What a use becomes in memory, and how a buffer of uses becomes one batch of writes:
//! rollup rows, raw request-log rows and each key's last use. Each worker thread fills
//! a buffer of its own (`super::UsageRecorder`); the flush merges them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use time::PrimitiveDateTime;

use crate::db::rollups::{KeyUse, LastUsed, NewRollup, Period};
use crate::db::usage::NewRequest;
use crate::fxhash::FxBuild;
use crate::verification::Code;

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
pub(super) type Row = (RowKind, &'static str, Cow<'static, str>, u16, Option<Code>);

/// A row as buffered: no formatting on the hot path (the time is microseconds since
/// the epoch, a calendar date only at the flush).
pub(super) struct Pending {
    pub at: i64,
    pub api_key_id: i64,
    pub channel_id: i64,
    pub kind: RowKind,
    pub method: &'static str,
    pub route: Cow<'static, str>,
    pub status: u16,
    pub code: Option<Code>,
    pub ip: Option<IpAddr>,
}

impl Pending {
    pub fn to_row(&self) -> NewRequest {
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

/// Microseconds since the epoch, now: what the hot path stores (no calendar work).
pub(super) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Minutes since the epoch: the finest bucket.
pub(super) fn minute_of(micros: i64) -> i64 {
    micros.div_euclid(60_000_000)
}

/// The stored time of an epoch-microseconds value.
fn time_of(micros: i64) -> PrimitiveDateTime {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    PrimitiveDateTime::new(t.date(), t.time())
}

#[derive(Default)]
pub(super) struct Buffer {
    pub counts: HashMap<(i64, i64, Outcome), u64, FxBuild>,
    pub rows: Vec<Pending>,
    pub last_used: HashMap<i64, (i64, Option<IpAddr>), FxBuild>,
}

impl Buffer {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.rows.is_empty() && self.last_used.is_empty()
    }

    /// Adds `other`'s uses to these: another thread's buffer at a flush, or a batch
    /// whose write failed, back for the next one. Rows are put in time order by
    /// [`Buffer::sort_rows`] once every buffer is in.
    pub fn absorb(&mut self, other: Buffer) {
        if self.is_empty() {
            *self = other;
            return;
        }
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        self.rows.extend(other.rows);
        for (id, (at, ip)) in other.last_used {
            let last = self.last_used.entry(id).or_insert((at, ip));
            if at > last.0 {
                *last = (at, ip);
            }
        }
    }

    /// Rows in the order they were noted (stable: each thread's own order is kept;
    /// the sort merges the threads' runs).
    pub fn sort_rows(&mut self) {
        self.rows.sort_by_key(|r| r.at);
    }
}

/// Drops all but the newest `cap` rows of each key (rows are in arrival order): the
/// retention would delete the older ones right after they were written.
pub(super) fn keep_newest_per_key(rows: &mut Vec<Pending>, cap: usize) {
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
pub(super) fn rollup_rows(counts: &HashMap<(i64, i64, Outcome), u64, FxBuild>) -> Vec<NewRollup> {
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
pub(super) fn key_uses(b: &Buffer) -> Vec<KeyUse> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
