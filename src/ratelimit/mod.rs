//! Rate limits per key: [`Limiter`] checks a key's limits in memory (one instance
//! enforces them exactly) or, with `LATCHKEY_REDIS_URL`, in Redis (every instance
//! shares them). Both use the same algorithm (`local::gcra`).

mod decision;
pub mod local;
pub mod redis;

pub use decision::{Decision, LimitState};

use std::sync::Arc;

use crate::domain::limits::RateLimit;

/// What to do when Redis cannot answer (`LATCHKEY_REDIS_FAIL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Let requests through (limits are not enforced while Redis is away).
    #[default]
    Open,
    /// Refuse requests of keys with limits while Redis is away.
    Closed,
}

impl FailMode {
    pub fn parse(s: &str) -> Option<FailMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(FailMode::Open),
            "closed" => Some(FailMode::Closed),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Limiter {
    local: local::LocalLimiter,
    redis: Option<Arc<redis::RedisLimiter>>,
    fail: FailMode,
}

impl Limiter {
    /// Starts connecting to Redis at once (in the background: a Redis that is down at
    /// start does not stop the server).
    pub fn with_redis(redis: Arc<redis::RedisLimiter>, fail: FailMode) -> Self {
        redis.connect();
        Limiter {
            local: local::LocalLimiter::default(),
            redis: Some(redis),
            fail,
        }
    }

    /// Checks (and counts) one request of key `key` (row id; `key_id`, unique across
    /// deployments, names its state in Redis).
    pub async fn check(&self, key: i64, key_id: &str, limits: &[RateLimit]) -> Decision {
        if limits.is_empty() {
            return Decision::allow();
        }
        let Some(redis) = &self.redis else {
            return self.local.check(key, limits);
        };
        if let Some(d) = redis.check(key_id, limits, 1).await {
            return d;
        }
        match self.fail {
            FailMode::Open => Decision::allow(),
            FailMode::Closed => Decision {
                allowed: false,
                states: limits
                    .iter()
                    .map(|l| LimitState {
                        limit: *l,
                        remaining: 0,
                        reset_secs: 1,
                        retry_after_secs: 1,
                    })
                    .collect(),
            },
        }
    }

    /// The current state of a key's limits on this instance (none with Redis: the
    /// state is shared there).
    pub fn peek(&self, key: i64, limits: &[RateLimit]) -> Option<Vec<LimitState>> {
        self.redis.is_none().then(|| self.local.peek(key, limits))
    }

    /// Frees buckets that are full again (housekeeping).
    pub fn sweep(&self) -> usize {
        self.local.sweep()
    }

    /// For `/healthz`: "off" (no Redis), "up" or "down".
    pub fn redis_health(&self) -> &'static str {
        match &self.redis {
            None => "off",
            Some(r) if r.is_down() => "down",
            Some(_) => "up",
        }
    }

    /// Calls to Redis that failed or timed out, for `/metrics`.
    pub fn redis_failures(&self) -> u64 {
        self.redis.as_ref().map_or(0, |r| r.failures())
    }

    pub fn uses_redis(&self) -> bool {
        self.redis.is_some()
    }
}
