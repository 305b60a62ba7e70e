//! Exact totals of filtered key lists — the "1,000" in "1–20 of 1,000" — remembered, so
//! that paging through a filter's results, or coming back to it, does not count again.
//! The name index (`db::key_search`) counts a filter to 1,000 in a few milliseconds; an
//! exact total beyond that ("Count all", the API) reads every match, and is what is
//! worth remembering most. A capped total ("1000+") is never stored: it is cheap to
//! count again, and a later exact request must not take it for the real figure.
//!
//! - Every key write on this instance (`app::write`, through `AppState::forget`) and
//!   every change another instance records (seen by the change poller) forgets every
//!   total at once.
//! - A generation counter keeps a count that raced with a write from being stored.
//! - A total is never used after [`TTL`], which bounds what a missed change could cost.
//! - Only name / key id filters are remembered: risk filters depend on the clock, a
//!   pasted full key matches one row through a unique index, and an unfiltered list's
//!   total is the channel's `key_count`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::list::{Filter, ListQuery, Within};

pub const TTL: Duration = Duration::from_secs(60);
/// Beyond this many remembered filters everything is forgotten (a bound, not an LRU:
/// filters are typed by people, so the map rarely grows large).
const CAPACITY: usize = 2_000;

struct Entry {
    generation: u64,
    at: Instant,
    total: i64,
}

#[derive(Default)]
pub struct FilterCounts {
    generation: AtomicU64,
    map: Mutex<HashMap<String, Entry>>,
}

impl FilterCounts {
    /// What a list's total is remembered under; `None` when it is not remembered.
    pub fn key(within: Within, query: &ListQuery) -> Option<String> {
        if query.risk.is_some() {
            return None;
        }
        match &query.filter {
            Filter::Name(text) => Some(format!("{within:?}|name|{text}")),
            Filter::KeyIdOrName(text) => Some(format!("{within:?}|id|{text}")),
            Filter::None | Filter::Hash(_) => None,
        }
    }

    /// Read before counting, handed back to [`FilterCounts::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &str) -> Option<i64> {
        let map = self.map.lock().ok()?;
        let entry = map.get(key)?;
        (entry.generation == self.generation() && entry.at.elapsed() < TTL).then_some(entry.total)
    }

    /// Remembers a total counted at `generation`, unless keys changed since.
    pub fn put(&self, key: String, generation: u64, total: i64) {
        let Ok(mut map) = self.map.lock() else {
            return;
        };
        // Checked under the lock: `forget_all` bumps the generation, then clears.
        if generation != self.generation() {
            return;
        }
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(
            key,
            Entry {
                generation,
                at: Instant::now(),
                total,
            },
        );
    }

    /// Keys changed: no remembered total holds any more.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut map) = self.map.lock() {
            map.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::list::ListParams;

    fn query(q: &str) -> ListQuery {
        ListQuery::parse(&ListParams {
            q: Some(q.into()),
            ..Default::default()
        })
    }

    #[test]
    fn a_total_is_remembered_until_keys_change() {
        let counts = FilterCounts::default();
        let key = FilterCounts::key(Within::Channel(3), &query("svc")).unwrap();
        assert_eq!(counts.get(&key), None);
        counts.put(key.clone(), counts.generation(), 42);
        assert_eq!(counts.get(&key), Some(42));
        counts.forget_all();
        assert_eq!(counts.get(&key), None);
    }

    #[test]
    fn a_count_that_raced_with_a_write_is_not_stored() {
        let counts = FilterCounts::default();
        let key = FilterCounts::key(Within::Channel(3), &query("svc")).unwrap();
        let before = counts.generation();
        counts.forget_all(); // a write lands while the count runs
        counts.put(key.clone(), before, 42);
        assert_eq!(counts.get(&key), None);
    }

    #[test]
    fn lists_differ_by_where_and_what_they_filter() {
        let a = FilterCounts::key(Within::Channel(3), &query("svc"));
        let b = FilterCounts::key(Within::Channel(4), &query("svc"));
        let c = FilterCounts::key(Within::AllExcept(Some(1)), &query("svc"));
        let d = FilterCounts::key(Within::Channel(3), &query("svd"));
        assert!(a.is_some());
        let all = [&a, &b, &c, &d];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        // Unfiltered lists are not remembered (their total is the channel's key count).
        assert_eq!(FilterCounts::key(Within::Channel(3), &query("")), None);
    }
}
