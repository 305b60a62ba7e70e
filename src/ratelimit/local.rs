//! Rate limits enforced by this instance alone: GCRA (the generic cell rate algorithm)
//! per key and limit, in memory.
//!
//! GCRA keeps one number per limit, the "theoretical arrival time" (TAT): the moment
//! the bucket would be full again. A request is let through when, after adding one
//! emission interval `T = window / limit`, the TAT is at most one window ahead of now.
//! That is a bucket of `limit` requests refilled steadily at `limit` per window: a
//! burst of `limit` at once, then one every `T`. Over any stretch of time `d`, at most
//! `limit + d / T` requests pass — the bound the tests check.

use std::sync::Mutex;
use std::time::Instant;

use super::decision::{Decision, LimitState};
use crate::domain::limits::{LIMITS_MAX, RateLimit};
use crate::fxhash::FxBuild;

type FxHashMap<K, V> = std::collections::HashMap<K, V, FxBuild>;

const SHARDS: usize = 16;
/// Rounding slack, in nanoseconds.
const SLACK: f64 = 1e-3;

type Slot = (i64, u64, u64);

pub struct LocalLimiter {
    start: Instant,
    shards: [Mutex<FxHashMap<Slot, f64>>; SHARDS],
}

impl Default for LocalLimiter {
    fn default() -> Self {
        LocalLimiter {
            start: Instant::now(),
            shards: std::array::from_fn(|_| Mutex::default()),
        }
    }
}

fn slot(key: i64, l: &RateLimit) -> Slot {
    (key, l.limit, l.window.seconds())
}

fn window_ns(l: &RateLimit) -> f64 {
    l.window.seconds() as f64 * 1e9
}

/// TATs of one key's limits (at most `LIMITS_MAX`), on the stack.
pub type Tats = [f64; LIMITS_MAX];

/// The decision for `limits` with the TATs `tats` (nanoseconds; `now` if none) at `now`.
/// Returns it and the TATs to store when the request passes.
pub fn gcra(limits: &[RateLimit], tats: &[f64], now: f64, cost: f64) -> (Decision, Tats) {
    let mut allowed = true;
    let mut next = [0.0; LIMITS_MAX];
    for ((l, tat), n) in limits.iter().zip(tats).zip(next.iter_mut()) {
        let t = window_ns(l) / l.limit as f64;
        let new_tat = tat.max(now) + t * cost;
        if new_tat - now > window_ns(l) + SLACK {
            allowed = false;
        }
        *n = new_tat;
    }
    let states = limits
        .iter()
        .zip(tats.iter().zip(&next))
        .map(|(l, (tat, new_tat))| {
            let (w, t) = (window_ns(l), window_ns(l) / l.limit as f64);
            let tat = tat.max(now);
            let ahead = if allowed { *new_tat - now } else { tat - now };
            let remaining = ((w - ahead + SLACK) / t).floor().max(0.0) as u64;
            // Until one more request fits under this limit.
            let wait = (tat + t - w - now).max(0.0);
            LimitState {
                limit: *l,
                remaining: remaining.min(l.limit),
                reset_secs: (ahead / 1e9).ceil() as u64,
                retry_after_secs: if remaining == 0 {
                    ((wait / 1e9).ceil() as u64).max(1)
                } else {
                    0
                },
            }
        })
        .collect();
    (Decision { allowed, states }, next)
}

impl LocalLimiter {
    fn now(&self) -> f64 {
        // Offset by a day so that "no TAT yet" (now) is never below a stored one.
        self.start.elapsed().as_nanos() as f64 + 86_400e9
    }

    fn shard(&self, key: i64) -> std::sync::MutexGuard<'_, FxHashMap<Slot, f64>> {
        self.shards[key.rem_euclid(SHARDS as i64) as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Checks one request of key `key` (row id) against its limits, counting it when
    /// every limit lets it through.
    pub fn check(&self, key: i64, limits: &[RateLimit]) -> Decision {
        let now = self.now();
        let mut shard = self.shard(key);
        let mut tats = [now; LIMITS_MAX];
        for (l, t) in limits.iter().zip(tats.iter_mut()) {
            if let Some(stored) = shard.get(&slot(key, l)) {
                *t = *stored;
            }
        }
        let (decision, next) = gcra(limits, &tats, now, 1.0);
        if decision.allowed {
            for (l, tat) in limits.iter().zip(next) {
                shard.insert(slot(key, l), tat);
            }
        }
        decision
    }

    /// The state of a key's limits, without counting a request (the key page).
    pub fn peek(&self, key: i64, limits: &[RateLimit]) -> Vec<LimitState> {
        let now = self.now();
        let shard = self.shard(key);
        let tats: Vec<f64> = limits
            .iter()
            .map(|l| shard.get(&slot(key, l)).copied().unwrap_or(now))
            .collect();
        let (mut d, _) = gcra(limits, &tats, now, 0.0);
        for s in &mut d.states {
            s.retry_after_secs = 0;
        }
        d.states
    }

    /// Drops the state of buckets that are full again (they are the same as none), so
    /// memory follows the keys in use, not every key ever checked.
    pub fn sweep(&self) -> usize {
        let now = self.now();
        let mut kept = 0;
        for shard in &self.shards {
            let mut m = shard.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|_, tat| *tat > now);
            kept += m.len();
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::limits::Window;

    fn per_second(limit: u64) -> RateLimit {
        RateLimit {
            limit,
            window: Window::Second,
        }
    }

    #[test]
    fn a_burst_of_the_limit_passes_then_one_per_interval() {
        let limits = [per_second(10)];
        let mut tats: Tats = [0.0; LIMITS_MAX];
        let mut passed = 0;
        for _ in 0..15 {
            let (d, next) = gcra(&limits, &tats, 0.0, 1.0);
            if d.allowed {
                passed += 1;
                tats = next;
            }
        }
        assert_eq!(passed, 10);
        // 100 ms later exactly one more fits.
        let (d, next) = gcra(&limits, &tats, 100e6, 1.0);
        assert!(d.allowed);
        assert_eq!(d.states[0].remaining, 0);
        let (d, _) = gcra(&limits, &next, 100e6, 1.0);
        assert!(!d.allowed);
        assert_eq!(d.states[0].retry_after_secs, 1);
    }

    #[test]
    fn every_limit_must_agree_and_a_refusal_counts_nothing() {
        let limits = [
            per_second(100),
            RateLimit {
                limit: 3,
                window: Window::Day,
            },
        ];
        let l = LocalLimiter::default();
        let passed = (0..10).filter(|_| l.check(1, &limits).allowed).count();
        assert_eq!(passed, 3);
        let peek = l.peek(1, &limits);
        assert_eq!(peek[0].remaining, 97, "refused requests were not counted");
        assert_eq!(peek[1].remaining, 0);
        assert!(l.check(2, &limits).allowed, "keys have their own buckets");
    }

    #[test]
    fn full_buckets_are_swept() {
        let l = LocalLimiter::default();
        l.check(1, &[per_second(1_000_000_000)]);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(l.sweep(), 0);
    }
}
